package gateway

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// Lists are filtered with the same decisions that calls get: an item a
// principal cannot see is one it could not use, and the reverse.

// baseCall is a Call carrying the session's identity.
func (s *clientSession) baseCall(method string) *Call {
	return &Call{
		Principal:     s.principal,
		ClientName:    s.client,
		ClientVersion: s.clientVersion,
		SessionID:     s.id,
		Method:        method,
	}
}

// toolCall is the Call of a tools/call to ti, without arguments.
func (s *clientSession) toolCall(srv *server, ti *toolInfo) *Call {
	c := s.baseCall("tools/call")
	c.Server, c.Tool = srv.name, ti.name
	c.ReadOnly, c.Destructive = ti.annotations.readOnly, ti.annotations.destructive
	c.Idempotent, c.OpenWorld = ti.annotations.idempotent, ti.annotations.openWorld
	return c
}

// filtersLists reports whether list results may need filtering at all.
func (g *Gateway) filtersLists() bool { return g.policyOn || g.store != nil }

// visible reports whether one listed item of srv is shown to the session.
// idx is srv's tool index, needed for tools/list.
func (s *clientSession) visible(ctx context.Context, srv *server, method string, item []byte, idx *toolIndex) bool {
	az := s.g.opts.Authorizer
	switch method {
	case "tools/list":
		name, _ := mcpwire.StringValue(field(item, "name"))
		ti := idx.tools[name]
		if ti == nil || ti.quarantined {
			return false // unknown to the index: listed after it was built
		}
		return az.Visible(ctx, s.toolCall(srv, ti))
	case "prompts/list":
		c := s.baseCall("prompts/get")
		c.Server = srv.name
		c.Tool, _ = mcpwire.StringValue(field(item, "name"))
		return az.Visible(ctx, c)
	case "resources/list":
		c := s.baseCall("resources/read")
		c.Server = srv.name
		c.URI, _ = mcpwire.StringValue(field(item, "uri"))
		return az.Visible(ctx, c)
	case "resources/templates/list":
		c := s.baseCall("resources/read")
		c.Server = srv.name
		return az.Visible(ctx, c)
	}
	return true
}

// filterResult removes what the session may not see from a list result a
// single-server endpoint relays. Anything it cannot read passes unchanged:
// the upstream's errors are the client's to see.
func (s *clientSession) filterResult(ctx context.Context, up *upstreamSession, t *target, result []byte) ([]byte, error) {
	method := t.method
	kind, ok := listKinds[method]
	if !ok {
		return result, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(field(result, kind.member), &items); err != nil {
		return result, nil
	}
	var idx *toolIndex
	if method == "tools/list" {
		up.tools.mu.Lock()
		idx = up.tools.index
		up.tools.mu.Unlock()
		_, paged := mcpwire.ParamsField(t.params, "cursor")
		_, more := mcpwire.ParamsField(result, "nextCursor")
		switch {
		case idx != nil:
		case !paged && !more:
			// The whole list in one page: index it rather than list again.
			raw := make([][]byte, len(items))
			for i, it := range items {
				raw[i] = it
			}
			idx = s.indexTools(ctx, up, raw, t.toolsGen)
		default:
			var err error
			if idx, err = s.tools(ctx, up); err != nil {
				return nil, err
			}
		}
	}
	var b bytes.Buffer
	b.WriteByte('[')
	n := 0
	for _, it := range items {
		if !s.visible(ctx, up.srv, method, it, idx) {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		b.Write(it)
		n++
	}
	b.WriteByte(']')
	if n == len(items) {
		return result, nil
	}
	return mcpwire.ReplaceParamsField(result, kind.member, b.Bytes()), nil
}
