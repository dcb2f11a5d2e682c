// Command benchrun is the benchmark runner behind bench/run. In one run it
// measures, side by side, the echo upstream directly, through a trivial
// reverse proxy and through mcpgate, then the scenario benches (aggregated
// tools/list, idle sessions, a large result, cold start), and prints
// Markdown with every figure as a ratio against direct and the proxy.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	bin, out      string
	scenarios     []string
	duration      time.Duration
	warmup        time.Duration
	conc          []int
	rounds        int
	profile       bool
	logLevel      string
	listServers   int
	listTools     int
	listDuration  time.Duration
	idleSessions  int
	bigBytes      int
	coldRuns      int
	upstreamJSON  bool
	authn         bool
	full          bool
	tracing       bool
	profileReport string
}

func (o *options) progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

var allScenarios = []string{"table", "list1000", "idle", "big", "coldstart"}

type results struct {
	Machine map[string]string `json:"machine"`
	Table   *tableResult      `json:"table,omitempty"`
	List    *listResult       `json:"list1000,omitempty"`
	Idle    *idleResult       `json:"idle,omitempty"`
	Big     *bigResult        `json:"big,omitempty"`
	Cold    *coldResult       `json:"coldstart,omitempty"`
	Errors  map[string]string `json:"errors,omitempty"`
	Targets []verdict         `json:"targets"`
}

func main() {
	o := &options{}
	var scen, conc string
	flag.StringVar(&o.bin, "bin", "bench/bin", "directory of the built echo, proxy, loadgen and mcpgate")
	flag.StringVar(&o.out, "out", "bench/bin/results", "directory for results, logs and profiles")
	flag.StringVar(&scen, "scenario", "all", "comma-separated: all, "+strings.Join(allScenarios, ", "))
	flag.DurationVar(&o.duration, "d", 4*time.Second, "measured window per table point")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unrecorded warm-up per table point")
	flag.StringVar(&conc, "c", "1,8,64", "concurrency levels of the table")
	flag.IntVar(&o.rounds, "rounds", 3, "repeat the table this many times (interleaved) and report medians")
	flag.BoolVar(&o.profile, "profile", true, "take CPU profiles of mcpgate (minimal config, and the full pipeline) during extra c=8 runs after the table")
	flag.StringVar(&o.logLevel, "gateway-log-level", "info", "mcpgate log level (info writes one access record per request, the default)")
	flag.IntVar(&o.listServers, "list-servers", 10, "upstreams in the list1000 scenario")
	flag.IntVar(&o.listTools, "list-tools", 100, "tools per upstream in the list1000 scenario")
	flag.DurationVar(&o.listDuration, "list-d", 3*time.Second, "measured window of the list1000 scenario")
	flag.IntVar(&o.idleSessions, "idle-sessions", 10000, "idle sessions to open (100000 needs ulimit -n above 100k and more ephemeral ports than one upstream address offers)")
	flag.IntVar(&o.bigBytes, "big-bytes", 10<<20, "size of the large tool result")
	flag.IntVar(&o.coldRuns, "cold-runs", 5, "cold starts to time")
	flag.BoolVar(&o.authn, "authn", true, "table: also measure mcpgate with API key authentication alone")
	flag.BoolVar(&o.full, "full", true, "table: also measure mcpgate with the full pipeline (auth, policy, limits, audit)")
	flag.BoolVar(&o.tracing, "tracing", true, "table: with -full, also measure the full pipeline exporting every span over OTLP/HTTP to a sink in the runner")
	flag.BoolVar(&o.upstreamJSON, "upstream-json", false, "table: the echo upstream answers POSTs with application/json instead of an event stream (a diagnostic variant)")
	flag.Parse()

	for _, s := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fatalf("-c: bad concurrency %q", s)
		}
		o.conc = append(o.conc, n)
	}
	for _, s := range strings.Split(scen, ",") {
		s = strings.TrimSpace(s)
		switch {
		case s == "all":
			o.scenarios = append(o.scenarios, allScenarios...)
		case slices.Contains(allScenarios, s):
			o.scenarios = append(o.scenarios, s)
		default:
			fatalf("-scenario: unknown %q (want all or %s)", s, strings.Join(allScenarios, ", "))
		}
	}
	o.rounds = max(o.rounds, 1)
	var err error
	if o.bin, err = filepath.Abs(o.bin); err != nil {
		fatalf("%v", err)
	}
	if o.out, err = filepath.Abs(o.out); err != nil {
		fatalf("%v", err)
	}
	if err := os.MkdirAll(filepath.Join(o.out, "logs"), 0o755); err != nil {
		fatalf("%v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r := &runner{bin: o.bin, out: o.out}
	defer r.stopAll()

	res := &results{Machine: machine(), Errors: map[string]string{}}
	started := time.Now()
	for _, s := range o.scenarios {
		var err error
		switch s {
		case "table":
			res.Table, err = r.table(ctx, o)
		case "list1000":
			res.List, err = r.list1000(ctx, o)
		case "idle":
			res.Idle, err = r.idle(ctx, o)
		case "big":
			res.Big, err = r.big(ctx, o)
		case "coldstart":
			res.Cold, err = r.coldstart(ctx, o)
		}
		r.stopAll()
		if err != nil {
			o.progress("%s failed: %v", s, err)
			res.Errors[s] = err.Error()
		}
		if ctx.Err() != nil {
			break
		}
	}
	res.Targets = res.verdicts()
	res.Machine["duration"] = time.Since(started).Round(time.Second).String()

	md := res.markdown(o)
	fmt.Print(md)
	os.WriteFile(filepath.Join(o.out, "results.md"), []byte(md), 0o644)
	if b, err := json.MarshalIndent(res, "", "  "); err == nil {
		os.WriteFile(filepath.Join(o.out, "results.json"), b, 0o644)
	}
	o.progress("results in %s", rel(filepath.Join(o.out, "results.md")))
	if len(res.Errors) > 0 {
		os.Exit(1)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "benchrun: "+format+"\n", args...)
	os.Exit(2)
}

// machine describes where the run happened.
func machine() map[string]string {
	m := map[string]string{
		"nproc": strconv.Itoa(runtime.NumCPU()),
		"go":    runtime.Version(),
		"date":  time.Now().UTC().Format("2006-01-02 15:04 UTC"),
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m["kernel"] = strings.TrimSpace(string(b))
	}
	if c := os.Getenv("BENCH_MCPGATE_COMMIT"); c != "" {
		m["commit"] = c // set by bench/run: the source mcpgate was built from
	} else if b, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m["commit"] = strings.TrimSpace(string(b)) + " (HEAD; the binary may differ)"
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		m["nofile"] = strconv.FormatUint(lim.Cur, 10)
	}
	return m
}

