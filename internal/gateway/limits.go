package gateway

import (
	"context"
	"net/http"
	"strconv"

	"github.com/mcpgate/mcpgate/internal/catalog"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/limit"
	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// rateLimiter is the Limit stage over the configured rate limits and
// session budgets.
type rateLimiter struct{ l *limit.Limiter }

var _ Limiter = rateLimiter{}

func (r rateLimiter) Limit(ctx context.Context, c *Call) LimitVerdict {
	v := r.l.Check(ctx, limit.Call{
		Principal:  c.Principal.Key(),
		Tenant:     c.Principal.Tenant,
		Server:     c.Server,
		Tool:       c.Tool,
		Session:    c.SessionID,
		IsToolCall: c.Method == "tools/call",
	})
	return verdictOf(v)
}

func verdictOf(v limit.Verdict) LimitVerdict {
	if v.Allowed {
		return LimitVerdict{Allowed: true}
	}
	return LimitVerdict{Limit: v.Limit, RetryAfter: v.RetryAfter, Message: v.Message, Data: v.Data()}
}

// limited is the client's error for a refused call: a JSON-RPC error that
// names the limit, with the delay in data and in Retry-After.
func (g *Gateway) limited(w http.ResponseWriter, server string, v LimitVerdict) *httpError {
	g.metrics.RateLimited(v.Limit, server)
	if s := retrySeconds(v); s > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(s))
	}
	return &httpError{Code: codeRateLimited, Msg: v.Message, Data: v.Data, Outcome: outcomeRateLimited}
}

func retrySeconds(v LimitVerdict) int {
	if v.RetryAfter <= 0 {
		return 0
	}
	return int((v.RetryAfter + 999_999_999) / 1_000_000_000)
}

// acquire takes the call's concurrency slots (per principal and per
// server); the target releases them when the upstream call ends.
func (s *clientSession) acquire(ctx context.Context, w http.ResponseWriter, t *target) *httpError {
	if s.g.limiter == nil || t.server == nil || t.local != nil {
		return nil
	}
	release, v := s.g.limiter.Acquire(ctx, s.principal.Key(), t.server.name)
	if !v.Allowed {
		return s.g.limited(w, t.server.name, verdictOf(v))
	}
	t.done = release
	return nil
}

// dampen applies retry-storm dampening to a tools/call: an identical
// write within the window is refused or flagged (per tool), and an
// identical read-only call in flight is joined rather than repeated.
func (s *clientSession) dampen(ctx context.Context, t *target) *httpError {
	l := s.g.limiter
	if l == nil || t.info == nil {
		return nil
	}
	cfg := s.g.cfg.Limits
	if t.info.annotations.readOnly {
		if limit.CoalesceReads(cfg) && !wantsProgress(t.params) {
			t.shareKey = limit.RawCallKey(s.principal.Key(), t.server.name, t.tool, t.call.Args)
		}
		return nil
	}
	refuse := limit.DuplicateMode(cfg, t.server.cfg.Tools[t.tool]) == config.DuplicatesRefuse
	key := limit.RawCallKey(s.principal.Key(), t.server.name, t.tool, t.call.Args)
	if refuse {
		key = limit.CallKey(s.principal.Key(), t.server.name, t.tool, t.call.Args)
	}
	prior, dup := l.Writes().Seen(ctx, key)
	if !dup {
		t.writeKey = key
		return nil
	}
	if refuse {
		return &httpError{Code: codeRateLimited, Msg: prior.Message(s.publicToolName(t)), Outcome: outcomeRateLimited}
	}
	t.flags = append(t.flags, "duplicate")
	return nil
}

// wantsProgress reports whether a request asked for progress
// notifications, which a shared call could not deliver to every caller.
func wantsProgress(params []byte) bool {
	_, ok := mcpwire.ParamsField(field(params, "_meta"), "progressToken")
	return ok
}

// publicToolName is a tool's name as the client knows it.
func (s *clientSession) publicToolName(t *target) string {
	if s.ep.aggregate() {
		if q, ok := catalog.Qualify(t.server.name, t.tool); ok {
			return q
		}
	}
	return t.tool
}

// recordWrite remembers how a tracked write ended, for duplicate
// detection; a write that never reached the upstream is forgotten.
func (s *clientSession) recordWrite(t *target, outcome string, sent bool) {
	if t.writeKey == "" {
		return
	}
	ctx := context.Background()
	if sent {
		s.g.limiter.Writes().Record(ctx, t.writeKey, outcome)
	} else {
		s.g.limiter.Writes().Forget(ctx, t.writeKey)
	}
	t.writeKey = ""
}

// sharedResult is the answer of a call shared by identical callers.
type sharedResult struct {
	msg     *mcpwire.Message
	outcome string
}

// forwardShared sends a read-only call that identical callers in flight
// share: one upstream call, its result given to each with its own ID.
func (s *clientSession) forwardShared(w http.ResponseWriter, r *http.Request, msg *mcpwire.Message, t *target) {
	defer t.release()
	rec := recordFrom(r.Context())
	lead := *t // the shared call must not release this caller's slots
	lead.done = nil
	res, shared, err := s.g.coalescer.Do(r.Context(), t.shareKey, func(ctx context.Context) (sharedResult, error) {
		return s.callOnce(ctx, r, msg, &lead)
	})
	if shared {
		rec.set(func(rec *record) { rec.shared = true })
	}
	if err != nil {
		s.forwardFailed(w, r, msg.ID, t, err)
		return
	}
	classify(rec, msg.Method, res.msg)
	w.Header().Set("Content-Type", "application/json")
	w.Write(mcpwire.WithID(res.msg, msg.ID))
}

// callOnce makes one upstream call and waits for its final message;
// anything the server sends meanwhile goes to the session's GET stream.
func (s *clientSession) callOnce(ctx context.Context, r *http.Request, msg *mcpwire.Message, t *target) (sharedResult, error) {
	up, err := s.upstream(ctx, t.server)
	if err != nil {
		return sharedResult{}, err
	}
	c := s.startCall(ctx, r, msg, t, up)
	stream, err := up.conn.Call(c.ctx, c.id, t.method, c.params)
	if err != nil {
		c.finish(outcomeTransportError)
		return sharedResult{}, err
	}
	c.stream = stream
	for {
		m, err := stream.Next()
		if err != nil {
			c.finish(outcomeTransportError)
			return sharedResult{}, err
		}
		if isFinal(m, stream) {
			outcome := classify(&record{}, msg.Method, m)
			c.finish(outcome)
			return sharedResult{msg: m, outcome: outcome}, nil
		}
		if data := s.toClient(up, m, nil); data != nil {
			s.standalone.append(data)
		}
	}
}
