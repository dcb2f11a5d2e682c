package upstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// HTTPOptions configure an HTTP dialer.
type HTTPOptions struct {
	Name            string
	URL             string
	Header          http.Header   // static headers (credentials already resolved)
	ConnectTimeout  time.Duration // default 5s
	ResponseTimeout time.Duration // default 5m; bounds each call and the initialize exchange
	// MaxResponseBytes caps one upstream message (a JSON body or one SSE
	// event); 0 means DefaultMaxResponseBytes.
	MaxResponseBytes int64
	Logger           *slog.Logger
	// RequestHeader, when set, adds headers to every request of a session
	// (POST, GET and DELETE); ctx is that request's context: the caller's
	// for a call, the Dial context's values for the GET stream and DELETE.
	// It runs after the static headers and before the protocol headers.
	RequestHeader func(ctx context.Context, h http.Header)
	// Transport overrides the pooled transport (tests).
	Transport http.RoundTripper
}

// HTTPDialer dials Streamable HTTP upstream sessions over a shared pool of
// keep-alive connections.
type HTTPDialer struct {
	opts   HTTPOptions
	max    int // message cap in bytes
	client *http.Client
	health *health
	prober *prober
}

var _ Dialer = (*HTTPDialer)(nil)

// NewHTTPDialer returns a dialer for one Streamable HTTP server.
func NewHTTPDialer(opts HTTPOptions) *HTTPDialer {
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 5 * time.Second
	}
	if opts.ResponseTimeout <= 0 {
		opts.ResponseTimeout = 5 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	rt := opts.Transport
	if rt == nil {
		rt = newPooledTransport(opts.ConnectTimeout)
	}
	d := &HTTPDialer{
		opts:   opts,
		max:    maxBytes(opts.MaxResponseBytes),
		client: &http.Client{Transport: rt, CheckRedirect: noRedirects},
		health: newHealth(30 * time.Second),
	}
	d.prober = newProber(d.health, d.probe, opts.Logger)
	return d
}

// newPooledTransport sizes the idle pool for many concurrent sessions: Go's
// default keeps only 2 idle connections per host.
func newPooledTransport(connect time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // upstreams are addressed directly; never via an environment proxy
		DialContext:           (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   connect,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true, // compression would hold SSE events back
		ForceAttemptHTTP2:     true,
	}
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Health implements Dialer.
func (d *HTTPDialer) Health() Health { return d.health.get() }

// OnHealthChange registers f to run when the server goes up or down.
func (d *HTTPDialer) OnHealthChange(f func(up bool)) { d.health.watch(f) }

// Close implements Dialer.
func (d *HTTPDialer) Close() {
	d.prober.stop()
	d.client.CloseIdleConnections()
}

// probe checks that the server answers HTTP at all: any status below 500
// (400 or 405 for a sessionless GET) means it is up.
func (d *HTTPDialer) probe(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.opts.URL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return &StatusError{Code: resp.StatusCode}
	}
	return nil
}

// Dial implements Dialer.
func (d *HTTPDialer) Dial(ctx context.Context, params []byte) (Conn, error) {
	if !d.health.allow() {
		return nil, ErrBackoff
	}
	c, err := d.dial(ctx, params)
	if err != nil {
		if ctx.Err() == nil {
			d.health.failure(err)
			d.prober.start()
		}
		return nil, err
	}
	d.health.success()
	return c, nil
}

func (d *HTTPDialer) dial(ctx context.Context, params []byte) (*httpConn, error) {
	// The session outlives ctx but keeps its values, which RequestHeader
	// reads for the GET stream and DELETE.
	connCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &httpConn{
		d:        d,
		ctx:      connCtx,
		cancel:   cancel,
		incoming: make(chan *mcpwire.Message, 64),
		done:     make(chan struct{}),
	}
	c.cancels = newCancels(c.sendCancel)
	ictx, icancel := context.WithTimeout(ctx, d.opts.ResponseTimeout)
	defer icancel()
	s, err := c.Call(ictx, c.NewID(), "initialize", params)
	if err != nil {
		cancel()
		return nil, err
	}
	defer s.Close()
	for {
		m, err := s.Next()
		if err != nil {
			cancel()
			return nil, err
		}
		if m.Kind == mcpwire.KindResponse || m.Kind == mcpwire.KindError {
			if m.Kind == mcpwire.KindError {
				cancel()
				c.deleteSession()
				return nil, fmt.Errorf("%w: initialize failed with code %d", ErrProtocol, m.ErrorCode)
			}
			c.init = m
			break
		}
	}
	v, _ := mcpwire.StringValue(mustField(c.init.Result, "protocolVersion"))
	if v == "" {
		cancel()
		c.deleteSession()
		return nil, fmt.Errorf("%w: initialize result has no protocolVersion", ErrProtocol)
	}
	c.version = v
	if err := c.Send(ictx, mcpwire.NewNotification("notifications/initialized", nil)); err != nil {
		cancel()
		c.deleteSession()
		return nil, err
	}
	c.wg.Add(1)
	go c.standalone()
	return c, nil
}

