package telemetry

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

const namespace = "mcpgate"

// latencyBuckets are the classic buckets of the duration histograms, from
// 1ms to 60s; scrapers that negotiate native histograms get those instead.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// Metrics holds the gateway's Prometheus metrics on a private registry. Its
// methods are safe for concurrent use. A nil *Metrics is a valid no-op, so
// code and tests that do not care about metrics may pass nil.
type Metrics struct {
	reg *prometheus.Registry

	requests         *prometheus.CounterVec
	requestDuration  *prometheus.HistogramVec
	upstreamRequests *prometheus.CounterVec
	upstreamDuration *prometheus.HistogramVec
	upstreamErrors   *prometheus.CounterVec
	sessionsActive   prometheus.Gauge
	streamsActive    *prometheus.GaugeVec
	upstreamUp       *prometheus.GaugeVec
	catalogTools     *prometheus.GaugeVec
	policyDenials    *prometheus.CounterVec
	policyDryRun     *prometheus.CounterVec
	rateLimited      *prometheus.CounterVec
	pinChanges       *prometheus.CounterVec
	auditRecords     *prometheus.CounterVec
	configReloads    *prometheus.CounterVec
	lastReloadOK     prometheus.Gauge
	lastReloadTime   prometheus.Gauge

	// servers is read on every request without a lock; writers replace it
	// (or a server's catalog or replicas) under mu.
	servers atomic.Pointer[serverSet]

	mu sync.Mutex // serializes writers: SetServers, SetCatalog and every series cache

	rules, limits, sinks, results, pinStates namedValues
}

// NewMetrics returns metrics on a new registry that also holds the Go
// runtime and process collectors. version is the gateway's version, for
// mcpgate_build_info; servers are the configured server names, the only
// values the server label takes besides "" and Other.
func NewMetrics(version string, servers []string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
		m.reg.MustRegister(v)
		return v
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, labels)
		m.reg.MustRegister(v)
		return v
	}
	histogram := func(name, help string, labels ...string) *prometheus.HistogramVec {
		v := prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace:                       namespace,
			Name:                            name,
			Help:                            help,
			Buckets:                         latencyBuckets,
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  160,
			NativeHistogramMinResetDuration: time.Hour,
		}, labels)
		m.reg.MustRegister(v)
		return v
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	m.requests = counter("requests_total", "Client requests by MCP method, target server, tool and outcome.", "method", "server", "tool", "outcome")
	m.requestDuration = histogram("request_duration_seconds", "Time from receiving a client request to its last response byte.", "method", "server", "outcome")
	m.upstreamRequests = counter("upstream_requests_total", "Requests sent to upstream servers by server, replica, method and outcome.", "server", "replica", "method", "outcome")
	m.upstreamDuration = histogram("upstream_request_duration_seconds", "Time an upstream took to answer a request.", "server", "replica")
	m.upstreamErrors = counter("upstream_errors_total", "Failures talking to an upstream, by kind.", "server", "replica", "kind")
	m.sessionsActive = gauge("sessions_active", "Client sessions currently open.").WithLabelValues()
	m.streamsActive = gauge("streams_active", "SSE streams currently open to clients, by kind (get, post).", "kind")
	m.upstreamUp = gauge("upstream_up", "Whether the upstream server is reachable (1) or not (0).", "server")
	m.catalogTools = gauge("catalog_tools", "Tools in the server's catalog as last listed.", "server")
	m.policyDenials = counter("policy_denials_total", "Calls denied by policy, by the rule that denied them.", "server", "tool", "rule")
	m.policyDryRun = counter("policy_dry_run_total", "Calls a dry-run rule would have denied.", "rule")
	m.rateLimited = counter("rate_limited_total", "Calls refused by a limit.", "limit", "server")
	m.pinChanges = counter("tool_pin_changes_total", "Tool definition changes seen against the pinned definition, by what happened.", "server", "state")
	m.auditRecords = counter("audit_records_total", "Audit records handed to each sink, by result.", "sink", "result")
	m.configReloads = counter("config_reloads_total", "Configuration reloads by result (success, failure).", "result")
	m.lastReloadOK = gauge("config_last_reload_successful", "Whether the last configuration reload succeeded (1) or not (0).").WithLabelValues()
	m.lastReloadTime = gauge("config_last_reload_success_timestamp_seconds", "When the configuration was last loaded successfully, in Unix seconds.").WithLabelValues()
	gauge("build_info", "Always 1; the labels say which build is running.", "version", "go_version").WithLabelValues(version, runtime.Version()).Set(1)

	// The configuration the metrics are built for has loaded.
	m.lastReloadOK.Set(1)
	m.lastReloadTime.SetToCurrentTime()
	m.setServers(servers)
	return m
}

// Gatherer returns the registry, for the admin listener's /metrics; nil for
// a nil *Metrics.
func (m *Metrics) Gatherer() prometheus.Gatherer {
	if m == nil {
		return nil
	}
	return m.reg
}

