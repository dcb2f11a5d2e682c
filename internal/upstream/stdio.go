package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// StdioOptions configure a stdio dialer.
type StdioOptions struct {
	Name            string
	Command         []string
	Env             []string // KEY=value pairs added to the gateway's environment
	Dir             string
	ResponseTimeout time.Duration // default 5m; bounds the initialize exchange
	MaxBackoff      time.Duration // default 30s
	// MaxResponseBytes caps one upstream message; 0 means
	// DefaultMaxResponseBytes. The SDK transport reads a whole line before
	// the gateway sees it, so the cap limits what is relayed, not what is
	// read.
	MaxResponseBytes int64
	Logger           *slog.Logger
}

// StdioDialer starts one child process per upstream session: a stdio server
// holds exactly one MCP session, and sharing a process between gateway
// sessions would mix their capabilities and server→client requests.
// Failed starts back off exponentially up to MaxBackoff.
type StdioDialer struct {
	opts   StdioOptions
	health *health
	prober *prober
}

var _ Dialer = (*StdioDialer)(nil)

// NewStdioDialer returns a dialer for one stdio server.
func NewStdioDialer(opts StdioOptions) *StdioDialer {
	if opts.ResponseTimeout <= 0 {
		opts.ResponseTimeout = 5 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	d := &StdioDialer{opts: opts, health: newHealth(opts.MaxBackoff)}
	d.prober = newProber(d.health, d.probe, opts.Logger)
	return d
}

// Health implements Dialer.
func (d *StdioDialer) Health() Health { return d.health.get() }

// OnHealthChange registers f to run when the server goes up or down.
func (d *StdioDialer) OnHealthChange(f func(up bool)) { d.health.watch(f) }

// Close implements Dialer.
func (d *StdioDialer) Close() { d.prober.stop() }

// probe starts the server and initializes it with minimal capabilities.
func (d *StdioDialer) probe(ctx context.Context) error {
	c, err := d.dial(ctx, []byte(`{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"mcpgate-probe","version":"0"}}`))
	if err != nil {
		return err
	}
	c.Close()
	return nil
}

// Dial implements Dialer.
func (d *StdioDialer) Dial(ctx context.Context, params []byte) (Conn, error) {
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

func (d *StdioDialer) dial(ctx context.Context, params []byte) (*stdioConn, error) {
	cmd := exec.Command(d.opts.Command[0], d.opts.Command[1:]...)
	cmd.Env = append(os.Environ(), d.opts.Env...)
	cmd.Dir = d.opts.Dir
	stderr := &logWriter{logger: d.opts.Logger, server: d.opts.Name}
	cmd.Stderr = stderr
	t := &mcp.CommandTransport{Command: cmd, TerminateDuration: 2 * time.Second}
	conn, err := t.Connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: starting %s: %v", ErrUnavailable, d.opts.Command[0], err)
	}
	c := &stdioConn{
		d:        d,
		conn:     conn,
		cmd:      cmd,
		pending:  make(map[string]*chanStream),
		tokens:   make(map[string]*chanStream),
		incoming: make(chan *mcpwire.Message, 64),
		done:     make(chan struct{}),
		max:      maxBytes(d.opts.MaxResponseBytes),
	}
	c.cancels = newCancels(c.send)
	go c.readLoop()
	ictx, cancel := context.WithTimeout(ctx, d.opts.ResponseTimeout)
	defer cancel()
	s, err := c.Call(ictx, c.NewID(), "initialize", params)
	if err != nil {
		c.Close()
		return nil, err
	}
	defer s.Close()
	for {
		m, err := s.Next()
		if err != nil {
			c.Close()
			return nil, err
		}
		if m.Kind == mcpwire.KindError {
			c.Close()
			return nil, fmt.Errorf("%w: initialize failed with code %d", ErrProtocol, m.ErrorCode)
		}
		if m.Kind == mcpwire.KindResponse {
			c.init = m
			break
		}
	}
	c.version, _ = mcpwire.StringValue(mustField(c.init.Result, "protocolVersion"))
	if c.version == "" {
		c.Close()
		return nil, fmt.Errorf("%w: initialize result has no protocolVersion", ErrProtocol)
	}
	if err := c.Send(ictx, mcpwire.NewNotification("notifications/initialized", nil)); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// stdioConn is one upstream session with its own child process.
type stdioConn struct {
	d       *StdioDialer
	conn    mcp.Connection
	cmd     *exec.Cmd
	nextID  atomic.Int64
	init    *mcpwire.Message
	version string
	max     int // message cap in bytes
	cancels *cancels

	mu      sync.Mutex             // guards the fields below
	pending map[string]*chanStream // by upstream request ID
	tokens  map[string]*chanStream // by progress token
	err     error

	incoming  chan *mcpwire.Message
	done      chan struct{}
	closeOnce sync.Once
}

var _ Conn = (*stdioConn)(nil)

func (c *stdioConn) InitResult() *mcpwire.Message      { return c.init }
func (c *stdioConn) ProtocolVersion() string           { return c.version }
func (c *stdioConn) Incoming() <-chan *mcpwire.Message { return c.incoming }
func (c *stdioConn) Done() <-chan struct{}             { return c.done }

func (c *stdioConn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close implements Conn: stdin is closed, then the process is signalled
// and reaped (the SDK transport's shutdown sequence).
func (c *stdioConn) Close() { c.fail(ErrClosed) }

func (c *stdioConn) fail(err error) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.err = err
		pending := c.pending
		c.pending = map[string]*chanStream{}
		c.mu.Unlock()
		for _, s := range pending {
			s.finish(err)
		}
		close(c.done)
		go c.conn.Close() // reaps the process; may wait for SIGTERM/SIGKILL
	})
}

