package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/gateway"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type issueInput struct {
	Title    string   `json:"title"`
	Priority int      `json:"priority"`
	Labels   []string `json:"labels,omitempty"`
}

// TestArgumentValidation: arguments that do not match the inputSchema are
// refused with a readable message, without echoing values, and never reach
// the upstream.
func TestArgumentValidation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var calls atomic.Int32
	srv := startSDKServer(t, func(s *mcp.Server) {
		mcp.AddTool(s, &mcp.Tool{Name: "create_issue"}, func(_ context.Context, _ *mcp.CallToolRequest, in issueInput) (*mcp.CallToolResult, any, error) {
			calls.Add(1)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "created " + in.Title}}}, nil, nil
		})
	}, nil)
	gw := startGateway(t, fmt.Sprintf("listen: 127.0.0.1:0\nservers:\n  gh:\n    url: %s\n", srv.URL), gateway.Options{})
	cs, _ := connectGo(t, ctx, gw.URL+"/mcp", newClientProbe())

	for _, tc := range []struct {
		name string
		args map[string]any
		want string
	}{
		{"wrong type", map[string]any{"title": "x", "priority": "CANARY-VALUE-99"}, `argument "priority"`},
		{"wrong element type", map[string]any{"title": "x", "priority": 1, "labels": []any{"ok", 7}}, `argument "labels[1]"`},
		{"missing required", map[string]any{"priority": 1}, `title`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "gh__create_issue", Arguments: tc.args})
			var rpcErr *jsonrpc.Error
			if !errorsAs(err, &rpcErr) || rpcErr.Code != -32602 {
				t.Fatalf("want -32602, got %v", err)
			}
			if !strings.HasPrefix(rpcErr.Message, "invalid arguments for tool gh__create_issue: ") || !strings.Contains(rpcErr.Message, tc.want) {
				t.Errorf("message %q should name the tool and %s", rpcErr.Message, tc.want)
			}
			if strings.Contains(rpcErr.Message, "CANARY") {
				t.Errorf("message echoes an argument value: %q", rpcErr.Message)
			}
		})
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("invalid calls reached the upstream %d times", n)
	}
	if got := callText(t, ctx, cs, &mcp.CallToolParams{Name: "gh__create_issue", Arguments: map[string]any{"title": "ok", "priority": 2}}); got != "created ok" {
		t.Errorf("a valid call returned %q", got)
	}
}

// TestReplicasAndBreaker runs a server with two replicas: sessions spread,
// and when one starts answering 503 new sessions go to the other.
func TestReplicasAndBreaker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var hitsA, hitsB atomic.Int32
	var failB atomic.Bool
	register := func(s *mcp.Server) { addNamedTool(s, "work", "works", nil) }
	a := startSDKServer(t, register, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hitsA.Add(1); h.ServeHTTP(w, r) })
	})
	b := startSDKServer(t, register, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hitsB.Add(1)
			if failB.Load() {
				http.Error(w, "<html>overloaded</html>", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	gw := startGateway(t, fmt.Sprintf(`
listen: 127.0.0.1:0
servers:
  w:
    urls: [%s, %s]
    breaker: {failures: 2, cooldown: 30s}
`, a.URL, b.URL), gateway.Options{})

	// Sessions spread over both replicas.
	for range 6 {
		cs, _ := connectGo(t, ctx, gw.URL+"/servers/w/mcp", newClientProbe())
		callText(t, ctx, cs, &mcp.CallToolParams{Name: "work", Arguments: map[string]any{}})
	}
	if hitsA.Load() == 0 || hitsB.Load() == 0 {
		t.Fatalf("sessions did not spread: %d requests to a, %d to b", hitsA.Load(), hitsB.Load())
	}

	// b fails: new sessions that land on it trip its breaker, then every
	// new session goes to a.
	failB.Store(true)
	for i := range 8 {
		cs, err := newClientProbe().client().Connect(ctx, &mcp.StreamableClientTransport{Endpoint: gw.URL + "/servers/w/mcp"}, nil)
		if err != nil {
			continue // a session that landed on b before its breaker opened
		}
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "work", Arguments: map[string]any{"i": i}}); err != nil {
			t.Errorf("session %d after failover: %v", i, err)
		}
		cs.Close()
	}
	before := hitsB.Load()
	for range 4 {
		cs, _ := connectGo(t, ctx, gw.URL+"/servers/w/mcp", newClientProbe())
		callText(t, ctx, cs, &mcp.CallToolParams{Name: "work", Arguments: map[string]any{}})
	}
	if n := hitsB.Load() - before; n != 0 {
		t.Errorf("replica b got %d requests while its breaker was open", n)
	}
	var rd gateway.Readiness
	getJSON(t, gw.URL+"/readyz", &rd)
	w := rd.Servers["w"]
	if !w.Up {
		t.Error("the server is reported down while one replica serves")
	}
	usable := 0
	for _, r := range w.Replicas {
		if r.Up && r.Breaker == "closed" {
			usable++
		} else if !strings.Contains(r.LastError, "503") {
			t.Errorf("replica %s out of use without its 503 as the reason: %+v", r.Replica, r)
		}
	}
	if len(w.Replicas) != 2 || usable != 1 {
		t.Errorf("/readyz replicas = %+v, want two, one of them usable", w.Replicas)
	}
}

