package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/mcpgate/mcpgate/internal/config"
)

// Exporters (telemetry.tracing.exporter).
const (
	ExporterNone     = "none"
	ExporterOTLPHTTP = "otlp_http"
	ExporterOTLPGRPC = "otlp_grpc"
)

const (
	defaultServiceName  = "mcpgate"
	instrumentationName = "github.com/mcpgate/mcpgate"
	// otlpTracesPath is where an OTLP/HTTP collector takes spans; an
	// endpoint written without a path gets it.
	otlpTracesPath = "/v1/traces"
	// maxAttributeLength truncates attribute values (resource URIs can be
	// long) so one request cannot make a span arbitrarily large.
	maxAttributeLength = 1024
)

// Tracing makes the gateway's spans and carries W3C trace context between
// clients, the gateway and upstreams. It is built once per process and
// passed to whoever starts spans; it never touches OpenTelemetry's global
// tracer provider or propagator.
//
// With exporter none, spans are not recorded, but trace context still flows:
// a client's traceparent is continued and forwarded upstream unchanged, so
// the upstream's spans join the client's trace.
type Tracing struct {
	provider trace.TracerProvider
	sdk      *sdktrace.TracerProvider // nil with exporter none
	tracer   trace.Tracer
	prop     propagation.TraceContext
}

// NewTracing builds tracing from the configuration. Header values that are
// references must have been resolved ([config.Config.ResolveSecrets]).
// The OTLP exporters also read the standard OTEL_EXPORTER_OTLP_* variables
// for what the configuration leaves unset (a CA certificate, a timeout).
func NewTracing(ctx context.Context, cfg config.Tracing, version string) (*Tracing, error) {
	if cfg.Exporter == "" || cfg.Exporter == ExporterNone {
		p := noop.NewTracerProvider()
		return &Tracing{provider: p, tracer: p.Tracer(instrumentationName)}, nil
	}
	headers, err := exportHeaders(cfg.Headers)
	if err != nil {
		return nil, err
	}
	var exp sdktrace.SpanExporter
	switch cfg.Exporter {
	case ExporterOTLPHTTP:
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("telemetry.tracing.endpoint must be an http or https URL, got %q", cfg.Endpoint)
		}
		if u.Path == "" || u.Path == "/" {
			u.Path = otlpTracesPath
		}
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(u.String())}
		if len(headers) > 0 {
			opts = append(opts, otlptracehttp.WithHeaders(headers))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("building the OTLP/HTTP exporter: %w", err)
		}
	case ExporterOTLPGRPC:
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(cfg.Endpoint)}
		if cfg.Insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		if len(headers) > 0 {
			opts = append(opts, otlptracegrpc.WithHeaders(headers))
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("building the OTLP/gRPC exporter: %w", err)
		}
	default:
		return nil, fmt.Errorf("telemetry.tracing.exporter must be none, otlp_http or otlp_grpc, got %q", cfg.Exporter)
	}

	name := cfg.ServiceName
	if name == "" {
		name = defaultServiceName
	}
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(
			attribute.String("service.name", name),
			attribute.String("service.version", version),
		))
	if err != nil {
		return nil, fmt.Errorf("building the trace resource: %w", err)
	}
	ratio := 1.0
	if cfg.SampleRatio != nil {
		ratio = *cfg.SampleRatio
	}
	limits := sdktrace.NewSpanLimits()
	limits.AttributeValueLengthLimit = maxAttributeLength
	sdk := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
		sdktrace.WithRawSpanLimits(limits),
	)
	return &Tracing{
		provider: sdk,
		sdk:      sdk,
		tracer:   sdk.Tracer(instrumentationName, trace.WithInstrumentationVersion(version)),
	}, nil
}

// exportHeaders reads the configured headers; a reference must have been
// resolved.
func exportHeaders(values map[string]config.Value) (map[string]string, error) {
	if len(values) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	sort.Strings(names)
	headers := make(map[string]string, len(values))
	var errs []error
	for _, name := range names {
		v := values[name]
		s := v.Resolved()
		if s == "" && v.IsSecret() {
			errs = append(errs, fmt.Errorf("telemetry.tracing.headers.%s: the reference has not been resolved", name))
			continue
		}
		headers[name] = s
	}
	return headers, errors.Join(errs...)
}

// TracerProvider returns the provider spans come from, for libraries that
// take one.
func (t *Tracing) TracerProvider() trace.TracerProvider { return t.provider }

// Shutdown exports the spans still buffered and stops the exporter; spans
// started afterwards are dropped. It returns when ctx ends at the latest.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.sdk == nil {
		return nil
	}
	return t.sdk.Shutdown(ctx)
}

// ForceFlush exports the spans buffered so far.
func (t *Tracing) ForceFlush(ctx context.Context) error {
	if t == nil || t.sdk == nil {
		return nil
	}
	return t.sdk.ForceFlush(ctx)
}
