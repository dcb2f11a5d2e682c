package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mcpgate/mcpgate/bench/internal/load"
	"github.com/mcpgate/mcpgate/bench/internal/proc"
)

// listResult is the aggregated tools/list scenario.
type listResult struct {
	Servers       int           `json:"servers"`
	ToolsPer      int           `json:"tools_per_server"`
	Items         int           `json:"items"` // tools in the gateway's answer
	First         time.Duration `json:"first_ns"`
	Gateway       load.Result   `json:"gateway"`
	GatewayCPU    time.Duration `json:"gateway_cpu_per_list_ns"`
	Direct        load.Result   `json:"direct"` // one upstream's own list, for reference
	DirectItems   int           `json:"direct_items"`
	ResponseBytes int           `json:"response_bytes"`
}

// list1000 measures a repeated aggregated tools/list on one session through
// /mcp over servers × tools.
func (r *runner) list1000(ctx context.Context, o *options) (*listResult, error) {
	defer r.stopAll()
	servers := map[string]string{}
	var first *process
	for i := range o.listServers {
		// echo has its own tool besides the extra ones.
		e, err := r.startEcho(ctx, fmt.Sprintf("echo-list-%02d", i), "-tools", strconv.Itoa(o.listTools-1))
		if err != nil {
			return nil, err
		}
		servers[fmt.Sprintf("up%02d", i)] = e.url("/mcp")
		if first == nil {
			first = e
		}
	}
	gw, err := r.startGateway(ctx, "mcpgate-list", gatewayConfig(o.logLevel, servers))
	if err != nil {
		return nil, err
	}
	res := &listResult{Servers: o.listServers, ToolsPer: o.listTools}
	args := []string{"-mode", "list", "-c", "1", "-d", o.listDuration.String(), "-warmup", "500ms"}
	pt, err := r.measure(ctx, target{Key: "list", url: gw.url("/mcp"), hop: gw}, first, 1, args...)
	if err != nil {
		return nil, err
	}
	res.Gateway, res.First, res.Items, res.GatewayCPU = pt.Load, pt.Load.First, pt.Load.Items, pt.HopPerCall
	dp, err := r.measure(ctx, target{Key: "list-direct", url: first.url("/mcp"), hop: first}, first, 1, args...)
	if err != nil {
		return nil, err
	}
	res.Direct, res.DirectItems = dp.Load, dp.Load.Items
	// One list by hand, for the response size.
	c := load.NewClient(gw.url("/mcp"), 1)
	if s, err := c.Open(ctx); err == nil {
		if s.Do(ctx, load.NewRequest("tools/list", `{}`)) == nil {
			res.ResponseBytes = len(s.Body())
		}
		s.Close(ctx)
	}
	c.CloseIdle()
	o.progress("list: %d tools, first %v, p50 %v, p95 %v (direct %d tools: p50 %v)", res.Items, res.First.Round(time.Microsecond),
		res.Gateway.P50.Round(time.Microsecond), res.Gateway.P95.Round(time.Microsecond), res.DirectItems, res.Direct.P50.Round(time.Microsecond))
	return res, nil
}

// memStep is the memory of the gateway and its upstream with some number
// of idle sessions open.
type memStep struct {
	Sessions     int   `json:"sessions"`
	GatewayRSS   int64 `json:"gateway_rss_bytes"`
	GatewayHeap  int64 `json:"gateway_heap_alloc_bytes"`
	GatewayStack int64 `json:"gateway_stack_inuse_bytes"`
	GatewayGor   int   `json:"gateway_goroutines"`
	GatewayFDs   int   `json:"gateway_fds"`
	UpstreamRSS  int64 `json:"upstream_rss_bytes"`
	UpstreamFDs  int   `json:"upstream_fds"`
}

// idleResult is the idle-session scenario.
type idleResult struct {
	Requested   int       `json:"requested"`
	Skipped     string    `json:"skipped,omitempty"`
	Steps       []memStep `json:"steps"`
	OpenSeconds float64   `json:"open_seconds"`
	Failed      int       `json:"failed"`
	HeapReport  string    `json:"-"`
}

// per returns the marginal cost per session between the first two steps
// after the baseline (the fixed cost of a warm process excluded).
func (r *idleResult) per(f func(memStep) int64) float64 {
	if len(r.Steps) < 3 {
		return 0
	}
	a, b := r.Steps[1], r.Steps[len(r.Steps)-1]
	if b.Sessions == a.Sessions {
		return 0
	}
	return float64(f(b)-f(a)) / float64(b.Sessions-a.Sessions)
}

