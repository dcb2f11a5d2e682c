package config

// Limits protects upstreams and tenants from runaway callers.
type Limits struct {
	// Rate are token-bucket (GCRA) limits, each over its own key.
	Rate []RateLimit `yaml:"rate,omitempty" json:"rate,omitempty"`
	// Concurrency caps calls in flight.
	Concurrency Concurrency `yaml:"concurrency,omitempty" json:"concurrency,omitzero"`
	// Budgets cap tool calls per session.
	Budgets Budgets `yaml:"budgets,omitempty" json:"budgets,omitzero"`
	// Dampening blunts retry storms.
	Dampening Dampening `yaml:"dampening,omitempty" json:"dampening,omitzero"`
	// ValidateArguments checks tools/call arguments against the tool's
	// inputSchema before forwarding; default true.
	ValidateArguments *bool `yaml:"validate_arguments,omitempty" json:"validate_arguments,omitempty"`
	// MaxStreamsPerPrincipal caps open GET streams of one principal; 0
	// means no cap.
	MaxStreamsPerPrincipal int `yaml:"max_streams_per_principal,omitempty" json:"max_streams_per_principal,omitempty"`
}

// IsZero reports whether the section is absent.
func (l Limits) IsZero() bool {
	return len(l.Rate) == 0 && l.Concurrency == (Concurrency{}) && l.Budgets == (Budgets{}) &&
		l.Dampening.IsZero() && l.ValidateArguments == nil && l.MaxStreamsPerPrincipal == 0
}

// RateLimit is one rate limit.
type RateLimit struct {
	Name string `yaml:"name" json:"name"`
	// Key lists what the limit is counted per: any of principal, tenant,
	// server, tool, session.
	Key []string `yaml:"key" json:"key"`
	// Rate is N/s, N/m or N/h.
	Rate string `yaml:"rate" json:"rate"`
	// Burst is how many calls may come at once; default the rate's N.
	Burst int `yaml:"burst,omitempty" json:"burst,omitempty"`
	// Servers and Tools restrict the limit to these servers and tools
	// (tool names as the server knows them); empty means all.
	Servers []string `yaml:"servers,omitempty" json:"servers,omitempty"`
	Tools   []string `yaml:"tools,omitempty" json:"tools,omitempty"`
}

// Concurrency caps calls in flight; 0 means no cap.
type Concurrency struct {
	PerPrincipal int `yaml:"per_principal,omitempty" json:"per_principal,omitempty"`
	PerServer    int `yaml:"per_server,omitempty" json:"per_server,omitempty"`
}

// Budgets cap tool calls of one session; 0 means no cap.
type Budgets struct {
	CallsPerMinute  int `yaml:"calls_per_minute,omitempty" json:"calls_per_minute,omitempty"`
	CallsPerSession int `yaml:"calls_per_session,omitempty" json:"calls_per_session,omitempty"`
}

// Dampening blunts retry storms.
type Dampening struct {
	// CoalesceReads joins identical in-flight read-only calls (same
	// principal, tool and arguments) into one upstream call; default true.
	CoalesceReads *bool `yaml:"coalesce_reads,omitempty" json:"coalesce_reads,omitempty"`
	// Window is how long an identical write counts as a repeat; default 10s.
	Window Duration `yaml:"window,omitempty" json:"window,omitempty"`
	// DuplicateWrites is flag (allow, mark in the audit; the default) or
	// refuse.
	DuplicateWrites string `yaml:"duplicate_writes,omitempty" json:"duplicate_writes,omitempty"`
}

// IsZero reports whether the section is absent.
func (d Dampening) IsZero() bool {
	return d.CoalesceReads == nil && d.Window == 0 && d.DuplicateWrites == ""
}
