package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/authn"
	"github.com/mcpgate/mcpgate/internal/identity"
	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// Protocol versions of the legacy sessionful era that the gateway speaks to
// clients, newest first.
var supportedVersions = []string{"2025-11-25", "2025-06-18", "2025-03-26"}

// bodyReadTimeout bounds the reading of one request body.
const bodyReadTimeout = 10 * time.Second

const (
	latestVersion    = "2025-11-25"
	statelessVersion = "2026-07-28"
	// codeUnsupportedVersion is the 2026-07-28 error for a version the
	// server does not speak; its data lists the ones it does.
	codeUnsupportedVersion = -32022
)

// serveMCP is the Streamable HTTP transport of one endpoint: transport
// hygiene, authentication, then the verb.
func (g *Gateway) serveMCP(w http.ResponseWriter, r *http.Request, ep *endpoint) {
	rec := recordFrom(r.Context())
	if err := g.checkTransport(r); err != nil {
		rec.setOutcome(err.Outcome, err.Err)
		err.render(w, nil)
		return
	}
	p, ok, err := g.opts.Authenticator.Authenticate(r)
	if err != nil {
		rec.setOutcome(outcomeTransportError, err)
		(&httpError{Status: http.StatusServiceUnavailable, Code: mcpwire.CodeInternalError, Msg: "authentication is unavailable; try again later"}).render(w, nil)
		return
	}
	if !ok {
		rec.setOutcome(outcomeUnauthenticated, nil)
		code := ""
		if authn.HasCredentials(r) {
			code = "invalid_token"
		}
		if g.cfg.Auth.Enabled() {
			g.challenge(w, ep, code)
		}
		(&httpError{Status: http.StatusUnauthorized, Code: mcpwire.CodeInvalidRequest, Msg: "authentication required"}).render(w, nil)
		return
	}
	if missing := g.missingScopes(p); len(missing) > 0 {
		rec.set(func(rec *record) { rec.principal = p.String() })
		rec.setOutcome(outcomeDenied, nil)
		g.challenge(w, ep, "insufficient_scope")
		(&httpError{Status: http.StatusForbidden, Code: mcpwire.CodeInvalidRequest, Msg: "token lacks required scope: " + strings.Join(missing, " ")}).render(w, nil)
		return
	}
	rec.set(func(rec *record) { rec.principal = p.String() })
	r = r.WithContext(identity.NewContext(r.Context(), p))
	switch r.Method {
	case http.MethodPost:
		g.servePost(w, r, ep, p)
	case http.MethodGet:
		g.serveGet(w, r, ep, p)
	case http.MethodDelete:
		g.serveDelete(w, r, ep, p)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		rec.setOutcome(outcomeInvalid, nil)
		(&httpError{Status: http.StatusMethodNotAllowed, Code: mcpwire.CodeInvalidRequest, Msg: "method not allowed"}).render(w, nil)
	}
}

// checkTransport validates what every verb must satisfy: Host and Origin
// (DNS rebinding), no credentials in the query, and the protocol version.
func (g *Gateway) checkTransport(r *http.Request) *httpError {
	if !g.hosts.hostAllowed(r.Host) {
		return &httpError{Status: http.StatusForbidden, Code: mcpwire.CodeInvalidRequest, Msg: "host not allowed", Outcome: outcomeInvalid}
	}
	if !g.hosts.originAllowed(r.Header.Get("Origin")) {
		return &httpError{Status: http.StatusForbidden, Code: mcpwire.CodeInvalidRequest, Msg: "origin not allowed", Outcome: outcomeInvalid}
	}
	if v := r.Header.Get("Mcp-Protocol-Version"); v != "" && !slices.Contains(supportedVersions, v) {
		return unsupportedVersion(v)
	}
	return nil
}

// unsupportedVersion rejects a protocol version, naming the ones supported
// in the form 2026-07-28 clients read to fall back to initialize.
func unsupportedVersion(v string) *httpError {
	data := []byte(`{"supported":["` + strings.Join(supportedVersions, `","`) + `"],"requested":` + string(quote(v)) + `}`)
	msg := "unsupported protocol version; this gateway speaks " + strings.Join(supportedVersions, ", ")
	if v == statelessVersion {
		msg = "protocol version 2026-07-28 is not supported yet; initialize with " + latestVersion
	}
	return &httpError{Status: http.StatusBadRequest, Code: codeUnsupportedVersion, Msg: msg, Data: data, Outcome: outcomeInvalid}
}

