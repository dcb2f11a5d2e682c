package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/bench/internal/load"
	"github.com/mcpgate/mcpgate/bench/internal/proc"
)

// target is one way of reaching the echo tool.
type target struct {
	Key   string `json:"key"`
	Label string `json:"label"`
	url   string
	tool  string
	hop   *process // the process whose CPU and memory are the target's
	args  []string // extra loadgen flags (credentials)
	audit bool     // the hop writes an audit file, checked after the run
}

// Labels of the full-pipeline targets.
const (
	labelFull        = "mcpgate /servers/echo/mcp, full pipeline"
	labelFullTracing = "mcpgate /servers/echo/mcp, full pipeline + tracing"
)

// point is one target measured at one concurrency.
type point struct {
	Target      string        `json:"target"`
	C           int           `json:"concurrency"`
	Load        load.Result   `json:"load"`
	HopCPU      time.Duration `json:"hop_cpu_ns"`      // the target process, over the window
	UpstreamCPU time.Duration `json:"upstream_cpu_ns"` // the echo upstream, over the window
	LoadgenCPU  time.Duration `json:"loadgen_cpu_ns"`
	PeakRSS     int64         `json:"peak_rss_bytes"` // VmHWM, reset before the point
	// Per successful call in the window.
	HopPerCall      time.Duration `json:"hop_cpu_per_call_ns"`
	UpstreamPerCall time.Duration `json:"upstream_cpu_per_call_ns"`
	LoadgenPerCall  time.Duration `json:"loadgen_cpu_per_call_ns"`
	// HopSyscalls is the target's read and write system calls per call.
	HopSyscalls float64 `json:"hop_syscalls_per_call"`
	// Others is how many cores processes outside the run kept busy, on
	// average over the window: the noise the figures carry.
	Others float64 `json:"other_cores"`
	// Connects is how many TCP connections the machine opened per 1000
	// calls in the window: a hop that reuses its upstream connections adds
	// none. Other processes' connections count too.
	Connects float64 `json:"tcp_connects_per_1k_calls"`
}

func perCall(d time.Duration, calls uint64) time.Duration {
	if calls == 0 {
		return 0
	}
	return d / time.Duration(calls)
}

// measure runs loadgen against t and samples the target's and the
// upstream's CPU at the edges of the measured window.
func (r *runner) measure(ctx context.Context, t target, upstream *process, c int, args ...string) (point, error) {
	pt := point{Target: t.Key, C: c}
	if err := proc.ResetPeak(t.hop.pid()); err != nil {
		return pt, fmt.Errorf("reset peak RSS: %w", err)
	}
	l, err := r.startLoad(slices.Concat([]string{"-url", t.url, "-tool", t.tool, "-c", strconv.Itoa(c)}, t.args, args)...)
	if err != nil {
		return pt, err
	}
	defer l.p.stop(5 * time.Second)
	type sample struct {
		hop, up, lg time.Duration
		sys, opens  int64
		busy, wall  time.Duration
	}
	take := func() sample {
		var s sample
		s.hop, _ = proc.CPU(t.hop.pid())
		if upstream != t.hop {
			s.up, _ = proc.CPU(upstream.pid())
		}
		s.lg, _ = proc.CPU(l.p.pid())
		s.sys, _ = proc.Syscalls(t.hop.pid())
		s.busy, s.wall, _ = proc.MachineCPU()
		s.opens, _ = proc.TCPActiveOpens()
		return s
	}
	var s0, s1 sample
	for {
		ev, err := l.next(ctx, 5*time.Minute)
		if err != nil {
			return pt, err
		}
		switch ev.Event {
		case "measure_start":
			s0 = take()
		case "measure_end":
			s1 = take()
		case "result":
			if err := json.Unmarshal(ev.Result, &pt.Load); err != nil {
				return pt, err
			}
			m, err := proc.Mem(t.hop.pid())
			if err != nil {
				return pt, err
			}
			pt.PeakRSS = m.Peak
			pt.HopCPU, pt.UpstreamCPU, pt.LoadgenCPU = s1.hop-s0.hop, s1.up-s0.up, s1.lg-s0.lg
			if upstream == t.hop {
				pt.UpstreamCPU = pt.HopCPU
			}
			pt.HopPerCall = perCall(pt.HopCPU, pt.Load.Calls)
			pt.UpstreamPerCall = perCall(pt.UpstreamCPU, pt.Load.Calls)
			pt.LoadgenPerCall = perCall(pt.LoadgenCPU, pt.Load.Calls)
			if pt.Load.Calls > 0 {
				pt.HopSyscalls = float64(s1.sys-s0.sys) / float64(pt.Load.Calls)
				pt.Connects = float64(s1.opens-s0.opens) * 1000 / float64(pt.Load.Calls)
			}
			ours := pt.HopCPU + pt.LoadgenCPU
			if upstream != t.hop {
				ours += pt.UpstreamCPU
			}
			if wall := s1.wall - s0.wall; wall > 0 {
				cores := float64(runtime.NumCPU())
				pt.Others = max(float64(s1.busy-s0.busy-ours)/float64(wall)*cores, 0)
			}
			return pt, nil
		}
	}
}

