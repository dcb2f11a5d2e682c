package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
)

// auditSinkUp reports, at each scrape, whether each audit sink is healthy:
// the failed-record counter alone cannot tell an operator that a
// fail-closed trail is still down, because refused writes record nothing.
type auditSinkUp struct {
	desc   *prometheus.Desc
	health func() map[string]bool
}

func (c auditSinkUp) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c auditSinkUp) Collect(ch chan<- prometheus.Metric) {
	for sink, up := range c.health() {
		v := 0.0
		if up {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, sink)
	}
}

// WatchAuditSinks serves mcpgate_audit_sink_up{sink}, read from health at
// each scrape. Call it once, when the audit trail is configured.
func (m *Metrics) WatchAuditSinks(health func() map[string]bool) {
	if m == nil || health == nil {
		return
	}
	m.reg.MustRegister(auditSinkUp{
		desc:   prometheus.NewDesc(namespace+"_audit_sink_up", "Whether each audit sink accepted its last record and is reachable (1) or not (0).", []string{"sink"}, nil),
		health: health,
	})
}

// quarantined reports, at each scrape, how many tools of each server wait
// for approval: unlike the change counter it stays up until the change is
// approved, and does not start again at a restart.
type quarantined struct {
	desc  *prometheus.Desc
	count func() map[string]int
}

func (c quarantined) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c quarantined) Collect(ch chan<- prometheus.Metric) {
	for server, n := range c.count() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), server)
	}
}

// WatchQuarantined serves mcpgate_tools_quarantined{server}, read from
// count at each scrape. Call it once, when tools are pinned.
func (m *Metrics) WatchQuarantined(count func() map[string]int) {
	if m == nil || count == nil {
		return
	}
	m.reg.MustRegister(quarantined{
		desc:  prometheus.NewDesc(namespace+"_tools_quarantined", "Tools whose changed definition waits for approval, by server.", []string{"server"}, nil),
		count: count,
	})
}
