package config

import "go.yaml.in/yaml/v3"

// Config is the whole gateway configuration, as decoded from YAML.
type Config struct {
	// Listen is the host:port of the data listener.
	Listen string `yaml:"listen" json:"listen"`
	// Admin configures the separate admin listener.
	Admin Admin `yaml:"admin" json:"admin"`
	// Log configures structured logging.
	Log Log `yaml:"log" json:"log"`
	// HTTP holds limits and origin checks for the data listener.
	HTTP HTTP `yaml:"http" json:"http"`
	// Sessions bounds legacy (sessionful) client sessions.
	Sessions Sessions `yaml:"sessions" json:"sessions"`
	// ShutdownGrace is how long in-flight requests may finish on shutdown.
	ShutdownGrace Duration `yaml:"shutdown_grace" json:"shutdown_grace"`
	// Servers are the upstream MCP servers, by name.
	Servers map[string]*Server `yaml:"servers" json:"servers"`
	// Auth configures client authentication; without it every caller is
	// anonymous.
	Auth Auth `yaml:"auth,omitempty" json:"auth,omitzero"`
	// TLS serves the data listener over TLS (required for mTLS).
	TLS *TLS `yaml:"tls,omitempty" json:"tls,omitempty"`
	// Identity holds the key that signs the identity asserted to upstream
	// servers (servers.<name>.identity.jwt).
	Identity IdentitySigning `yaml:"identity,omitempty" json:"identity,omitzero"`
	// Policy authorizes calls per principal, server, tool and arguments.
	Policy Policy `yaml:"policy,omitempty" json:"policy,omitzero"`
	// Store is the gateway's persistent state (tool pins).
	Store Store `yaml:"store" json:"store"`
	// State is state shared between replicas (Redis).
	State State `yaml:"state,omitempty" json:"state,omitzero"`
	// Telemetry configures tracing.
	Telemetry Telemetry `yaml:"telemetry,omitempty" json:"telemetry,omitzero"`
	// Audit configures the audit trail.
	Audit Audit `yaml:"audit,omitempty" json:"audit,omitzero"`
	// Limits configures rate limits, caps, dampening and validation.
	Limits Limits `yaml:"limits,omitempty" json:"limits,omitzero"`
}

// Admin configures the admin listener (metrics, admin API, dashboard).
type Admin struct {
	// Listen is the host:port of the admin listener; it must be set.
	Listen string `yaml:"listen" json:"listen"`
}

// Log configures structured logging.
type Log struct {
	// Level is one of debug, info, warn or error.
	Level string `yaml:"level" json:"level"`
	// Format is json or text.
	Format string `yaml:"format" json:"format"`
}

// HTTP holds request limits and the Host and Origin checks of the data
// listener.
type HTTP struct {
	// AllowedHosts are Host header values accepted in addition to the
	// listen host, localhost, 127.0.0.1 and [::1].
	AllowedHosts []string `yaml:"allowed_hosts" json:"allowed_hosts"`
	// AllowedOrigins are exact Origin values (scheme://host[:port])
	// accepted in addition to loopback origins.
	AllowedOrigins []string `yaml:"allowed_origins" json:"allowed_origins"`
	// MaxBodyBytes caps the size of a request body.
	MaxBodyBytes int64 `yaml:"max_body_bytes" json:"max_body_bytes"`
	// MaxJSONDepth caps the nesting depth of a JSON request body.
	MaxJSONDepth int `yaml:"max_json_depth" json:"max_json_depth"`
}

// Sessions bounds legacy client sessions.
type Sessions struct {
	// IdleTimeout ends a session that has seen no request for this long.
	IdleTimeout Duration `yaml:"idle_timeout" json:"idle_timeout"`
	// MaxPerPrincipal caps the open sessions of one principal.
	MaxPerPrincipal int `yaml:"max_per_principal" json:"max_per_principal"`
}

