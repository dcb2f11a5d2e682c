package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// testUpstream is a real Go SDK MCP server on 127.0.0.1 whose failures the
// test switches on and off, and which records what reaches it.
type testUpstream struct {
	*serverState
	srv *httptest.Server
	url string

	mu        sync.Mutex
	calls     int      // POSTs within a session
	failCalls bool     // answer 503 to POSTs within a session
	failProbe bool     // answer 503 to GETs without a session (health probes)
	cancels   []string // params of notifications/cancelled received

	cancelSeen chan struct{} // one per notifications/cancelled received
}

func startUpstream(t *testing.T, opts *mcp.StreamableHTTPOptions) *testUpstream {
	t.Helper()
	u := &testUpstream{serverState: newServerState(), cancelSeen: make(chan struct{}, 16)}
	s := testServerWith(u.serverState)
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, opts)
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inSession := r.Header.Get("Mcp-Session-Id") != ""
		u.mu.Lock()
		failCall := r.Method == http.MethodPost && inSession && u.failCalls
		failProbe := r.Method == http.MethodGet && !inSession && u.failProbe
		if r.Method == http.MethodPost && inSession {
			u.calls++
		}
		u.mu.Unlock()
		if failCall || failProbe {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		if r.Method == http.MethodPost {
			if m, err := mcpwire.Decode(peekBody(r, 1<<20), mcpwire.Limits{}); err == nil && m.Method == "notifications/cancelled" {
				u.mu.Lock()
				u.cancels = append(u.cancels, string(m.Params))
				u.mu.Unlock()
				u.cancelSeen <- struct{}{}
			}
		}
		h.ServeHTTP(w, r)
	}))
	u.url = u.srv.URL + "/mcp"
	t.Cleanup(func() {
		select {
		case <-u.release:
		default:
			close(u.release)
		}
		u.srv.Close()
	})
	return u
}

func (u *testUpstream) set(f func(u *testUpstream)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	f(u)
}

func (u *testUpstream) callCount() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls
}

func (u *testUpstream) cancelled() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.cancels)
}

// kill makes the upstream unreachable: its listener closes and its
// connections drop. (Close would wait for the sessions' GET streams.)
func (u *testUpstream) kill() {
	u.srv.Listener.Close()
	u.srv.CloseClientConnections()
}

// label is the replica label the dialer gives this upstream.
func (u *testUpstream) label() string { return strings.TrimPrefix(u.srv.URL, "http://") }

func call(ctx context.Context, c Conn, tool, args string) (*mcpwire.Message, error) {
	st, err := c.Call(ctx, c.NewID(), "tools/call", []byte(`{"name":"`+tool+`","arguments":`+args+`}`))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	for {
		m, err := st.Next()
		if err != nil {
			return nil, err
		}
		if (m.Kind == mcpwire.KindResponse || m.Kind == mcpwire.KindError) && string(m.ID) == string(st.ID()) {
			return m, nil
		}
	}
}

func dialReplicas(t *testing.T, opts ReplicaOptions, ups ...*testUpstream) *ReplicaDialer {
	t.Helper()
	for _, u := range ups {
		opts.URLs = append(opts.URLs, u.url)
	}
	opts.Name = "t"
	d := NewReplicaDialer(opts)
	t.Cleanup(d.Close)
	return d
}

