package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/catalog"
	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/mcpgate/mcpgate/internal/telemetry"
	"github.com/mcpgate/mcpgate/internal/upstream"
	"go.opentelemetry.io/otel/trace"
)

// JSON-RPC error codes the gateway uses for its own refusals (the
// implementation-defined server range). -32001 and -32003 to -32005 are
// avoided: the Go SDK reads them as its own transport errors, and a client
// built on it takes -32003 for a closed connection.
const (
	codeDenied      = -32030
	codeRateLimited = -32029
	codeUpstream    = -32050
)

// target is where a client request goes after routing: an upstream method
// call, or an answer the gateway produces itself.
type target struct {
	server *server
	method string
	params []byte
	tool   string
	local  func(w http.ResponseWriter, r *http.Request, msg *mcpwire.Message)

	info     *toolInfo // the tool of a tools/call
	call     *Call     // what Authorize and Limit decided on
	toolsGen uint64    // the tool index generation when a tools/list was sent
	done     func()    // releases the call's concurrency slots; nil if none
	shareKey string    // identical read-only calls in flight share one upstream call
	writeKey string    // a write tracked for duplicate detection
	flags    []string  // audit flags, such as duplicate
}

// handleRequest runs a client request through Authorize, Limit, Route and
// Upstream.
func (s *clientSession) handleRequest(w http.ResponseWriter, r *http.Request, msg *mcpwire.Message) {
	ctx := r.Context()
	rec := recordFrom(ctx)
	fail := func(e *httpError) {
		rec.setOutcome(e.Outcome, e.Err)
		e.render(w, msg.ID)
	}
	t, herr := s.routeRequest(ctx, msg)
	if herr != nil {
		fail(herr)
		return
	}
	call := s.baseCall(msg.Method)
	call.Tool, call.Params = t.tool, t.params
	if t.server != nil {
		call.Server = t.server.name
	}
	rec.set(func(rec *record) { rec.server, rec.tool, rec.client = call.Server, call.Tool, s.client })
	switch msg.Method {
	case "tools/call":
		if t.server != nil {
			if t.info, herr = s.resolveTool(ctx, t); herr != nil {
				if herr.Outcome == outcomeDenied {
					s.auditDenial(ctx, call, herr, "tool-pin")
				}
				fail(herr)
				return
			}
			a := t.info.annotations
			call.ReadOnly, call.Destructive, call.Idempotent, call.OpenWorld = a.readOnly, a.destructive, a.idempotent, a.openWorld
		}
		call.Args = field(t.params, "arguments")
	case "prompts/get":
		call.Args = field(t.params, "arguments")
	case "resources/read":
		call.URI, _ = mcpwire.StringValue(field(t.params, "uri"))
	}
	t.call = call
	if herr := s.authorize(ctx, call); herr != nil {
		fail(herr)
		return
	}
	if msg.Method != "ping" {
		if v := s.g.opts.Limiter.Limit(ctx, call); !v.Allowed {
			fail(s.g.limited(w, call.Server, v))
			return
		}
	}
	if t.local != nil {
		t.local(w, r, msg)
		return
	}
	if herr := s.validateArgs(t); herr != nil {
		fail(herr)
		return
	}
	if herr := s.auditGate(t); herr != nil {
		fail(herr)
		return
	}
	if herr := s.acquire(ctx, w, t); herr != nil {
		fail(herr)
		return
	}
	if herr := s.dampen(ctx, t); herr != nil {
		t.release()
		fail(herr)
		return
	}
	if t.flags != nil {
		rec.set(func(rec *record) { rec.flags = t.flags })
	}
	if t.shareKey != "" {
		s.forwardShared(w, r, msg, t)
		return
	}
	s.forward(w, r, msg, t)
}