// tableResult is the side-by-side comparison.
type tableResult struct {
	Targets []target  `json:"targets"`
	Conc    []int     `json:"concurrency"`
	Rounds  [][]point `json:"rounds"` // every measurement, by round
	Median  []point   `json:"median"` // per target and concurrency, the median of each figure over rounds
	// Audit is what the full-pipeline gateways recorded.
	Audit []*auditCheck `json:"audit,omitempty"`
	// TraceExports and TraceBytes are the OTLP requests and bytes the
	// trace sink received from the tracing variant.
	TraceExports int64 `json:"trace_exports,omitempty"`
	TraceBytes   int64 `json:"trace_bytes,omitempty"`
}

// table measures every target at every concurrency, interleaved so that
// drift on a noisy machine hits all targets alike.
func (r *runner) table(ctx context.Context, o *options) (*tableResult, error) {
	var echoArgs []string
	if o.upstreamJSON {
		echoArgs = append(echoArgs, "-json-response")
	}
	echo, err := r.startEcho(ctx, "echo-table", echoArgs...)
	if err != nil {
		return nil, err
	}
	px, err := r.startProxy(ctx, "proxy-table", echo)
	if err != nil {
		return nil, err
	}
	gw, err := r.startGateway(ctx, "mcpgate-table", gatewayConfig(o.logLevel, map[string]string{"echo": echo.url("/mcp")}))
	if err != nil {
		return nil, err
	}
	targets := []target{
		{Key: "direct", Label: "direct (echo upstream)", url: echo.url("/mcp"), tool: "echo", hop: echo},
		{Key: "proxy", Label: "trivial proxy", url: px.url("/mcp"), tool: "echo", hop: px},
		{Key: "server", Label: "mcpgate /servers/echo/mcp", url: gw.url("/servers/echo/mcp"), tool: "echo", hop: gw},
		{Key: "aggregate", Label: "mcpgate /mcp (echo__echo)", url: gw.url("/mcp"), tool: "echo__echo", hop: gw},
	}
	key := newAPIKey()
	auth := []string{"-header", "X-Api-Key: " + key}
	if o.authn {
		// Authentication alone, in its own process so that its CPU and
		// memory are its own.
		ga, err := r.startGateway(ctx, "mcpgate-table-authn", withAPIKey(gatewayConfig(o.logLevel, map[string]string{"echo": echo.url("/mcp")}), key))
		if err != nil {
			return nil, err
		}
		targets = append(targets, target{Key: "authn", Label: "mcpgate /servers/echo/mcp + API key", url: ga.url("/servers/echo/mcp"), tool: "echo", hop: ga, args: auth})
	}
	var sink *traceSink
	if o.full {
		gf, err := r.startFullGateway(ctx, "mcpgate-table-full", o, echo, fullOptions{apiKey: key})
		if err != nil {
			return nil, err
		}
		targets = append(targets, target{Key: "full", Label: labelFull, url: gf.url("/servers/echo/mcp"), tool: "echo", hop: gf, args: auth, audit: true})
		if o.tracing {
			if sink, err = startTraceSink(); err != nil {
				return nil, err
			}
			defer sink.close()
			gt, err := r.startFullGateway(ctx, "mcpgate-table-full-tracing", o, echo, fullOptions{apiKey: key, traces: sink.url()})
			if err != nil {
				return nil, err
			}
			targets = append(targets, target{Key: "fulltrace", Label: labelFullTracing, url: gt.url("/servers/echo/mcp"), tool: "echo", hop: gt, args: auth, audit: true})
		}
	}
	res := &tableResult{Targets: targets, Conc: o.conc}
	args := []string{"-d", o.duration.String(), "-warmup", o.warmup.String()}
	for round := range o.rounds {
		var pts []point
		for _, c := range o.conc {
			for _, t := range targets {
				pt, err := r.measure(ctx, t, echo, c, args...)
				if err != nil {
					return nil, fmt.Errorf("%s at c=%d: %w", t.Key, c, err)
				}
				o.progress("round %d  c=%-3d %-28s %8.0f calls/s  p50 %-9v hop %v/call  connects %.0f/1k  errors %v  others %.2f cores",
					round+1, c, t.Label, pt.Load.CallsPerSec, pt.Load.P50.Round(time.Microsecond), pt.HopPerCall.Round(time.Microsecond), pt.Connects, pt.Load.Errors, pt.Others)
				pts = append(pts, pt)
			}
		}
		res.Rounds = append(res.Rounds, pts)
	}
	res.Median = medians(res.Rounds)
	if o.profile {
		for _, t := range targets {
			if t.Key != "server" && t.Key != "full" {
				continue
			}
			if err := r.profileGateway(ctx, o, t); err != nil {
				o.progress("profile of %s: %v", t.Key, err)
			}
		}
	}
	if sink != nil {
		res.TraceExports, res.TraceBytes = sink.requests.Load(), sink.bytes.Load()
	}
	for _, t := range targets {
		if !t.audit {
			continue
		}
		c, err := r.checkAudit(ctx, t.Key, filepath.Join(r.out, "audit", t.hop.name+".jsonl"))
		if err != nil {
			return nil, fmt.Errorf("audit of %s: %w", t.Key, err)
		}
		o.progress("audit of %s: %d records, %d flagged duplicate; verify: %s", t.Key, c.Records, c.Duplicates, c.Verify)
		res.Audit = append(res.Audit, c)
	}
	r.stopAll()
	return res, nil
}