func (c *stdioConn) readLoop() {
	defer close(c.incoming)
	for {
		jm, err := c.conn.Read(context.Background())
		if err != nil {
			lost := fmt.Errorf("%w: process ended: %v", ErrSessionLost, err)
			if !errors.Is(c.Err(), ErrClosed) {
				// A crash counts against the server: restarts back off, and the
				// prober tells sessions when it starts cleanly again.
				c.d.opts.Logger.Warn("stdio server exited", "server", c.d.opts.Name, "error", err)
				c.d.health.failure(lost)
				c.d.prober.start()
			}
			c.fail(lost)
			return
		}
		raw, err := jsonrpc.EncodeMessage(jm)
		if err != nil {
			continue
		}
		m, err := decodeUpstream(raw)
		if err != nil {
			c.d.opts.Logger.Warn("dropped malformed upstream message", "server", c.d.opts.Name, "error", err)
			continue
		}
		if len(raw) > c.max {
			c.tooLarge(m)
			continue
		}
		c.route(m)
	}
}

// route delivers a message to the call it belongs to. Stdio has no
// per-request streams, so relation is inferred: responses by ID, progress by
// token, and a server request during exactly one call goes to that call.
func (c *stdioConn) route(m *mcpwire.Message) {
	c.mu.Lock()
	var s *chanStream
	switch {
	case m.Kind == mcpwire.KindResponse || m.Kind == mcpwire.KindError:
		s = c.pending[string(m.ID)]
		delete(c.pending, string(m.ID))
		if s != nil && s.token != "" {
			delete(c.tokens, s.token)
		}
	case m.Method == "notifications/progress":
		if tok, ok := mcpwire.ParamsField(m.Params, "progressToken"); ok {
			s = c.tokens[string(tok)]
		}
	case m.Kind == mcpwire.KindRequest && len(c.pending) == 1:
		for _, p := range c.pending {
			s = p
		}
	}
	c.mu.Unlock()
	if s != nil {
		s.push(m)
		return
	}
	if m.Kind == mcpwire.KindResponse || m.Kind == mcpwire.KindError {
		return // an answer nobody waits for (abandoned call)
	}
	select {
	case c.incoming <- m:
	case <-c.done:
	}
}

// tooLarge fails the call a response over the cap belongs to, and drops
// any other message over it.
func (c *stdioConn) tooLarge(m *mcpwire.Message) {
	if m.Kind == mcpwire.KindResponse || m.Kind == mcpwire.KindError {
		c.mu.Lock()
		s := c.pending[string(m.ID)]
		delete(c.pending, string(m.ID))
		if s != nil && s.token != "" {
			delete(c.tokens, s.token)
		}
		c.mu.Unlock()
		if s != nil {
			s.finish(tooLarge(c.max))
			return
		}
	}
	c.d.opts.Logger.Warn("dropped upstream message over max_response_bytes", "server", c.d.opts.Name, "limit", c.max)
}

