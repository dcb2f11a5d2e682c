package telemetry_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/mcpgate/mcpgate/internal/admin"
	"github.com/mcpgate/mcpgate/internal/telemetry"
)

// serveMetrics serves m's registry through the admin handler, as the
// gateway does.
func serveMetrics(t *testing.T, m *telemetry.Metrics) string {
	t.Helper()
	srv := httptest.NewServer(admin.Handler(func() (bool, any) { return true, nil }, admin.WithMetrics(m.Gatherer())))
	t.Cleanup(srv.Close)
	return srv.URL + "/metrics"
}

// The classic buckets docs/observability.md promises, written out here so
// that a change to them in the code fails this test.
var wantBuckets = []string{"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60"}

// histogram returns the text exposition of one histogram series holding
// values (in seconds).
func histogram(name, labels string, values ...float64) string {
	var b strings.Builder
	var sum float64
	for _, v := range values {
		sum += v
	}
	for _, le := range append(wantBuckets, "+Inf") {
		bound, _ := strconv.ParseFloat(le, 64)
		if le == "+Inf" {
			bound = 1e308
		}
		n := 0
		for _, v := range values {
			if v <= bound {
				n++
			}
		}
		fmt.Fprintf(&b, "%s_bucket{%s,le=%q} %d\n", name, labels, le, n)
	}
	fmt.Fprintf(&b, "%s_sum{%s} %v\n%s_count{%s} %d\n", name, labels, sum, name, labels, len(values))
	return b.String()
}