// Request counts one client request and observes its duration. method is
// the JSON-RPC method ("" for a request that is not JSON-RPC), server the
// configured server it was routed to ("" if none), tool the tool name as the
// server knows it (only for tools/call; "" otherwise) and outcome one of the
// Outcome constants. Values outside those sets count as Other.
func (m *Metrics) Request(method, server, tool, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	mi, oi := methodIdx(method), outcomeIdx(outcome)
	key := uint16(mi*len(outcomes) + oi)
	s := m.server(server)
	t := s.tool(tool)
	c, ok := t.requests.load(key)
	if !ok {
		c = m.requestCounter(s, t, mi, oi)
	}
	c.Inc()
	h, ok := s.duration.load(key)
	if !ok {
		h = m.requestObserver(s, mi, oi)
	}
	h.Observe(d.Seconds())
}

// UpstreamRequest counts one request sent to an upstream replica and
// observes how long it took to answer. replica names the replica within the
// server (its URL or index, as the gateway chooses); a server keeps its
// first 32 replica names as labels and counts the rest as Other.
func (m *Metrics) UpstreamRequest(server, replica, method, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	mi, oi := methodIdx(method), outcomeIdx(outcome)
	key := uint16(mi*len(outcomes) + oi)
	s := m.server(server)
	r := m.replica(s, replica)
	c, ok := r.requests.load(key)
	if !ok {
		c = m.upstreamCounter(s, r, mi, oi)
	}
	c.Inc()
	h, ok := r.duration.load(0)
	if !ok {
		h = m.upstreamObserver(s, r)
	}
	h.Observe(d.Seconds())
}

// UpstreamError counts one failure talking to an upstream replica; kind is
// one of the UpstreamErr constants.
func (m *Metrics) UpstreamError(server, replica, kind string) {
	if m == nil {
		return
	}
	s := m.server(server)
	r := m.replica(s, replica)
	m.upstreamErrors.WithLabelValues(s.name, r.name, fold(kind, upstreamErrKinds)).Inc()
}

// SessionOpened counts a client session that started.
func (m *Metrics) SessionOpened() {
	if m != nil {
		m.sessionsActive.Inc()
	}
}

// SessionClosed counts a client session that ended, however it ended.
func (m *Metrics) SessionClosed() {
	if m != nil {
		m.sessionsActive.Dec()
	}
}

// StreamOpened counts an SSE stream to a client that opened; kind is
// StreamGet or StreamPost. Call the returned function when the stream ends;
// calls after the first do nothing.
func (m *Metrics) StreamOpened(kind string) (closed func()) {
	if m == nil {
		return func() {}
	}
	g := m.streamsActive.WithLabelValues(fold(kind, []string{StreamGet, StreamPost}))
	g.Inc()
	var done atomic.Bool
	return func() {
		if done.CompareAndSwap(false, true) {
			g.Dec()
		}
	}
}

// SetUpstreamUp records whether an upstream server is reachable.
func (m *Metrics) SetUpstreamUp(server string, up bool) {
	if m == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	m.upstreamUp.WithLabelValues(m.server(server).name).Set(v)
}

// PolicyDenied counts a call denied by policy rule rule.
func (m *Metrics) PolicyDenied(server, tool, rule string) {
	if m == nil {
		return
	}
	s := m.server(server)
	m.policyDenials.WithLabelValues(s.name, s.tool(tool).name, m.rules.admit(rule)).Inc()
}

// PolicyDryRun counts a call that dry-run rule rule would have denied.
func (m *Metrics) PolicyDryRun(rule string) {
	if m != nil {
		m.policyDryRun.WithLabelValues(m.rules.admit(rule)).Inc()
	}
}

// RateLimited counts a call refused by the named limit.
func (m *Metrics) RateLimited(limit, server string) {
	if m != nil {
		m.rateLimited.WithLabelValues(m.limits.admit(limit), m.server(server).name).Inc()
	}
}

// ToolPinChanged counts a change of a tool's definition against its pin;
// state says what happened to it (such as quarantined or accepted).
func (m *Metrics) ToolPinChanged(server, state string) {
	if m != nil {
		m.pinChanges.WithLabelValues(m.server(server).name, m.pinStates.admit(state)).Inc()
	}
}

// AuditRecord counts an audit record handed to sink; result says how it
// went (such as ok or error).
func (m *Metrics) AuditRecord(sink, result string) {
	if m != nil {
		m.auditRecords.WithLabelValues(m.sinks.admit(sink), m.results.admit(result)).Inc()
	}
}

// ConfigReloaded counts a configuration reload. The metrics start out as
// after a successful load, since they are built for a loaded configuration.
func (m *Metrics) ConfigReloaded(ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.configReloads.WithLabelValues("success").Inc()
		m.lastReloadOK.Set(1)
		m.lastReloadTime.SetToCurrentTime()
		return
	}
	m.configReloads.WithLabelValues("failure").Inc()
	m.lastReloadOK.Set(0)
}