// idle opens K idle legacy sessions through /servers/echo/mcp, in two
// steps (K/10, then the rest), and reports the marginal memory per session
// of the gateway and of its upstream.
func (r *runner) idle(ctx context.Context, o *options) (*idleResult, error) {
	defer r.stopAll()
	k := o.idleSessions
	res := &idleResult{Requested: k}
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	// Each gateway session holds an upstream GET stream: one socket in the
	// gateway and one in the upstream.
	if need := uint64(k) + 2048; lim.Cur < need {
		res.Skipped = fmt.Sprintf("%d sessions need about %d open files per process (each session holds an upstream GET stream); ulimit -n is %d (hard limit %d) here", k, need, lim.Cur, lim.Max)
		return res, nil
	}
	if k > 25000 {
		res.Skipped = fmt.Sprintf("%d sessions need more than the ~28,000 ephemeral ports one upstream address offers (one upstream connection per session)", k)
		return res, nil
	}
	echo, err := r.startEcho(ctx, "echo-idle")
	if err != nil {
		return nil, err
	}
	gw, err := r.startGateway(ctx, "mcpgate-idle", gatewayConfig(o.logLevel, map[string]string{"echo": echo.url("/mcp")}))
	if err != nil {
		return nil, err
	}
	url := gw.url("/servers/echo/mcp")
	step := func(n int) error {
		time.Sleep(500 * time.Millisecond) // let stream goroutines settle
		s := memStep{Sessions: n}
		heap, stack, gor, err := goMem(ctx, gw.admin)
		if err != nil {
			return err
		}
		s.GatewayHeap, s.GatewayStack, s.GatewayGor = heap, stack, gor
		gm, err := proc.Mem(gw.pid())
		if err != nil {
			return err
		}
		um, err := proc.Mem(echo.pid())
		if err != nil {
			return err
		}
		s.GatewayRSS, s.UpstreamRSS = gm.RSS, um.RSS
		s.GatewayFDs, s.UpstreamFDs = countFDs(gw.pid()), countFDs(echo.pid())
		res.Steps = append(res.Steps, s)
		o.progress("idle: %6d sessions: gateway RSS %.1f MiB (heap %.1f MiB, stacks %.1f MiB, %d goroutines, %d fds), upstream RSS %.1f MiB",
			n, mib(s.GatewayRSS), mib(s.GatewayHeap), mib(s.GatewayStack), s.GatewayGor, s.GatewayFDs, mib(s.UpstreamRSS))
		return nil
	}
	// A few sessions first, so that the baseline is a warm process.
	warm, err := r.openIdle(ctx, url, 10)
	if err != nil {
		return nil, err
	}
	defer warm.release()
	if err := step(10); err != nil {
		return nil, err
	}
	total := 10
	for _, n := range []int{k/10 - 10, k - k/10} {
		if n <= 0 {
			continue
		}
		start := time.Now()
		l, err := r.openIdle(ctx, url, n)
		if err != nil {
			return nil, err
		}
		defer l.release()
		res.OpenSeconds += time.Since(start).Seconds()
		res.Failed += l.failed
		total += n - l.failed
		if err := step(total); err != nil {
			return nil, err
		}
	}
	prof := filepath.Join(r.out, "profiles", "gateway-idle-heap.pprof")
	if err := fetch(ctx, "http://"+gw.admin+"/debug/pprof/heap", prof); err == nil {
		if top, err := r.pprofTop("-top", "-sample_index=inuse_space", "-nodecount=25", filepath.Join(r.bin, "mcpgate"), prof); err == nil {
			res.HeapReport = fmt.Sprintf("Heap in use with %d idle sessions (%s):\n\n```\n%s\n```\n", total, rel(prof), topLines(top, 20))
		}
	}
	// Shutting down thousands of sessions gracefully (an upstream DELETE
	// each) is not what this scenario measures.
	gw.stop(time.Second)
	return res, nil
}

type idleLoad struct {
	*loadRun
	failed int
}

