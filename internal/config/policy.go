package config

// Policy is the authorization policy: CEL rules compiled once at load.
// Without rules every call is allowed.
type Policy struct {
	// Default decides a call that no rule allows or denies: allow or deny.
	// It must be set when rules are given.
	Default string `yaml:"default,omitempty" json:"default,omitempty"`
	// ServerRequests decides a server→client request (sampling,
	// elicitation, roots) that no rule decides: allow (the default) or
	// deny.
	ServerRequests string `yaml:"server_requests,omitempty" json:"server_requests,omitempty"`
	// Rules are evaluated together; a matching deny wins over any allow.
	Rules []PolicyRule `yaml:"rules,omitempty" json:"rules,omitempty"`
}

// IsZero reports whether the section is absent.
func (p Policy) IsZero() bool { return p.Default == "" && p.ServerRequests == "" && len(p.Rules) == 0 }

// PolicyRule is one named rule: exactly one of Allow or Deny, a CEL
// expression that yields a bool.
type PolicyRule struct {
	Name  string `yaml:"name" json:"name"`
	Allow string `yaml:"allow,omitempty" json:"allow,omitempty"`
	Deny  string `yaml:"deny,omitempty" json:"deny,omitempty"`
	// Reason is the short public message of a denial.
	Reason string `yaml:"reason,omitempty" json:"reason,omitempty"`
	// Mode is enforce (the default) or dry_run: log and count what the
	// rule would decide without enforcing it.
	Mode string `yaml:"mode,omitempty" json:"mode,omitempty"`
	// Methods are the methods the rule applies to; default [tools/call].
	Methods []string `yaml:"methods,omitempty" json:"methods,omitempty"`
}

// ToolOverride adjusts one upstream tool (servers.<name>.tools.<tool>).
type ToolOverride struct {
	// Annotations replace the server's own hints for this tool; unset
	// fields keep the server's (or, for an untrusted server, the
	// conservative default).
	Annotations *ToolAnnotations `yaml:"annotations,omitempty" json:"annotations,omitempty"`
	// Timeout bounds one call of this tool; zero means the server's
	// response_timeout.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Duplicates says what to do with an identical write repeated within
	// limits.dampening.window: flag (allow and mark in the audit) or
	// refuse. Empty means limits.dampening.duplicate_writes.
	Duplicates string `yaml:"duplicates,omitempty" json:"duplicates,omitempty"`
}

// ToolAnnotations are MCP tool hints. A nil field is unset.
type ToolAnnotations struct {
	ReadOnly    *bool `yaml:"read_only,omitempty" json:"read_only,omitempty"`
	Destructive *bool `yaml:"destructive,omitempty" json:"destructive,omitempty"`
	Idempotent  *bool `yaml:"idempotent,omitempty" json:"idempotent,omitempty"`
	OpenWorld   *bool `yaml:"open_world,omitempty" json:"open_world,omitempty"`
}