func mustDial(t *testing.T, d Dialer) Conn {
	t.Helper()
	c, err := d.Dial(context.Background(), []byte(initParams))
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// healthChanges records a dialer's health changes on a channel.
func healthChanges(d interface{ OnHealthChange(func(bool)) }) <-chan bool {
	ch := make(chan bool, 16)
	d.OnHealthChange(func(up bool) { ch <- up })
	return ch
}

func expectChange(t *testing.T, ch <-chan bool, want bool) {
	t.Helper()
	select {
	case up := <-ch:
		if up != want {
			t.Fatalf("health changed to up=%v, want up=%v", up, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no health change to up=%v", want)
	}
}

func TestReplicaLabels(t *testing.T) {
	got := replicaLabels([]string{
		"http://user:secret@10.0.0.1:8080/mcp?token=abc",
		"https://mcp.example.com/mcp",
		"http://[::1]/mcp",
		"http://10.0.0.1:8080/other",
		"::not a url",
	})
	want := []string{"10.0.0.1:8080", "mcp.example.com:443", "[::1]:80", "10.0.0.1:8080#2", "replica-5"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("labels = %q, want %q", got, want)
	}
}

// TestReplicaBalancing: sessions spread over idle replicas, and a new
// session goes to the replica with fewer calls in flight.
func TestReplicaBalancing(t *testing.T) {
	a, b := startUpstream(t, nil), startUpstream(t, nil)
	d := dialReplicas(t, ReplicaOptions{}, a, b)
	seen := map[string]int{}
	for range 20 {
		seen[ReplicaOf(mustDial(t, d))]++
	}
	if seen[a.label()] == 0 || seen[b.label()] == 0 {
		t.Fatalf("20 sessions on idle replicas went %v; want both used", seen)
	}

	// Hold two calls open on a session of one replica.
	busy := mustDial(t, d)
	busyUp := map[string]*testUpstream{a.label(): a, b.label(): b}[ReplicaOf(busy)]
	for range 2 {
		go call(context.Background(), busy, "hang", `{}`)
		<-busyUp.started
	}
	for i := range 10 {
		if got := ReplicaOf(mustDial(t, d)); got == busyUp.label() {
			t.Fatalf("session %d went to the replica with calls in flight (%s)", i, got)
		}
	}
	var out int64
	for _, r := range d.Replicas() {
		out += r.Outstanding
	}
	if out != 2 {
		t.Errorf("outstanding calls = %d, want 2", out)
	}
	close(busyUp.release)
}

// TestReplicaFailover: with one replica's listener closed, new sessions
// still succeed on the other; the dead one is marked down while the server
// stays up; an existing session stays on its replica.
func TestReplicaFailover(t *testing.T) {
	a, b := startUpstream(t, nil), startUpstream(t, nil)
	d := dialReplicas(t, ReplicaOptions{HTTPOptions: HTTPOptions{ConnectTimeout: time.Second}}, a, b)
	changes := healthChanges(d)
	var onB Conn
	for onB == nil {
		if c := mustDial(t, d); ReplicaOf(c) == b.label() {
			onB = c
		}
	}
	a.kill()
	for i := range 10 {
		c := mustDial(t, d)
		if ReplicaOf(c) != b.label() {
			t.Fatalf("session %d on %s, want the live replica %s", i, ReplicaOf(c), b.label())
		}
	}
	st := d.Replicas()
	if st[0].Health.Up || !st[1].Health.Up {
		t.Errorf("replica health = %+v, want a down and b up", st)
	}
	if h := d.Health(); !h.Up || !strings.Contains(h.LastError, a.label()) {
		t.Errorf("server health = %+v, want up with a's failure named", h)
	}
	select {
	case up := <-changes:
		t.Fatalf("server health changed to up=%v while a replica was up", up)
	default:
	}
	before := b.callCount()
	if _, err := call(context.Background(), onB, "echo", `{"text":"pinned"}`); err != nil {
		t.Fatal(err)
	}
	if b.callCount() != before+1 {
		t.Errorf("the pinned session's call did not reach its replica")
	}
}

// TestReplicaAllDown: when every replica is unreachable, Dial returns the
// last error, then ErrBackoff, and the server goes down.
func TestReplicaAllDown(t *testing.T) {
	a, b := startUpstream(t, nil), startUpstream(t, nil)
	d := dialReplicas(t, ReplicaOptions{HTTPOptions: HTTPOptions{ConnectTimeout: time.Second}}, a, b)
	changes := healthChanges(d)
	a.kill()
	b.kill()
	if _, err := d.Dial(context.Background(), []byte(initParams)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("dial with every replica dead: %v, want ErrUnavailable", err)
	}
	expectChange(t, changes, false)
	if _, err := d.Dial(context.Background(), []byte(initParams)); !errors.Is(err, ErrBackoff) {
		t.Fatalf("redial: %v, want ErrBackoff", err)
	}
	if d.Health().Up {
		t.Error("server with no live replica reported up")
	}
}

// TestBreaker: consecutive 5xx answers open the breaker; calls and dials
// then fail fast without reaching the upstream; after the cooldown one
// trial goes through: a failure reopens, a success closes.
func TestBreaker(t *testing.T) {
	u := startUpstream(t, nil)
	const cooldown = 300 * time.Millisecond
	d := dialReplicas(t, ReplicaOptions{BreakerFailures: 3, BreakerCooldown: cooldown}, u)
	changes := healthChanges(d)
	c := mustDial(t, d)
	ctx := context.Background()
	u.set(func(u *testUpstream) { u.failCalls = true })
	for i := range 3 {
		var se *StatusError
		if _, err := call(ctx, c, "echo", `{"text":"x"}`); !errors.As(err, &se) || se.Code != 503 {
			t.Fatalf("failing call %d: %v, want HTTP 503", i, err)
		}
	}
	expectChange(t, changes, false)
	sent := u.callCount()
	start := time.Now()
	_, err := call(ctx, c, "echo", `{"text":"x"}`)
	if !errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("call with the breaker open: %v, want ErrBreakerOpen", err)
	}
	if d, ok := RetryAfter(err); !ok || d < time.Second {
		t.Errorf("RetryAfter = %v, %v; want at least 1s", d, ok)
	}
	if _, err := d.Dial(ctx, []byte(initParams)); !errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("dial with the breaker open: %v, want ErrBreakerOpen", err)
	}
	if u.callCount() != sent || time.Since(start) > cooldown {
		t.Fatalf("fail-fast sent %d requests upstream and took %v", u.callCount()-sent, time.Since(start))
	}
	if st := d.Replicas()[0].Breaker; st != BreakerOpen {
		t.Errorf("breaker state %s, want open", st)
	}

	// The cooldown ends: the server is usable again, for one trial, which
	// fails and reopens the breaker.
	expectChange(t, changes, true)
	if _, err := call(ctx, c, "echo", `{"text":"x"}`); errors.Is(err, ErrBreakerOpen) || err == nil {
		t.Fatalf("trial call: %v, want the upstream's failure", err)
	}
	expectChange(t, changes, false)
	if _, err := call(ctx, c, "echo", `{"text":"x"}`); !errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("call after a failed trial: %v, want ErrBreakerOpen", err)
	}

	// Next cooldown: the upstream has recovered; the trial closes it.
	u.set(func(u *testUpstream) { u.failCalls = false })
	expectChange(t, changes, true)
	if m, err := call(ctx, c, "echo", `{"text":"back"}`); err != nil || !strings.Contains(string(m.Result), "back") {
		t.Fatalf("trial call after recovery: %v", err)
	}
	if st := d.Replicas()[0].Breaker; st != BreakerClosed {
		t.Errorf("breaker state %s after a successful trial, want closed", st)
	}
	if _, err := call(ctx, c, "echo", `{"text":"again"}`); err != nil {
		t.Fatalf("call with the breaker closed: %v", err)
	}
}

