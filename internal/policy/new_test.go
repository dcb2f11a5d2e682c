package policy

import (
	"errors"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/config"
)

func TestNewErrors(t *testing.T) {
	cfg := config.Policy{
		Default: "deny",
		Rules: []config.PolicyRule{
			{Name: "ok", Allow: `true`},
			{Name: "syntax", Allow: `principal.subject == `},
			{Name: "not-bool", Deny: `principal.subject`},
			{Name: "undeclared", Deny: `argz.path == "/"`},
			{Name: "no-field", Allow: `principal.subjct == "x"`},
			{Name: "expensive", Deny: `args.items.exists(x, args.items.exists(y, x == y))`},
			{Name: "multi", Allow: "true &&\n  nope"},
			{Name: "both", Allow: `true`, Deny: `true`},
			{Name: "neither"},
			{Name: "bad-mode", Allow: `true`, Mode: "audit"},
			{Name: "bad-method", Allow: `true`, Methods: []string{"tools/list"}},
			{Name: "", Allow: `true`},
		},
	}
	_, err := New(cfg)
	ps, ok := errors.AsType[config.Problems](err)
	if !ok {
		t.Fatalf("New error = %T %v, want config.Problems", err, err)
	}
	want := []string{
		`policy.rules[1].allow: Syntax error: mismatched input '<EOF>' expecting `,
		`policy.rules[2].deny: must be a bool expression, got string`,
		`policy.rules[3].deny: undeclared reference to 'argz' (did you mean 'args'?) (column 1)`,
		`policy.rules[4].allow: undefined field 'subjct' (column 10)`,
		`policy.rules[5].deny: too expensive: estimated worst-case cost 106007003 exceeds the limit of 100000 (for lists, maps and strings of up to 1000 entries)`,
		`policy.rules[6].allow: undeclared reference to 'nope' (line 2, column 3)`,
		`policy.rules[7]: must set only one of allow or deny, not both; write two rules`,
		`policy.rules[8]: must set allow or deny to a CEL expression`,
		`policy.rules[9].mode: must be one of enforce, dry_run, got "audit"`,
		`policy.rules[10].methods[0]: must be one of tools/call, prompts/get, resources/read, sampling/createMessage, elicitation/create, roots/list, got "tools/list"`,
		`policy.rules[11].name: must be set`,
	}
	if len(ps) != len(want) {
		t.Errorf("got %d problems, want %d:\n%v", len(ps), len(want), err)
	}
	for i, w := range want {
		if i >= len(ps) {
			break
		}
		if got := ps[i].String(); !strings.HasPrefix(got, w) {
			t.Errorf("problem %d = %q\nwant prefix %q", i, got, w)
		}
	}
}

func TestNewFallbacks(t *testing.T) {
	tests := []struct {
		name string
		cfg  config.Policy
		want string
	}{
		{"default required with rules", config.Policy{Rules: []config.PolicyRule{{Name: "a", Allow: "true"}}},
			"policy.default: must be set to allow or deny when rules are given"},
		{"bad default", config.Policy{Default: "maybe"}, `policy.default: must be one of allow, deny, got "maybe"`},
		{"bad server_requests", config.Policy{ServerRequests: "Deny"}, `policy.server_requests: must be one of allow, deny, got "Deny"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("New error = %v, want prefix %q", err, tt.want)
			}
		})
	}
}

// TestExpensiveButBounded shows the two cost limits at work: a single loop
// over args passes the load-time estimate, and an input far larger than
// the estimate assumes stops at the runtime limit, failing closed.
func TestRuntimeCostLimit(t *testing.T) {
	p := mustNew(t, config.Policy{Default: "allow", Rules: []config.PolicyRule{
		{Name: "loop", Deny: `args.items.exists(i, i == "needle")`},
	}})
	small := engineer(args(`{"items": ["a", "b", "needle"]}`))
	if d := p.Decide(small); d.Allow || d.Err != nil {
		t.Errorf("small input: %+v", d)
	}
	var b strings.Builder
	b.WriteString(`{"items": [`)
	for i := range 100_000 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"x"`)
	}
	b.WriteString(`]}`)
	d := p.Decide(engineer(args(b.String())))
	if d.Allow || d.Rule != "loop" || d.Err == nil || !strings.Contains(d.Err.Error(), "cost limit exceeded") {
		t.Errorf("huge input: %+v", d)
	}
}

// TestConfigExample compiles the policy of the config golden file, which
// docs/policy.md shows, as loaded and validated by the config package.
func TestConfigExample(t *testing.T) {
	c, err := config.Load("../config/testdata/policy_full.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	p := mustNew(t, c.Policy)
	tests := []struct {
		in    *Input
		allow bool
	}{
		{engineer(), true},
		{engineer(func(in *Input) { in.Tool.Name = "delete_rows" }), false},
		{engineer(func(in *Input) { in.Method = MethodPromptsGet }), true},
		{engineer(func(in *Input) { in.Method = MethodResourcesRead; in.URI = "file:///srv/public/a" }), true},
		{engineer(func(in *Input) { in.Method = MethodResourcesRead; in.URI = "file:///etc/passwd" }), false},
		{engineer(func(in *Input) { in.Method = MethodSampling }), false},
		{engineer(func(in *Input) { in.Method = MethodSampling; in.Server = "files" }), true},
	}
	for _, tt := range tests {
		if d := p.Decide(tt.in); d.Allow != tt.allow {
			t.Errorf("Decide(%s %s %s) = %+v, want Allow %v", tt.in.Method, tt.in.Tool.Name, tt.in.URI, d, tt.allow)
		}
	}
}

// TestConcurrent runs Decide and Visible from many goroutines, for the
// race detector: a Policy is shared by every request.
func TestConcurrent(t *testing.T) {
	p := mustNew(t, examplePolicy())
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				in := engineer(args(`{"path":"/etc/x"}`))
				if (g+i)%2 == 0 {
					in.Principal.Groups = nil
				}
				d, v := p.Decide(in), p.Visible(in)
				if d.Allow != v {
					t.Errorf("Decide %+v, Visible %v", d, v)
					return
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
}