// openIdle starts loadgen -mode idle and waits until its sessions are open.
func (r *runner) openIdle(ctx context.Context, url string, n int) (*idleLoad, error) {
	l, err := r.startLoad("-url", url, "-mode", "idle", "-sessions", strconv.Itoa(n), "-open-parallel", "16")
	if err != nil {
		return nil, err
	}
	ev, err := l.next(ctx, 10*time.Minute)
	if err != nil {
		return nil, err
	}
	if ev.Event != "ready" {
		return nil, fmt.Errorf("idle loadgen: unexpected event %q", ev.Event)
	}
	if ev.Failed > 0 {
		return nil, fmt.Errorf("idle loadgen: %d of %d sessions failed: %s", ev.Failed, n, ev.Error)
	}
	return &idleLoad{loadRun: l, failed: ev.Failed}, nil
}

// goMem reads the gateway's heap and stack in use and its goroutine count
// from pprof, after a forced GC.
func goMem(ctx context.Context, admin string) (heap, stack int64, goroutines int, err error) {
	get := func(path string) (string, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		var b strings.Builder
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			l := sc.Text()
			if strings.HasPrefix(l, "# HeapAlloc = ") || strings.HasPrefix(l, "# Stack = ") || strings.HasPrefix(l, "goroutine profile: total ") {
				b.WriteString(l + "\n")
			}
		}
		return b.String(), sc.Err()
	}
	h, err := get("/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		return 0, 0, 0, err
	}
	for _, l := range strings.Split(h, "\n") {
		if v, ok := strings.CutPrefix(l, "# HeapAlloc = "); ok {
			heap, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
		if v, ok := strings.CutPrefix(l, "# Stack = "); ok {
			inuse, _, _ := strings.Cut(v, " / ")
			stack, _ = strconv.ParseInt(strings.TrimSpace(inuse), 10, 64)
		}
	}
	g, err := get("/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0, 0, 0, err
	}
	if v, ok := strings.CutPrefix(strings.TrimSpace(g), "goroutine profile: total "); ok {
		goroutines, _ = strconv.Atoi(v)
	}
	return heap, stack, goroutines, nil
}

func countFDs(pid int) int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents)
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// bigRow is one target of the large-result scenario.
type bigRow struct {
	Target    string        `json:"target"`
	Label     string        `json:"label"`
	BaseRSS   int64         `json:"base_rss_bytes"`
	PeakRSS   int64         `json:"peak_rss_bytes"`
	Growth    int64         `json:"peak_growth_bytes"` // peak during the calls − RSS before them
	Bytes     int64         `json:"bytes"`
	FirstByte time.Duration `json:"first_byte_ns"`
	Total     time.Duration `json:"total_ns"`
}

type bigResult struct {
	ResultBytes int      `json:"result_bytes"`
	Calls       int      `json:"calls"`
	Rows        []bigRow `json:"rows"`
	AllocReport string   `json:"-"`
}

