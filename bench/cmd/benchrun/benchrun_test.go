package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/identity"
	"github.com/mcpgate/mcpgate/internal/policy"
)

func TestGatewayConfigIsValid(t *testing.T) {
	y := gatewayConfig("info", map[string]string{"echo": "http://127.0.0.1:1234/mcp", "up01": "http://127.0.0.1:1235/mcp"})
	cfg, err := config.Parse([]byte(y))
	if err != nil {
		t.Fatalf("config rejected: %v\n%s", err, y)
	}
	if len(cfg.Servers) != 2 || cfg.Sessions.MaxPerPrincipal < 100_000 {
		t.Errorf("servers %d, max_per_principal %d", len(cfg.Servers), cfg.Sessions.MaxPerPrincipal)
	}
	// The default, mcpgate.db in the working directory, would land in the
	// repository.
	if cfg.Store.Path != ":memory:" {
		t.Errorf("store.path = %q, want :memory:", cfg.Store.Path)
	}
}

func TestFullPipelineConfig(t *testing.T) {
	key := newAPIKey()
	t.Setenv(auditKeyEnv, newAPIKey())
	for _, tc := range []struct {
		name   string
		traces string
	}{
		{"tracing off", ""},
		{"tracing on", "http://127.0.0.1:4318/v1/traces"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := withFullPipeline(gatewayConfig("info", map[string]string{"echo": "http://127.0.0.1:1234/mcp"}),
				fullOptions{apiKey: key, auditPath: filepath.Join(t.TempDir(), "audit.jsonl"), traces: tc.traces})
			cfg, err := config.Parse([]byte(y))
			if err != nil {
				t.Fatalf("config rejected: %v\n%s", err, y)
			}
			if err := cfg.ResolveSecrets(); err != nil {
				t.Fatalf("secrets: %v", err)
			}
			if len(cfg.Auth.APIKeys) != 1 || !cfg.Audit.Enabled() || len(cfg.Policy.Rules) != 3 || len(cfg.Limits.Rate) != 1 ||
				cfg.Limits.Budgets.CallsPerSession == 0 || cfg.Limits.Concurrency.PerPrincipal == 0 || cfg.Store.Path != ":memory:" {
				t.Errorf("a stage is missing:\n%s", y)
			}
			if cfg.Servers["echo"].Trusted {
				t.Error("echo is trusted: its calls would not be writes, and not audited")
			}
			if got, want := cfg.Telemetry.Tracing.Exporter, map[bool]string{false: "", true: "otlp_http"}[tc.traces != ""]; got != want {
				t.Errorf("tracing exporter %q, want %q", got, want)
			}
		})
	}
}

// TestFullPipelinePolicy checks that the bench's calls are allowed with
// every rule evaluated and none matching (a dry-run match would add a log
// record per call), and that each rule does decide when it should.
func TestFullPipelinePolicy(t *testing.T) {
	y := withFullPipeline(gatewayConfig("info", map[string]string{"echo": "http://127.0.0.1:1234/mcp"}),
		fullOptions{apiKey: newAPIKey(), auditPath: "/tmp/audit.jsonl"})
	cfg, err := config.Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.New(cfg.Policy)
	if err != nil {
		t.Fatalf("policy does not compile: %v", err)
	}
	bench := identity.Principal{Method: "api_key", Subject: "bench"}
	call := func(who identity.Principal, tool, args string) policy.Input {
		return policy.Input{Principal: who, Server: "echo", Tool: policy.Tool{Name: tool, OpenWorld: true, Destructive: true},
			Method: policy.MethodToolsCall, Args: []byte(args), Time: time.Now()}
	}
	loadgenArgs := `{"text":"` + strings.Repeat("x", 64) + `"}`
	for _, tc := range []struct {
		name     string
		in       policy.Input
		allow    bool
		rule     string
		wouldDry bool
	}{
		{"the loadgen's call", call(bench, "echo", loadgenArgs), true, "bench-may-echo", false},
		{"another tool", call(bench, "big", loadgenArgs), false, "", false},
		{"another principal", call(identity.Principal{Method: "api_key", Subject: "other"}, "echo", loadgenArgs), false, "", false},
		{"argument the deny rule refuses", call(bench, "echo", `{"text":"x; DROP TABLE users"}`), false, "no-sql-in-echo", false},
		{"argument the dry-run rule would refuse", call(bench, "echo", `{"text":"`+strings.Repeat("x", 5000)+`"}`), true, "bench-may-echo", true},
		{"no arguments", call(bench, "echo", `{}`), true, "bench-may-echo", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Decide(&tc.in)
			if d.Allow != tc.allow || d.Rule != tc.rule || (len(d.DryRun) > 0) != tc.wouldDry || d.Err != nil {
				t.Errorf("Decide = allow %v, rule %q, dry run %v, err %v; want allow %v, rule %q, dry run %v",
					d.Allow, d.Rule, d.DryRun, d.Err, tc.allow, tc.rule, tc.wouldDry)
			}
		})
	}
}

// TestTraceSinkAcceptsOTLP exports spans to the sink with the OTLP/HTTP
// exporter the gateway uses: an answer it could not read would fail the
// export.
func TestTraceSinkAcceptsOTLP(t *testing.T) {
	sink, err := startTraceSink()
	if err != nil {
		t.Fatal(err)
	}
	defer sink.close()
	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(sink.url()), otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Shutdown(ctx)
	spans := tracetest.SpanStubs{{Name: "tools/call echo", StartTime: time.Now(), EndTime: time.Now()}, {Name: "tools/call", StartTime: time.Now(), EndTime: time.Now()}}
	if err := exp.ExportSpans(ctx, spans.Snapshots()); err != nil {
		t.Fatalf("export: %v", err)
	}
	if sink.requests.Load() != 1 || sink.bytes.Load() == 0 {
		t.Errorf("sink got %d requests, %d bytes; want 1 request with a body", sink.requests.Load(), sink.bytes.Load())
	}
}