// TestMetricsScrape drives every metric through a known sequence of calls
// and compares the scraped exposition, series by series, including the
// folding of values outside each label's set into _other.
func TestMetricsScrape(t *testing.T) {
	m := telemetry.NewMetrics("1.2.3", []string{"alpha", "beta"})
	url := serveMetrics(t, m)
	ms := time.Millisecond

	m.SetCatalog("alpha", []string{"echo", "add"})
	m.SetCatalog("gamma", []string{"x"}) // not configured: ignored
	m.Request("tools/call", "alpha", "echo", "ok", 3*ms)
	m.Request("tools/call", "alpha", "echo", "ok", 20*ms)
	m.Request("tools/call", "alpha", "rm-rf", "tool_error", 700*ms) // not in the catalog
	m.Request("tools/call", "gamma", "echo", "ok", 2*time.Second)   // not configured
	m.Request("evil/method", "beta", "", "denied", 0)
	m.Request("initialize", "", "", "made-up", 45*time.Second)
	m.Request("", "", "", "ok", 90*time.Second) // a GET stream

	m.UpstreamRequest("alpha", "r0", "tools/call", "ok", 2*ms)
	m.UpstreamRequest("alpha", "r0", "tools/call", "transport_error", 5*time.Second)
	m.UpstreamError("alpha", "r0", telemetry.UpstreamErrTimeout)
	m.UpstreamError("alpha", "r0", "cosmic-ray")
	m.UpstreamError("zeta", "", telemetry.UpstreamErrConnect)

	m.SessionOpened()
	m.SessionOpened()
	m.SessionClosed()
	closeGet := m.StreamOpened(telemetry.StreamGet)
	m.StreamOpened(telemetry.StreamPost)
	m.StreamOpened("websocket")()
	closeGet()
	closeGet() // a second close must not count twice

	m.SetUpstreamUp("alpha", true)
	m.SetUpstreamUp("beta", false)
	m.SetUpstreamUp("nope", true)
	m.PolicyDenied("alpha", "add", "no-writes")
	m.PolicyDenied("alpha", "format-disk", "no-writes")
	m.PolicyDryRun("strict-tenants")
	m.RateLimited("per-principal", "beta")
	m.ToolPinChanged("alpha", "quarantined")
	m.AuditRecord("file", "ok")
	m.AuditRecord("file", "ok")
	m.AuditRecord("postgres", "error")
	m.ConfigReloaded(true)
	m.ConfigReloaded(false)

	const dur = "mcpgate_request_duration_seconds"
	const updur = "mcpgate_upstream_request_duration_seconds"
	want := `# HELP mcpgate_requests_total Client requests by MCP method, target server, tool and outcome.
# TYPE mcpgate_requests_total counter
mcpgate_requests_total{method="",outcome="ok",server="",tool=""} 1
mcpgate_requests_total{method="_other",outcome="denied",server="beta",tool=""} 1
mcpgate_requests_total{method="initialize",outcome="_other",server="",tool=""} 1
mcpgate_requests_total{method="tools/call",outcome="ok",server="_other",tool="_other"} 1
mcpgate_requests_total{method="tools/call",outcome="ok",server="alpha",tool="echo"} 2
mcpgate_requests_total{method="tools/call",outcome="tool_error",server="alpha",tool="_other"} 1
# HELP mcpgate_request_duration_seconds Time from receiving a client request to its last response byte.
# TYPE mcpgate_request_duration_seconds histogram
` + histogram(dur, `method="",outcome="ok",server=""`, 90) +
		histogram(dur, `method="_other",outcome="denied",server="beta"`, 0) +
		histogram(dur, `method="initialize",outcome="_other",server=""`, 45) +
		histogram(dur, `method="tools/call",outcome="ok",server="_other"`, 2) +
		histogram(dur, `method="tools/call",outcome="ok",server="alpha"`, 0.003, 0.02) +
		histogram(dur, `method="tools/call",outcome="tool_error",server="alpha"`, 0.7) + `
# HELP mcpgate_upstream_requests_total Requests sent to upstream servers by server, replica, method and outcome.
# TYPE mcpgate_upstream_requests_total counter
mcpgate_upstream_requests_total{method="tools/call",outcome="ok",replica="r0",server="alpha"} 1
mcpgate_upstream_requests_total{method="tools/call",outcome="transport_error",replica="r0",server="alpha"} 1
# HELP mcpgate_upstream_request_duration_seconds Time an upstream took to answer a request.
# TYPE mcpgate_upstream_request_duration_seconds histogram
` + histogram(updur, `replica="r0",server="alpha"`, 0.002, 5) + `
# HELP mcpgate_upstream_errors_total Failures talking to an upstream, by kind.
# TYPE mcpgate_upstream_errors_total counter
mcpgate_upstream_errors_total{kind="_other",replica="r0",server="alpha"} 1
mcpgate_upstream_errors_total{kind="connect",replica="",server="_other"} 1
mcpgate_upstream_errors_total{kind="timeout",replica="r0",server="alpha"} 1
# HELP mcpgate_sessions_active Client sessions currently open.
# TYPE mcpgate_sessions_active gauge
mcpgate_sessions_active 1
# HELP mcpgate_streams_active SSE streams currently open to clients, by kind (get, post).
# TYPE mcpgate_streams_active gauge
mcpgate_streams_active{kind="_other"} 0
mcpgate_streams_active{kind="get"} 0
mcpgate_streams_active{kind="post"} 1
# HELP mcpgate_upstream_up Whether the upstream server is reachable (1) or not (0).
# TYPE mcpgate_upstream_up gauge
mcpgate_upstream_up{server="_other"} 1
mcpgate_upstream_up{server="alpha"} 1
mcpgate_upstream_up{server="beta"} 0
# HELP mcpgate_catalog_tools Tools in the server's catalog as last listed.
# TYPE mcpgate_catalog_tools gauge
mcpgate_catalog_tools{server="alpha"} 2
# HELP mcpgate_policy_denials_total Calls denied by policy, by the rule that denied them.
# TYPE mcpgate_policy_denials_total counter
mcpgate_policy_denials_total{rule="no-writes",server="alpha",tool="_other"} 1
mcpgate_policy_denials_total{rule="no-writes",server="alpha",tool="add"} 1
# HELP mcpgate_policy_dry_run_total Calls a dry-run rule would have denied.
# TYPE mcpgate_policy_dry_run_total counter
mcpgate_policy_dry_run_total{rule="strict-tenants"} 1
# HELP mcpgate_rate_limited_total Calls refused by a limit.
# TYPE mcpgate_rate_limited_total counter
mcpgate_rate_limited_total{limit="per-principal",server="beta"} 1
# HELP mcpgate_tool_pin_changes_total Tool definition changes seen against the pinned definition, by what happened.
# TYPE mcpgate_tool_pin_changes_total counter
mcpgate_tool_pin_changes_total{server="alpha",state="quarantined"} 1
# HELP mcpgate_audit_records_total Audit records handed to each sink, by result.
# TYPE mcpgate_audit_records_total counter
mcpgate_audit_records_total{result="error",sink="postgres"} 1
mcpgate_audit_records_total{result="ok",sink="file"} 2
# HELP mcpgate_config_reloads_total Configuration reloads by result (success, failure).
# TYPE mcpgate_config_reloads_total counter
mcpgate_config_reloads_total{result="failure"} 1
mcpgate_config_reloads_total{result="success"} 1
# HELP mcpgate_config_last_reload_successful Whether the last configuration reload succeeded (1) or not (0).
# TYPE mcpgate_config_last_reload_successful gauge
mcpgate_config_last_reload_successful 0
# HELP mcpgate_build_info Always 1; the labels say which build is running.
# TYPE mcpgate_build_info gauge
mcpgate_build_info{go_version="` + runtime.Version() + `",version="1.2.3"} 1
`
	names := []string{
		"mcpgate_requests_total", dur, "mcpgate_upstream_requests_total", updur, "mcpgate_upstream_errors_total",
		"mcpgate_sessions_active", "mcpgate_streams_active", "mcpgate_upstream_up", "mcpgate_catalog_tools",
		"mcpgate_policy_denials_total", "mcpgate_policy_dry_run_total", "mcpgate_rate_limited_total",
		"mcpgate_tool_pin_changes_total", "mcpgate_audit_records_total", "mcpgate_config_reloads_total",
		"mcpgate_config_last_reload_successful", "mcpgate_build_info",
	}
	if err := testutil.ScrapeAndCompare(url, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}

	// Everything else the registry serves: the runtime and process
	// collectors, and the reload timestamp.
	families := scrape(t, url, "")
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "mcpgate_config_last_reload_success_timestamp_seconds"} {
		if families[name] == nil {
			t.Errorf("%s is not served", name)
		}
	}
	if ts := families["mcpgate_config_last_reload_success_timestamp_seconds"]; ts != nil && ts.Metric[0].GetGauge().GetValue() < 1e9 {
		t.Errorf("last reload timestamp = %v", ts.Metric[0].GetGauge().GetValue())
	}
	for name := range families {
		if !strings.HasPrefix(name, "mcpgate_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Errorf("unexpected metric %s", name)
		}
	}
}