// TestBreakerIgnoresToolErrors: JSON-RPC errors and isError results are
// answers, not transport failures.
func TestBreakerIgnoresToolErrors(t *testing.T) {
	u := startUpstream(t, nil)
	d := dialReplicas(t, ReplicaOptions{BreakerFailures: 2}, u)
	c := mustDial(t, d)
	for range 5 {
		m, err := call(context.Background(), c, "no-such-tool", `{}`)
		if err != nil {
			t.Fatal(err)
		}
		if m.Kind != mcpwire.KindError && !strings.Contains(string(m.Result), `"isError":true`) {
			t.Fatalf("unknown tool answered %s", m.Raw)
		}
	}
	if st := d.Replicas()[0].Breaker; st != BreakerClosed {
		t.Fatalf("breaker %s after tool errors, want closed", st)
	}
}

// TestActiveHealthCheck: a replica failing its probe drops out of new-
// session selection (with one replica the server goes down), and comes
// back when it answers again.
func TestActiveHealthCheck(t *testing.T) {
	a, b := startUpstream(t, nil), startUpstream(t, nil)
	d := dialReplicas(t, ReplicaOptions{HealthCheckInterval: 50 * time.Millisecond}, a, b)
	changes := healthChanges(d)
	var onA Conn
	for onA == nil {
		if c := mustDial(t, d); ReplicaOf(c) == a.label() {
			onA = c
		}
	}
	a.set(func(u *testUpstream) { u.failProbe = true })
	b.set(func(u *testUpstream) { u.failProbe = true })
	expectChange(t, changes, false)
	if st := d.Replicas(); st[0].Health.Up || st[1].Health.Up {
		t.Fatalf("replicas after failed probes: %+v", st)
	}
	// An existing session is not torn down by a failed probe.
	if _, err := call(context.Background(), onA, "echo", `{"text":"still here"}`); err != nil {
		t.Fatalf("call on a session whose replica failed its probe: %v", err)
	}
	b.set(func(u *testUpstream) { u.failProbe = false })
	expectChange(t, changes, true)
	for range 5 {
		if got := ReplicaOf(mustDial(t, d)); got != b.label() {
			t.Fatalf("new session on %s while it fails its health checks", got)
		}
	}
	aChanges := healthChanges(d.replicas[0].d)
	a.set(func(u *testUpstream) { u.failProbe = false })
	expectChange(t, aChanges, true)
	if st := d.Replicas(); !st[0].Health.Up {
		t.Fatalf("replica a after its probe recovered: %+v", st[0])
	}
}

