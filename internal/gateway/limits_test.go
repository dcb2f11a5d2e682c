package gateway_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/gateway"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/redis/go-redis/v9"
)

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// mcpgateBinary builds cmd/mcpgate once per test run.
func mcpgateBinary(t *testing.T) string {
	t.Helper()
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mcpgate-bin")
		if err != nil {
			binaryErr = err
			return
		}
		binaryPath = filepath.Join(dir, "mcpgate")
		out, err := exec.Command("go", "build", "-o", binaryPath, filepath.Join(repoRoot(t), "cmd/mcpgate")).CombinedOutput()
		if err != nil {
			binaryErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binaryErr != nil {
		t.Fatal(binaryErr)
	}
	return binaryPath
}

// startProcess runs `mcpgate serve` with yaml (listen and admin.listen are
// added) and returns the data listener's base URL once it is ready.
func startProcess(t *testing.T, yaml string) string {
	t.Helper()
	listen, adminAddr := freeAddr(t), freeAddr(t)
	cfg := filepath.Join(t.TempDir(), "mcpgate.yaml")
	full := fmt.Sprintf("listen: %s\nadmin: {listen: %s}\nstore: {path: %s}\n%s", listen, adminAddr, filepath.Join(t.TempDir(), "pins.db"), yaml)
	if err := os.WriteFile(cfg, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(mcpgateBinary(t), "serve", "-c", cfg)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("mcpgate %s output:\n%s", listen, out.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + adminAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return "http://" + listen
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("mcpgate did not become ready:\n%s", out.String())
	return ""
}

// redisURL points MCPGATE_TEST_REDIS_URL at the test Redis (REDIS_URL,
// default database 15) and deletes the gateways' keys after the test.
func redisURL(t *testing.T) *redis.Client {
	t.Helper()
	u := os.Getenv("REDIS_URL")
	if u == "" {
		u = "redis://127.0.0.1:6379/15"
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		requirePeer(t, "Redis at %s: %v", u, err)
	}
	t.Setenv("MCPGATE_TEST_REDIS_URL", u)
	// The gateways use the default key prefix; the test database is ours.
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, "mcpgate:*", 100).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		rdb.Close()
	})
	return rdb
}

func randomName(t *testing.T) string {
	var b [6]byte
	rand.Read(b[:])
	return "user-" + hex.EncodeToString(b[:])
}

// TestRateLimitSharedByProcesses runs two gateway processes on one Redis:
// a limit of 5 calls a minute per principal holds across both.
func TestRateLimitSharedByProcesses(t *testing.T) {
	redisURL(t)
	var calls atomic.Int32
	srv := startSDKServer(t, func(s *mcp.Server) {
		mcp.AddTool(s, &mcp.Tool{Name: "create_issue"}, func(context.Context, *mcp.CallToolRequest, map[string]any) (*mcp.CallToolResult, any, error) {
			calls.Add(1)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "created"}}}, nil, nil
		})
	}, nil)
	// A fresh principal per run: the bucket outlives the test by a minute.
	user, key := randomName(t), "key-"+randomName(t)
	yaml := fmt.Sprintf(`auth:
  resource: %s
  api_keys:
    - {name: %s, sha256: %q}
state:
  redis: {url: {env: MCPGATE_TEST_REDIS_URL}}
limits:
  rate:
    - {name: per-user, key: [principal], rate: 5/m}
servers:
  gh:
    url: %s
`, testResource, user, keyHash(key), srv.URL)
	a, b := startProcess(t, yaml), startProcess(t, yaml)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	csA := connectAs(t, ctx, a+"/mcp", key, newClientProbe())
	csB := connectAs(t, ctx, b+"/mcp", key, newClientProbe())

	allowed, refused := 0, 0
	var lastErr error
	for i := range 8 {
		cs := csA
		if i%2 == 1 {
			cs = csB
		}
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "gh__create_issue", Arguments: map[string]any{"n": i}})
		switch {
		case err == nil:
			allowed++
		case isRPCError(err, -32029):
			refused++
			lastErr = err
		default:
			t.Fatalf("call %d: %v", i, err)
		}
	}
	// The limit counts every request: the two initializes took 2 of the
	// 5, so 3 calls pass. Counted per process, 8 would have passed.
	if allowed != 3 || refused != 5 {
		t.Errorf("across two processes: %d calls allowed, %d refused; want 3 and 5", allowed, refused)
	}
	if calls.Load() != int32(allowed) {
		t.Errorf("upstream saw %d calls, want %d", calls.Load(), allowed)
	}
	var rpcErr *jsonrpc.Error
	if lastErr != nil && errorsAs(lastErr, &rpcErr) {
		if !strings.Contains(rpcErr.Message, `rate limit "per-user" (5/m per principal) reached`) || !strings.Contains(rpcErr.Message, "retry after") {
			t.Errorf("refusal message %q does not state the limit and when to retry", rpcErr.Message)
		}
		var data struct {
			Limit             string `json:"limit"`
			RetryAfterSeconds int    `json:"retryAfterSeconds"`
		}
		if err := json.Unmarshal(rpcErr.Data, &data); err != nil || data.Limit != "per-user" || data.RetryAfterSeconds < 1 || data.RetryAfterSeconds > 60 {
			t.Errorf("refusal data %s: want the limit and a retry delay", rpcErr.Data)
		}
	}
}

