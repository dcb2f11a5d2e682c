package deploy_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// A best-effort PromQL reader, enough to find the metric names and label
// names a query uses: selectors with their matchers, aggregation groupings
// (by, without), vector matching (on, ignoring, group_left, group_right) and
// Grafana's label_values(). It does not evaluate or fully parse PromQL;
// promtool does that for the alert rules.

// metricPrefix marks the metrics the gateway serves; other names (up, time)
// are Prometheus's and are not checked.
const metricPrefix = "mcpgate_"

// targetLabels are added by Prometheus to every scraped series, so queries
// may use them on any metric.
var targetLabels = []string{"instance", "job"}

// schema maps each series name the registry serves to its label names.
type schema map[string][]string

func (s schema) hasLabel(metric, label string) bool {
	return slices.Contains(targetLabels, label) || slices.Contains(s[metric], label)
}

type tokenKind int

const (
	tokIdent  tokenKind = iota // names, keywords, functions
	tokString                  // a quoted string, quotes removed
	tokNumber                  // numbers and durations
	tokRange                   // [5m], [$__rate_interval], [1h:5m]
	tokVar                     // $name, ${name}
	tokPunct                   // operators and brackets
)

type token struct {
	kind tokenKind
	text string
}

// lex splits a PromQL expression, which may hold Grafana variables, into
// tokens. # starts a comment to the end of the line.
func lex(expr string) ([]token, error) {
	var toks []token
	r := []rune(expr)
	for i := 0; i < len(r); {
		c := r[i]
		switch {
		case unicode.IsSpace(c):
			i++
		case c == '#':
			for i < len(r) && r[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			var b strings.Builder
			for j < len(r) && r[j] != c {
				if r[j] == '\\' && c != '`' && j+1 < len(r) {
					j++
				}
				b.WriteRune(r[j])
				j++
			}
			if j == len(r) {
				return nil, fmt.Errorf("unterminated string at offset %d", i)
			}
			toks = append(toks, token{tokString, b.String()})
			i = j + 1
		case c == '[':
			j := i
			for j < len(r) && r[j] != ']' {
				j++
			}
			if j == len(r) {
				return nil, fmt.Errorf("unterminated range at offset %d", i)
			}
			toks = append(toks, token{tokRange, string(r[i : j+1])})
			i = j + 1
		case c == '$':
			j := i + 1
			if j < len(r) && r[j] == '{' {
				for j < len(r) && r[j] != '}' {
					j++
				}
				j++
			} else {
				for j < len(r) && isIdentRune(r[j]) {
					j++
				}
			}
			toks = append(toks, token{tokVar, string(r[i:min(j, len(r))])})
			i = j
		case unicode.IsDigit(c) || c == '.':
			j := i
			for j < len(r) && (isIdentRune(r[j]) || r[j] == '.') {
				j++
			}
			toks = append(toks, token{tokNumber, string(r[i:j])})
			i = j
		case isIdentRune(c):
			j := i
			for j < len(r) && isIdentRune(r[j]) {
				j++
			}
			toks = append(toks, token{tokIdent, string(r[i:j])})
			i = j
		default:
			op := string(c)
			if i+1 < len(r) {
				if two := string(r[i : i+2]); slices.Contains([]string{"!=", "=~", "!~", "==", "<=", ">="}, two) {
					op = two
				}
			}
			toks = append(toks, token{tokPunct, op})
			i += len([]rune(op))
		}
	}
	return toks, nil
}

func isIdentRune(c rune) bool {
	return c == '_' || c == ':' || unicode.IsLetter(c) || unicode.IsDigit(c)
}

var aggregations = []string{
	"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
	"bottomk", "topk", "quantile", "limitk", "limit_ratio",
}

var matchingKeywords = []string{"on", "ignoring", "group_left", "group_right"}

// checkExpr returns the problems of one expression: unknown mcpgate_
// metrics, and label names that the metrics they apply to do not have.
func checkExpr(expr string, s schema) []string {
	toks, err := lex(expr)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	report := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	all := metricsIn(toks)
	for _, m := range all {
		if _, ok := s[m]; !ok {
			report("unknown metric %s", m)
		}
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t.kind != tokIdent {
			continue
		}
		switch {
		case isMetric(t):
			if i+1 < len(toks) && toks[i+1].text == "{" {
				for _, l := range matcherLabels(toks[i+1:]) {
					if _, known := s[t.text]; known && !s.hasLabel(t.text, l) {
						report("%s has no label %q", t.text, l)
					}
				}
			}
		case slices.Contains(aggregations, t.text):
			labels, arg := aggregation(toks, i)
			for _, m := range metricsIn(arg) {
				for _, l := range labels {
					if _, known := s[m]; known && !s.hasLabel(m, l) {
						report("%s groups by %q, which %s does not have", t.text, l, m)
					}
				}
			}
		case slices.Contains(matchingKeywords, t.text):
			labels, _ := parenList(toks, i+1)
			for _, l := range labels {
				if !slices.ContainsFunc(all, func(m string) bool { return s.hasLabel(m, l) }) {
					report("%s(%s): no metric of the expression has that label", t.text, l)
				}
			}
		case t.text == "label_values":
			problems = append(problems, checkLabelValues(toks[i+1:], s)...)
		}
	}
	return problems
}

func isMetric(t token) bool {
	return t.kind == tokIdent && strings.HasPrefix(t.text, metricPrefix)
}

// metricsIn returns the distinct mcpgate_ names among toks.
func metricsIn(toks []token) []string {
	var out []string
	for _, t := range toks {
		if isMetric(t) && !slices.Contains(out, t.text) {
			out = append(out, t.text)
		}
	}
	return out
}

// matcherLabels returns the label names of the matchers in toks, which
// start at a selector's "{".
func matcherLabels(toks []token) []string {
	var out []string
	for j := 1; j < len(toks) && toks[j].text != "}"; j++ {
		if toks[j].kind == tokIdent && j+1 < len(toks) && slices.Contains([]string{"=", "!=", "=~", "!~"}, toks[j+1].text) {
			out = append(out, toks[j].text)
		}
	}
	return out
}

// aggregation returns the grouping labels of the aggregation at toks[i] and
// the tokens of its argument, in either order: sum by (l) (arg) or
// sum (arg) by (l).
func aggregation(toks []token, i int) (labels []string, arg []token) {
	j := i + 1
	if j < len(toks) && (toks[j].text == "by" || toks[j].text == "without") {
		labels, j = parenList(toks, j+1)
		arg, _ = parenSpan(toks, j)
		return labels, arg
	}
	arg, j = parenSpan(toks, j)
	if j < len(toks) && (toks[j].text == "by" || toks[j].text == "without") {
		labels, _ = parenList(toks, j+1)
	}
	return labels, arg
}

// parenSpan returns the tokens inside the parentheses opening at toks[j]
// and the index after the closing one.
func parenSpan(toks []token, j int) ([]token, int) {
	if j >= len(toks) || toks[j].text != "(" {
		return nil, j
	}
	depth := 0
	for k := j; k < len(toks); k++ {
		switch toks[k].text {
		case "(":
			depth++
		case ")":
			depth--
			if depth == 0 {
				return toks[j+1 : k], k + 1
			}
		}
	}
	return toks[j+1:], len(toks)
}

// parenList returns the identifiers of a (a, b) list at toks[j], if any.
func parenList(toks []token, j int) ([]string, int) {
	inner, next := parenSpan(toks, j)
	var out []string
	for _, t := range inner {
		if t.kind == tokIdent {
			out = append(out, t.text)
		}
	}
	return out, next
}

// checkLabelValues checks Grafana's label_values(selector, label), whose
// tokens start after the function name.
func checkLabelValues(toks []token, s schema) []string {
	args, _ := parenSpan(toks, 0)
	if len(args) == 0 || !isMetric(args[0]) {
		return nil // label_values(label) names no metric
	}
	metric := args[0].text
	if _, ok := s[metric]; !ok {
		return nil // reported as an unknown metric
	}
	last := args[len(args)-1]
	if len(args) >= 3 && args[len(args)-2].text == "," && last.kind == tokIdent && !s.hasLabel(metric, last.text) {
		return []string{fmt.Sprintf("label_values: %s has no label %q", metric, last.text)}
	}
	return nil
}

// TestCheckExpr proves the checker catches the mistakes it exists for, and
// accepts the query shapes the dashboard and rules use.
func TestCheckExpr(t *testing.T) {
	s, _ := registrySchema(t)
	tests := []struct {
		name, expr string
		problems   int
	}{
		{"misspelt metric", `sum(rate(mcpgate_request_total[5m]))`, 1},
		{"misspelt label in a matcher", `mcpgate_requests_total{srv="a"}`, 1},
		{"label of another metric", `mcpgate_upstream_up{kind="connect"}`, 1},
		{"misspelt label in by", `sum by (srv) (rate(mcpgate_requests_total[5m]))`, 1},
		{"misspelt label in a trailing by", `sum(rate(mcpgate_requests_total[5m])) by (srv)`, 1},
		{"misspelt label in without", `sum without (srv) (mcpgate_upstream_up)`, 1},
		{"le on the native histogram", `histogram_quantile(0.9, sum by (le) (rate(mcpgate_request_duration_seconds[5m])))`, 1},
		{"misspelt label in ignoring", `mcpgate_upstream_up / ignoring(srv) mcpgate_catalog_tools`, 1},
		{"misspelt label in label_values", `label_values(mcpgate_requests_total, srv)`, 1},
		{"misspelt metric in label_values", `label_values(mcpgate_request_total, server)`, 1},
		{"classic buckets", `histogram_quantile(0.99, sum by (server, le) (rate(mcpgate_request_duration_seconds_bucket{method="tools/call", server=~"$server"}[$__rate_interval])))`, 0},
		{"target labels", `sum by (instance, job) (mcpgate_sessions_active)`, 0},
		{"group_left without labels", "sum by (server, outcome) (rate(mcpgate_requests_total[5m]))\n/ ignoring (outcome) group_left\nsum by (server) (rate(mcpgate_requests_total[5m]))", 0},
		{"names in strings are not metrics", `up{job="mcpgate_typo"}`, 0},
		{"offset and unless", `mcpgate_tool_pin_changes_total{state="quarantined"} > 0 unless mcpgate_tool_pin_changes_total offset 15m`, 0},
		{"unterminated string", `mcpgate_requests_total{server="a}`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := checkExpr(tt.expr, s); len(got) != tt.problems {
				t.Errorf("checkExpr(%s) = %q, want %d problems", tt.expr, got, tt.problems)
			}
		})
	}
}
