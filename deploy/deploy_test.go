package deploy_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/telemetry"
	"go.yaml.in/yaml/v3"
)

const (
	dashboardPath  = "grafana/mcpgate-dashboard.json"
	alertsPath     = "prometheus/alerts.yml"
	alertTestsPath = "prometheus/alerts_test.yml"
)

// registrySchema builds the gateway's real registry, gives every metric
// vector a child, and returns each series name it serves with its labels.
// A histogram serves its own name (the native form) and the classic
// _bucket (with le), _sum and _count.
func registrySchema(t *testing.T) (schema, []string) {
	t.Helper()
	m := telemetry.NewMetrics("test", []string{"s"})
	m.SetCatalog("s", []string{"t"})
	m.Request("tools/call", "s", "t", telemetry.OutcomeOK, time.Millisecond)
	m.UpstreamRequest("s", "r", "tools/call", telemetry.OutcomeOK, time.Millisecond)
	m.UpstreamError("s", "r", telemetry.UpstreamErrConnect)
	m.SessionOpened()
	m.StreamOpened(telemetry.StreamGet)
	m.SetUpstreamUp("s", true)
	m.PolicyDenied("s", "t", "r")
	m.PolicyDryRun("r")
	m.RateLimited("l", "s")
	m.ToolPinChanged("s", "quarantined")
	m.AuditRecord("file", "error")
	m.WatchAuditSinks(func() map[string]bool { return map[string]bool{"file": true} })
	m.WatchQuarantined(func() map[string]int { return map[string]int{"s": 0} })
	m.ConfigReloaded(false)
	m.ConfigReloaded(true)

	families, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	s := schema{}
	var base []string // the mcpgate_ families, for coverage
	for _, mf := range families {
		name := mf.GetName()
		if len(mf.GetMetric()) == 0 {
			continue
		}
		var labels []string
		for _, lp := range mf.GetMetric()[0].GetLabel() {
			labels = append(labels, lp.GetName())
		}
		s[name] = labels
		if mf.GetMetric()[0].GetHistogram() != nil {
			s[name+"_bucket"] = append(slices.Clone(labels), "le")
			s[name+"_sum"] = labels
			s[name+"_count"] = labels
		}
		if strings.HasPrefix(name, metricPrefix) {
			base = append(base, name)
		}
	}
	// The metrics the dashboard rows are built on: if the registry
	// stopped serving one, the checks below would pass vacuously.
	for _, want := range []string{
		"mcpgate_requests_total", "mcpgate_request_duration_seconds_bucket", "mcpgate_upstream_errors_total",
		"mcpgate_tool_pin_changes_total", "mcpgate_audit_records_total", "mcpgate_build_info",
	} {
		if _, ok := s[want]; !ok {
			t.Fatalf("registry does not serve %s; served: %v", want, base)
		}
	}
	return s, base
}

// dashboard is the part of Grafana's JSON model the tests read.
type dashboard struct {
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int                `json:"id"`
	Type       string             `json:"type"`
	Title      string             `json:"title"`
	Datasource *datasourceRef     `json:"datasource"`
	Targets    []target           `json:"targets"`
	Panels     []panel            `json:"panels"` // a collapsed row's panels
	GridPos    struct{ X, W int } `json:"gridPos"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type target struct {
	Expr       string         `json:"expr"`
	Datasource *datasourceRef `json:"datasource"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"` // the query as the editor shows it
}

// queryText returns a variable's query, which Grafana stores either as a
// string or as an object with a query field.
func (v variable) queryText() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(v.Query, &o)
	return o.Query
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	return d
}

// dataPanels flattens rows, open or collapsed, into the panels that query.
func dataPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		if p.Type == "row" {
			out = append(out, dataPanels(p.Panels)...)
			continue
		}
		out = append(out, p)
	}
	return out
}

func TestDashboard(t *testing.T) {
	s, families := registrySchema(t)
	d := loadDashboard(t)

	t.Run("model", func(t *testing.T) {
		if d.SchemaVersion < 39 {
			t.Errorf("schemaVersion = %d, want at least 39", d.SchemaVersion)
		}
		if d.Title == "" || d.UID == "" {
			t.Errorf("title %q, uid %q: both are required", d.Title, d.UID)
		}
		vars := map[string]variable{}
		for _, v := range d.Templating.List {
			vars[v.Name] = v
		}
		if ds, ok := vars["datasource"]; !ok || ds.Type != "datasource" || ds.queryText() != "prometheus" {
			t.Errorf("no Prometheus datasource variable named datasource: %+v", ds)
		}
		for _, name := range []string{"server", "tool"} {
			if q := vars[name].queryText(); !strings.HasPrefix(q, "label_values(") || !strings.HasSuffix(q, ", "+name+")") {
				t.Errorf("variable %s: query %q, want label_values(..., %s)", name, q, name)
			}
		}
	})

	t.Run("panels", func(t *testing.T) {
		ids := map[int]string{}
		all := append(slices.Clone(d.Panels), dataPanels(d.Panels)...)
		for _, p := range all {
			if prev, dup := ids[p.ID]; dup && prev != p.Title {
				t.Errorf("panel id %d used by %q and %q", p.ID, prev, p.Title)
			}
			ids[p.ID] = p.Title
			if p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("panel %q runs past the 24-column grid", p.Title)
			}
		}
		ps := dataPanels(d.Panels)
		if len(ps) < 20 {
			t.Fatalf("%d data panels; the dashboard lost its rows", len(ps))
		}
		for _, p := range ps {
			if p.Title == "" {
				t.Errorf("panel %d has no title", p.ID)
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: datasource %+v, want the ${datasource} variable", p.Title, p.Datasource)
			}
			var exprs int
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) != "" {
					exprs++
				}
				if tg.Datasource != nil && tg.Datasource.UID != "${datasource}" {
					t.Errorf("panel %q: a target queries %+v, not ${datasource}", p.Title, tg.Datasource)
				}
			}
			if exprs == 0 {
				t.Errorf("panel %q has no target with an expr", p.Title)
			}
		}
	})

	t.Run("metrics exist", func(t *testing.T) {
		used := map[string]bool{}
		check := func(where, expr string) {
			for _, p := range checkExpr(expr, s) {
				t.Errorf("%s: %s\n\t%s", where, p, expr)
			}
			toks, _ := lex(expr)
			for _, m := range metricsIn(toks) {
				used[strings.TrimSuffix(m, "_bucket")] = true
			}
		}
		for _, p := range dataPanels(d.Panels) {
			for _, tg := range p.Targets {
				check("panel "+p.Title, tg.Expr)
			}
		}
		for _, v := range d.Templating.List {
			check("variable "+v.Name, v.queryText())
			check("variable "+v.Name+" definition", v.Definition)
		}
		// Every metric the gateway serves is on the dashboard somewhere.
		for _, f := range families {
			if !used[f] {
				t.Errorf("no panel shows %s", f)
			}
		}
	})
}

