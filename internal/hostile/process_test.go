package hostile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// binPath is the mcpgate binary TestMain builds once for every test.
var binPath string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostile:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "mcpgate-hostile-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostile:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "mcpgate")
	build := exec.Command("go", "build", "-o", binPath, "./cmd/mcpgate")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "hostile: building mcpgate: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	if testing.Verbose() {
		fmt.Printf("hostile: highest gateway peak RSS observed: %d KiB\n", peakRSS.kb)
	}
	return code
}

// repoRoot walks up from the working directory to the directory of go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above %s", dir)
		}
		dir = parent
	}
}

// gatewayProc is one running mcpgate serve process.
type gatewayProc struct {
	t     *testing.T
	cmd   *exec.Cmd
	pid   int
	data  string // http://host:port of the data listener
	admin string // http://host:port of the admin listener
	addr  string // host:port of the data listener
	logs  *logBuffer
	exit  chan struct{} // closed when the process has exited
}

// logBuffer keeps the process's output (its JSON logs) for failure reports,
// bounded so that a flood of log lines cannot exhaust the test's memory.
type logBuffer struct {
	mu    sync.Mutex // guards the fields below
	lines []string
	drop  int
}

const maxLogLines = 4000

func (b *logBuffer) add(line string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(line) > 2048 {
		line = line[:2048] + "…"
	}
	b.lines = append(b.lines, line)
	if len(b.lines) > maxLogLines {
		n := len(b.lines) - maxLogLines/2
		b.drop += n
		b.lines = append(b.lines[:0:0], b.lines[n:]...)
	}
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := strings.Join(b.lines, "\n")
	if b.drop > 0 {
		s = fmt.Sprintf("(%d earlier lines dropped)\n%s", b.drop, s)
	}
	return s
}