// Server is one upstream MCP server: either Streamable HTTP (URL set) or a
// stdio process (Command set), never both.
type Server struct {
	// Name is the server's key in Config.Servers, filled in by Parse.
	Name string `yaml:"-" json:"-"`
	// URL is the Streamable HTTP endpoint of an HTTP upstream.
	URL string `yaml:"url,omitempty" json:"url,omitempty"`
	// Headers are sent on every request to an HTTP upstream.
	Headers map[string]Value `yaml:"headers,omitempty" json:"headers,omitempty"`
	// Identity says how an HTTP upstream learns who is calling: a JWT the
	// gateway mints, identity headers, or both.
	Identity *ServerIdentity `yaml:"identity,omitempty" json:"identity,omitempty"`
	// Command is the argv of a stdio upstream.
	Command []string `yaml:"command,omitempty" json:"command,omitempty"`
	// Env holds extra environment variables for a stdio upstream.
	Env map[string]Value `yaml:"env,omitempty" json:"env,omitempty"`
	// Dir is the working directory of a stdio upstream; empty means the
	// gateway's own.
	Dir string `yaml:"dir,omitempty" json:"dir,omitempty"`
	// ConnectTimeout bounds connection setup to an HTTP upstream.
	ConnectTimeout Duration `yaml:"connect_timeout" json:"connect_timeout"`
	// ResponseTimeout bounds a whole upstream response, including a
	// streamed one.
	ResponseTimeout Duration `yaml:"response_timeout" json:"response_timeout"`
	// RestartBackoffMax caps the delay between restarts of a stdio
	// upstream.
	RestartBackoffMax Duration `yaml:"restart_backoff_max" json:"restart_backoff_max"`
	// Trusted says the server's tool annotations (read-only, destructive,
	// ...) may be believed; otherwise they are ignored and only
	// servers.<name>.tools overrides count.
	Trusted bool `yaml:"trusted,omitempty" json:"trusted,omitempty"`
	// Pin is what happens when a tool's definition changes after it was
	// first seen: enforce (the default: quarantine until approved),
	// auto_accept (record the change and accept it) or off.
	Pin string `yaml:"pin" json:"pin"`
	// Tools override annotations, timeouts and duplicate handling per tool
	// (keyed by the server's own tool name).
	Tools map[string]*ToolOverride `yaml:"tools,omitempty" json:"tools,omitempty"`
	// URLs are replicas of an HTTP upstream, used instead of URL; new
	// sessions go to the least busy healthy replica.
	URLs []string `yaml:"urls,omitempty" json:"urls,omitempty"`
	// MaxResponseBytes caps one upstream message; 0 means 16 MiB.
	MaxResponseBytes int64 `yaml:"max_response_bytes,omitempty" json:"max_response_bytes,omitempty"`
	// HealthCheck probes HTTP replicas actively; zero interval disables it.
	HealthCheck HealthCheck `yaml:"health_check,omitempty" json:"health_check,omitzero"`
	// Breaker fails calls fast while a replica keeps failing.
	Breaker Breaker `yaml:"breaker,omitempty" json:"breaker,omitzero"`
}

// HealthCheck configures active health checks of HTTP replicas.
type HealthCheck struct {
	Interval Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
}

// Breaker is a per-replica circuit breaker.
type Breaker struct {
	// Failures in a row open the breaker; 0 means 5.
	Failures int `yaml:"failures,omitempty" json:"failures,omitempty"`
	// Cooldown is how long it stays open before one trial call; 0 means 10s.
	Cooldown Duration `yaml:"cooldown,omitempty" json:"cooldown,omitempty"`
}

// IsStdio reports whether the server is a stdio process rather than an HTTP
// endpoint.
func (s *Server) IsStdio() bool { return len(s.Command) > 0 }

// UnmarshalYAML decodes a server on top of the per-server defaults, so that
// an absent key keeps its default and an explicit zero stays zero.
//
// Unknown keys are rejected before decoding, by the shape check in Parse.
func (s *Server) UnmarshalYAML(n *yaml.Node) error {
	type plain Server // drops this method, avoiding recursion
	*s = *defaultServer()
	return n.Decode((*plain)(s))
}
