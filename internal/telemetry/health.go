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
