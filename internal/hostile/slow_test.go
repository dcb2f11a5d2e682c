package hostile

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// slowBound is how long the gateway may let a client hold a connection
// without completing its request: net/http's ReadHeaderTimeout (10s) plus
// slack for a loaded machine.
const slowBound = 13 * time.Second

// slowEnv is the gateway the slow-client cases share.
type slowEnv struct {
	g      *gatewayProc
	f      *faultyUpstream
	c      *mcpClient
	recSID string
}

// callIDs makes the request IDs of concurrent positive controls on one
// session unique.
var callIDs atomic.Int64

// serveMeanwhile runs positive controls against the gateway until stop is
// closed, counting those that succeed in ok, and reports the first failure.
func (env *slowEnv) serveMeanwhile(stop <-chan struct{}, ok *atomic.Int64) <-chan string {
	done := make(chan string, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- ""
				return
			case <-time.After(200 * time.Millisecond):
			}
			id := int(callIDs.Add(1))
			text := fmt.Sprintf("meanwhile %d", id)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			req := env.c.request(http.MethodPost, "/servers/rec/mcp", env.recSID, callBody(id, "echo", text)).WithContext(ctx)
			resp, err := env.c.hc.Do(req)
			if err != nil {
				cancel()
				done <- fmt.Sprintf("positive control %d failed: %v", i, err)
				return
			}
			r := readReply(resp.Body)
			resp.Body.Close()
			cancel()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(r.Body), text) {
				done <- fmt.Sprintf("positive control %d: HTTP %d %s", i, resp.StatusCode, clip(r.Body))
				return
			}
			ok.Add(1)
		}
	}()
	return done
}

// whileServing runs slow (a misbehaving client) while positive controls
// run, and fails the test if the gateway stopped serving meanwhile.
func (env *slowEnv) whileServing(t *testing.T, slow func()) {
	t.Helper()
	stop := make(chan struct{})
	var ok atomic.Int64
	done := env.serveMeanwhile(stop, &ok)
	start := time.Now()
	slow()
	took := time.Since(start)
	close(stop)
	if msg := <-done; msg != "" {
		t.Errorf("the gateway stopped serving other clients: %s", msg)
	}
	if took > time.Second && ok.Load() == 0 {
		t.Errorf("no positive control completed in the %s the slow client took", took)
	}
}

// TestSlowClients holds connections open in the ways slow or hostile
// clients do, and checks that the gateway ends them in bounded time,
// keeps serving everyone else meanwhile, and returns to its baseline.
func TestSlowClients(t *testing.T) {
	t.Parallel()
	rec := startRecording(t)
	env := &slowEnv{f: startFaulty(t)}
	env.g = startGateway(t, fmt.Sprintf(`servers:
  rec:
    url: %s
  f-hang:
    url: %s/hang/mcp
    response_timeout: %s
  f-progress-flood:
    url: %s/progress-flood/mcp
    response_timeout: %s
`, rec.URL, env.f.URL, upstreamTimeout, env.f.URL, upstreamTimeout))
	env.c = newClient(t, env.g.data, nil)
	env.recSID = env.c.initialize("/servers/rec/mcp")
	env.c.echo("/servers/rec/mcp", env.recSID, "echo", "warm-up")
	base := env.g.baseline(t)

	cases := []struct {
		name string
		run  func(t *testing.T, env *slowEnv)
	}{
		{"slowloris headers are cut by ReadHeaderTimeout", slowHeaders},
		{"slow body is cut", slowBody},
		{"200 idle connections", idleConnections},
		{"POST whose event stream is never read", unreadStream},
		{"client leaves a hanging call", leaveHangingCall},
		{"50 GET streams on one session", manyGETsOneSession},
		{"GET streams on 30 sessions", manyGETSessions},
	}
	for _, tc := range cases {
		// The cases wait on the gateway's timeouts; they run side by side
		// so that the group takes about one timeout, not seven.
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, &slowEnv{g: env.g, f: env.f, c: newClient(t, env.g.data, nil), recSID: env.recSID})
		})
	}
	// Cleanups run after the parallel subtests.
	t.Cleanup(func() {
		env.c.echo("/servers/rec/mcp", env.recSID, "echo", "still serving after the slow clients")
		env.g.checkServing(t)
		env.g.checkBounded(t, base, 20)
	})
}

// waitClosed reads conn until the gateway closes it, and returns how long
// that took, or false if it stayed open for d.
func waitClosed(conn net.Conn, d time.Duration) (time.Duration, bool) {
	start := time.Now()
	conn.SetReadDeadline(start.Add(d))
	_, err := io.Copy(io.Discard, conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return 0, false
	}
	return time.Since(start), true
}

func slowHeaders(t *testing.T, env *slowEnv) {
	conn, err := net.Dial("tcp", env.g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST /servers/rec/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
	closed := make(chan time.Duration, 1)
	go func() {
		d, ok := waitClosed(conn, slowBound)
		if !ok {
			d = -1
		}
		closed <- d
	}()
	env.whileServing(t, func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case d := <-closed:
				if d < 0 {
					t.Errorf("a client sending one header line every 500ms kept its connection for %s", slowBound)
				}
				return
			case <-tick.C:
				fmt.Fprintf(conn, "X-Slow-%d: x\r\n", i)
			}
		}
	})
}