// resolveTool finds the tool a tools/call names in its server's listing.
// Unknown and quarantined tools are refused here, before any policy runs:
// a model that guesses a name learns what exists from tools/list.
func (s *clientSession) resolveTool(ctx context.Context, t *target) (*toolInfo, *httpError) {
	up, err := s.upstream(ctx, t.server)
	if err != nil {
		return nil, s.upstreamFailure(t.server.name, err)
	}
	ti, err := s.lookupTool(ctx, up, t.tool)
	if err != nil {
		return nil, s.upstreamFailure(t.server.name, err)
	}
	name := t.tool
	if s.ep.aggregate() {
		name, _ = catalog.Qualify(t.server.name, t.tool)
	}
	if ti == nil {
		return nil, &httpError{Code: mcpwire.CodeInvalidParams, Msg: fmt.Sprintf("unknown tool %q; list tools to see the available names", truncate(name, 128)), Outcome: outcomeInvalid}
	}
	if ti.quarantined {
		return nil, &httpError{Code: codeDenied, Msg: fmt.Sprintf("tool %q changed since it was approved and is unavailable until an operator reviews it", truncate(name, 128)), Outcome: outcomeDenied}
	}
	return ti, nil
}

// validateArgs refuses a tools/call whose arguments do not match the
// tool's inputSchema, before it reaches the upstream.
func (s *clientSession) validateArgs(t *target) *httpError {
	if t.info == nil || s.g.schemas == nil {
		return nil
	}
	err := t.info.validate(s.g.schemas, t.call.Args)
	if err == nil {
		return nil
	}
	return &httpError{Code: mcpwire.CodeInvalidParams, Msg: fmt.Sprintf("invalid arguments for tool %s: %v", s.publicToolName(t), err), Outcome: outcomeInvalid}
}

// authorize runs the Authorize stage: dry-run rules and evaluation
// problems are logged and counted; a denial gets the rule's public reason.
func (s *clientSession) authorize(ctx context.Context, call *Call) *httpError {
	d := s.g.opts.Authorizer.Authorize(ctx, call)
	for _, rule := range d.DryRun {
		s.g.metrics.PolicyDryRun(rule)
		s.g.logger.Info("dry-run policy rule would change the decision", "rule", rule, "would_allow", !d.Allow,
			"session_id", s.id, "principal", call.Principal.String(), "server", call.Server, "tool", call.Tool, "method", call.Method)
	}
	if d.Err != nil {
		s.g.logger.Warn("policy evaluation failed; the call is refused", "rule", d.Rule, "error", d.Err,
			"session_id", s.id, "server", call.Server, "tool", call.Tool, "method", call.Method)
	}
	if d.Allow {
		return nil
	}
	s.g.metrics.PolicyDenied(call.Server, call.Tool, d.Rule)
	recordFrom(ctx).set(func(rec *record) { rec.rule = d.Rule })
	reason := d.Reason
	if reason == "" {
		reason = "not allowed by policy"
	}
	e := &httpError{Code: codeDenied, Msg: reason, Outcome: outcomeDenied}
	s.auditDenial(ctx, call, e, d.Rule)
	return e
}

// routeRequest resolves a request to its server. On a single-server
// endpoint everything but ping goes to the server untouched; the aggregate
// endpoint resolves names and URIs.
func (s *clientSession) routeRequest(ctx context.Context, msg *mcpwire.Message) (*target, *httpError) {
	if msg.Method == "ping" {
		return &target{local: writeEmptyResult}, nil
	}
	if msg.Method == "tools/call" {
		name, _ := mcpwire.StringValue(field(msg.Params, "name"))
		if !mcpwire.ValidToolName(name) {
			return nil, &httpError{Code: mcpwire.CodeInvalidParams, Msg: "invalid tool name: names match ^[A-Za-z0-9._-]{1,128}$", Outcome: outcomeInvalid}
		}
	}
	if !s.ep.aggregate() {
		t := &target{server: s.ep.server, method: msg.Method, params: msg.Params}
		if msg.Method == "tools/call" || msg.Method == "prompts/get" {
			t.tool, _ = mcpwire.StringValue(field(msg.Params, "name"))
		}
		return t, nil
	}
	return s.routeAggregate(ctx, msg)
}

func writeEmptyResult(w http.ResponseWriter, _ *http.Request, msg *mcpwire.Message) {
	writeResult(w, msg.ID, []byte(`{}`))
}