// TestResponseSizeCap: a message over MaxResponseBytes fails that call
// with ErrTooLarge, as a JSON body and as an SSE event; the session
// survives.
func TestResponseSizeCap(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts *mcp.StreamableHTTPOptions
	}{
		{"json", &mcp.StreamableHTTPOptions{JSONResponse: true}},
		{"sse", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := startUpstream(t, tc.opts)
			d := dialReplicas(t, ReplicaOptions{HTTPOptions: HTTPOptions{MaxResponseBytes: 4096}}, u)
			c := mustDial(t, d)
			ctx := context.Background()
			if _, err := call(ctx, c, "big", `{"size":3000}`); err != nil {
				t.Fatalf("call under the cap: %v", err)
			}
			_, err := call(ctx, c, "big", `{"size":5000}`)
			if !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrProtocol) {
				t.Fatalf("call over the cap: %v, want ErrTooLarge", err)
			}
			if m, err := call(ctx, c, "echo", `{"text":"after"}`); err != nil || !strings.Contains(string(m.Result), "after") {
				t.Fatalf("call after an oversized answer: %v", err)
			}
			if st := d.Replicas()[0].Breaker; st != BreakerClosed {
				t.Errorf("breaker %s after an oversized answer, want closed", st)
			}
		})
	}
}

// TestTimeoutCancelsUpstream: a call whose context times out makes the
// upstream receive notifications/cancelled for its request ID, once, and
// the tool's handler stops.
func TestTimeoutCancelsUpstream(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts *mcp.StreamableHTTPOptions
	}{
		{"json", &mcp.StreamableHTTPOptions{JSONResponse: true}},
		{"sse", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := startUpstream(t, tc.opts)
			d := dialReplicas(t, ReplicaOptions{}, u)
			c := mustDial(t, d)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			id := c.NewID()
			st, err := c.Call(ctx, id, "tools/call", []byte(`{"name":"hang","arguments":{}}`))
			if err == nil {
				for err == nil {
					_, err = st.Next()
				}
				st.Close()
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("hung call: %v, want context.DeadlineExceeded", err)
			}
			want := `{"requestId":` + string(id) + `,"reason":"timeout"}`
			receive(t, "notifications/cancelled upstream", u.cancelSeen)
			if got := u.cancelled(); len(got) != 1 || got[0] != want {
				t.Fatalf("upstream got cancellations %q, want [%s]", got, want)
			}
			receive(t, "the handler's context to end", u.ended)
		})
	}
}