func (g *Gateway) servePost(w http.ResponseWriter, r *http.Request, ep *endpoint, p identity.Principal) {
	rec := recordFrom(r.Context())
	fail := func(e *httpError, id []byte) {
		rec.setOutcome(e.Outcome, e.Err)
		e.render(w, id)
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		fail(&httpError{Status: http.StatusUnsupportedMediaType, Code: mcpwire.CodeInvalidRequest, Msg: "Content-Type must be application/json", Outcome: outcomeInvalid}, nil)
		return
	}
	if !accepts(r, "application/json") || !accepts(r, "text/event-stream") {
		fail(&httpError{Status: http.StatusNotAcceptable, Code: mcpwire.CodeInvalidRequest, Msg: "Accept must list application/json and text/event-stream", Outcome: outcomeInvalid}, nil)
		return
	}
	// A client that sends its body slowly must not hold a request open:
	// the body has bodyReadTimeout to arrive. The deadline is lifted
	// afterwards, since the response may stream for long.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(bodyReadTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.HTTP.MaxBodyBytes))
	if err != nil {
		// The connection is not reused: what is left of the body is not
		// waited for.
		w.Header().Set("Connection", "close")
	} else {
		rc.SetReadDeadline(time.Time{})
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			fail(&httpError{Status: http.StatusRequestEntityTooLarge, Code: mcpwire.CodeInvalidRequest, Msg: "request body too large", Outcome: outcomeInvalid}, nil)
			return
		}
		fail(invalid(mcpwire.CodeParseError, "could not read request body"), nil)
		return
	}
	msg, err := mcpwire.Decode(body, g.limits)
	if err != nil {
		switch {
		case errors.Is(err, mcpwire.ErrBatch):
			fail(invalid(mcpwire.CodeInvalidRequest, "batches are not supported; send one JSON-RPC message per request"), nil)
		case errors.Is(err, mcpwire.ErrEnvelope):
			fail(&httpError{Status: http.StatusBadRequest, Code: mcpwire.CodeInvalidRequest, Msg: "invalid JSON-RPC message: " + err.Error(), Outcome: outcomeInvalid, Err: err}, nil)
		default:
			fail(&httpError{Status: http.StatusBadRequest, Code: mcpwire.CodeParseError, Msg: "rejected JSON: " + err.Error(), Outcome: outcomeInvalid, Err: err}, nil)
		}
		return
	}
	rec.set(func(rec *record) { rec.method = msg.Method })
	r = g.startSpan(r, msg)
	if msg.Method == "server/discover" {
		fail(unsupportedVersion(statelessVersion), msg.ID)
		return
	}
	sid := r.Header.Get("Mcp-Session-Id")
	if msg.Method == "initialize" {
		if msg.Kind != mcpwire.KindRequest {
			fail(invalid(mcpwire.CodeInvalidRequest, "initialize must be a request with an id"), nil)
			return
		}
		if sid != "" {
			fail(invalid(mcpwire.CodeInvalidRequest, "initialize must not carry Mcp-Session-Id"), msg.ID)
			return
		}
		g.initialize(w, r, ep, p, msg)
		return
	}
	s, herr := g.lookupSession(r, ep, p)
	if herr != nil {
		fail(herr, msg.ID)
		return
	}
	rec.set(func(rec *record) { rec.sessionID = s.id })
	switch msg.Kind {
	case mcpwire.KindRequest:
		s.handleRequest(w, r, msg)
	case mcpwire.KindNotification:
		s.handleNotification(r.Context(), msg)
		w.WriteHeader(http.StatusAccepted)
	default:
		if herr := s.handleClientResponse(r.Context(), msg); herr != nil {
			fail(herr, nil)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}
}

// lookupSession finds the request's session: 400 without an ID, 404 for an
// unknown or terminated one, or one of another principal or endpoint.
func (g *Gateway) lookupSession(r *http.Request, ep *endpoint, p identity.Principal) (*clientSession, *httpError) {
	sid := r.Header.Get("Mcp-Session-Id")
	if sid == "" {
		return nil, invalid(mcpwire.CodeInvalidRequest, "missing Mcp-Session-Id header; initialize first")
	}
	s, ok := g.sessions.Get(sid, p.Key())
	if !ok || s.ep.path != ep.path {
		return nil, &httpError{Status: http.StatusNotFound, Code: mcpwire.CodeInvalidRequest, Msg: "session not found; initialize a new session", Outcome: outcomeInvalid}
	}
	return s, nil
}

func (g *Gateway) serveGet(w http.ResponseWriter, r *http.Request, ep *endpoint, p identity.Principal) {
	rec := recordFrom(r.Context())
	if !accepts(r, "text/event-stream") {
		rec.setOutcome(outcomeInvalid, nil)
		(&httpError{Status: http.StatusNotAcceptable, Code: mcpwire.CodeInvalidRequest, Msg: "Accept must list text/event-stream"}).render(w, nil)
		return
	}
	s, herr := g.lookupSession(r, ep, p)
	if herr != nil {
		rec.setOutcome(herr.Outcome, nil)
		herr.render(w, nil)
		return
	}
	rec.set(func(rec *record) { rec.sessionID = s.id; rec.method = "GET stream" })
	release, ok := g.limiter.AcquireStream(p.Key())
	if !ok {
		rec.setOutcome(outcomeRateLimited, nil)
		w.Header().Set("Retry-After", "5")
		(&httpError{Status: http.StatusTooManyRequests, Code: mcpwire.CodeInvalidRequest,
			Msg: fmt.Sprintf("too many open streams for this caller (limit %d); close one and retry", g.limiter.StreamCap())}).render(w, nil)
		return
	}
	defer release()
	if herr := s.serveStream(w, r); herr != nil {
		rec.setOutcome(herr.Outcome, herr.Err)
		herr.render(w, nil)
	}
}

func (g *Gateway) serveDelete(w http.ResponseWriter, r *http.Request, ep *endpoint, p identity.Principal) {
	rec := recordFrom(r.Context())
	s, herr := g.lookupSession(r, ep, p)
	if herr != nil {
		rec.setOutcome(herr.Outcome, nil)
		herr.render(w, nil)
		return
	}
	rec.set(func(rec *record) { rec.sessionID = s.id; rec.method = "DELETE session" })
	g.sessions.Delete(s.id, p.Key())
	w.WriteHeader(http.StatusNoContent)
}

// accepts reports whether the Accept header admits the media type.
func accepts(r *http.Request, media string) bool {
	major, _, _ := strings.Cut(media, "/")
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, _, _ := strings.Cut(part, ";")
			mt = strings.ToLower(strings.TrimSpace(mt))
			if mt == media || mt == "*/*" || mt == major+"/*" {
				return true
			}
		}
	}
	return false
}

// quote returns s as a JSON string.
func quote(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}
