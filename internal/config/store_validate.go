package config

import (
	"strings"
	"unicode"
)

// validateStore checks store.path and every server's pin mode, which
// decides what the store does with a changed tool. The store's directory
// is checked when the store is opened, not here: Validate reads no file.
func (c *Config) validateStore(ps *Problems) {
	const path = "store.path"
	p := c.Store.Path
	switch {
	case p == "":
		ps.add(path, "must be set: a file such as mcpgate.db, or :memory: to keep pins in memory only (forgotten at restart)")
	case strings.IndexFunc(p, unicode.IsControl) >= 0:
		ps.add(path, "must not contain control characters")
	case strings.HasPrefix(p, "file:"):
		ps.add(path, "is a file path, not a URI; drop the file: prefix")
	case strings.HasSuffix(p, "/"):
		ps.add(path, "must name a file, not a directory, such as %smcpgate.db", p)
	}
	for name, s := range c.Servers {
		// Empty is what a config built in Go leaves: the default, enforce.
		if s != nil && s.Pin != "" {
			oneOf(ps, join(join("servers", name), "pin"), s.Pin, PinEnforce, PinAutoAccept, PinOff)
		}
	}
}