func (res *results) markdown(o *options) string {
	var b strings.Builder
	m := res.Machine
	fmt.Fprintf(&b, "### Machine\n\n%s cores (nproc), %s, Linux %s, %s, mcpgate at %s, ulimit -n %s; %s. Run took %s.\n\n",
		m["nproc"], m["cpu"], m["kernel"], m["go"], m["commit"], m["nofile"], m["date"], m["duration"])
	if t := res.Table; t != nil {
		fmt.Fprintf(&b, "### Side by side (measured window %v after %v warm-up per point)\n\n", o.duration, o.warmup)
		b.WriteString(t.markdown())
		b.WriteString("\n")
	}
	if l := res.List; l != nil {
		fmt.Fprintf(&b, "### list1000: aggregated tools/list through /mcp (%d upstreams × %d tools)\n\n", l.Servers, l.ToolsPer)
		b.WriteString("| | tools | p50 ms | p95 ms | p99 ms | lists/s | first (uncached) ms | hop CPU µs/list |\n|---|---|---|---|---|---|---|---|\n")
		fmt.Fprintf(&b, "| mcpgate /mcp, one session, repeated | %d | %.3f | %.3f | %.3f | %.0f | %.2f | %.0f |\n", l.Items, ms(l.Gateway.P50), ms(l.Gateway.P95), ms(l.Gateway.P99), l.Gateway.CallsPerSec, ms(l.First), us(l.GatewayCPU))
		fmt.Fprintf(&b, "| one upstream directly (reference) | %d | %.3f | %.3f | %.3f | %.0f | %.2f | |\n\n", l.DirectItems, ms(l.Direct.P50), ms(l.Direct.P95), ms(l.Direct.P99), l.Direct.CallsPerSec, ms(l.Direct.First))
		fmt.Fprintf(&b, "The gateway's answer is %d bytes.\n\n", l.ResponseBytes)
	}
	if i := res.Idle; i != nil {
		fmt.Fprintf(&b, "### idle: %d idle legacy sessions through /servers/echo/mcp\n\n", i.Requested)
		if i.Skipped != "" {
			fmt.Fprintf(&b, "Skipped: %s.\n\n", i.Skipped)
		} else {
			b.WriteString("| sessions | gateway RSS MiB | Go heap MiB | goroutine stacks MiB | goroutines | gateway fds | upstream RSS MiB | upstream fds |\n|---|---|---|---|---|---|---|---|\n")
			for _, s := range i.Steps {
				fmt.Fprintf(&b, "| %d | %.1f | %.1f | %.1f | %d | %d | %.1f | %d |\n", s.Sessions, mib(s.GatewayRSS), mib(s.GatewayHeap), mib(s.GatewayStack), s.GatewayGor, s.GatewayFDs, mib(s.UpstreamRSS), s.UpstreamFDs)
			}
			per := func(f func(memStep) int64) float64 { return i.per(f) }
			fmt.Fprintf(&b, "\nMarginal cost per session (between the last two steps): gateway **%.1f KiB RSS** (Go heap %.1f KiB, goroutine stacks %.1f KiB, %.1f goroutines, %.1f fds); upstream (one SDK session and its GET stream each) %.1f KiB RSS. Opening took %.1f s.\n\n",
				per(func(s memStep) int64 { return s.GatewayRSS })/1024, per(func(s memStep) int64 { return s.GatewayHeap })/1024,
				per(func(s memStep) int64 { return s.GatewayStack })/1024, per(func(s memStep) int64 { return int64(s.GatewayGor) }),
				per(func(s memStep) int64 { return int64(s.GatewayFDs) }), per(func(s memStep) int64 { return s.UpstreamRSS })/1024, i.OpenSeconds)
			b.WriteString(i.HeapReport)
			b.WriteString("\n")
		}
	}
	if g := res.Big; g != nil {
		fmt.Fprintf(&b, "### big: a %d-byte tool result, %d calls per target\n\n", g.ResultBytes, g.Calls)
		b.WriteString("| target | peak RSS growth MB | ×direct | ×proxy | first byte ms | total ms (median) |\n|---|---|---|---|---|---|\n")
		var d, p float64
		for _, row := range g.Rows {
			switch row.Target {
			case "direct":
				d = float64(row.Growth)
			case "proxy":
				p = float64(row.Growth)
			}
		}
		for _, row := range g.Rows {
			fmt.Fprintf(&b, "| %s | %.2f | %s | %s | %.1f | %.1f |\n", row.Label, float64(row.Growth)/1e6, ratio(float64(row.Growth), d), ratio(float64(row.Growth), p), ms(row.FirstByte), ms(row.Total))
		}
		b.WriteString("\nGrowth is VmHWM after the calls (reset before them) minus VmRSS before them.\n\n")
		b.WriteString(g.AllocReport)
		b.WriteString("\n")
	}
	if c := res.Cold; c != nil {
		var runs []string
		for _, d := range c.Runs {
			runs = append(runs, fmt.Sprintf("%.1f", ms(d)))
		}
		fmt.Fprintf(&b, "### coldstart\n\nexec of `mcpgate serve` to /readyz answering 200: median **%.1f ms** over %d runs (%s ms).\n\n", ms(c.Median), len(c.Runs), strings.Join(runs, ", "))
	}
	if len(res.Targets) > 0 {
		b.WriteString("### The issue's targets\n\n")
		b.WriteString(verdictTable(res.Targets))
		b.WriteString("\n")
	}
	if o.profileReport != "" {
		b.WriteString("### Profile\n\n")
		b.WriteString(o.profileReport)
		b.WriteString("\n")
	}
	for _, s := range sortedKeys(res.Errors) {
		fmt.Fprintf(&b, "**%s failed:** %s\n\n", s, res.Errors[s])
	}
	return b.String()
}
