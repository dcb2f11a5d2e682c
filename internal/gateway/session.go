package gateway

import (
	"context"
	"errors"
	"strconv"
	"sync"

	"github.com/mcpgate/mcpgate/internal/identity"
	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/mcpgate/mcpgate/internal/upstream"
)

// clientSession is one client's MCP session with the gateway. It holds one
// upstream session per server it uses, created lazily and reused for every
// call, and the gateway's own SSE streams to the client.
type clientSession struct {
	g             *Gateway
	id            string
	ep            *endpoint
	principal     identity.Principal
	client        string // the client's self-declared clientInfo.name
	clientVersion string // and clientInfo.version
	version       string // negotiated with the client
	initParams    []byte // the client's initialize params, forwarded to upstreams
	ctx           context.Context
	cancel        context.CancelFunc
	standalone    *eventLog // the GET stream

	mu         sync.Mutex // guards the fields below
	closed     bool
	ups        map[string]*upstreamSession
	dialing    map[string]chan struct{}
	logs       map[string]*eventLog // POST streams kept for resumption
	logOrder   []string
	nextStream int
	srvReqs    map[string]srvReq // gateway-issued request ID → upstream request
	nextSrvReq int64
	inflight   map[string]inflightCall // client request ID → upstream call
	cat        catalogState
	logLevel   []byte // the client's logging/setLevel params, for servers that join later
}

// upstreamSession is the session's connection to one server.
type upstreamSession struct {
	srv   *server
	conn  upstream.Conn
	caps  capabilities
	tools toolSet
}

// srvReq is a server→client request relayed with a gateway-issued ID.
type srvReq struct {
	up  *upstreamSession
	id  []byte // the upstream's own ID
	seq int64
}

// maxPendingServerRequests bounds the server→client requests a session
// remembers while waiting for the client's answers.
const maxPendingServerRequests = 1024

// inflightCall maps a client request to the upstream call serving it.
type inflightCall struct {
	up *upstreamSession
	id []byte // the upstream-scoped ID
}

func newClientSession(g *Gateway, ep *endpoint, p identity.Principal, version string, params []byte) *clientSession {
	ctx, cancel := context.WithCancel(context.Background())
	return &clientSession{
		g:             g,
		ep:            ep,
		principal:     p,
		client:        clientName(params),
		clientVersion: clientVersion(params),
		version:       version,
		initParams:    params,
		ctx:           ctx,
		cancel:        cancel,
		standalone:    newEventLog("0", g.opts.EventBuffer),
		ups:           make(map[string]*upstreamSession),
		dialing:       make(map[string]chan struct{}),
		logs:          make(map[string]*eventLog),
		srvReqs:       make(map[string]srvReq),
		inflight:      make(map[string]inflightCall),
	}
}

// Close implements session.Value: it ends the client's streams and closes
// every upstream session (HTTP DELETE, or the stdio process reaped).
func (s *clientSession) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	if s.id != "" {
		s.g.metrics.SessionClosed()
	}
	ups := make([]*upstreamSession, 0, len(s.ups))
	for _, up := range s.ups {
		ups = append(ups, up)
	}
	s.ups = map[string]*upstreamSession{}
	logs := s.logs
	s.mu.Unlock()
	s.cancel()
	s.standalone.close()
	for _, l := range logs {
		l.close()
	}
	var wg sync.WaitGroup
	for _, up := range ups {
		wg.Go(up.conn.Close)
	}
	wg.Wait()
}

// busy reports whether the session must not expire: a client is attached
// to its GET stream, or a call is in flight.
func (s *clientSession) busy() bool {
	if s.standalone.isAttached() {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.inflight) > 0
}

// endStreams ends the GET stream (for shutdown); calls in flight finish.
func (s *clientSession) endStreams() { s.standalone.close() }

func (s *clientSession) hasUpstream(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.ups[name]
	return ok
}

// upstream returns the session's connection to srv, dialing it on first use.
func (s *clientSession) upstream(ctx context.Context, srv *server) (*upstreamSession, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, upstream.ErrClosed
		}
		if up, ok := s.ups[srv.name]; ok {
			s.mu.Unlock()
			return up, nil
		}
		if wait, ok := s.dialing[srv.name]; ok {
			s.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		done := make(chan struct{})
		s.dialing[srv.name] = done
		s.mu.Unlock()
		up, err := s.dial(ctx, srv)
		s.mu.Lock()
		delete(s.dialing, srv.name)
		s.mu.Unlock()
		close(done)
		return up, err
	}
}

