package upstream

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestMain doubles as a stdio MCP server when asked, so stdio tests run a
// real child process without any other binary.
func TestMain(m *testing.M) {
	if os.Getenv("MCPGATE_TEST_STDIO_SERVER") == "1" {
		if err := testServer().Run(context.Background(), &mcp.StdioTransport{}); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type progressArgs struct {
	Steps int `json:"steps"`
}

// serverState is what a test server's tools share with the test.
type serverState struct {
	started   chan struct{} // a hang call began
	release   chan struct{} // closed: every hang call returns
	ended     chan struct{} // a hang call's context ended
	cancelled atomic.Int64  // hang calls whose context ended
}

func newServerState() *serverState {
	return &serverState{started: make(chan struct{}, 64), release: make(chan struct{}), ended: make(chan struct{}, 64)}
}

// testServer is a Go SDK server with an echo tool and a tool that reports
// progress.
func testServer() *mcp.Server { return testServerWith(newServerState()) }

// testServerWith adds tools that hang until cancelled or released (hang),
// answer with size bytes of text (big), and count hang calls whose context
// ended (cancellations).
func testServerWith(st *serverState) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "upstream-test", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in struct {
		Text string `json:"text"`
	}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "progress"}, func(ctx context.Context, req *mcp.CallToolRequest, in progressArgs) (*mcp.CallToolResult, any, error) {
		for i := range in.Steps {
			req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: req.Params.GetProgressToken(), Progress: float64(i + 1), Total: float64(in.Steps)})
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "hang"}, func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		st.started <- struct{}{}
		select {
		case <-ctx.Done():
			st.cancelled.Add(1)
			st.ended <- struct{}{}
			return nil, nil, ctx.Err()
		case <-st.release:
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "released"}}}, nil, nil
		}
	})
	mcp.AddTool(s, &mcp.Tool{Name: "big"}, func(_ context.Context, _ *mcp.CallToolRequest, in struct {
		Size int `json:"size"`
	}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: strings.Repeat("x", in.Size)}}}, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "cancellations"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: strconv.FormatInt(st.cancelled.Load(), 10)}}}, nil, nil
	})
	return s
}

const initParams = `{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}`

// recorder wraps an MCP handler and records each request's verb.
type recorder struct {
	h       http.Handler
	mu      sync.Mutex
	methods []string
	lose    bool // answer 404 to every request with a session
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.methods = append(r.methods, req.Method)
	lose := r.lose && req.Header.Get("Mcp-Session-Id") != ""
	r.mu.Unlock()
	if lose {
		http.Error(w, "session not found", http.StatusNotFound)
		return
	}
	r.h.ServeHTTP(w, req)
}

func (r *recorder) count(method string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.methods {
		if m == method {
			n++
		}
	}
	return n
}

func startHTTP(t *testing.T) (*recorder, string) {
	t.Helper()
	s := testServer()
	rec := &recorder{h: mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return rec, srv.URL + "/mcp"
}

// collect reads a call's messages up to and including the response.
func collect(t *testing.T, st Stream) []*mcpwire.Message {
	t.Helper()
	defer st.Close()
	var out []*mcpwire.Message
	for {
		m, err := st.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, m)
	}
}

