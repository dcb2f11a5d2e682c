package gateway

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/mcpgate/mcpgate/internal/argcheck"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// toolInfo is what the gateway knows about one upstream tool: enough to
// authorize, pin, validate and audit a call to it.
type toolInfo struct {
	name        string
	annotations annotations // effective: trusted hints and config overrides
	hash        string      // pin fingerprint of the definition
	quarantined bool        // changed since approval; hidden and refused
	inputSchema []byte

	schemaOnce sync.Once
	schema     *argcheck.Schema // nil when absent or not compilable
}

// validate checks a call's arguments against the tool's inputSchema. A
// schema that does not compile is logged once by the cache and the call
// goes unvalidated: a server's broken schema must not take its tool away.
func (ti *toolInfo) validate(cache *argcheck.Cache, args []byte) error {
	ti.schemaOnce.Do(func() {
		if len(ti.inputSchema) > 0 {
			ti.schema, _ = cache.Get(ti.inputSchema)
		}
	})
	return ti.schema.Validate(args)
}

// annotations are a tool's effective behaviour hints.
type annotations struct {
	readOnly, destructive, idempotent, openWorld bool
}

// toolIndex is one upstream session's tools, rebuilt when the server says
// its list changed.
type toolIndex struct {
	tools map[string]*toolInfo
}

// toolSet caches an upstream session's tool index; fetches are shared.
type toolSet struct {
	mu      sync.Mutex // guards the fields below
	index   *toolIndex
	gen     uint64 // bumped by invalidate, so a fetch racing a change is not cached
	loading chan struct{}
}

func (t *toolSet) invalidate() {
	t.mu.Lock()
	t.index = nil
	t.gen++
	t.mu.Unlock()
}

// tools returns up's tool index, listing the server's tools (every page)
// when it is not cached.
func (s *clientSession) tools(ctx context.Context, up *upstreamSession) (*toolIndex, error) {
	if !up.caps.tools {
		return &toolIndex{}, nil
	}
	for {
		up.tools.mu.Lock()
		if idx := up.tools.index; idx != nil {
			up.tools.mu.Unlock()
			return idx, nil
		}
		if wait := up.tools.loading; wait != nil {
			up.tools.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		done := make(chan struct{})
		up.tools.loading = done
		gen := up.tools.gen
		up.tools.mu.Unlock()
		items, err := s.fetchAll(ctx, up, "tools/list", "tools")
		var idx *toolIndex
		if err == nil {
			idx = s.indexTools(ctx, up, items, gen)
		}
		up.tools.mu.Lock()
		up.tools.loading = nil
		up.tools.mu.Unlock()
		close(done)
		return idx, err
	}
}

// indexTools builds and caches up's tool index from a complete listing,
// unless the list changed while it was being fetched (gen).
func (s *clientSession) indexTools(ctx context.Context, up *upstreamSession, items [][]byte, gen uint64) *toolIndex {
	idx := &toolIndex{tools: make(map[string]*toolInfo, len(items))}
	for _, it := range items {
		name, _ := mcpwire.StringValue(field(it, "name"))
		if name == "" {
			continue
		}
		ti := &toolInfo{
			name:        name,
			annotations: effectiveAnnotations(up.srv.cfg, name, field(it, "annotations")),
			inputSchema: field(it, "inputSchema"),
		}
		s.g.pin(ctx, up.srv, ti, it)
		idx.tools[name] = ti
	}
	up.tools.mu.Lock()
	if up.tools.gen == gen {
		up.tools.index = idx
	}
	up.tools.mu.Unlock()
	s.g.noteCatalog(up.srv.name, idx)
	return idx
}

// noteCatalog gives the metrics the tool names a server has listed. It
// keeps the union over sessions, since catalogs differ by the client's
// capabilities and the tool label should not flap between them.
func (g *Gateway) noteCatalog(server string, idx *toolIndex) {
	g.catMu.Lock()
	defer g.catMu.Unlock()
	known := g.catNames[server]
	if known == nil {
		known = make(map[string]bool)
		g.catNames[server] = known
	}
	grew := false
	for name := range idx.tools {
		if !known[name] && len(known) < maxToolLabels {
			known[name], grew = true, true
		}
	}
	if grew {
		g.metrics.SetCatalog(server, slices.Sorted(maps.Keys(known)))
	}
}

// maxToolLabels bounds the tool names per server that metrics label.
const maxToolLabels = 2000

// lookupTool finds a tool of up for a call, listing the server's tools
// first if needed. A tool the server does not list is unknown.
func (s *clientSession) lookupTool(ctx context.Context, up *upstreamSession, name string) (*toolInfo, error) {
	idx, err := s.tools(ctx, up)
	if err != nil {
		return nil, fmt.Errorf("listing tools of %s: %w", up.srv.name, err)
	}
	return idx.tools[name], nil
}

// effectiveAnnotations are a tool's hints as the gateway believes them: the
// server's own when it is trusted, otherwise the conservative reading the
// MCP specification gives for absent hints (not read-only, destructive,
// not idempotent, open world); config overrides win either way.
func effectiveAnnotations(sc *config.Server, tool string, raw []byte) annotations {
	a := annotations{destructive: true, openWorld: true}
	if sc.Trusted && raw != nil {
		hint := func(key string, def bool) bool {
			switch string(field(raw, key)) {
			case "true":
				return true
			case "false":
				return false
			}
			return def
		}
		a.readOnly = hint("readOnlyHint", false)
		a.destructive = hint("destructiveHint", true) && !a.readOnly
		a.idempotent = hint("idempotentHint", false)
		a.openWorld = hint("openWorldHint", true)
	}
	if o := sc.Tools[tool]; o != nil && o.Annotations != nil {
		set := func(dst *bool, v *bool) {
			if v != nil {
				*dst = *v
			}
		}
		set(&a.readOnly, o.Annotations.ReadOnly)
		set(&a.destructive, o.Annotations.Destructive)
		set(&a.idempotent, o.Annotations.Idempotent)
		set(&a.openWorld, o.Annotations.OpenWorld)
	}
	return a
}