func (s *clientSession) dial(ctx context.Context, srv *server) (*upstreamSession, error) {
	// The upstream session outlives ctx's request: it is cancelled with
	// ctx, but carries only the session's identity.
	dctx, cancel := context.WithTimeout(valuesOf{ctx, s.upstreamContext(s.ctx, "")}, s.g.opts.DialTimeout)
	defer cancel()
	conn, err := srv.dialer.Dial(dctx, s.initParams)
	if err != nil {
		if !errors.Is(err, upstream.ErrBackoff) && !errors.Is(err, upstream.ErrBreakerOpen) {
			s.g.logger.Warn("upstream session failed", "server", srv.name, "session_id", s.id, "error", err)
		}
		return nil, err
	}
	up := &upstreamSession{srv: srv, conn: conn, caps: parseCapabilities(conn.InitResult().Result)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		conn.Close()
		return nil, upstream.ErrClosed
	}
	s.ups[srv.name] = up
	s.cat.invalidate()
	level := s.logLevel
	s.mu.Unlock()
	go s.pumpUpstream(up)
	if level != nil && up.caps.logging {
		go func() {
			if _, err := s.roundTrip(s.ctx, up, "logging/setLevel", level); err != nil {
				s.g.logger.Warn("logging/setLevel failed", "server", srv.name, "session_id", s.id, "error", err)
			}
		}()
	}
	return up, nil
}

// pumpUpstream relays what an upstream sends outside any call to the
// client's GET stream, and notices when the upstream session ends.
func (s *clientSession) pumpUpstream(up *upstreamSession) {
	in := up.conn.Incoming()
	for {
		select {
		case m, ok := <-in:
			if !ok {
				in = nil // no standalone stream; keep watching Done
				continue
			}
			if data := s.toClient(up, m, nil); data != nil {
				s.standalone.append(data)
			}
		case <-up.conn.Done():
			s.upstreamLost(up, up.conn.Err())
			return
		}
	}
}

// upstreamLost handles the end of an upstream session. On the aggregate
// endpoint the server's tools drop out and return once it is reachable
// again; on a single-server endpoint the client session ends too, so the
// client re-initializes against a fresh upstream session.
func (s *clientSession) upstreamLost(up *upstreamSession, err error) {
	if errors.Is(err, upstream.ErrClosed) {
		return
	}
	s.mu.Lock()
	if s.closed || s.ups[up.srv.name] != up {
		s.mu.Unlock()
		return
	}
	delete(s.ups, up.srv.name)
	s.cat.invalidate()
	s.mu.Unlock()
	s.g.logger.Warn("upstream session lost", "server", up.srv.name, "session_id", s.id, "error", err)
	if !s.ep.aggregate() {
		s.g.sessions.Remove(s.id)
		return
	}
	s.catalogChanged()
}

// catalogChanged tells the client to list again.
func (s *clientSession) catalogChanged() {
	s.mu.Lock()
	s.cat.invalidate()
	s.mu.Unlock()
	for _, m := range []string{"notifications/tools/list_changed", "notifications/prompts/list_changed", "notifications/resources/list_changed"} {
		s.standalone.append(mcpwire.NewNotification(m, nil))
	}
}

// toClient rewrites an upstream message for the client: a response gets the
// client's request ID, a request gets a fresh gateway-issued ID. Everything
// else passes through as the upstream sent it. It returns nil for messages
// the client must not see.
func (s *clientSession) toClient(up *upstreamSession, m *mcpwire.Message, clientID []byte) []byte {
	switch m.Kind {
	case mcpwire.KindResponse, mcpwire.KindError:
		if clientID == nil {
			return nil
		}
		return mcpwire.WithID(m, clientID)
	case mcpwire.KindRequest:
		if !s.serverRequestAllowed(up, m) {
			return nil
		}
		s.mu.Lock()
		s.nextSrvReq++
		gid := "mcpgate-" + strconv.FormatInt(s.nextSrvReq, 10)
		s.srvReqs[gid] = srvReq{up: up, id: m.ID, seq: s.nextSrvReq}
		if len(s.srvReqs) > maxPendingServerRequests {
			// The client never answered the oldest ones; forget them.
			for k, r := range s.srvReqs {
				if r.seq <= s.nextSrvReq-maxPendingServerRequests/2 {
					delete(s.srvReqs, k)
				}
			}
		}
		s.mu.Unlock()
		return mcpwire.WithID(m, quote(gid))
	default:
		s.noticeNotification(up, m.Method)
		return m.Raw
	}
}