func exerciseConn(t *testing.T, c Conn) {
	t.Helper()
	if c.ProtocolVersion() != "2025-11-25" {
		t.Errorf("protocol version %q", c.ProtocolVersion())
	}
	if name := mustField(mustField(c.InitResult().Result, "serverInfo"), "name"); string(name) != `"upstream-test"` {
		t.Errorf("serverInfo.name = %s", name)
	}
	ctx := context.Background()
	st, err := c.Call(ctx, c.NewID(), "tools/call", []byte(`{"name":"echo","arguments":{"text":"héllo"}}`))
	if err != nil {
		t.Fatal(err)
	}
	msgs := collect(t, st)
	last := msgs[len(msgs)-1]
	if last.Kind != mcpwire.KindResponse || string(last.ID) != string(st.ID()) || !strings.Contains(string(last.Result), "héllo") {
		t.Fatalf("echo answer: %s", last.Raw)
	}
	st, err = c.Call(ctx, c.NewID(), "tools/call", []byte(`{"name":"progress","arguments":{"steps":3},"_meta":{"progressToken":"tok-1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	msgs = collect(t, st)
	progress := 0
	for _, m := range msgs {
		if m.Method == "notifications/progress" {
			if tok := mustField(m.Params, "progressToken"); string(tok) != `"tok-1"` {
				t.Errorf("progress token %s", tok)
			}
			progress++
		}
	}
	if progress != 3 || msgs[len(msgs)-1].Kind != mcpwire.KindResponse {
		t.Fatalf("got %d progress notifications and final %s", progress, msgs[len(msgs)-1].Raw)
	}
}

func TestHTTPConn(t *testing.T) {
	rec, url := startHTTP(t)
	d := NewHTTPDialer(HTTPOptions{Name: "t", URL: url})
	defer d.Close()
	c, err := d.Dial(context.Background(), []byte(initParams))
	if err != nil {
		t.Fatal(err)
	}
	exerciseConn(t, c)
	if !d.Health().Up {
		t.Error("healthy server reported down")
	}
	c.Close()
	if rec.count(http.MethodDelete) != 1 {
		t.Errorf("upstream saw %d DELETEs after Close, want 1", rec.count(http.MethodDelete))
	}
	if _, err := c.Call(context.Background(), c.NewID(), "tools/list", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Call after Close: %v, want ErrClosed", err)
	}
}

func TestHTTPSessionLost(t *testing.T) {
	rec, url := startHTTP(t)
	d := NewHTTPDialer(HTTPOptions{Name: "t", URL: url})
	defer d.Close()
	c, err := d.Dial(context.Background(), []byte(initParams))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rec.mu.Lock()
	rec.lose = true
	rec.mu.Unlock()
	if _, err := c.Call(context.Background(), c.NewID(), "tools/list", nil); !errors.Is(err, ErrSessionLost) {
		t.Fatalf("Call on a lost session: %v, want ErrSessionLost", err)
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the session was lost")
	}
	if !errors.Is(c.Err(), ErrSessionLost) {
		t.Errorf("Err = %v", c.Err())
	}
}

func TestHTTPDialFailureBacksOffAndRecovers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	d := NewHTTPDialer(HTTPOptions{Name: "t", URL: "http://" + addr + "/mcp", ConnectTimeout: time.Second})
	defer d.Close()
	changes := make(chan bool, 4)
	d.OnHealthChange(func(up bool) { changes <- up })
	if _, err := d.Dial(context.Background(), []byte(initParams)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("dial to a closed port: %v, want ErrUnavailable", err)
	}
	if _, err := d.Dial(context.Background(), []byte(initParams)); !errors.Is(err, ErrBackoff) {
		t.Fatalf("immediate redial: %v, want ErrBackoff", err)
	}
	if h := d.Health(); h.Up || h.Failures < 1 || h.LastError == "" {
		t.Fatalf("health after failure: %+v", h)
	}
	if up := <-changes; up {
		t.Fatal("first change reported up")
	}
	// Start a server on that address: the prober must notice on its own.
	s := testServer()
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("address reused meanwhile: %v", err)
	}
	srv := &http.Server{Handler: mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)}
	go srv.Serve(ln)
	defer srv.Close()
	select {
	case up := <-changes:
		if !up {
			t.Fatal("second change reported down")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("prober did not notice the server came back")
	}
	c, err := d.Dial(context.Background(), []byte(initParams))
	if err != nil {
		t.Fatalf("dial after recovery: %v", err)
	}
	c.Close()
}

func stdioDialer(t *testing.T, command ...string) *StdioDialer {
	t.Helper()
	if len(command) == 0 {
		command = []string{os.Args[0], "-test.run=^$"}
	}
	d := NewStdioDialer(StdioOptions{Name: "t", Command: command, Env: []string{"MCPGATE_TEST_STDIO_SERVER=1"}, MaxBackoff: time.Minute})
	t.Cleanup(d.Close)
	return d
}

func TestStdioConn(t *testing.T) {
	d := stdioDialer(t)
	c, err := d.Dial(context.Background(), []byte(initParams))
	if err != nil {
		t.Fatal(err)
	}
	exerciseConn(t, c)
	changes := make(chan bool, 4)
	d.OnHealthChange(func(up bool) { changes <- up })
	sc := c.(*stdioConn)
	sc.cmd.Process.Kill()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the process died")
	}
	if !errors.Is(c.Err(), ErrSessionLost) {
		t.Errorf("Err = %v, want ErrSessionLost", c.Err())
	}
	if _, err := c.Call(context.Background(), c.NewID(), "tools/list", nil); err == nil {
		t.Error("Call on a dead process succeeded")
	}
	c.Close()
	// The crash marks the server down; the prober restarts it with backoff.
	for _, want := range []bool{false, true} {
		select {
		case up := <-changes:
			if up != want {
				t.Fatalf("health change up=%v, want %v", up, want)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("no health change to up=%v", want)
		}
	}
	c2, err := d.Dial(context.Background(), []byte(initParams))
	if err != nil {
		t.Fatalf("dial after restart: %v", err)
	}
	c2.Close()
}

func TestStdioStartFailureBacksOff(t *testing.T) {
	d := stdioDialer(t, "/nonexistent/mcp-server")
	if _, err := d.Dial(context.Background(), []byte(initParams)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("dial: %v, want ErrUnavailable", err)
	}
	if _, err := d.Dial(context.Background(), []byte(initParams)); !errors.Is(err, ErrBackoff) {
		t.Fatalf("redial: %v, want ErrBackoff", err)
	}
	if d.Health().Up {
		t.Error("failed server reported up")
	}
}

func TestStderrBecomesLogLines(t *testing.T) {
	var buf strings.Builder
	w := &logWriter{logger: slog.New(slog.NewTextHandler(&buf, nil)), server: "files"}
	io.WriteString(w, "first line\r\nsecond ")
	io.WriteString(w, "half\n\n")
	got := buf.String()
	if strings.Count(got, "msg=\"upstream stderr\"") != 2 || !strings.Contains(got, `line="first line"`) ||
		!strings.Contains(got, `line="second half"`) || !strings.Contains(got, "server=files") {
		t.Fatalf("log:\n%s", got)
	}
}

// TestHTTPConnectionsReused: after an SSE answer the connection goes back
// to the pool. Closing the body before its chunked terminator was read
// made net/http drop the connection, costing a new one per call.
func TestHTTPConnectionsReused(t *testing.T) {
	s := testServer()
	srv := httptest.NewUnstartedServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	var mu sync.Mutex
	conns := 0
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}
	srv.Start()
	defer srv.Close()
	d := NewHTTPDialer(HTTPOptions{Name: "t", URL: srv.URL + "/mcp"})
	defer d.Close()
	c, err := d.Dial(context.Background(), []byte(initParams))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const calls = 30
	streamed := 0
	for range calls {
		st, err := c.Call(context.Background(), c.NewID(), "tools/call", []byte(`{"name":"echo","arguments":{"text":"x"}}`))
		if err != nil {
			t.Fatal(err)
		}
		if st.Streaming() {
			streamed++
		}
		collect(t, st)
	}
	mu.Lock()
	defer mu.Unlock()
	// One connection for the calls, one for the standalone GET stream, and
	// slack for one reconnect.
	if conns > 3 || streamed == 0 {
		t.Fatalf("%d TCP connections for %d calls (%d streamed answers); want at most 3", conns, calls, streamed)
	}
}

// TestStdioTimeoutAndSizeCap: over stdio too, a call whose context times
// out is cancelled at the server, and a response over MaxResponseBytes
// fails its call while the session goes on.
func TestStdioTimeoutAndSizeCap(t *testing.T) {
	d := NewStdioDialer(StdioOptions{Name: "t", Command: []string{os.Args[0], "-test.run=^$"},
		Env: []string{"MCPGATE_TEST_STDIO_SERVER=1"}, MaxResponseBytes: 4096})
	defer d.Close()
	c, err := d.Dial(context.Background(), []byte(initParams))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := call(ctx, c, "hang", `{}`); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hung call: %v, want context.DeadlineExceeded", err)
	}
	// The cancellation is delivered in the background: ask the server
	// until its handler has seen it.
	for i := 0; ; i++ {
		m, err := call(context.Background(), c, "cancellations", `{}`)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(m.Result), `"text":"1"`) {
			break
		}
		if i == 100 {
			t.Fatalf("the server never saw the cancellation: %s", m.Raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := call(context.Background(), c, "big", `{"size":5000}`); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized answer: %v, want ErrTooLarge", err)
	}
	if m, err := call(context.Background(), c, "echo", `{"text":"after"}`); err != nil || !strings.Contains(string(m.Result), "after") {
		t.Fatalf("call after an oversized answer: %v", err)
	}
}
