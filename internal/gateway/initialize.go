package gateway

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/mcpgate/mcpgate/internal/identity"
	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/mcpgate/mcpgate/internal/session"
)

// initialize starts a client session: it negotiates the protocol version,
// connects the upstreams with the client's own initialize params (servers
// shape their catalogs on the client's capabilities), and answers.
func (g *Gateway) initialize(w http.ResponseWriter, r *http.Request, ep *endpoint, p identity.Principal, msg *mcpwire.Message) {
	rec := recordFrom(r.Context())
	fail := func(e *httpError) {
		rec.setOutcome(e.Outcome, e.Err)
		e.render(w, msg.ID)
	}
	if g.draining.Load() {
		fail(&httpError{Status: http.StatusServiceUnavailable, Code: mcpwire.CodeInternalError, Msg: "gateway is shutting down; retry against another instance", Outcome: outcomeTransportError})
		return
	}
	requested, _ := mcpwire.StringValue(field(msg.Params, "protocolVersion"))
	if requested == "" {
		fail(&httpError{Code: mcpwire.CodeInvalidParams, Msg: "initialize requires params.protocolVersion", Outcome: outcomeInvalid})
		return
	}
	version := requested
	params := msg.Params
	if !slices.Contains(supportedVersions, requested) {
		version = latestVersion
		params = mcpwire.ReplaceParamsField(params, "protocolVersion", quote(version))
	}
	c := &Call{Principal: p, Method: msg.Method}
	if ep.server != nil {
		c.Server = ep.server.name
	}
	if v := g.opts.Limiter.Limit(r.Context(), c); !v.Allowed {
		// A flood of new sessions is refused at the HTTP level.
		e := g.limited(w, c.Server, v)
		e.Status = http.StatusTooManyRequests
		fail(e)
		return
	}
	s := newClientSession(g, ep, p, version, params)
	id, err := g.sessions.Create(p.Key(), s)
	if err != nil {
		if errors.Is(err, session.ErrTooMany) {
			fail(&httpError{Status: http.StatusTooManyRequests, Code: mcpwire.CodeInvalidRequest, Msg: "too many open sessions for this caller; close one (DELETE) or wait for idle ones to expire", Outcome: outcomeRateLimited})
			return
		}
		fail(&httpError{Status: http.StatusServiceUnavailable, Code: mcpwire.CodeInternalError, Msg: "gateway is shutting down", Outcome: outcomeTransportError, Err: err})
		return
	}
	s.id = id
	g.metrics.SessionOpened()
	rec.set(func(rec *record) { rec.sessionID = id })
	var result []byte
	if ep.aggregate() {
		s.connectAll(r.Context())
		result = s.aggregateInitResult()
	} else {
		rec.set(func(rec *record) { rec.server = ep.server.name })
		up, err := s.upstream(r.Context(), ep.server)
		if err != nil {
			g.sessions.Remove(id)
			fail(&httpError{Status: http.StatusBadGateway, Code: mcpwire.CodeInternalError, Msg: "server " + ep.server.name + " is unavailable; try again later", Outcome: outcomeTransportError, Err: err})
			return
		}
		result = up.conn.InitResult().Result
		if v := up.conn.ProtocolVersion(); slices.Contains(supportedVersions, v) {
			s.version = v
		} else {
			result = mcpwire.ReplaceParamsField(result, "protocolVersion", quote(version))
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Mcp-Session-Id", id)
	w.Write(mcpwire.NewResult(msg.ID, result))
}

// connectAll dials every server concurrently. A server that fails drops out
// of this session's catalog with a warning and is retried later.
func (s *clientSession) connectAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, name := range s.g.names {
		srv := s.g.servers[name]
		wg.Go(func() { s.upstream(ctx, srv) })
	}
	wg.Wait()
}

// aggregateInitResult is the aggregate endpoint's own initialize result.
// It declares every capability the gateway can route, with list changes,
// because servers come and go during a session.
func (s *clientSession) aggregateInitResult() []byte {
	var b strings.Builder
	b.WriteString(`{"protocolVersion":`)
	b.Write(quote(s.version))
	b.WriteString(`,"capabilities":{"tools":{"listChanged":true},"prompts":{"listChanged":true},"resources":{"subscribe":true,"listChanged":true},"completions":{},"logging":{}}`)
	b.WriteString(`,"serverInfo":{"name":"mcpgate","title":"mcpgate","version":`)
	b.Write(quote(s.g.opts.Version))
	b.WriteString(`}`)
	var instr []string
	s.mu.Lock()
	for _, name := range s.g.names {
		if up, ok := s.ups[name]; ok {
			if v, _ := mcpwire.StringValue(field(up.conn.InitResult().Result, "instructions")); v != "" {
				instr = append(instr, "Tools, prompts and resources of server "+name+" (names prefixed "+name+"__): "+v)
			}
		}
	}
	s.mu.Unlock()
	if len(instr) > 0 {
		b.WriteString(`,"instructions":`)
		b.Write(quote(strings.Join(instr, "\n\n")))
	}
	b.WriteString(`}`)
	return []byte(b.String())
}

// field returns a top-level member of a raw JSON object, or nil.
func field(obj []byte, key string) []byte {
	v, _ := mcpwire.ParamsField(obj, key)
	return v
}
