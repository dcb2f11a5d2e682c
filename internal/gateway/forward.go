package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/mcpgate/mcpgate/internal/telemetry"
	"github.com/mcpgate/mcpgate/internal/upstream"
	"go.opentelemetry.io/otel/trace"
)

// The Upstream stage: one request sent to its server and its answer
// relayed, with deadline, span, metrics and failures mapped for the client.

// forward sends a request to its upstream and relays the answer in the
// form the upstream chose: one JSON body, or an SSE stream relayed event by
// event (also when a single-body answer, as from stdio, has notifications
// or requests before the response).
func (s *clientSession) forward(w http.ResponseWriter, r *http.Request, msg *mcpwire.Message, t *target) {
	rec := recordFrom(r.Context())
	up, err := s.upstream(r.Context(), t.server)
	if err != nil {
		t.release()
		s.recordWrite(t, outcomeTransportError, false)
		s.forwardFailed(w, r, msg.ID, t, err)
		return
	}
	c := s.startCall(s.ctx, r, msg, t, up)
	stream, err := up.conn.Call(c.ctx, c.id, t.method, c.params)
	if err != nil {
		c.finish(outcomeTransportError)
		s.forwardFailed(w, r, msg.ID, t, err)
		return
	}
	c.stream = stream
	// Mirror the upstream's choice of body: a single JSON response stays
	// JSON; an event stream is relayed event by event as it arrives.
	var first *mcpwire.Message
	if !stream.Streaming() {
		first, err = stream.Next()
		if err != nil {
			c.finish(outcomeTransportError)
			s.forwardFailed(w, r, msg.ID, t, err)
			return
		}
		if isFinal(first, stream) {
			outcome := classify(rec, msg.Method, first)
			data := s.final(c.ctx, up, t, first, msg.ID)
			s.auditCall(r.Context(), t, outcome, nil, t.flags)
			c.finish(outcome)
			w.Header().Set("Content-Type", "application/json")
			w.Write(data)
			return
		}
	}
	log := s.newPostLog()
	rec.hold()
	go func() {
		defer rec.done()
		defer log.close()
		outcome := outcomeTransportError
		defer func() { c.finish(outcome) }()
		m := first
		for {
			if m == nil {
				if m, err = stream.Next(); err != nil {
					s.g.metrics.UpstreamError(t.server.name, replicaOf(up), upstreamErrKind(err))
					e := s.upstreamFailure(t.server.name, err)
					rec.setOutcome(e.Outcome, e.Err)
					s.auditCall(r.Context(), t, e.Outcome, err, t.flags)
					log.append(mcpwire.NewError(msg.ID, e.Code, e.Msg, nil))
					return
				}
			}
			if isFinal(m, stream) {
				outcome = classify(rec, msg.Method, m)
				data := s.final(c.ctx, up, t, m, msg.ID)
				s.auditCall(r.Context(), t, outcome, nil, t.flags)
				log.append(data)
				return
			}
			if data := s.toClient(up, m, nil); data != nil {
				log.append(data)
			}
			m = nil
		}
	}()
	s.tail(w, r, log, 1)
}

// upstreamCall is one request in flight to an upstream.
type upstreamCall struct {
	s      *clientSession
	t      *target
	up     *upstreamSession
	ctx    context.Context
	cancel context.CancelFunc
	id     []byte // the upstream-scoped request ID
	key    string // the client's request ID, as an inflight key
	params []byte // as sent: with the gateway's trace context in _meta
	stream upstream.Stream
	span   trace.Span // nil when the request is not traced
	start  time.Time
}

// startCall prepares an upstream call: its deadline (the tool's timeout or
// the server's), its span, and the mapping of the client's request ID,
// registered before sending because a cancellation may come before the
// upstream answers anything.
func (s *clientSession) startCall(parent context.Context, r *http.Request, msg *mcpwire.Message, t *target, up *upstreamSession) *upstreamCall {
	timeout := t.server.cfg.ResponseTimeout.D()
	if o := t.server.cfg.Tools[t.tool]; o != nil && t.method == "tools/call" && o.Timeout > 0 {
		timeout = o.Timeout.D()
	}
	ctx, cancel := context.WithTimeout(s.upstreamContext(parent, callTool(t)), timeout)
	c := &upstreamCall{s: s, t: t, up: up, ctx: ctx, cancel: cancel, id: up.conn.NewID(), key: idKey(msg.ID), params: t.params, start: time.Now()}
	if replica := replicaOf(up); replica != "" {
		recordFrom(r.Context()).set(func(rec *record) { rec.replica = replica })
	}
	if span := trace.SpanFromContext(r.Context()); span.SpanContext().IsValid() {
		c.ctx, c.span = s.g.tracing.StartClient(trace.ContextWithSpan(c.ctx, span), telemetry.ClientCall{
			Server:          t.server.name,
			Replica:         replicaOf(up),
			Method:          t.method,
			ID:              c.id,
			ProtocolVersion: up.conn.ProtocolVersion(),
			Target:          t.tool,
			Address:         replicaOf(up),
		})
		c.params = s.g.tracing.InjectMeta(c.ctx, t.params)
	}
	if t.method == "tools/list" {
		up.tools.mu.Lock()
		t.toolsGen = up.tools.gen
		up.tools.mu.Unlock()
	}
	s.mu.Lock()
	s.inflight[c.key] = inflightCall{up: up, id: c.id}
	s.mu.Unlock()
	return c
}

