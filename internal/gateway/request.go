package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/mcpgate/mcpgate/internal/catalog"
	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/mcpgate/mcpgate/internal/telemetry"
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
	if herr := s.admit(ctx, w, t); herr != nil {
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

// admit runs the checks between the Limit stage and the upstream call, in
// order: argument validation, the audit trail's gate for writes, the
// concurrency caps (held until the call ends) and dampening. Whatever
// refuses, nothing reaches the upstream and no slot stays taken.
func (s *clientSession) admit(ctx context.Context, w http.ResponseWriter, t *target) *httpError {
	if herr := s.validateArgs(t); herr != nil {
		return herr
	}
	if herr := s.auditGate(t); herr != nil {
		return herr
	}
	if herr := s.acquire(ctx, w, t); herr != nil {
		return herr
	}
	if herr := s.dampen(ctx, t); herr != nil {
		t.release()
		return herr
	}
	return nil
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