// ruleFile is Prometheus's rule file format, decoded strictly so that a
// misspelt key fails here rather than in Prometheus.
type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert         string            `yaml:"alert"`
	Record        string            `yaml:"record"`
	Expr          string            `yaml:"expr"`
	For           string            `yaml:"for"`
	KeepFiringFor string            `yaml:"keep_firing_for"`
	Labels        map[string]string `yaml:"labels"`
	Annotations   map[string]string `yaml:"annotations"`
}

// ruleTests is promtool's unit test file format, the parts read here.
type ruleTests struct {
	RuleFiles          []string `yaml:"rule_files"`
	EvaluationInterval string   `yaml:"evaluation_interval"`
	Tests              []struct {
		Name        string `yaml:"name"`
		Interval    string `yaml:"interval"`
		InputSeries []struct {
			Series string `yaml:"series"`
			Values string `yaml:"values"`
		} `yaml:"input_series"`
		AlertRuleTest []struct {
			EvalTime  string `yaml:"eval_time"`
			Alertname string `yaml:"alertname"`
			ExpAlerts []struct {
				ExpLabels      map[string]string `yaml:"exp_labels"`
				ExpAnnotations map[string]string `yaml:"exp_annotations"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func decodeStrict(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// promDuration is Prometheus's duration syntax, such as 2m or 1h30m.
var promDuration = regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)

func TestAlertRules(t *testing.T) {
	s, _ := registrySchema(t)
	var rf ruleFile
	decodeStrict(t, alertsPath, &rf)

	alerts := map[string]bool{}
	t.Run("structure", func(t *testing.T) {
		if len(rf.Groups) == 0 {
			t.Fatal("no rule groups")
		}
		for _, g := range rf.Groups {
			if g.Name == "" || len(g.Rules) == 0 {
				t.Errorf("group %q: a name and rules are required", g.Name)
			}
			for _, r := range g.Rules {
				if r.Alert == "" || r.Record != "" {
					t.Errorf("group %q: a rule without alert (or a recording rule) %q", g.Name, r.Expr)
					continue
				}
				if alerts[r.Alert] {
					t.Errorf("alert %s defined twice", r.Alert)
				}
				alerts[r.Alert] = true
				if strings.TrimSpace(r.Expr) == "" {
					t.Errorf("%s: no expr", r.Alert)
				}
				if !promDuration.MatchString(r.For) {
					t.Errorf("%s: for %q, want a duration such as 2m (0m to fire at once)", r.Alert, r.For)
				}
				if sev := r.Labels["severity"]; sev != "critical" && sev != "warning" {
					t.Errorf("%s: severity %q, want critical or warning", r.Alert, sev)
				}
				if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
					t.Errorf("%s: summary and description annotations are required", r.Alert)
				}
			}
		}
	})

	t.Run("metrics exist", func(t *testing.T) {
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				for _, p := range checkExpr(r.Expr, s) {
					t.Errorf("%s: %s\n\t%s", r.Alert, p, r.Expr)
				}
			}
		}
	})

	t.Run("every alert is unit-tested", func(t *testing.T) {
		var rt ruleTests
		decodeStrict(t, alertTestsPath, &rt)
		fired := map[string]bool{}
		for _, tc := range rt.Tests {
			for _, in := range tc.InputSeries {
				for _, p := range checkExpr(in.Series, s) {
					t.Errorf("test %q: input series %s: %s", tc.Name, in.Series, p)
				}
			}
			for _, at := range tc.AlertRuleTest {
				if !alerts[at.Alertname] {
					t.Errorf("test %q: no alert named %s", tc.Name, at.Alertname)
				}
				if len(at.ExpAlerts) > 0 {
					fired[at.Alertname] = true
				}
			}
		}
		for a := range alerts {
			if !fired[a] {
				t.Errorf("%s: no test in %s expects it to fire", a, alertTestsPath)
			}
		}
	})
}

// TestPromtool has Prometheus's own tool parse the rules and run their unit
// tests, when it is installed (Debian: apt-get install prometheus).
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("MCPGATE_REQUIRE_PEERS") != "" {
			t.Fatal("promtool not on PATH (scripts/setup installs Debian's prometheus package)")
		}
		t.Skip("promtool not on PATH")
	}
	for _, args := range [][]string{
		{"check", "rules", alertsPath},
		{"test", "rules", alertTestsPath},
	} {
		t.Run(strings.Join(args[:2], " "), func(t *testing.T) {
			out, err := exec.Command(promtool, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
}