func slowBody(t *testing.T, env *slowEnv) {
	conn, err := net.Dial("tcp", env.g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /servers/rec/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"+
		"Accept: application/json, text/event-stream\r\nMcp-Session-Id: %s\r\nContent-Length: 100000\r\n\r\n{", env.recSID)
	closed := make(chan time.Duration, 1)
	go func() {
		d, ok := waitClosed(conn, slowBound)
		if !ok {
			d = -1
		}
		closed <- d
	}()
	env.whileServing(t, func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case d := <-closed:
				if d < 0 {
					t.Errorf("a client sending its body one byte every 500ms kept the request open for %s: "+
						"the data listener has no deadline for reading a request body (http.Server.ReadTimeout is not set)", slowBound)
				}
				return
			case <-tick.C:
				io.WriteString(conn, " ")
			}
		}
	})
}

func idleConnections(t *testing.T, env *slowEnv) {
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 200 {
		c, err := net.Dial("tcp", env.g.addr)
		if err != nil {
			t.Fatalf("connection %d: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	env.whileServing(t, func() {
		// Every idle connection is closed by ReadHeaderTimeout.
		for i, c := range conns {
			if _, ok := waitClosed(c, slowBound); !ok {
				t.Errorf("idle connection %d still open after %s", i, slowBound)
				return
			}
		}
	})
}

func unreadStream(t *testing.T, env *slowEnv) {
	sid := env.c.initialize("/servers/f-progress-flood/mcp")
	defer env.c.closeSession("/servers/f-progress-flood/mcp", sid)
	// A connection of its own, with a tiny receive buffer, so that the
	// gateway's writes block soon.
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetReadBuffer(4096)
		}
		return c, err
	}}
	defer tr.CloseIdleConnections()
	req := env.c.request(http.MethodPost, "/servers/f-progress-flood/mcp", sid, callBody(7, "boom", "x"))
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	// The gateway cuts the upstream call at response_timeout although the
	// client never reads its answer.
	env.whileServing(t, func() {
		select {
		case <-env.f.endedChan("progress-flood"):
		case <-time.After(upstreamTimeout + 3*time.Second):
			t.Errorf("the upstream call of a client that does not read was still open %s later", upstreamTimeout+3*time.Second)
		}
	})
	resp.Body.Close()
}

func leaveHangingCall(t *testing.T, env *slowEnv) {
	sid := env.c.initialize("/servers/f-hang/mcp")
	defer env.c.closeSession("/servers/f-hang/mcp", sid)
	ctx, cancel := context.WithCancel(context.Background())
	req := env.c.request(http.MethodPost, "/servers/f-hang/mcp", sid, callBody(8, "boom", "x")).WithContext(ctx)
	go func() {
		// The call is under way upstream once the hanging handler runs.
		waitUntil(3*time.Second, func() bool {
			for _, r := range env.f.requests("hang") {
				if r.RPCMethod == "tools/call" {
					return true
				}
			}
			return false
		})
		cancel()
	}()
	if resp, err := env.c.hc.Do(req); err == nil {
		resp.Body.Close()
	}
	select {
	case <-env.f.endedChan("hang"):
	case <-time.After(upstreamTimeout + 3*time.Second):
		t.Errorf("the upstream call of a client that left was still open %s later", upstreamTimeout+3*time.Second)
	}
}

func manyGETsOneSession(t *testing.T, env *slowEnv) {
	sid := env.c.initialize("/servers/rec/mcp")
	defer env.c.closeSession("/servers/rec/mcp", sid)
	var bodies []io.ReadCloser
	defer func() {
		for _, b := range bodies {
			b.Close()
		}
	}()
	for i := range 50 {
		resp, err := env.c.hc.Do(env.c.request(http.MethodGet, "/servers/rec/mcp", sid, ""))
		if err != nil {
			t.Fatalf("GET %d: %v", i, err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %d: HTTP %d", i, resp.StatusCode)
		}
		bodies = append(bodies, resp.Body)
	}
	// Only the newest stream is served: each earlier one was ended when
	// the next took over.
	for i, b := range bodies[:len(bodies)-1] {
		ended := make(chan error, 1)
		go func() {
			_, err := io.Copy(io.Discard, bufio.NewReader(b))
			ended <- err
		}()
		select {
		case <-ended:
		case <-time.After(3 * time.Second):
			t.Errorf("GET stream %d still open after a newer one took over", i)
			return
		}
	}
}

func manyGETSessions(t *testing.T, env *slowEnv) {
	var sids []string
	var bodies []io.ReadCloser
	for i := range 30 {
		sid := env.c.initialize("/servers/rec/mcp")
		sids = append(sids, sid)
		resp, err := env.c.hc.Do(env.c.request(http.MethodGet, "/servers/rec/mcp", sid, ""))
		if err != nil {
			t.Fatalf("GET %d: %v", i, err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %d: HTTP %d", i, resp.StatusCode)
		}
		bodies = append(bodies, resp.Body)
	}
	// Every session still answers while its stream is open.
	for i, sid := range sids {
		env.c.echo("/servers/rec/mcp", sid, "echo", fmt.Sprintf("with stream %d open", i))
	}
	for _, b := range bodies {
		b.Close()
	}
	for _, sid := range sids {
		env.c.closeSession("/servers/rec/mcp", sid)
	}
}