// TestDampening covers duplicate writes (refused when the tool says so,
// flagged otherwise) and identical reads in flight sharing one call.
func TestDampening(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var writes, flagged, reads atomic.Int32
	release := make(chan struct{})
	srv := startSDKServer(t, func(s *mcp.Server) {
		mcp.AddTool(s, &mcp.Tool{Name: "create_issue"}, func(context.Context, *mcp.CallToolRequest, map[string]any) (*mcp.CallToolResult, any, error) {
			writes.Add(1)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "created"}}}, nil, nil
		})
		mcp.AddTool(s, &mcp.Tool{Name: "post_note"}, func(context.Context, *mcp.CallToolRequest, map[string]any) (*mcp.CallToolResult, any, error) {
			flagged.Add(1)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "posted"}}}, nil, nil
		})
		mcp.AddTool(s, &mcp.Tool{Name: "search", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}}, func(context.Context, *mcp.CallToolRequest, map[string]any) (*mcp.CallToolResult, any, error) {
			reads.Add(1)
			<-release
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "found"}}}, nil, nil
		})
	}, nil)
	gw := startGateway(t, fmt.Sprintf(`
listen: 127.0.0.1:0
limits:
  dampening: {window: 30s}
servers:
  gh:
    url: %s
    trusted: true
    tools:
      create_issue: {duplicates: refuse}
`, srv.URL), gateway.Options{})
	cs, _ := connectGo(t, ctx, gw.URL+"/mcp", newClientProbe())

	args := map[string]any{"title": "Crash on start", "body": "steps"}
	callText(t, ctx, cs, &mcp.CallToolParams{Name: "gh__create_issue", Arguments: args})
	_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "gh__create_issue", Arguments: map[string]any{"body": "steps", "title": "Crash on start"}})
	var rpcErr *jsonrpc.Error
	if !errorsAs(err, &rpcErr) || rpcErr.Code != -32029 ||
		!strings.Contains(rpcErr.Message, "identical call to gh__create_issue already made") || !strings.Contains(rpcErr.Message, "(outcome: ok)") {
		t.Fatalf("repeated write: %v, want a refusal naming the earlier outcome", err)
	}
	callText(t, ctx, cs, &mcp.CallToolParams{Name: "gh__create_issue", Arguments: map[string]any{"title": "Another"}})
	if n := writes.Load(); n != 2 {
		t.Errorf("upstream ran create_issue %d times, want 2 (the repeat refused)", n)
	}

	callText(t, ctx, cs, &mcp.CallToolParams{Name: "gh__post_note", Arguments: args})
	callText(t, ctx, cs, &mcp.CallToolParams{Name: "gh__post_note", Arguments: args})
	if n := flagged.Load(); n != 2 {
		t.Errorf("upstream ran post_note %d times, want 2 (flagged, not refused)", n)
	}
	// The access record is written just after the response.
	if !waitFor(5*time.Second, 10*time.Millisecond, func() bool { return strings.Contains(gw.logs.String(), `"flags":["duplicate"]`) }) {
		t.Error("the repeated post_note is not flagged in the access record")
	}

	// Eight identical searches in flight: one upstream call.
	var wg sync.WaitGroup
	results := make([]string, 8)
	for i := range results {
		wg.Go(func() {
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "gh__search", Arguments: map[string]any{"q": "crash"}})
			if err != nil {
				results[i] = err.Error()
				return
			}
			results[i] = resultText(res)
		})
	}
	waitFor(5*time.Second, 10*time.Millisecond, func() bool { return reads.Load() >= 1 })
	// The other seven join the call in flight; nothing signals a join,
	// so give them time to arrive before the call is let go.
	time.Sleep(300 * time.Millisecond)
	close(release)
	wg.Wait()
	for i, r := range results {
		if r != "found" {
			t.Errorf("search %d: %q", i, r)
		}
	}
	if n := reads.Load(); n != 1 {
		t.Errorf("eight identical reads in flight made %d upstream calls, want 1", n)
	}
}