func mustField(obj []byte, key string) []byte {
	v, _ := mcpwire.ParamsField(obj, key)
	return v
}

// httpConn is one upstream session over Streamable HTTP.
type httpConn struct {
	d       *HTTPDialer
	ctx     context.Context // lives as long as the session
	cancel  context.CancelFunc
	nextID  atomic.Int64
	wg      sync.WaitGroup
	cancels *cancels

	mu        sync.Mutex // guards the fields below
	sessionID string
	version   string
	init      *mcpwire.Message
	err       error

	incoming  chan *mcpwire.Message
	done      chan struct{}
	closeOnce sync.Once
}

var _ Conn = (*httpConn)(nil)

func (c *httpConn) InitResult() *mcpwire.Message { return c.init }
func (c *httpConn) ProtocolVersion() string      { return c.version }
func (c *httpConn) Incoming() <-chan *mcpwire.Message {
	return c.incoming
}
func (c *httpConn) Done() <-chan struct{} { return c.done }

func (c *httpConn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// fail ends the session with err (the first error wins).
func (c *httpConn) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	c.closeOnce.Do(func() {
		c.cancel()
		close(c.done)
	})
}

// Close implements Conn: DELETE ends the upstream session.
func (c *httpConn) Close() {
	c.fail(ErrClosed)
	c.wg.Wait()
	c.deleteSession()
}

func (c *httpConn) deleteSession() {
	c.mu.Lock()
	sid := c.sessionID
	c.mu.Unlock()
	if sid == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), 5*time.Second)
	defer cancel()
	req, err := c.newRequest(ctx, http.MethodDelete, nil)
	if err != nil {
		return
	}
	resp, err := c.d.client.Do(req)
	if err != nil {
		c.d.opts.Logger.Debug("upstream session delete failed", "server", c.d.opts.Name, "error", err)
		return
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
}

func (c *httpConn) newRequest(ctx context.Context, method string, body []byte) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.d.opts.URL, r)
	if err != nil {
		return nil, err
	}
	for k, v := range c.d.opts.Header {
		req.Header[k] = v
	}
	if f := c.d.opts.RequestHeader; f != nil {
		f(ctx, req.Header)
	}
	switch method {
	case http.MethodPost:
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
	case http.MethodGet:
		req.Header.Set("Accept", "text/event-stream")
	}
	c.mu.Lock()
	if c.sessionID != "" {
		req.Header.Set("Mcp-Session-Id", c.sessionID)
	}
	if c.version != "" {
		req.Header.Set("Mcp-Protocol-Version", c.version)
	}
	c.mu.Unlock()
	return req, nil
}

// do sends a request and checks the status, capturing the session ID from
// the initialize response.
func (c *httpConn) do(req *http.Request, initialize bool) (*http.Response, error) {
	resp, err := c.d.client.Do(req)
	if err != nil {
		if req.Context().Err() != nil {
			return nil, req.Context().Err()
		}
		err = fmt.Errorf("%w: %v", ErrUnavailable, err)
		if !initialize {
			// The server is unreachable: a legacy session does not survive
			// that, so end it (its tools drop out of /mcp), mark the server
			// down and let the prober find it again.
			c.fail(err)
			c.d.health.failure(err)
			c.d.prober.start()
		}
		return nil, err
	}
	if resp.StatusCode == http.StatusNotFound && !initialize {
		drainClose(resp)
		c.fail(ErrSessionLost)
		return nil, ErrSessionLost
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		drainClose(resp)
		return nil, &StatusError{Code: resp.StatusCode}
	}
	if initialize {
		sid := resp.Header.Get("Mcp-Session-Id")
		if !validSessionID(sid) {
			drainClose(resp)
			return nil, fmt.Errorf("%w: invalid Mcp-Session-Id", ErrProtocol)
		}
		c.mu.Lock()
		c.sessionID = sid
		c.mu.Unlock()
	}
	return resp, nil
}