// silentUpstream is a minimal MCP server that never answers tools/call
// (the request hangs until the client goes away) and records the
// notifications/cancelled it receives.
func silentUpstream(t *testing.T) (url string, calls <-chan struct{}, cancels <-chan string) {
	ch := make(chan string, 16)
	called := make(chan struct{}, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		m, err := mcpwire.Decode(peekBody(r, 1<<20), mcpwire.Limits{})
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		switch m.Method {
		case "initialize":
			w.Header().Set("Mcp-Session-Id", "s1")
			w.Header().Set("Content-Type", "application/json")
			w.Write(mcpwire.NewResult(m.ID, []byte(`{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"silent","version":"1"}}`)))
		case "notifications/cancelled":
			ch <- string(m.Params)
			w.WriteHeader(http.StatusAccepted)
		case "tools/call":
			called <- struct{}{}
			<-r.Context().Done()
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/mcp", called, ch
}

// TestCancellationOncePerRequest: a request the upstream never answers
// gets exactly one notifications/cancelled: on timeout, or the one the
// gateway relayed for the client before the timeout.
func TestCancellationOncePerRequest(t *testing.T) {
	for _, tc := range []struct {
		name    string
		relay   bool
		want    string
		timeout time.Duration
	}{
		{"timeout", false, `"reason":"timeout"`, 200 * time.Millisecond},
		{"relayed", true, `"reason":"client"`, 500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, calls, cancels := silentUpstream(t)
			d := NewReplicaDialer(ReplicaOptions{HTTPOptions: HTTPOptions{Name: "t", URL: url}})
			defer d.Close()
			c := mustDial(t, d)
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()
			id := c.NewID()
			errc := make(chan error, 1)
			go func() {
				_, err := c.Call(ctx, id, "tools/call", []byte(`{"name":"x","arguments":{}}`))
				errc <- err
			}()
			receive(t, "the call to reach the upstream", calls)
			if tc.relay {
				msg := mcpwire.NewNotification("notifications/cancelled", []byte(`{"requestId":`+string(id)+`,"reason":"client"}`))
				if err := c.Send(context.Background(), msg); err != nil {
					t.Fatal(err)
				}
			}
			if err := receive(t, "the call to time out", errc); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("call: %v, want context.DeadlineExceeded", err)
			}
			got := receive(t, "a cancellation", cancels)
			if !strings.Contains(got, `"requestId":`+string(id)+`,`) || !strings.Contains(got, tc.want) {
				t.Fatalf("cancellation %s, want request %s and %s", got, id, tc.want)
			}
			// A second cancellation would be sent at the timeout: the
			// session's next request is delivered after it.
			if err := c.Send(context.Background(), mcpwire.NewNotification("notifications/ping", nil)); err != nil {
				t.Fatal(err)
			}
			select {
			case got := <-cancels:
				t.Fatalf("second cancellation %s", got)
			default:
			}
		})
	}
}

// TestSingleURLReplicaSet: a server with one url behaves as the plain HTTP
// dialer: sessions work, and a dead server backs off and is found again by
// the prober.
func TestSingleURLReplicaSet(t *testing.T) {
	u := startUpstream(t, nil)
	d := NewReplicaDialer(ReplicaOptions{HTTPOptions: HTTPOptions{Name: "t", URL: u.url}})
	defer d.Close()
	c, err := d.Dial(context.Background(), []byte(initParams))
	if err != nil {
		t.Fatal(err)
	}
	exerciseConn(t, c)
	if ReplicaOf(c) != u.label() {
		t.Errorf("ReplicaOf = %q, want %q", ReplicaOf(c), u.label())
	}
	c.Close()
	if _, err := c.Call(context.Background(), c.NewID(), "tools/list", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Call after Close: %v, want ErrClosed", err)
	}
}

func receive[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// peekBody reads a request body of at most n bytes and puts it back.
func peekBody(r *http.Request, n int64) []byte {
	body, _ := io.ReadAll(io.LimitReader(r.Body, n))
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body
}