// TestCapsAndBudgets: a session's tool-call budget, and the cap on
// concurrent calls per principal.
func TestCapsAndBudgets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hold := make(chan struct{})
	var slowIn atomic.Int32
	srv := startSDKServer(t, func(s *mcp.Server) {
		addNamedTool(s, "ping_tool", "answers", nil)
		mcp.AddTool(s, &mcp.Tool{Name: "slow"}, func(ctx context.Context, _ *mcp.CallToolRequest, _ map[string]any) (*mcp.CallToolResult, any, error) {
			slowIn.Add(1)
			select {
			case <-hold:
			case <-ctx.Done():
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "slow done"}}}, nil, nil
		})
	}, nil)
	gw := startGateway(t, fmt.Sprintf(`
listen: 127.0.0.1:0
limits:
  budgets: {calls_per_session: 4}
  concurrency: {per_principal: 2}
  max_streams_per_principal: 1
servers:
  s:
    url: %s
`, srv.URL), gateway.Options{})
	cs, _ := connectGo(t, ctx, gw.URL+"/mcp", newClientProbe())
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			cs.CallTool(ctx, &mcp.CallToolParams{Name: "s__slow", Arguments: map[string]any{"i": i}})
		})
	}
	if !waitFor(5*time.Second, 10*time.Millisecond, func() bool { return slowIn.Load() == 2 }) {
		t.Fatal("two slow calls never went in flight")
	}
	_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "s__ping_tool", Arguments: map[string]any{}})
	var rpcErr *jsonrpc.Error
	if !errorsAs(err, &rpcErr) || rpcErr.Code != -32029 || !strings.Contains(string(rpcErr.Data), "concurrency.per_principal") {
		t.Fatalf("a third concurrent call: %v, want the concurrency cap", err)
	}
	close(hold)
	wg.Wait()
	// The budget: 4 calls, of which the refused one counted or not; at
	// most 4 succeed in total.
	ok := 0
	for i := range 6 {
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "s__ping_tool", Arguments: map[string]any{"i": i}}); err == nil {
			ok++
		} else if !errorsAs(err, &rpcErr) || !strings.Contains(rpcErr.Message, "budget") {
			t.Fatalf("call %d: %v, want a budget refusal", i, err)
		}
	}
	if ok+2 > 4 {
		t.Errorf("%d calls after the two slow ones succeeded; the session budget is 4", ok)
	}
	fresh, _ := connectGo(t, ctx, gw.URL+"/mcp", newClientProbe())
	callText(t, ctx, fresh, &mcp.CallToolParams{Name: "s__ping_tool", Arguments: map[string]any{}})

	// The Go clients above each hold their GET stream: one more is over
	// the cap of one stream per principal.
	raw := newRawMCP(t, gw.URL+"/mcp", nil)
	sid := raw.initialize()
	if status := getStream(t, raw, sid); status != http.StatusTooManyRequests {
		t.Errorf("a GET stream over max_streams_per_principal: HTTP %d, want 429", status)
	}
}

func errorsAs(err error, target **jsonrpc.Error) bool {
	return err != nil && errors.As(err, target)
}