func TestAPIKeyConfigIsValid(t *testing.T) {
	y := withAPIKey(gatewayConfig("info", map[string]string{"echo": "http://127.0.0.1:1234/mcp"}), newAPIKey())
	cfg, err := config.Parse([]byte(y))
	if err != nil {
		t.Fatalf("config rejected: %v\n%s", err, y)
	}
	if len(cfg.Auth.APIKeys) != 1 {
		t.Errorf("api keys: %d", len(cfg.Auth.APIKeys))
	}
}

func TestPprofTotal(t *testing.T) {
	for _, tc := range []struct {
		line string
		want float64
	}{
		{"Showing nodes accounting for 219.68MB, 99.71% of 220.32MB total", 220.32 * (1 << 20)},
		{"Showing nodes accounting for 1000, 50% of 2000 total", 2000},
		{"Showing nodes accounting for 3.44s, 100% of 3.44s total", 0},
	} {
		got, ok := pprofTotal("Type: x\n" + tc.line + "\n")
		if tc.want == 0 {
			if ok {
				t.Errorf("%q: parsed %v from a non-size total", tc.line, got)
			}
			continue
		}
		if !ok || got != tc.want {
			t.Errorf("%q = %v, %v; want %v", tc.line, got, ok, tc.want)
		}
	}
}

func TestVerdicts(t *testing.T) {
	pt := func(key string, c int, cps float64, p50, cpu time.Duration) point {
		p := point{Target: key, C: c, HopPerCall: cpu}
		p.Load.CallsPerSec, p.Load.P50 = cps, p50
		return p
	}
	pts := []point{
		pt("direct", 1, 3000, 300*time.Microsecond, 300*time.Microsecond),
		pt("proxy", 1, 2000, 500*time.Microsecond, 200*time.Microsecond),
		pt("server", 1, 1800, 600*time.Microsecond, 220*time.Microsecond),
		pt("full", 1, 1500, 560*time.Microsecond, 300*time.Microsecond),
		pt("direct", 8, 4000, time.Millisecond, 250*time.Microsecond),
		pt("proxy", 8, 3000, time.Millisecond, 160*time.Microsecond),
		pt("server", 8, 2800, time.Millisecond, 180*time.Microsecond),
		pt("full", 8, 2400, time.Millisecond, 240*time.Microsecond),
	}
	pts[7].Load.Errors = map[string]uint64{"rpc_error": 3}
	tr := &tableResult{
		Targets: []target{{Key: "direct"}, {Key: "proxy"}, {Key: "server", Label: "minimal"}, {Key: "full", Label: "full"}},
		Rounds:  [][]point{pts},
		Median:  pts,
	}
	got := map[string]string{}
	for _, v := range (&results{Table: tr}).verdicts() {
		got[v.Target+" | "+strings.SplitN(v.Measured, ":", 2)[0]] = v.Status + ": " + v.Note
	}
	const cpu, p50, tput = "CPU/call, full pipeline ≤ 1.25× trivial proxy (c=8)", "p50 at c=1 ≤ 1.15× trivial proxy", "throughput at c=8 ≥ 0.65× direct"
	want := map[string]string{
		cpu + " | minimal config, minimal": "n/a: context, not the full pipeline: 10% headroom",
		cpu + " | full":                    "missed: missed by 20%; calls failed: rpc_error 3",
		p50 + " | minimal":                 "missed: missed by 4%",
		p50 + " | full":                    "met: 3% headroom",
		tput + " | minimal":                "met: 8% headroom",
		tput + " | full":                   "missed: missed by 8%",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: got %q, want %q", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d verdicts, want %d: %v", len(got), len(want), got)
	}
}

func TestTopLines(t *testing.T) {
	report := "File: mcpgate\nType: cpu\nShowing nodes accounting for 1s\n      flat  flat%   sum%        cum   cum%\n a\n b\n c\n"
	got := topLines(report, 2)
	if strings.Contains(got, "File:") || !strings.HasSuffix(got, "\n b") {
		t.Errorf("topLines = %q", got)
	}
}

func TestMarkdownHasFullPipelineRow(t *testing.T) {
	pts := []point{{Target: "direct", C: 8}, {Target: "proxy", C: 8}, {Target: "full", C: 8}}
	tr := &tableResult{
		Targets: []target{{Key: "direct", Label: "direct"}, {Key: "proxy", Label: "trivial proxy"}, {Key: "full", Label: labelFull}},
		Conc:    []int{8}, Rounds: [][]point{pts}, Median: pts,
		Audit: []*auditCheck{{Target: "full", Records: 10, Duplicates: 9, Bytes: 5000, Outcomes: map[string]int{"call/ok": 10}, Verify: "ok: 10 records, chain intact"}},
	}
	md := tr.markdown()
	for _, want := range []string{"| " + labelFull + " |", "Tracing is off", "Audit of " + labelFull + ": 10 records (500 bytes each on average; call/ok 10), 9 flagged duplicate"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "not yet available") {
		t.Errorf("markdown still says the full pipeline is not available:\n%s", md)
	}
}