// TestMetricsCatalogAndServerChanges checks that series of tools that left
// a catalog and of servers that left the configuration are deleted, and
// that later calls for them fold into _other.
func TestMetricsCatalogAndServerChanges(t *testing.T) {
	m := telemetry.NewMetrics("dev", []string{"alpha", "beta"})
	url := serveMetrics(t, m)
	m.SetCatalog("alpha", []string{"echo", "add"})
	m.Request("tools/call", "alpha", "echo", "ok", 0)
	m.Request("tools/call", "alpha", "add", "ok", 0)
	m.Request("tools/call", "beta", "", "ok", 0)
	m.SetUpstreamUp("beta", true)
	m.RateLimited("l", "beta")

	m.SetCatalog("alpha", []string{"add", "sub"}) // echo leaves
	m.Request("tools/call", "alpha", "echo", "ok", 0)
	m.Request("tools/call", "alpha", "sub", "ok", 0)
	m.Request("tools/call", "alpha", "add", "ok", 0)
	m.SetServers([]string{"alpha"}) // beta leaves
	m.Request("tools/call", "beta", "", "ok", 0)

	want := `# HELP mcpgate_requests_total Client requests by MCP method, target server, tool and outcome.
# TYPE mcpgate_requests_total counter
mcpgate_requests_total{method="tools/call",outcome="ok",server="_other",tool=""} 1
mcpgate_requests_total{method="tools/call",outcome="ok",server="alpha",tool="_other"} 1
mcpgate_requests_total{method="tools/call",outcome="ok",server="alpha",tool="add"} 2
mcpgate_requests_total{method="tools/call",outcome="ok",server="alpha",tool="sub"} 1
# HELP mcpgate_catalog_tools Tools in the server's catalog as last listed.
# TYPE mcpgate_catalog_tools gauge
mcpgate_catalog_tools{server="alpha"} 2
`
	names := []string{"mcpgate_requests_total", "mcpgate_catalog_tools", "mcpgate_upstream_up", "mcpgate_rate_limited_total"}
	if err := testutil.ScrapeAndCompare(url, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
}

// TestMetricsCaps checks the caps on the catalog and replica labels.
func TestMetricsCaps(t *testing.T) {
	m := telemetry.NewMetrics("dev", []string{"big"})
	url := serveMetrics(t, m)
	tools := make([]string, 2500)
	for i := range tools {
		tools[i] = fmt.Sprintf("tool-%04d", i)
		m.Request("tools/call", "big", tools[i], "ok", 0) // before the catalog: all _other
	}
	m.SetCatalog("big", tools)
	for _, name := range tools {
		m.Request("tools/call", "big", name, "ok", 0)
	}
	for i := range 40 {
		m.UpstreamRequest("big", fmt.Sprintf("replica-%d", i), "tools/call", "ok", 0)
	}
	f := scrape(t, url, "")

	counts := map[string]float64{}
	for _, s := range f["mcpgate_requests_total"].GetMetric() {
		counts[label(s, "tool")] = s.GetCounter().GetValue()
	}
	if got := len(counts); got != 2001 {
		t.Errorf("%d tool label values, want 2000 and _other", got)
	}
	if counts["tool-1999"] != 1 || counts["tool-2000"] != 0 || counts[telemetry.Other] != 2500+500 {
		t.Errorf("tool-1999 = %v, tool-2000 = %v, _other = %v; want 1, absent, 3000", counts["tool-1999"], counts["tool-2000"], counts[telemetry.Other])
	}
	if got := f["mcpgate_catalog_tools"].GetMetric()[0].GetGauge().GetValue(); got != 2500 {
		t.Errorf("catalog_tools = %v, want the full 2500", got)
	}
	replicas := map[string]bool{}
	for _, s := range f["mcpgate_upstream_requests_total"].GetMetric() {
		replicas[label(s, "replica")] = true
	}
	if len(replicas) != 33 || !replicas["replica-31"] || replicas["replica-32"] || !replicas[telemetry.Other] {
		t.Errorf("replica label values = %d (%v), want replica-0..31 and _other", len(replicas), replicas)
	}
}

// TestNativeHistogram scrapes with the protobuf Accept header that
// Prometheus sends when native histograms are enabled, and checks that the
// duration histograms carry both a native histogram (schema 3, the largest
// whose growth factor stays at or under 1.1) and the classic buckets.
func TestNativeHistogram(t *testing.T) {
	m := telemetry.NewMetrics("dev", []string{"alpha"})
	url := serveMetrics(t, m)
	m.Request("tools/call", "alpha", "", "ok", 3*time.Millisecond)
	m.Request("tools/call", "alpha", "", "ok", 40*time.Millisecond)
	m.UpstreamRequest("alpha", "r0", "tools/call", "ok", 2*time.Millisecond)

	f := scrape(t, url, "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")
	for _, name := range []string{"mcpgate_request_duration_seconds", "mcpgate_upstream_request_duration_seconds"} {
		mf := f[name]
		if mf == nil {
			t.Fatalf("%s missing", name)
		}
		h := mf.GetMetric()[0].GetHistogram()
		if h.Schema == nil || h.GetSchema() != 3 {
			t.Errorf("%s schema = %v, want a native histogram with schema 3", name, h.Schema)
		}
		if len(h.GetPositiveSpan()) == 0 || len(h.GetPositiveDelta()) == 0 {
			t.Errorf("%s has no native buckets: %v", name, h)
		}
		if len(h.GetBucket()) != len(wantBuckets) {
			t.Errorf("%s has %d classic buckets, want %d", name, len(h.GetBucket()), len(wantBuckets))
		}
	}
}

// TestNilMetrics checks that a nil *Metrics is a no-op.
func TestNilMetrics(t *testing.T) {
	var m *telemetry.Metrics
	m.SetServers([]string{"a"})
	m.SetCatalog("a", []string{"t"})
	m.Request("tools/call", "a", "t", "ok", time.Second)
	m.UpstreamRequest("a", "r", "tools/call", "ok", time.Second)
	m.UpstreamError("a", "r", telemetry.UpstreamErrConnect)
	m.SessionOpened()
	m.SessionClosed()
	m.StreamOpened(telemetry.StreamGet)()
	m.SetUpstreamUp("a", true)
	m.PolicyDenied("a", "t", "r")
	m.PolicyDryRun("r")
	m.RateLimited("l", "a")
	m.ToolPinChanged("a", "s")
	m.AuditRecord("s", "ok")
	m.ConfigReloaded(true)
	if m.Gatherer() != nil {
		t.Error("nil Metrics has a gatherer")
	}
}

// TestMetricsConcurrent runs the hot path against catalog and server
// changes; run with -race.
func TestMetricsConcurrent(t *testing.T) {
	m := telemetry.NewMetrics("dev", []string{"a", "b"})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				tool := fmt.Sprintf("t%d", i%7)
				m.Request("tools/call", "a", tool, "ok", time.Millisecond)
				m.UpstreamRequest("b", fmt.Sprintf("r%d", (i+g)%3), "tools/call", "ok", time.Millisecond)
			}
		})
	}
	wg.Go(func() {
		for i := range 200 {
			m.SetCatalog("a", []string{fmt.Sprintf("t%d", i%7), fmt.Sprintf("t%d", (i+1)%7)})
			if i%50 == 0 {
				m.SetServers([]string{"a", "b", fmt.Sprintf("c%d", i)})
			}
		}
	})
	wg.Wait()
	if _, err := m.Gatherer().Gather(); err != nil {
		t.Fatal(err)
	}
}

// scrape fetches url with the given Accept header and decodes the families.
func scrape(t *testing.T, url, accept string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
	out := map[string]*dto.MetricFamily{}
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding %s: %v", url, err)
		}
		out[mf.GetName()] = &mf
	}
	if len(out) == 0 {
		t.Fatalf("GET %s: no metric families", url)
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
