package config

// Telemetry configures traces (metrics are always served on the admin
// listener at /metrics).
type Telemetry struct {
	Tracing Tracing `yaml:"tracing,omitempty" json:"tracing,omitzero"`
}

// IsZero reports whether the section is absent.
func (t Telemetry) IsZero() bool { return t.Tracing.IsZero() }

// Tracing exports OpenTelemetry spans over OTLP.
type Tracing struct {
	// Exporter is none (the default), otlp_http or otlp_grpc.
	Exporter string `yaml:"exporter,omitempty" json:"exporter,omitempty"`
	// Endpoint is the collector: a URL for otlp_http
	// (http://127.0.0.1:4318), host:port for otlp_grpc.
	Endpoint string `yaml:"endpoint,omitempty" json:"endpoint,omitempty"`
	// Insecure sends without TLS (loopback collectors).
	Insecure bool `yaml:"insecure,omitempty" json:"insecure,omitempty"`
	// Headers are sent with every export (credentials as references).
	Headers map[string]Value `yaml:"headers,omitempty" json:"headers,omitempty"`
	// SampleRatio is the fraction of new traces sampled, 0 to 1; a
	// client's sampled parent is honoured. Nil means 1.
	SampleRatio *float64 `yaml:"sample_ratio,omitempty" json:"sample_ratio,omitempty"`
	// ServiceName is the resource's service.name; default mcpgate.
	ServiceName string `yaml:"service_name,omitempty" json:"service_name,omitempty"`
}

// IsZero reports whether the section is absent.
func (t Tracing) IsZero() bool {
	return t.Exporter == "" && t.Endpoint == "" && !t.Insecure && len(t.Headers) == 0 && t.SampleRatio == nil && t.ServiceName == ""
}