func writeResult(w http.ResponseWriter, id, result []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(mcpwire.NewResult(id, result))
}

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

// tail streams an event log to the client from sequence number from on,
// until the log closes, the client goes away or another response takes
// over the stream.
func (s *clientSession) tail(w http.ResponseWriter, r *http.Request, log *eventLog, from int) {
	sw := newSSEWriter(w)
	kind := telemetry.StreamPost
	if log == s.standalone {
		kind = telemetry.StreamGet
	}
	defer s.g.metrics.StreamOpened(kind)()
	detach := log.attach()
	defer log.detach(detach)
	if s.version >= "2025-11-25" {
		// A priming event: its ID lets the client resume from the start.
		if sw.prime(log.eventID(from-1)) != nil {
			return
		}
	}
	pos := from
	for {
		evs, closed, wake := log.since(pos)
		for _, e := range evs {
			if sw.write(log.eventID(e.seq), e.data) != nil {
				return
			}
			pos = e.seq + 1
			log.markSent(pos)
		}
		// Flush once per batch, before waiting: events that are ready
		// (the priming event, progress and the response) leave together.
		if sw.flush() != nil || closed {
			return
		}
		select {
		case <-wake:
		case <-detach:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// serveStream serves a GET: the standalone stream, or with Last-Event-ID
// the resumption of any of the session's streams.
func (s *clientSession) serveStream(w http.ResponseWriter, r *http.Request) *httpError {
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		s.tail(w, r, s.standalone, max(s.standalone.undelivered(), 1))
		return nil
	}
	streamID, seq, ok := parseEventID(last)
	if !ok {
		return invalid(mcpwire.CodeInvalidRequest, "malformed Last-Event-ID")
	}
	l := s.findLog(streamID)
	if l == nil {
		return &httpError{Status: http.StatusNotFound, Code: mcpwire.CodeInvalidRequest, Msg: "stream not found; it ended or expired", Outcome: outcomeInvalid}
	}
	s.tail(w, r, l, seq+1)
	return nil
}

// handleNotification routes a client notification.
func (s *clientSession) handleNotification(ctx context.Context, msg *mcpwire.Message) {
	switch msg.Method {
	case "notifications/initialized":
		// The gateway completed each upstream handshake itself.
		return
	case "notifications/cancelled":
		reqID := field(msg.Params, "requestId")
		s.mu.Lock()
		c, ok := s.inflight[idKey(reqID)]
		s.mu.Unlock()
		if ok {
			params := mcpwire.ReplaceParamsField(msg.Params, "requestId", c.id)
			s.send(ctx, c.up, mcpwire.NewNotification(msg.Method, params))
		}
		return
	}
	s.mu.Lock()
	ups := make([]*upstreamSession, 0, len(s.ups))
	for _, up := range s.ups {
		ups = append(ups, up)
	}
	s.mu.Unlock()
	for _, up := range ups {
		s.send(ctx, up, msg.Raw)
	}
}

func (s *clientSession) send(ctx context.Context, up *upstreamSession, msg []byte) {
	ctx, cancel := context.WithTimeout(s.upstreamContext(context.WithoutCancel(ctx), ""), up.srv.cfg.ResponseTimeout.D())
	defer cancel()
	if err := up.conn.Send(ctx, msg); err != nil {
		s.g.logger.Warn("relaying to upstream failed", "server", up.srv.name, "session_id", s.id, "error", err)
	}
}

// handleClientResponse relays the client's answer to a server→client
// request back to the upstream that asked, with the upstream's own ID.
func (s *clientSession) handleClientResponse(ctx context.Context, msg *mcpwire.Message) *httpError {
	gid, _ := mcpwire.StringValue(msg.ID)
	s.mu.Lock()
	req, ok := s.srvReqs[gid]
	delete(s.srvReqs, gid)
	s.mu.Unlock()
	if !ok || !strings.HasPrefix(gid, "mcpgate-") {
		return invalid(mcpwire.CodeInvalidRequest, "no pending request with this id")
	}
	s.send(ctx, req.up, mcpwire.WithID(msg, req.id))
	return nil
}
