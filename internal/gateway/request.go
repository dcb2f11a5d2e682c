package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/mcpgate/mcpgate/internal/upstream"
)

// JSON-RPC error codes the gateway uses for its own refusals (the
// implementation-defined server range).
const (
	codeDenied      = -32003
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
}

// handleRequest runs a client request through Authorize, Limit, Route and
// Upstream.
func (s *clientSession) handleRequest(w http.ResponseWriter, r *http.Request, msg *mcpwire.Message) {
	rec := recordFrom(r.Context())
	fail := func(e *httpError) {
		rec.setOutcome(e.Outcome, e.Err)
		e.render(w, msg.ID)
	}
	t, herr := s.routeRequest(r.Context(), msg)
	if herr != nil {
		fail(herr)
		return
	}
	call := &Call{Principal: s.principal, SessionID: s.id, Method: msg.Method, Tool: t.tool, Params: t.params}
	if t.server != nil {
		call.Server = t.server.name
	}
	rec.set(func(rec *record) { rec.server, rec.tool = call.Server, call.Tool })
	if d := s.g.opts.Authorizer.Authorize(r.Context(), call); !d.Allow {
		reason := d.Reason
		if reason == "" {
			reason = "not allowed by policy"
		}
		fail(&httpError{Code: codeDenied, Msg: reason, Outcome: outcomeDenied})
		return
	}
	if ok, retry := s.g.opts.Limiter.Limit(r.Context(), call); !ok {
		secs := max(int(retry.Seconds()+0.999), 1)
		fail(&httpError{Code: codeRateLimited, Msg: fmt.Sprintf("rate limit reached; retry after %ds", secs),
			Data: []byte(`{"retryAfterSeconds":` + strconv.Itoa(secs) + `}`), Outcome: outcomeRateLimited})
		return
	}
	if t.local != nil {
		t.local(w, r, msg)
		return
	}
	s.forward(w, r, msg, t)
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
		s.upstreamError(w, rec, msg.ID, t.server.name, err)
		return
	}
	ctx, cancel := context.WithTimeout(s.upstreamContext(s.ctx, callTool(t)), t.server.cfg.ResponseTimeout.D())
	// Map the client's request ID before sending: a cancellation may come
	// before the upstream answers anything.
	upID := up.conn.NewID()
	key := idKey(msg.ID)
	s.mu.Lock()
	s.inflight[key] = inflightCall{up: up, id: upID}
	s.mu.Unlock()
	stream, err := up.conn.Call(ctx, upID, t.method, t.params)
	if err != nil {
		cancel()
		s.mu.Lock()
		delete(s.inflight, key)
		s.mu.Unlock()
		s.upstreamError(w, rec, msg.ID, t.server.name, err)
		return
	}
	finish := func() {
		stream.Close()
		cancel()
		s.mu.Lock()
		delete(s.inflight, key)
		s.mu.Unlock()
	}
	// Mirror the upstream's choice of body: a single JSON response stays
	// JSON; an event stream is relayed event by event as it arrives.
	var first *mcpwire.Message
	if !stream.Streaming() {
		first, err = stream.Next()
		if err != nil {
			finish()
			s.upstreamError(w, rec, msg.ID, t.server.name, err)
			return
		}
		if isFinal(first, stream) {
			finish()
			classify(rec, msg.Method, first)
			w.Header().Set("Content-Type", "application/json")
			w.Write(mcpwire.WithID(first, msg.ID))
			return
		}
	}
	log := s.newPostLog()
	rec.hold()
	go func() {
		defer rec.done()
		defer log.close()
		defer finish()
		m := first
		for {
			if m == nil {
				if m, err = stream.Next(); err != nil {
					e := s.upstreamFailure(t.server.name, err)
					rec.setOutcome(e.Outcome, e.Err)
					log.append(mcpwire.NewError(msg.ID, e.Code, e.Msg, nil))
					return
				}
			}
			if isFinal(m, stream) {
				classify(rec, msg.Method, m)
				log.append(mcpwire.WithID(m, msg.ID))
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

func isFinal(m *mcpwire.Message, st upstream.Stream) bool {
	return (m.Kind == mcpwire.KindResponse || m.Kind == mcpwire.KindError) && string(m.ID) == string(st.ID())
}

// classify sets the outcome from the upstream's response.
func classify(rec *record, method string, m *mcpwire.Message) {
	switch {
	case m.Kind == mcpwire.KindError:
		rec.setOutcome(outcomeProtocolError, fmt.Errorf("upstream error code %d", m.ErrorCode))
	case method == "tools/call" && string(field(m.Result, "isError")) == "true":
		rec.setOutcome(outcomeToolError, nil)
	default:
		rec.setOutcome(outcomeOK, nil)
	}
}

func (s *clientSession) upstreamError(w http.ResponseWriter, rec *record, id []byte, server string, err error) {
	e := s.upstreamFailure(server, err)
	rec.setOutcome(e.Outcome, e.Err)
	e.render(w, id)
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
