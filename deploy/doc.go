// Package deploy holds what operators deploy next to mcpgate: a Grafana
// dashboard (grafana/mcpgate-dashboard.json) and example Prometheus alert
// rules with their unit tests (prometheus/alerts.yml, alerts_test.yml). It
// has no Go code; its tests prove that every query names only metrics and
// labels the gateway's registry really serves.
package deploy