// NewID implements Conn.
func (c *stdioConn) NewID() []byte { return strconv.AppendInt(nil, c.nextID.Add(1), 10) }

// Call implements Conn. If ctx ends before the response, the server gets
// notifications/cancelled for the request (never for initialize).
func (c *stdioConn) Call(ctx context.Context, id []byte, method string, params []byte) (Stream, error) {
	s := &chanStream{id: id, ctx: ctx, ch: make(chan *mcpwire.Message, 16), end: make(chan struct{})}
	if meta, ok := mcpwire.ParamsField(params, "_meta"); ok {
		if tok, ok := mcpwire.ParamsField(meta, "progressToken"); ok {
			s.token = string(tok)
		}
	}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	c.pending[string(id)] = s
	if s.token != "" {
		c.tokens[s.token] = s
	}
	c.mu.Unlock()
	s.release = func() {
		c.mu.Lock()
		delete(c.pending, string(id))
		if s.token != "" && c.tokens[s.token] == s {
			delete(c.tokens, s.token)
		}
		c.mu.Unlock()
	}
	if err := c.send(ctx, mcpwire.NewRequest(id, method, params)); err != nil {
		s.release()
		return nil, err
	}
	if method != "initialize" {
		s.pc = c.cancels.watch(ctx, id)
	}
	return s, nil
}

// Send implements Conn.
func (c *stdioConn) Send(ctx context.Context, msg []byte) error {
	c.cancels.relayed(msg)
	return c.send(ctx, msg)
}

func (c *stdioConn) send(ctx context.Context, msg []byte) error {
	if c.Err() != nil {
		return c.Err()
	}
	jm, err := jsonrpc.DecodeMessage(msg)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	if err := c.conn.Write(ctx, jm); err != nil {
		c.fail(fmt.Errorf("%w: %v", ErrSessionLost, err))
		return c.Err()
	}
	return nil
}

// chanStream is the answer to a stdio call, fed by the read loop.
type chanStream struct {
	id      []byte
	token   string
	ctx     context.Context
	ch      chan *mcpwire.Message
	end     chan struct{}
	once    sync.Once
	err     error
	release func()
	done    bool
	pc      *pendingCall // cancels the request if ctx ends first
}

func (s *chanStream) ID() []byte      { return s.id }
func (s *chanStream) Streaming() bool { return false }

// Close abandons the stream. The request is not cancelled, unless ctx
// ended first.
func (s *chanStream) Close() {
	s.endWatch(false)
	if s.release != nil {
		s.release()
	}
}

// endWatch ends the cancellation watch; unless answered, a watch whose ctx
// ended is left to send its cancellation.
func (s *chanStream) endWatch(answered bool) {
	if s.pc != nil && (answered || s.ctx.Err() == nil) {
		s.pc.done()
		s.pc = nil
	}
}

func (s *chanStream) push(m *mcpwire.Message) {
	select {
	case s.ch <- m:
	case <-s.ctx.Done():
	case <-s.end:
	}
}

func (s *chanStream) finish(err error) {
	s.once.Do(func() {
		s.err = err
		close(s.end)
	})
}

func (s *chanStream) Next() (*mcpwire.Message, error) {
	if s.done {
		return nil, io.EOF
	}
	select {
	case m := <-s.ch:
		if (m.Kind == mcpwire.KindResponse || m.Kind == mcpwire.KindError) && bytes.Equal(m.ID, s.id) {
			s.done = true
			s.endWatch(true)
		}
		return m, nil
	case <-s.end:
		s.endWatch(true)
		return nil, s.err
	case <-s.ctx.Done():
		s.Close()
		return nil, s.ctx.Err()
	}
}

// logWriter turns a child's stderr into log records, one per line.
type logWriter struct {
	logger *slog.Logger
	server string
	mu     sync.Mutex
	buf    []byte
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) > 8<<10 {
				w.emit(w.buf)
				w.buf = w.buf[:0]
			}
			return len(p), nil
		}
		w.emit(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}

func (w *logWriter) emit(line []byte) {
	line = bytes.TrimRight(line, "\r")
	if len(line) == 0 {
		return
	}
	w.logger.Info("upstream stderr", "server", w.server, "line", string(line))
}