// startGateway writes a config (body, plus loopback listeners on free ports
// and a store in a temporary directory) and runs mcpgate serve on it until
// the test ends. On failure the test log gets the gateway's own log.
func startGateway(t *testing.T, body string) *gatewayProc {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf("listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\nshutdown_grace: 1s\nstore:\n  path: %s\n%s",
		filepath.Join(dir, "pins.db"), body)
	path := filepath.Join(dir, "mcpgate.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binPath, "serve", "-c", path)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=2")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	g := &gatewayProc{t: t, cmd: cmd, logs: &logBuffer{}, exit: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g.pid = cmd.Process.Pid
	started := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			g.logs.add(line)
			var rec struct {
				Msg    string `json:"msg"`
				Listen string `json:"listen"`
				Admin  string `json:"admin"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "mcpgate started" {
				started <- [2]string{rec.Listen, rec.Admin}
			}
		}
		io.Copy(io.Discard, out)
		cmd.Wait()
		close(g.exit)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-g.exit
		if t.Failed() {
			t.Logf("gateway log (config %s):\n%s\n%s", path, cfg, g.logs)
		}
	})
	select {
	case addrs := <-started:
		g.addr = addrs[0]
		g.data, g.admin = "http://"+addrs[0], "http://"+addrs[1]
	case <-g.exit:
		t.Fatalf("mcpgate exited before it started:\n%s\nconfig:\n%s", g.logs, cfg)
	case <-time.After(15 * time.Second):
		t.Fatalf("mcpgate did not start within 15s:\n%s", g.logs)
	}
	g.waitReady()
	return g
}

// waitReady polls the admin /readyz until it answers 200.
func (g *gatewayProc) waitReady() {
	g.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(g.admin + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			if time.Now().After(deadline) {
				g.t.Fatalf("/readyz: HTTP %d: %s", resp.StatusCode, b)
			}
		} else if time.Now().After(deadline) {
			g.t.Fatalf("/readyz: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether the process still runs.
func (g *gatewayProc) alive() bool {
	select {
	case <-g.exit:
		return false
	default:
		return true
	}
}

// memKB reads a field of /proc/<pid>/status in KiB: VmRSS (resident now)
// or VmHWM (peak resident since start or the last resetPeak).
func (g *gatewayProc) memKB(t *testing.T, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", g.pid))
	if err != nil {
		t.Fatalf("reading the gateway's status: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", field, v, err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, g.pid)
	return 0
}

// resetPeak resets VmHWM to the current RSS, so that the next reading is
// the peak of what follows (Linux 4.0+; a no-op where refused).
func (g *gatewayProc) resetPeak() {
	os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", g.pid), []byte("5"), 0)
}

// goroutines returns the gateway's goroutine count from the admin pprof
// endpoint: all of them, and those that are the read and write loops of
// pooled upstream connections (idle keep-alive connections are a bounded
// cache, not a leak; an upstream call in flight also has a gateway
// goroutine waiting on it, which is counted among the others).
func (g *gatewayProc) goroutines(t *testing.T) (total, pooled int) {
	t.Helper()
	resp, err := http.Get(g.admin + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatalf("goroutine profile: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("goroutine profile: %v", err)
	}
	blocks := strings.Split(string(b), "\n\n")
	head, ok := strings.CutPrefix(blocks[0], "goroutine profile: total ")
	if !ok {
		t.Fatalf("goroutine profile starts with %.80q", b)
	}
	head, _, _ = strings.Cut(head, "\n")
	total, err = strconv.Atoi(head)
	if err != nil {
		t.Fatalf("goroutine profile: %v", err)
	}
	for _, blk := range blocks {
		if i := strings.Index(blk, "\n"); i >= 0 && strings.HasPrefix(blk, "goroutine profile:") {
			blk = blk[i+1:]
		}
		if !strings.Contains(blk, "net/http.(*persistConn).readLoop") && !strings.Contains(blk, "net/http.(*persistConn).writeLoop") {
			continue
		}
		n, _, _ := strings.Cut(blk, " @")
		if v, err := strconv.Atoi(strings.TrimSpace(n)); err == nil {
			pooled += v
		}
	}
	return total, pooled
}

// goroutineDump returns the full goroutine profile, for failure reports.
func (g *gatewayProc) goroutineDump() string {
	resp, err := http.Get(g.admin + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return string(b)
}

// baseline is the gateway's resource use before a group of cases.
type baseline struct {
	rssKB      int64
	goroutines int // not counting pooled upstream connections
}

func (g *gatewayProc) baseline(t *testing.T) baseline {
	g.resetPeak()
	total, pooled := g.goroutines(t)
	return baseline{rssKB: g.memKB(t, "VmRSS"), goroutines: total - pooled}
}

// Bounds the gateway must return to after a group of cases.
const (
	rssSlackKB       = 64 << 10 // 64 MiB over the group's starting RSS
	goroutineSlack   = 12
	goroutineSettle  = 8 * time.Second
	peakReportFormat = "gateway memory: RSS %d KiB at start, %d KiB now, peak %d KiB (bound %d KiB)"
)

// peakRSS records the highest peak RSS any test observed, for the summary.
var peakRSS struct {
	sync.Mutex
	kb int64
}

// notePeak records a peak RSS reading for the summary.
func notePeak(kb int64) {
	peakRSS.Lock()
	defer peakRSS.Unlock()
	peakRSS.kb = max(peakRSS.kb, kb)
}

// checkBounded asserts that the gateway still runs, that its peak RSS
// since b stayed within rssSlackKB of b's, and that its goroutines return
// to near b's count (so hanging upstream calls and dead streams were cut).
func (g *gatewayProc) checkBounded(t *testing.T, b baseline, maxPooled int) {
	t.Helper()
	if !g.alive() {
		t.Fatalf("the gateway process exited:\n%s", g.logs)
	}
	now, peak := g.memKB(t, "VmRSS"), g.memKB(t, "VmHWM")
	notePeak(peak)
	t.Logf(peakReportFormat, b.rssKB, now, peak, b.rssKB+rssSlackKB)
	if peak > b.rssKB+rssSlackKB {
		t.Errorf("gateway peak RSS %d KiB exceeds the bound %d KiB (start %d KiB + %d KiB)", peak, b.rssKB+rssSlackKB, b.rssKB, rssSlackKB)
	}
	deadline := time.Now().Add(goroutineSettle)
	total, pooled := g.goroutines(t)
	for total-pooled > b.goroutines+goroutineSlack && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		total, pooled = g.goroutines(t)
	}
	t.Logf("gateway goroutines: %d at start, %d now (and %d of pooled upstream connections)", b.goroutines, total-pooled, pooled)
	if total-pooled > b.goroutines+goroutineSlack {
		t.Errorf("gateway goroutines did not return to the baseline: %d, baseline %d (+%d allowed) after %s:\n%s",
			total-pooled, b.goroutines, goroutineSlack, goroutineSettle, g.goroutineDump())
	}
	if pooled > maxPooled {
		t.Errorf("%d goroutines serve pooled upstream connections, want at most %d", pooled, maxPooled)
	}
}

// checkServing asserts that /healthz still answers promptly.
func (g *gatewayProc) checkServing(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.data+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("gateway stopped serving /healthz: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.HasPrefix(b, []byte("ok")) {
		t.Fatalf("/healthz: HTTP %d %q", resp.StatusCode, b)
	}
}
