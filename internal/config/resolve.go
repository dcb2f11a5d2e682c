package config

import (
	"crypto/sha256"
	"strings"
)

// ResolveSecrets reads every reference in c — the header and env values of
// each server, the introspection client secrets, the tracing headers, the
// audit key and DSN and the Redis URL — and keeps the result
// in the Value, where [Value.Resolved] returns it. Each environment
// variable must be set and non-empty and each file readable and non-empty.
// It reports every failure as [Problems]; the references that did resolve
// keep their values.
// Calling it again reads the sources again.
func (c *Config) ResolveSecrets() error {
	var ps Problems
	for name, s := range c.Servers {
		if s == nil {
			continue
		}
		path := join("servers", name)
		resolveAll(&ps, join(path, "headers"), s.Headers)
		resolveAll(&ps, join(path, "env"), s.Env)
	}
	c.Auth.resolveSecrets(&ps)
	c.Identity.resolveSecrets(&ps)
	c.Telemetry.Tracing.resolveSecrets(&ps)
	c.Audit.resolveSecrets(&ps)
	if c.State.Redis != nil {
		m := map[string]Value{"url": c.State.Redis.URL}
		resolveAll(&ps, "state.redis", m)
		c.State.Redis.URL = m["url"]
	}
	return ps.err()
}

func resolveAll(ps *Problems, path string, values map[string]Value) {
	for k, v := range values {
		if !v.IsSecret() {
			continue
		}
		s, err := v.Resolve()
		if err != nil {
			ps.add(join(path, k), "%v", err)
			continue
		}
		if isPlaceholder(s) {
			ps.add(join(path, k), "resolves to a well-known placeholder value; set the real credential")
			continue
		}
		v.resolved = &s
		values[k] = v
	}
}

// isPlaceholder reports whether a resolved secret is one of the values
// left behind by examples and defaults ("changeme", "secret", ...).
func isPlaceholder(s string) bool {
	_, weak := weakKeyHashes[sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(s))))]
	return weak
}
