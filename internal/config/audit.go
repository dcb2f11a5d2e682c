package config

// Audit configures the audit trail: a record for every write call, every
// denial and every admin action.
type Audit struct {
	// Key is the HMAC-SHA256 key over the canonical arguments; a
	// reference ({env:} or {file:}) of at least 32 bytes.
	Key *Value `yaml:"key,omitempty" json:"key,omitempty"`
	// File appends JSONL records with a hash chain.
	File *AuditFile `yaml:"file,omitempty" json:"file,omitempty"`
	// Stdout writes records to standard output.
	Stdout bool `yaml:"stdout,omitempty" json:"stdout,omitempty"`
	// Postgres inserts records into a PostgreSQL table.
	Postgres *AuditPostgres `yaml:"postgres,omitempty" json:"postgres,omitempty"`
	// OnFailure is fail_closed (the default: writes are refused while a
	// sink fails; reads continue) or fail_open.
	OnFailure string `yaml:"on_failure,omitempty" json:"on_failure,omitempty"`
}

// IsZero reports whether the section is absent.
func (a Audit) IsZero() bool {
	return a.Key == nil && a.File == nil && !a.Stdout && a.Postgres == nil && a.OnFailure == ""
}

// Enabled reports whether any sink is configured.
func (a *Audit) Enabled() bool { return a.File != nil || a.Stdout || a.Postgres != nil }

// AuditFile is a JSONL audit file.
type AuditFile struct {
	Path string `yaml:"path" json:"path"`
	// MaxBytes rotates the file when it grows past this size; 0 never.
	MaxBytes int64 `yaml:"max_bytes,omitempty" json:"max_bytes,omitempty"`
}

// AuditPostgres is a PostgreSQL audit sink.
type AuditPostgres struct {
	// DSN is a postgres:// URL or key=value string; with a password it
	// must be a reference.
	DSN   Value  `yaml:"dsn" json:"dsn"`
	Table string `yaml:"table,omitempty" json:"table,omitempty"`
}