// finish releases what the call held and records how it went upstream.
func (c *upstreamCall) finish(outcome string) {
	if c.stream != nil {
		c.stream.Close()
	}
	c.cancel()
	c.s.mu.Lock()
	delete(c.s.inflight, c.key)
	c.s.mu.Unlock()
	c.t.release()
	c.s.recordWrite(c.t, outcome, c.stream != nil)
	c.s.g.metrics.UpstreamRequest(c.t.server.name, replicaOf(c.up), c.t.method, outcome, time.Since(c.start))
	if c.span != nil {
		telemetry.EndSpan(c.span, outcome, 0, "")
	}
}

// final turns the upstream's response into the client's: its ID, and on a
// single-server endpoint a list filtered to what the session may see.
func (s *clientSession) final(ctx context.Context, up *upstreamSession, t *target, m *mcpwire.Message, clientID []byte) []byte {
	if m.Kind == mcpwire.KindResponse && !s.ep.aggregate() && s.g.filtersLists() {
		if _, ok := listKinds[t.method]; ok {
			res, err := s.filterResult(ctx, up, t, m.Result)
			if err != nil {
				e := s.upstreamFailure(up.srv.name, err)
				return mcpwire.NewError(clientID, e.Code, e.Msg, nil)
			}
			return mcpwire.NewResult(clientID, res)
		}
	}
	return mcpwire.WithID(m, clientID)
}

// release gives back the call's concurrency slots, once.
func (t *target) release() {
	if t.done != nil {
		t.done()
		t.done = nil
	}
}

// replicaOf names the replica an upstream session is pinned to, for
// metrics and spans.
func replicaOf(up *upstreamSession) string { return upstream.ReplicaOf(up.conn) }

func isFinal(m *mcpwire.Message, st upstream.Stream) bool {
	return (m.Kind == mcpwire.KindResponse || m.Kind == mcpwire.KindError) && string(m.ID) == string(st.ID())
}

// classify sets the outcome from the upstream's response.
func classify(rec *record, method string, m *mcpwire.Message) string {
	outcome := outcomeOK
	var err error
	switch {
	case m.Kind == mcpwire.KindError:
		outcome, err = outcomeProtocolError, fmt.Errorf("upstream error code %d", m.ErrorCode)
	case method == "tools/call" && string(field(m.Result, "isError")) == "true":
		outcome = outcomeToolError
	}
	rec.setOutcome(outcome, err)
	return outcome
}

// forwardFailed answers a call the upstream did not complete.
func (s *clientSession) forwardFailed(w http.ResponseWriter, r *http.Request, id []byte, t *target, err error) {
	s.g.metrics.UpstreamError(t.server.name, s.replicaFor(t.server), upstreamErrKind(err))
	e := s.upstreamFailure(t.server.name, err)
	recordFrom(r.Context()).setOutcome(e.Outcome, e.Err)
	s.auditCall(r.Context(), t, e.Outcome, err, t.flags)
	e.render(w, id)
}

// replicaFor names the replica of the session's connection to srv, or ""
// before there is one.
func (s *clientSession) replicaFor(srv *server) string {
	s.mu.Lock()
	up := s.ups[srv.name]
	s.mu.Unlock()
	if up == nil {
		return ""
	}
	return replicaOf(up)
}

// upstreamErrKind classifies an upstream failure for the metrics.
func upstreamErrKind(err error) string {
	var status *upstream.StatusError
	switch {
	case errors.Is(err, upstream.ErrBreakerOpen):
		return telemetry.UpstreamErrBreaker
	case errors.Is(err, upstream.ErrTooLarge):
		return telemetry.UpstreamErrTooLarge
	case errors.Is(err, context.DeadlineExceeded):
		return telemetry.UpstreamErrTimeout
	case errors.As(err, &status):
		return telemetry.UpstreamErrStatus
	case errors.Is(err, upstream.ErrProtocol):
		return telemetry.UpstreamErrDecode
	case errors.Is(err, upstream.ErrUnavailable), errors.Is(err, upstream.ErrBackoff):
		return telemetry.UpstreamErrConnect
	}
	return telemetry.UpstreamErrStream
}

// upstreamFailure turns an upstream failure into the client's error: short,
// naming the server, never the upstream's body.
func (s *clientSession) upstreamFailure(server string, err error) *httpError {
	msg := "server " + server + " is unavailable; try again later"
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		msg = "server " + server + " did not answer in time"
	case errors.Is(err, upstream.ErrSessionLost):
		msg = "server " + server + " lost the session; try again"
		if !s.ep.aggregate() {
			msg = "server " + server + " lost the session; initialize a new session"
		}
	case errors.Is(err, upstream.ErrBreakerOpen):
		d, _ := upstream.RetryAfter(err)
		msg = fmt.Sprintf("server %s is failing; calls are paused for %ds", server, int(d.Seconds()))
	case errors.Is(err, upstream.ErrTooLarge):
		msg = "server " + server + " sent a response larger than the gateway relays (max_response_bytes)"
	case errors.Is(err, upstream.ErrProtocol):
		msg = "server " + server + " sent an invalid response"
	case errors.Is(err, upstream.ErrBackoff):
		msg = "server " + server + " is unavailable after recent failures; try again shortly"
	}
	return &httpError{Code: codeUpstream, Msg: msg, Outcome: outcomeTransportError, Err: err}
}
