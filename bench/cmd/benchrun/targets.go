package main

import (
	"fmt"
	"strings"
	"time"
)

// verdict is one of the targets checked against a run.
type verdict struct {
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Status   string `json:"status"` // met, missed, n/a
	Note     string `json:"note,omitempty"`
}

// atMost judges a "≤ limit" target.
func atMost(v, limit float64) (string, string) {
	if v <= limit {
		return "met", fmt.Sprintf("%.0f%% headroom", (1-v/limit)*100)
	}
	return "missed", fmt.Sprintf("missed by %.0f%%", (v/limit-1)*100)
}

// atLeast judges a "≥ limit" target.
func atLeast(v, limit float64) (string, string) {
	if v >= limit {
		return "met", fmt.Sprintf("%.0f%% headroom", (v/limit-1)*100)
	}
	return "missed", fmt.Sprintf("missed by %.0f%%", (1-v/limit)*100)
}

func (res *results) verdicts() []verdict {
	var vs []verdict
	if t := res.Table; t != nil {
		vs = append(vs, t.verdicts()...)
	}
	if l := res.List; l != nil {
		st, how := atMost(ms(l.Gateway.P50), 2)
		if l.Items != l.Servers*l.ToolsPer {
			st, how = "missed", fmt.Sprintf("listed %d tools, expected %d", l.Items, l.Servers*l.ToolsPer)
		}
		vs = append(vs, verdict{
			Target:   fmt.Sprintf("aggregated tools/list of %d tools: p50 ≤ 2 ms", l.Servers*l.ToolsPer),
			Measured: fmt.Sprintf("p50 %.3f ms, p95 %.3f ms (first, uncached: %.1f ms)", ms(l.Gateway.P50), ms(l.Gateway.P95), ms(l.First)),
			Status:   st, Note: how,
		})
	}
	if i := res.Idle; i != nil {
		if i.Skipped != "" {
			vs = append(vs, verdict{Target: "≤ 10 KiB gateway memory per idle legacy session", Status: "n/a", Note: i.Skipped})
		} else if per := i.per(func(s memStep) int64 { return s.GatewayRSS }); per > 0 {
			st, how := atMost(per/1024, 10)
			vs = append(vs, verdict{
				Target:   "≤ 10 KiB gateway memory per idle legacy session",
				Measured: fmt.Sprintf("%.1f KiB RSS per session (Go heap %.1f KiB + stacks %.1f KiB); upstream %.1f KiB", per/1024, i.per(func(s memStep) int64 { return s.GatewayHeap })/1024, i.per(func(s memStep) int64 { return s.GatewayStack })/1024, i.per(func(s memStep) int64 { return s.UpstreamRSS })/1024),
				Status:   st, Note: how,
			})
		}
	}
	if b := res.Big; b != nil {
		for _, row := range b.Rows {
			if row.Target != "server" && row.Target != "aggregate" {
				continue
			}
			st, how := atMost(float64(row.Growth)/1e6, 2)
			vs = append(vs, verdict{
				Target:   fmt.Sprintf("a %.0f MB result adds < 2 MB to peak RSS", float64(b.ResultBytes)/1e6),
				Measured: fmt.Sprintf("%s: +%.1f MB", row.Label, float64(row.Growth)/1e6),
				Status:   st, Note: how,
			})
		}
	}
	return vs
}

// gatewayKeys are the table's mcpgate targets, in table order.
var gatewayKeys = []string{"server", "aggregate", "authn", "full", "fulltrace"}

// verdicts judges the table's targets. The CPU budget is the full
// pipeline's: the full targets are judged on it, the minimal configs are
// shown beside them as context.
func (t *tableResult) verdicts() []verdict {
	var vs []verdict
	proxy8, _ := t.get("proxy", 8)
	for _, key := range gatewayKeys {
		x, ok := t.get(key, 8)
		if !ok || proxy8.HopPerCall == 0 {
			continue
		}
		r := t.roundRatio(key, "proxy", 8, figHopCPU)
		st, how := atMost(r, 1.25)
		measured := fmt.Sprintf("%s: %.0f µs vs %.0f µs; per-round ratio %.2f×", label(t, key), us(x.HopPerCall), us(proxy8.HopPerCall), r)
		if e := errString(x.Load.Errors); e != "0" {
			how += "; calls failed: " + e
		}
		if key != "full" && key != "fulltrace" {
			measured = "minimal config, " + measured
			st, how = "n/a", "context, not the full pipeline: "+how
		}
		vs = append(vs, verdict{Target: "CPU/call, full pipeline ≤ 1.25× trivial proxy (c=8)", Measured: measured, Status: st, Note: how})
	}
	proxy1, _ := t.get("proxy", 1)
	for _, key := range gatewayKeys {
		x, ok := t.get(key, 1)
		if !ok || proxy1.Load.P50 == 0 {
			continue
		}
		r := t.roundRatio(key, "proxy", 1, figP50)
		st, how := atMost(r, 1.15)
		vs = append(vs, verdict{
			Target:   "p50 at c=1 ≤ 1.15× trivial proxy",
			Measured: fmt.Sprintf("%s: %.3f ms vs %.3f ms; per-round ratio %.2f×", label(t, key), ms(x.Load.P50), ms(proxy1.Load.P50), r),
			Status:   st, Note: how,
		})
	}
	direct8, _ := t.get("direct", 8)
	for _, key := range gatewayKeys {
		x, ok := t.get(key, 8)
		if !ok || direct8.Load.CallsPerSec == 0 {
			continue
		}
		r := t.roundRatio(key, "direct", 8, figCallsPerSec)
		st, how := atLeast(r, 0.65)
		vs = append(vs, verdict{
			Target:   "throughput at c=8 ≥ 0.65× direct",
			Measured: fmt.Sprintf("%s: %.0f vs %.0f calls/s; per-round ratio %.2f×", label(t, key), x.Load.CallsPerSec, direct8.Load.CallsPerSec, r),
			Status:   st, Note: how,
		})
	}
	return vs
}

func label(t *tableResult, key string) string {
	for _, tg := range t.Targets {
		if tg.Key == key {
			return tg.Label
		}
	}
	return key
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
func us(d time.Duration) float64 { return float64(d) / 1e3 }

func verdictTable(vs []verdict) string {
	var b strings.Builder
	b.WriteString("| target | measured | status | note |\n|---|---|---|---|\n")
	for _, v := range vs {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", v.Target, v.Measured, v.Status, v.Note)
	}
	return b.String()
}