// medians takes, per target and concurrency, the median of each figure
// independently over the rounds.
func medians(rounds [][]point) []point {
	if len(rounds) == 1 {
		return rounds[0]
	}
	var out []point
	for i := range rounds[0] {
		var ps []point
		for _, rd := range rounds {
			ps = append(ps, rd[i])
		}
		m := ps[0]
		med := func(f func(p point) float64) float64 {
			v := make([]float64, len(ps))
			for i, p := range ps {
				v[i] = f(p)
			}
			slices.Sort(v)
			return v[len(v)/2]
		}
		m.Load.CallsPerSec = med(func(p point) float64 { return p.Load.CallsPerSec })
		m.Load.P50 = time.Duration(med(func(p point) float64 { return float64(p.Load.P50) }))
		m.Load.P95 = time.Duration(med(func(p point) float64 { return float64(p.Load.P95) }))
		m.Load.P99 = time.Duration(med(func(p point) float64 { return float64(p.Load.P99) }))
		m.PeakRSS = int64(med(func(p point) float64 { return float64(p.PeakRSS) }))
		m.HopPerCall = time.Duration(med(func(p point) float64 { return float64(p.HopPerCall) }))
		m.UpstreamPerCall = time.Duration(med(func(p point) float64 { return float64(p.UpstreamPerCall) }))
		m.LoadgenPerCall = time.Duration(med(func(p point) float64 { return float64(p.LoadgenPerCall) }))
		m.HopSyscalls = med(func(p point) float64 { return p.HopSyscalls })
		m.Others = med(func(p point) float64 { return p.Others })
		m.Connects = med(func(p point) float64 { return p.Connects })
		m.Load.Errors = nil
		for _, p := range ps {
			for k, v := range p.Load.Errors {
				if m.Load.Errors == nil {
					m.Load.Errors = map[string]uint64{}
				}
				m.Load.Errors[k] += v
			}
		}
		out = append(out, m)
	}
	return out
}

func (t *tableResult) get(key string, c int) (point, bool) {
	for _, p := range t.Median {
		if p.Target == key && p.C == c {
			return p, true
		}
	}
	return point{}, false
}

// roundRatio is the median over rounds of f(key) ÷ f(base), each ratio
// taken within one round: on a noisy machine, targets measured seconds
// apart compare better than medians taken independently.
func (t *tableResult) roundRatio(key, base string, c int, f func(point) float64) float64 {
	if key == base {
		return 1
	}
	var rs []float64
	for _, rd := range t.Rounds {
		var x, b *point
		for i := range rd {
			if rd[i].C != c {
				continue
			}
			switch rd[i].Target {
			case key:
				x = &rd[i]
			case base:
				b = &rd[i]
			}
		}
		if x != nil && b != nil && f(*b) != 0 {
			rs = append(rs, f(*x)/f(*b))
		}
	}
	if len(rs) == 0 {
		return 0
	}
	slices.Sort(rs)
	return rs[len(rs)/2]
}