// big streams a large tool result through each target and reports how
// much the target's peak RSS grew.
func (r *runner) big(ctx context.Context, o *options) (*bigResult, error) {
	defer r.stopAll()
	echo, err := r.startEcho(ctx, "echo-big", "-result-bytes", strconv.Itoa(o.bigBytes))
	if err != nil {
		return nil, err
	}
	px, err := r.startProxy(ctx, "proxy-big", echo)
	if err != nil {
		return nil, err
	}
	// One gateway per endpoint: RSS a process has grown to stays, so a
	// second measurement in the same process would read low.
	gw, err := r.startGateway(ctx, "mcpgate-big", gatewayConfig(o.logLevel, map[string]string{"echo": echo.url("/mcp")}))
	if err != nil {
		return nil, err
	}
	gwAgg, err := r.startGateway(ctx, "mcpgate-big-aggregate", gatewayConfig(o.logLevel, map[string]string{"echo": echo.url("/mcp")}))
	if err != nil {
		return nil, err
	}
	res := &bigResult{ResultBytes: o.bigBytes, Calls: 3}
	targets := []target{
		{Key: "direct", Label: "direct (echo upstream)", url: echo.url("/mcp"), tool: "big", hop: echo},
		{Key: "proxy", Label: "trivial proxy", url: px.url("/mcp"), tool: "big", hop: px},
		{Key: "server", Label: "mcpgate /servers/echo/mcp", url: gw.url("/servers/echo/mcp"), tool: "big", hop: gw},
		{Key: "aggregate", Label: "mcpgate /mcp (echo__big)", url: gwAgg.url("/mcp"), tool: "echo__big", hop: gwAgg},
	}
	dir := filepath.Join(r.out, "profiles")
	for _, t := range targets {
		if t.Key == "server" {
			fetch(ctx, "http://"+gw.admin+"/debug/pprof/allocs", filepath.Join(dir, "gateway-big-allocs-before.pprof"))
		}
		time.Sleep(200 * time.Millisecond)
		m0, err := proc.Mem(t.hop.pid())
		if err != nil {
			return nil, err
		}
		if err := proc.ResetPeak(t.hop.pid()); err != nil {
			return nil, err
		}
		l, err := r.startLoad("-url", t.url, "-mode", "big", "-tool", t.tool, "-calls", strconv.Itoa(res.Calls))
		if err != nil {
			return nil, err
		}
		var br struct {
			Bytes     int64         `json:"bytes"`
			FirstByte time.Duration `json:"first_byte_ns"`
			Total     time.Duration `json:"total_ns"`
		}
		for {
			ev, err := l.next(ctx, 5*time.Minute)
			if err != nil {
				return nil, fmt.Errorf("big via %s: %w", t.Key, err)
			}
			if ev.Event == "result" {
				json.Unmarshal(ev.Result, &br)
				break
			}
		}
		l.p.stop(5 * time.Second)
		m1, err := proc.Mem(t.hop.pid())
		if err != nil {
			return nil, err
		}
		row := bigRow{Target: t.Key, Label: t.Label, BaseRSS: m0.RSS, PeakRSS: m1.Peak, Growth: m1.Peak - m0.RSS, Bytes: br.Bytes, FirstByte: br.FirstByte, Total: br.Total}
		res.Rows = append(res.Rows, row)
		o.progress("big via %-28s %d bytes in %v: peak RSS +%.1f MiB", t.Label, row.Bytes, row.Total.Round(time.Millisecond), mib(row.Growth))
		if t.Key == "server" {
			after := filepath.Join(dir, "gateway-big-allocs.pprof")
			if fetch(ctx, "http://"+gw.admin+"/debug/pprof/allocs", after) == nil {
				if top, err := r.pprofTop("-top", "-sample_index=alloc_space", "-nodecount=20",
					"-base", filepath.Join(dir, "gateway-big-allocs-before.pprof"), filepath.Join(r.bin, "mcpgate"), after); err == nil {
					res.AllocReport = fmt.Sprintf("Allocations by mcpgate during %d calls of a %d-byte result through /servers/echo/mcp (%s):\n\n```\n%s\n```\n",
						res.Calls, o.bigBytes, rel(after), topLines(top, 15))
				}
			}
		}
	}
	return res, nil
}

// coldResult is the cold-start scenario.
type coldResult struct {
	Runs   []time.Duration `json:"runs_ns"`
	Median time.Duration   `json:"median_ns"`
}

// coldstart times exec of `mcpgate serve` to /readyz answering 200.
func (r *runner) coldstart(ctx context.Context, o *options) (*coldResult, error) {
	defer r.stopAll()
	echo, err := r.startEcho(ctx, "echo-cold")
	if err != nil {
		return nil, err
	}
	res := &coldResult{}
	for i := range o.coldRuns {
		data, err := freePort()
		if err != nil {
			return nil, err
		}
		adm, err := freePort()
		if err != nil {
			return nil, err
		}
		cfg := strings.Replace(gatewayConfig(o.logLevel, map[string]string{"echo": echo.url("/mcp")}),
			"listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}", "listen: "+data+"\nadmin: {listen: "+adm+"}", 1)
		path := filepath.Join(r.out, "mcpgate-cold.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			return nil, err
		}
		lf, err := r.logFile(fmt.Sprintf("mcpgate-cold-%d", i))
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(filepath.Join(r.bin, "mcpgate"), "serve", "--config", path)
		cmd.Stdout, cmd.Stderr = lf, lf
		p := &process{name: "mcpgate-cold", cmd: cmd, log: lf, done: make(chan struct{})}
		start := time.Now()
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		go func() { cmd.Wait(); close(p.done) }()
		r.procs = append(r.procs, p)
		if err := waitReady(ctx, "http://"+adm+"/readyz", 10*time.Second, time.Millisecond); err != nil {
			return nil, err
		}
		res.Runs = append(res.Runs, time.Since(start))
		p.stop(5 * time.Second)
	}
	sorted := slices.Clone(res.Runs)
	slices.Sort(sorted)
	res.Median = sorted[len(sorted)/2]
	o.progress("coldstart: median %v over %d runs %v", res.Median.Round(100*time.Microsecond), len(res.Runs), res.Runs)
	return res, nil
}
