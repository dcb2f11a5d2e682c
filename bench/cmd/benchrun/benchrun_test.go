package main

import (
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
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
		pt("direct", 8, 4000, time.Millisecond, 250*time.Microsecond),
		pt("proxy", 8, 3000, time.Millisecond, 160*time.Microsecond),
		pt("server", 8, 2800, time.Millisecond, 180*time.Microsecond),
	}
	res := &results{Table: &tableResult{
		Targets: []target{{Key: "direct"}, {Key: "proxy"}, {Key: "server"}},
		Rounds:  [][]point{pts},
		Median:  pts,
	}}
	got := map[string]string{}
	for _, v := range res.verdicts() {
		got[v.Target] = v.Status + ": " + v.Note
	}
	want := map[string]string{
		"p50 at c=1 ≤ 1.15× trivial proxy":                    "missed: missed by 4%",
		"throughput at c=8 ≥ 0.65× direct":                    "met: 8% headroom",
		"CPU/call, full pipeline ≤ 1.25× trivial proxy (c=8)": "n/a: full pipeline not yet available; the minimal config alone: 10% headroom",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: got %q, want %q", k, got[k], w)
		}
	}
}

func TestTopLines(t *testing.T) {
	report := "File: mcpgate\nType: cpu\nShowing nodes accounting for 1s\n      flat  flat%   sum%        cum   cum%\n a\n b\n c\n"
	got := topLines(report, 2)
	if strings.Contains(got, "File:") || !strings.HasSuffix(got, "\n b") {
		t.Errorf("topLines = %q", got)
	}
}