// Figures of a point, for tables and ratios.
var (
	figCallsPerSec = func(p point) float64 { return p.Load.CallsPerSec }
	figP50         = func(p point) float64 { return float64(p.Load.P50) / 1e6 }
	figP95         = func(p point) float64 { return float64(p.Load.P95) / 1e6 }
	figP99         = func(p point) float64 { return float64(p.Load.P99) / 1e6 }
	figHopCPU      = func(p point) float64 { return float64(p.HopPerCall) / 1e3 }
	figPeakRSS     = func(p point) float64 { return float64(p.PeakRSS) / (1 << 20) }
	figSyscalls    = func(p point) float64 { return p.HopSyscalls }
)

// fullFootnote says what the full-pipeline targets run.
const fullFootnote = "¹ Every mcpgate target pins tools (store in memory), tracks writes for duplicates and serves metrics: those are always on. " +
	"\"full pipeline\" adds, in its own process: API key authentication; a policy of 3 rules (default deny; an allow on principal and tool name; " +
	"a deny and a dry-run deny on the `text` argument, guarded with has(), evaluated on every call without matching); a rate limit per principal (1,000,000/s), " +
	"session budgets and concurrency caps that are never reached; and an audit file (HMAC of the arguments, hash chain, fsync, group-committed). " +
	"The echo server is untrusted, so every call is a write: each one is audited before its answer, the worst case. " +
	"The loadgen repeats identical arguments, so after the first call every call is flagged as a duplicate write (the default, flag, lets it through). " +
	"Tracing is off (exporter none, the default) except in \"full pipeline + tracing\", which exports every span (sample ratio 1) over OTLP/HTTP to a sink in the runner that discards them.\n"

// markdown renders one table per concurrency; every figure carries its
// ratio to direct and to the trivial proxy.
func (t *tableResult) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Figures are medians over %d interleaved round(s). In parentheses: the ratio to direct / to the trivial proxy, as the median of the per-round ratios.\n", len(t.Rounds))
	b.WriteString("Hop CPU is the target process's own utime+stime over the measured window ÷ calls (for direct, the upstream's).\n\n")
	for _, c := range t.Conc {
		fmt.Fprintf(&b, "#### Concurrency %d\n\n", c)
		b.WriteString("| target¹ | calls/s | p50 ms | p95 ms | p99 ms | hop CPU µs/call | peak RSS MiB | hop syscalls/call | upstream CPU µs/call | TCP connects /1k calls² | errors |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, tg := range t.Targets {
			x, ok := t.get(tg.Key, c)
			if !ok {
				continue
			}
			cell := func(f func(point) float64, prec int) string {
				return fmt.Sprintf("%.*f (%.2f× / %.2f×)", prec, f(x), t.roundRatio(tg.Key, "direct", c, f), t.roundRatio(tg.Key, "proxy", c, f))
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %.0f | %.0f | %s |\n", tg.Label,
				cell(figCallsPerSec, 0), cell(figP50, 2), cell(figP95, 2), cell(figP99, 2),
				cell(figHopCPU, 0), cell(figPeakRSS, 1), cell(figSyscalls, 1),
				us(x.UpstreamPerCall), x.Connects, errString(x.Load.Errors))
		}
		b.WriteString("\n")
	}
	var others []float64
	for _, rd := range t.Rounds {
		for _, p := range rd {
			others = append(others, p.Others)
		}
	}
	if len(others) > 0 {
		slices.Sort(others)
		fmt.Fprintf(&b, "Noise: processes outside the run kept a median of %.2f and at most %.2f of the %d cores busy during the measured windows.\n\n",
			others[len(others)/2], others[len(others)-1], runtime.NumCPU())
	}
	b.WriteString(fullFootnote)
	b.WriteString(auditSummary(t))
	if t.TraceExports > 0 {
		fmt.Fprintf(&b, "The trace sink received %d OTLP/HTTP exports (%.1f MiB of spans).\n", t.TraceExports, float64(t.TraceBytes)/(1<<20))
	}
	b.WriteString("² Machine-wide Tcp ActiveOpens from /proc/net/snmp over the window ÷ calls × 1000: 0 when the hop reuses its upstream connections; other processes' connections count too.\n")
	return b.String()
}

func ratio(v, base float64) string {
	if base == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", v/base)
}

func errString(m map[string]uint64) string {
	if len(m) == 0 {
		return "0"
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