func drainClose(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// validSessionID accepts an empty ID (a server without sessions) or visible ASCII.
func validSessionID(s string) bool {
	if len(s) > 1024 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// NewID implements Conn.
func (c *httpConn) NewID() []byte { return strconv.AppendInt(nil, c.nextID.Add(1), 10) }

// Call implements Conn. If ctx ends before the response, the upstream
// gets notifications/cancelled for the request (never for initialize,
// which must not be cancelled).
func (c *httpConn) Call(ctx context.Context, id []byte, method string, params []byte) (Stream, error) {
	if err := c.ctx.Err(); err != nil && method != "initialize" {
		return nil, c.errOr(ErrClosed)
	}
	req, err := c.newRequest(ctx, http.MethodPost, mcpwire.NewRequest(id, method, params))
	if err != nil {
		return nil, err
	}
	var pc *pendingCall
	if method != "initialize" {
		pc = c.cancels.watch(ctx, id)
	}
	// end finishes the watch unless ctx ended: then the cancellation is
	// under way.
	end := func() {
		if pc != nil && ctx.Err() == nil {
			pc.done()
		}
	}
	resp, err := c.do(req, method == "initialize")
	if err != nil {
		end()
		return nil, err
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		m, err := c.readBody(resp)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			end()
			return nil, err
		}
		if pc != nil {
			pc.done()
		}
		return &jsonStream{id: id, m: m}, nil
	case "text/event-stream":
		br := callReaders.Get().(*bufio.Reader)
		br.Reset(resp.Body)
		return &sseStream{c: c, ctx: ctx, id: id, body: resp.Body, r: &sseReader{r: br, max: c.d.max}, pooled: br, pc: pc}, nil
	default:
		drainClose(resp)
		end()
		return nil, fmt.Errorf("%w: unexpected content type %q", ErrProtocol, ct)
	}
}

// readBody reads a single-message JSON body of at most the server's
// message cap. A larger body is abandoned: its connection is not reused,
// the session is unaffected.
func (c *httpConn) readBody(resp *http.Response) (*mcpwire.Message, error) {
	defer resp.Body.Close()
	if resp.ContentLength > int64(c.d.max) {
		return nil, tooLarge(c.d.max)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(c.d.max)+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading response: %v", ErrUnavailable, err)
	}
	if len(body) > c.d.max {
		return nil, tooLarge(c.d.max)
	}
	return decodeUpstream(body)
}

// sendCancel delivers a notifications/cancelled unless the session ended.
func (c *httpConn) sendCancel(ctx context.Context, msg []byte) error {
	if c.ctx.Err() != nil {
		return nil
	}
	return c.send(ctx, msg)
}

func (c *httpConn) errOr(def error) error {
	if err := c.Err(); err != nil {
		return err
	}
	return def
}

// Send implements Conn.
func (c *httpConn) Send(ctx context.Context, msg []byte) error {
	c.cancels.relayed(msg)
	return c.send(ctx, msg)
}

func (c *httpConn) send(ctx context.Context, msg []byte) error {
	req, err := c.newRequest(ctx, http.MethodPost, msg)
	if err != nil {
		return err
	}
	resp, err := c.do(req, false)
	if err != nil {
		return err
	}
	drainClose(resp)
	return nil
}

// standalone keeps the session's GET stream open, resuming after a break
// with Last-Event-ID, and feeds Incoming. A server that refuses the stream
// (405, or any other 4xx) has none; 5xx answers are retried with
// exponential backoff; an unreachable server ends the session.
func (c *httpConn) standalone() {
	defer c.wg.Done()
	defer close(c.incoming)
	var lastID string
	const minDelay, maxDelay = 500 * time.Millisecond, 30 * time.Second
	delay := minDelay
	for c.ctx.Err() == nil {
		req, err := c.newRequest(c.ctx, http.MethodGet, nil)
		if err != nil {
			return
		}
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := c.do(req, false)
		var se *StatusError
		switch {
		case errors.As(err, &se) && se.Code < 500:
			if se.Code != http.StatusMethodNotAllowed {
				c.d.opts.Logger.Debug("upstream offers no GET stream", "server", c.d.opts.Name, "status", se.Code)
			}
			return
		case errors.Is(err, ErrSessionLost):
			return
		case errors.Is(err, ErrUnavailable):
			return // the session failed with it
		case err != nil:
			if c.ctx.Err() != nil {
				return
			}
			c.d.opts.Logger.Debug("upstream GET stream failed", "server", c.d.opts.Name, "error", err)
			delay = min(delay*2, maxDelay)
		default:
			delay = minDelay
			// A standalone stream mostly waits: a small buffer keeps idle
			// sessions cheap.
			r := newSSEReaderSize(resp.Body, c.d.max, 1<<10)
			for {
				ev, err := r.Next()
				lastID = r.lastID
				if ev.Retry > 0 {
					delay = min(ev.Retry, maxDelay)
				}
				if errors.Is(err, errEventTooLarge) {
					// Resuming after the event's own id (read before its
					// data) skips it rather than fetching it again.
					c.d.opts.Logger.Warn("dropped upstream message over max_response_bytes", "server", c.d.opts.Name, "limit", c.d.max)
				}
				if err != nil {
					break
				}
				m, err := decodeUpstream(ev.Data)
				if err != nil {
					c.d.opts.Logger.Warn("dropped malformed upstream message", "server", c.d.opts.Name, "error", err)
					continue
				}
				select {
				case c.incoming <- m:
				case <-c.ctx.Done():
				}
			}
			resp.Body.Close()
		}
		select {
		case <-time.After(delay):
		case <-c.ctx.Done():
		}
	}
}
