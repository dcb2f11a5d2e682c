package config

// Store is where the gateway keeps state that must outlive a process
// (tool pins today).
type Store struct {
	// Path is the SQLite database file. ":memory:" keeps the state in
	// memory only (pins are then forgotten at restart).
	Path string `yaml:"path" json:"path"`
}

// State configures state shared between replicas.
type State struct {
	// Redis holds rate-limit counters shared by every replica; without it
	// limits are local to each process.
	Redis *RedisState `yaml:"redis,omitempty" json:"redis,omitempty"`
}

// IsZero reports whether the section is absent.
func (s State) IsZero() bool { return s.Redis == nil }

// RedisState points at a Redis server.
type RedisState struct {
	// URL is redis://[user:password@]host:port/db or rediss://…; a URL with
	// a password must be a reference ({env:} or {file:}).
	URL Value `yaml:"url" json:"url"`
}
