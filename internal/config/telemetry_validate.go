package config

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"strings"
)

// Tracing exporters (telemetry.tracing.exporter).
const (
	TracingNone     = "none"
	TracingOTLPHTTP = "otlp_http"
	TracingOTLPGRPC = "otlp_grpc"
)

const maxServiceName = 255

func (c *Config) validateTelemetry(ps *Problems) {
	const path = "telemetry.tracing"
	t := &c.Telemetry.Tracing
	switch t.Exporter {
	case "", TracingNone:
		for key, set := range map[string]bool{"endpoint": t.Endpoint != "", "headers": len(t.Headers) > 0, "insecure": t.Insecure} {
			if set {
				ps.add(join(path, key), "only an otlp_http or otlp_grpc exporter takes %s; set exporter, or remove %s", key, key)
			}
		}
	case TracingOTLPHTTP:
		if msg := otlpHTTPEndpointProblem(t.Endpoint, t.Insecure); msg != "" {
			ps.add(join(path, "endpoint"), "%s", msg)
		}
	case TracingOTLPGRPC:
		if msg := otlpGRPCEndpointProblem(t.Endpoint); msg != "" {
			ps.add(join(path, "endpoint"), "%s", msg)
		}
		for name := range t.Headers {
			if strings.HasPrefix(strings.ToLower(name), "grpc-") {
				ps.add(join(join(path, "headers"), name), "grpc- headers are reserved by gRPC and cannot be set")
			}
		}
	default:
		oneOf(ps, join(path, "exporter"), t.Exporter, TracingNone, TracingOTLPHTTP, TracingOTLPGRPC)
	}
	validateHeaders(ps, join(path, "headers"), t.Headers)
	if r := t.SampleRatio; r != nil && (math.IsNaN(*r) || *r < 0 || *r > 1) {
		ps.add(join(path, "sample_ratio"), "must be between 0 and 1, got %v", *r)
	}
	switch name := t.ServiceName; {
	case len(name) > maxServiceName:
		ps.add(join(path, "service_name"), "must be at most %d bytes, got %d", maxServiceName, len(name))
	case !validHeaderValue(name) || strings.ContainsRune(name, '\t'):
		ps.add(join(path, "service_name"), "must not contain control characters")
	}
}

// otlpHTTPEndpointProblem checks an OTLP/HTTP collector URL.
func otlpHTTPEndpointProblem(s string, insecure bool) string {
	if s == "" {
		return "must be set for otlp_http: the collector's URL, such as http://127.0.0.1:4318"
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Opaque != "":
		return fmt.Sprintf("must be an http or https URL, such as http://127.0.0.1:4318, got %q", s)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("scheme must be http or https, got %q", u.Scheme)
	case u.Hostname() == "":
		return "must include a host"
	case u.User != nil:
		return "must not contain credentials; send them in headers, using {env: NAME} or {file: PATH}"
	case u.RawQuery != "" || u.ForceQuery:
		return "must not contain a query"
	case u.Fragment != "":
		return "must not contain a fragment"
	case insecure && u.Scheme == "https":
		return "is https, which contradicts insecure: true; use an http:// URL to send without TLS"
	}
	if port := u.Port(); port != "" {
		return portProblem(port)
	}
	return ""
}

// otlpGRPCEndpointProblem checks an OTLP/gRPC collector address.
func otlpGRPCEndpointProblem(s string) string {
	if s == "" {
		return "must be set for otlp_grpc: the collector's host:port, such as 127.0.0.1:4317"
	}
	if strings.Contains(s, "://") {
		return fmt.Sprintf("must be host:port without a scheme (insecure: true sends without TLS), got %q", s)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Sprintf("must be host:port, such as 127.0.0.1:4317, got %q", s)
	}
	if msg := portProblem(port); msg != "" {
		return msg
	}
	if port == "0" {
		return "port must not be 0"
	}
	if host == "" || !validHost(host) {
		return fmt.Sprintf("invalid host %q", host)
	}
	return ""
}

// resolveSecrets reads the header references of the tracing exporter.
func (t *Tracing) resolveSecrets(ps *Problems) {
	resolveAll(ps, "telemetry.tracing.headers", t.Headers)
}