// serverRequestAllowed applies policy to a server→client request
// (sampling, elicitation, roots). A refused one is answered to the server
// with an error and never reaches the client.
func (s *clientSession) serverRequestAllowed(up *upstreamSession, m *mcpwire.Message) bool {
	if !s.g.policyOn || m.Method == "ping" {
		return true
	}
	c := s.baseCall(m.Method)
	c.Server = up.srv.name
	d := s.g.opts.Authorizer.Authorize(s.ctx, c)
	if d.Allow {
		return true
	}
	s.g.metrics.PolicyDenied(up.srv.name, "", d.Rule)
	s.g.logger.Info("server request refused by policy", "server", up.srv.name, "method", m.Method, "rule", d.Rule,
		"session_id", s.id, "principal", s.principal.String())
	reason := d.Reason
	if reason == "" {
		reason = "not allowed by policy"
	}
	go s.send(s.ctx, up, mcpwire.NewError(m.ID, codeDenied, reason, nil))
	return false
}

// noticeNotification keeps the session's catalog in step with upstream
// list changes.
func (s *clientSession) noticeNotification(up *upstreamSession, method string) {
	switch method {
	case "notifications/tools/list_changed":
		up.tools.invalidate()
		fallthrough
	case "notifications/prompts/list_changed", "notifications/resources/list_changed":
		s.mu.Lock()
		s.cat.invalidate()
		s.mu.Unlock()
	}
}

// toolsChanged re-reads every server's tools (after an approval) and tells
// the client to list again.
func (s *clientSession) toolsChanged() {
	s.mu.Lock()
	for _, up := range s.ups {
		up.tools.invalidate()
	}
	s.cat.invalidate()
	s.mu.Unlock()
	s.standalone.append(mcpwire.NewNotification("notifications/tools/list_changed", nil))
}

// newPostLog creates the event log of a POST's SSE response, keeping the
// most recent ones for resumption.
func (s *clientSession) newPostLog() *eventLog {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextStream++
	l := newEventLog(strconv.Itoa(s.nextStream), s.g.opts.EventBuffer)
	if s.closed {
		l.close()
		return l
	}
	s.logs[l.id] = l
	s.logOrder = append(s.logOrder, l.id)
	const keep = 32
	for len(s.logOrder) > keep {
		old := s.logOrder[0]
		s.logOrder = s.logOrder[1:]
		delete(s.logs, old)
	}
	return l
}

func (s *clientSession) findLog(id string) *eventLog {
	if id == s.standalone.id {
		return s.standalone
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs[id]
}

// idKey normalizes a raw JSON-RPC ID for use as a map key.
func idKey(raw []byte) string {
	if v, ok := mcpwire.StringValue(raw); ok {
		return "s:" + v
	}
	return "n:" + string(raw)
}

func parseCapabilities(result []byte) capabilities {
	caps, _ := mcpwire.ParamsField(result, "capabilities")
	var c capabilities
	_, c.tools = mcpwire.ParamsField(caps, "tools")
	_, c.prompts = mcpwire.ParamsField(caps, "prompts")
	_, c.completions = mcpwire.ParamsField(caps, "completions")
	_, c.logging = mcpwire.ParamsField(caps, "logging")
	var res []byte
	res, c.resources = mcpwire.ParamsField(caps, "resources")
	if sub, ok := mcpwire.ParamsField(res, "subscribe"); ok && string(sub) == "true" {
		c.subscribe = true
	}
	return c
}

// capabilities are what an upstream declared in its initialize result.
type capabilities struct {
	tools, prompts, resources, subscribe, logging, completions bool
}