// TestToolTimeoutCancelsUpstream: a per-tool timeout ends the call with a
// clear error and the upstream sees notifications/cancelled.
func TestToolTimeoutCancelsUpstream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cancelled := make(chan struct{}, 1)
	srv := startSDKServer(t, func(s *mcp.Server) {
		mcp.AddTool(s, &mcp.Tool{Name: "hang"}, func(ctx context.Context, _ *mcp.CallToolRequest, _ map[string]any) (*mcp.CallToolResult, any, error) {
			<-ctx.Done() // the SDK cancels the handler on notifications/cancelled
			cancelled <- struct{}{}
			return nil, nil, ctx.Err()
		})
	}, nil)
	gw := startGateway(t, fmt.Sprintf("listen: 127.0.0.1:0\nservers:\n  s:\n    url: %s\n    tools:\n      hang: {timeout: 300ms}\n", srv.URL), gateway.Options{})
	cs, _ := connectGo(t, ctx, gw.URL+"/mcp", newClientProbe())
	start := time.Now()
	_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "s__hang", Arguments: map[string]any{}})
	var rpcErr *jsonrpc.Error
	if !errorsAs(err, &rpcErr) || rpcErr.Code != -32050 || !strings.Contains(rpcErr.Message, "did not answer in time") {
		t.Fatalf("hanging tool: %v, want a timeout error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the timeout took %v, want about 300ms", d)
	}
	if n := countSeries(t, gw, "mcpgate_upstream_errors_total", map[string]string{"server": "s", "kind": "timeout"}); n != 1 {
		t.Errorf("mcpgate_upstream_errors_total{s,timeout} = %v, want 1", n)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Error("the upstream handler was never cancelled")
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := jsonDecode(resp, v); err != nil {
		t.Fatal(err)
	}
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }

// TestBreakerFailsFast: calls on a session whose replica keeps failing
// trip its breaker; the next call fails at once with a clear message and
// never reaches the upstream.
func TestBreakerFailsFast(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var failing atomic.Bool
	var calls atomic.Int32
	srv := startSDKServer(t, func(s *mcp.Server) { addNamedTool(s, "work", "works", nil) }, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if failing.Load() && r.Method == http.MethodPost {
				calls.Add(1)
				http.Error(w, "<html>down</html>", http.StatusBadGateway)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	gw := startGateway(t, fmt.Sprintf("listen: 127.0.0.1:0\nservers:\n  w:\n    url: %s\n    breaker: {failures: 2, cooldown: 30s}\n", srv.URL), gateway.Options{})
	cs, _ := connectGo(t, ctx, gw.URL+"/servers/w/mcp", newClientProbe())
	callText(t, ctx, cs, &mcp.CallToolParams{Name: "work", Arguments: map[string]any{}})
	failing.Store(true)
	for i := range 2 {
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "work", Arguments: map[string]any{"i": i}}); !isRPCError(err, -32050) {
			t.Fatalf("call %d on a failing upstream: %v", i, err)
		}
	}
	before := calls.Load()
	_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "work", Arguments: map[string]any{"i": 9}})
	var rpcErr *jsonrpc.Error
	if !errorsAs(err, &rpcErr) || !strings.Contains(rpcErr.Message, "server w is failing; calls are paused for") {
		t.Fatalf("call with the breaker open: %v, want the paused message", err)
	}
	if calls.Load() != before {
		t.Error("the call reached the upstream with the breaker open")
	}
	if n := countSeries(t, gw, "mcpgate_upstream_errors_total", map[string]string{"server": "w", "kind": "breaker"}); n != 1 {
		t.Errorf("mcpgate_upstream_errors_total{w,breaker} = %v, want 1", n)
	}
}
