package policy

import (
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // time.getHours("Europe/Paris") must not depend on the host

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/identity"
)

// engineer is a read-only call by an engineer, allowed by the example
// policy; cases change what they test.
func engineer(mods ...func(*Input)) *Input {
	in := &Input{
		Principal: identity.Principal{Method: "jwt", Issuer: "https://idp.example.com", Subject: "alice",
			Tenant: "prod", Groups: []string{"ops", "eng"}, Scopes: []string{"tools:read"}},
		ClientName:    "claude-code",
		ClientVersion: "2.1.0",
		Server:        "db",
		Tool:          Tool{Name: "query", Version: "1", ReadOnly: true},
		Method:        MethodToolsCall,
		Session:       "s-1",
		Args:          []byte(`{"sql":"select 1"}`),
		Time:          time.Date(2026, 3, 4, 9, 30, 0, 0, time.UTC),
	}
	for _, m := range mods {
		m(in)
	}
	return in
}

func args(s string) func(*Input) { return func(in *Input) { in.Args = []byte(s) } }

func mustNew(t testing.TB, cfg config.Policy) *Policy {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

// want is the expected Decision; errHas is a substring of Err, "" for none.
type want struct {
	allow  bool
	rule   string
	reason string
	dryRun []string
	errHas string
}

func check(t *testing.T, d Decision, w want) {
	t.Helper()
	if d.Allow != w.allow || d.Rule != w.rule || d.Reason != w.reason || !slices.Equal(d.DryRun, w.dryRun) {
		t.Errorf("Decide = {Allow:%v Rule:%q Reason:%q DryRun:%q}, want {Allow:%v Rule:%q Reason:%q DryRun:%q}",
			d.Allow, d.Rule, d.Reason, d.DryRun, w.allow, w.rule, w.reason, w.dryRun)
	}
	switch {
	case w.errHas == "" && d.Err != nil:
		t.Errorf("Err = %v, want none", d.Err)
	case w.errHas != "" && (d.Err == nil || !strings.Contains(d.Err.Error(), w.errHas)):
		t.Errorf("Err = %v, want one containing %q", d.Err, w.errHas)
	}
}

func TestDecideExample(t *testing.T) {
	p := mustNew(t, examplePolicy())
	prodDelete := func(in *Input) { in.Tool = Tool{Name: "delete_rows", ReadOnly: true} }
	tests := []struct {
		name string
		in   *Input
		want want
	}{
		{"engineer reads", engineer(), want{allow: true, rule: "engineers-read"}},
		{"not an engineer", engineer(func(in *Input) { in.Principal.Groups = []string{"ops"} }),
			want{reason: defaultReasonClient}},
		{"no groups", engineer(func(in *Input) { in.Principal.Groups = nil }), want{reason: defaultReasonClient}},
		{"write tool", engineer(func(in *Input) { in.Tool.ReadOnly = false }), want{reason: defaultReasonClient}},
		{"deny wins over allow", engineer(prodDelete),
			want{rule: "no-prod-deletes", reason: "Deleting in prod is not allowed through agents"}},
		{"delete outside prod", engineer(prodDelete, func(in *Input) { in.Principal.Tenant = "dev" }),
			want{allow: true, rule: "engineers-read"}},
		{"delete on another server", engineer(prodDelete, func(in *Input) { in.Server = "files" }),
			want{allow: true, rule: "engineers-read"}},
		{"dry run deny reported", engineer(args(`{"path":"/etc/shadow"}`)),
			want{allow: true, rule: "engineers-read", dryRun: []string{"try-new-rule"}}},
		{"dry run deny not matching", engineer(args(`{"path":"/home/alice"}`)), want{allow: true, rule: "engineers-read"}},
		{"dry run deny on a denied call", engineer(args(`{"path":"/etc/shadow"}`), func(in *Input) { in.Tool.ReadOnly = false }),
			want{reason: defaultReasonClient}},
		{"no args", engineer(args(``)), want{allow: true, rule: "engineers-read"}},
		{"null args", engineer(args(`null`)), want{allow: true, rule: "engineers-read"}},
		{"rules apply to tools/call only", engineer(func(in *Input) { in.Method = MethodPromptsGet }),
			want{reason: defaultReasonClient}},
		{"resources fall back to default", engineer(func(in *Input) { in.Method = MethodResourcesRead }),
			want{reason: defaultReasonClient}},
		{"server requests fall back to allow", engineer(func(in *Input) { in.Method = MethodSampling }), want{allow: true}},
		{"ungoverned method", engineer(func(in *Input) { in.Method = "tools/list" }), want{allow: true}},
		{"ping", engineer(func(in *Input) { in.Method = "ping" }), want{allow: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { check(t, p.Decide(tt.in), tt.want) })
	}
}

func TestDecideSemantics(t *testing.T) {
	rule := func(name, kind, expr string, extra ...func(*config.PolicyRule)) config.PolicyRule {
		r := config.PolicyRule{Name: name}
		if kind == "allow" {
			r.Allow = expr
		} else {
			r.Deny = expr
		}
		for _, e := range extra {
			e(&r)
		}
		return r
	}
	dry := func(r *config.PolicyRule) { r.Mode = "dry_run" }
	methods := func(ms ...string) func(*config.PolicyRule) {
		return func(r *config.PolicyRule) { r.Methods = ms }
	}
	method := func(m string) func(*Input) { return func(in *Input) { in.Method = m } }
	tests := []struct {
		name string
		cfg  config.Policy
		in   *Input
		want want
	}{
		{"zero policy allows", config.Policy{}, engineer(), want{allow: true}},
		{"default deny without rules", config.Policy{Default: "deny"}, engineer(), want{reason: defaultReasonClient}},
		{"default allow", config.Policy{Default: "allow", Rules: []config.PolicyRule{rule("bob", "allow", `principal.subject == "bob"`)}},
			engineer(), want{allow: true}},
		{"first matching deny decides", config.Policy{Default: "allow", Rules: []config.PolicyRule{
			rule("a", "deny", `false`), rule("b", "deny", `true`), rule("c", "deny", `true`)}},
			engineer(), want{rule: "b", reason: "denied by policy rule b"}},
		{"first matching allow decides", config.Policy{Default: "deny", Rules: []config.PolicyRule{
			rule("a", "allow", `false`), rule("b", "allow", `true`), rule("c", "allow", `true`)}},
			engineer(), want{allow: true, rule: "b"}},
		{"dry run allow on default deny", config.Policy{Default: "deny", Rules: []config.PolicyRule{
			rule("maybe", "allow", `principal.subject == "alice"`, dry), rule("never", "allow", `false`, dry)}},
			engineer(), want{reason: defaultReasonClient, dryRun: []string{"maybe"}}},
		{"dry run allow not reported on rule deny", config.Policy{Default: "deny", Rules: []config.PolicyRule{
			rule("no", "deny", `true`), rule("maybe", "allow", `true`, dry)}},
			engineer(), want{rule: "no", reason: "denied by policy rule no"}},
		{"dry run allow not reported on allow", config.Policy{Default: "allow", Rules: []config.PolicyRule{
			rule("maybe", "allow", `true`, dry)}},
			engineer(), want{allow: true}},
		{"dry run deny on default allow", config.Policy{Default: "allow", Rules: []config.PolicyRule{
			rule("d1", "deny", `true`, dry), rule("d2", "deny", `false`, dry), rule("d3", "deny", `tool.read_only`, dry)}},
			engineer(), want{allow: true, dryRun: []string{"d1", "d3"}}},
		{"dry run deny does not deny", config.Policy{Default: "deny", Rules: []config.PolicyRule{
			rule("ok", "allow", `true`), rule("d", "deny", `true`, dry)}},
			engineer(), want{allow: true, rule: "ok", dryRun: []string{"d"}}},
		{"method filter skips rule", config.Policy{Default: "allow", Rules: []config.PolicyRule{
			rule("prompts", "deny", `true`, methods(MethodPromptsGet))}},
			engineer(), want{allow: true}},
		{"method filter applies rule", config.Policy{Default: "allow", Rules: []config.PolicyRule{
			rule("prompts", "deny", `tool.name == "query"`, methods(MethodPromptsGet, MethodToolsCall))}},
			engineer(method(MethodPromptsGet)), want{rule: "prompts", reason: "denied by policy rule prompts"}},
		{"server request denied by rule", config.Policy{Default: "deny", Rules: []config.PolicyRule{
			rule("no-sampling", "deny", `server == "db"`, methods(MethodSampling))}},
			engineer(method(MethodSampling)), want{rule: "no-sampling", reason: "denied by policy rule no-sampling"}},
		{"server requests default allow", config.Policy{Default: "deny", Rules: []config.PolicyRule{
			rule("no-sampling", "deny", `server == "other"`, methods(MethodSampling))}},
			engineer(method(MethodSampling)), want{allow: true}},
		{"server requests deny", config.Policy{Default: "allow", ServerRequests: "deny", Rules: []config.PolicyRule{
			rule("roots", "allow", `server == "db"`, methods(MethodRootsList))}},
			engineer(method(MethodElicitation)), want{reason: defaultReasonRequest}},
		{"server request allowed by rule", config.Policy{Default: "allow", ServerRequests: "deny", Rules: []config.PolicyRule{
			rule("roots", "allow", `server == "db"`, methods(MethodRootsList))}},
			engineer(method(MethodRootsList)), want{allow: true, rule: "roots"}},
		{"server requests do not use default", config.Policy{Default: "deny", ServerRequests: "allow"},
			engineer(method(MethodElicitation)), want{allow: true}},
		{"deny error fails closed", config.Policy{Default: "allow", Rules: []config.PolicyRule{
			rule("etc", "deny", `args.path.startsWith("/etc")`)}},
			engineer(), want{rule: "etc", reason: "denied by policy rule etc: the rule could not be evaluated for this call", errHas: "policy rule etc could not be evaluated: no such key: path"}},
		{"deny error stops at first", config.Policy{Default: "allow", Rules: []config.PolicyRule{
			rule("etc", "deny", `args.path.startsWith("/etc")`), rule("all", "deny", `true`)}},
			engineer(), want{rule: "etc", reason: "denied by policy rule etc: the rule could not be evaluated for this call", errHas: "no such key"}},
		{"guarded deny has no error", config.Policy{Default: "allow", Rules: []config.PolicyRule{
			rule("etc", "deny", `has(args.path) && args.path.startsWith("/etc")`)}},
			engineer(), want{allow: true}},
		{"deny type mismatch fails closed", config.Policy{Default: "allow", Rules: []config.PolicyRule{
			rule("etc", "deny", `args.path.startsWith("/etc")`)}},
			engineer(args(`{"path": 7}`)), want{rule: "etc", reason: "denied by policy rule etc: the rule could not be evaluated for this call", errHas: "no such overload"}},
		{"allow error does not match", config.Policy{Default: "deny", Rules: []config.PolicyRule{
			rule("small", "allow", `args.limit < 100`)}},
			engineer(), want{reason: defaultReasonClient, errHas: "policy rule small could not be evaluated"}},
		{"allow error then another allow", config.Policy{Default: "deny", Rules: []config.PolicyRule{
			rule("small", "allow", `args.limit < 100`), rule("all", "allow", `true`)}},
			engineer(), want{allow: true, rule: "all", errHas: "policy rule small"}},
		{"dry run deny error reported", config.Policy{Default: "allow", Rules: []config.PolicyRule{
			rule("etc", "deny", `args.path == "/etc"`, dry)}},
			engineer(), want{allow: true, dryRun: []string{"etc"}, errHas: "policy rule etc"}},
		{"args not an object", config.Policy{Default: "allow", Rules: []config.PolicyRule{
			rule("etc", "deny", `has(args.path)`)}},
			engineer(args(`[1, 2]`)), want{rule: "etc", reason: "denied by policy rule etc: the rule could not be evaluated for this call", errHas: "args: not a JSON object"}},
		{"args invalid JSON", config.Policy{Default: "allow", Rules: []config.PolicyRule{
			rule("etc", "deny", `has(args.path)`)}},
			engineer(args(`{"path": `)), want{rule: "etc", reason: "denied by policy rule etc: the rule could not be evaluated for this call", errHas: "args: invalid JSON"}},
		{"bad args unread", config.Policy{Default: "allow", Rules: []config.PolicyRule{
			rule("x", "deny", `server == "x"`)}},
			engineer(args(`{"path": `)), want{allow: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { check(t, mustNew(t, tt.cfg).Decide(tt.in), tt.want) })
	}
}

// TestDecideVariables checks that each variable reaches expressions with
// the value and type documented.
func TestDecideVariables(t *testing.T) {
	tests := []struct {
		expr string
		in   *Input
		want bool
	}{
		{`principal.subject == "alice"`, engineer(), true},
		{`principal.tenant == "prod"`, engineer(), true},
		{`"eng" in principal.groups`, engineer(), true},
		{`principal.groups.exists(g, g.startsWith("op"))`, engineer(), true},
		{`principal.groups.size() == 0`, engineer(func(in *Input) { in.Principal.Groups = nil }), true},
		{`"tools:read" in principal.scopes`, engineer(), true},
		{`"tools:write" in principal.scopes`, engineer(), false},
		{`principal.issuer == "https://idp.example.com"`, engineer(), true},
		{`principal.method == "jwt"`, engineer(), true},
		{`principal.client_name == "claude-code" && principal.client_version.startsWith("2.")`, engineer(), true},
		{`has(principal.tenant)`, engineer(), true},
		{`has(principal.tenant)`, engineer(func(in *Input) { in.Principal.Tenant = "" }), false},
		{`server == "db"`, engineer(), true},
		{`tool.name == "query" && tool.version == "1"`, engineer(), true},
		{`tool.read_only && !tool.destructive && !tool.idempotent && !tool.open_world`, engineer(), true},
		{`tool.destructive && tool.idempotent && tool.open_world`,
			engineer(func(in *Input) { in.Tool = Tool{Destructive: true, Idempotent: true, OpenWorld: true} }), true},
		{`uri.startsWith("file:///secret/")`, engineer(func(in *Input) { in.URI = "file:///secret/key" }), true},
		{`uri == ""`, engineer(), true},
		{`method == "tools/call"`, engineer(), true},
		{`session == "s-1"`, engineer(), true},
		{`time.getHours() == 9 && time.getDayOfWeek() == 3`, engineer(), true},
		{`time > timestamp("2026-01-01T00:00:00Z")`, engineer(), true},
		{`time.getHours("Europe/Paris") == 10`, engineer(), true},
		{`flags.size() == 0 && !("beta" in flags)`, engineer(), true},
		{`args.sql == "select 1"`, engineer(), true},
		{`args.size() == 0`, engineer(args(``)), true},
		{`args.limit == 10 && args.limit > 5 && args.limit < 10.5`, engineer(args(`{"limit": 10}`)), true},
		{`args.limit == 10`, engineer(args(`{"limit": 10.0}`)), true},
		{`args.limit > 5`, engineer(args(`{"limit": 5.5}`)), true},
		{`args.limit + 1 == 11`, engineer(args(`{"limit": 10}`)), true},
		{`args.limit == -3`, engineer(args(`{"limit": -3}`)), true},
		{`args.big > 9223372036854775807`, engineer(args(`{"big": 1e20}`)), true},
		{`args.big > 9223372036854775807`, engineer(args(`{"big": 100000000000000000000}`)), true},
		{`args.force == true && !args.dry`, engineer(args(`{"force": true, "dry": false}`)), true},
		{`args.x == null`, engineer(args(`{"x": null}`)), true},
		{`args.opts.mode == "fast" && args.opts.level >= 2`, engineer(args(`{"opts": {"mode": "fast", "level": 2}}`)), true},
		{`"b" in args.tags && args.tags.size() == 3 && args.tags[2] == 1`, engineer(args(`{"tags": ["a", "b", 1]}`)), true},
		{`args.items.exists(i, i.id == 2)`, engineer(args(`{"items": [{"id": 1}, {"id": 2}]}`)), true},
		{`args.path == "/etc/é\"x"`, engineer(args(`{"path": "\u002Fetc/\u00e9\"x"}`)), true},
		{`args["odd key"] == 1`, engineer(args(` {"odd key": 1} `)), true},
		{`!has(args.path)`, engineer(), true},
		{`type(args.path) == string && args.path == "/x"`, engineer(args(`{"path": "/x"}`)), true},
		{`type(args.path) == string && args.path == "/x"`, engineer(args(`{"path": 7}`)), false},
		{`double(args.limit) * 1.5 == 15.0`, engineer(args(`{"limit": 10}`)), true},
		{`args.ratio == 1`, engineer(args(`{"ratio": 1.0}`)), true},
		{`time.getDayOfWeek() in [1, 2, 3, 4, 5] && time < timestamp("2026-07-01T00:00:00Z")`, engineer(), true},
		{`tool.name.lowerAscii() == "query" && "a,b".split(",").size() == 2`, engineer(), true},
		{`principal.scopes.exists(s, s.startsWith("tools:")) && principal.groups.all(g, g != "contractors")`, engineer(), true},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			p := mustNew(t, config.Policy{Default: "deny", Rules: []config.PolicyRule{{Name: "r", Allow: tt.expr}}})
			d := p.Decide(tt.in)
			if d.Err != nil {
				t.Fatalf("Err = %v", d.Err)
			}
			if d.Allow != tt.want {
				t.Errorf("Allow = %v, want %v", d.Allow, tt.want)
			}
		})
	}
}

func TestNilPolicy(t *testing.T) {
	var p *Policy
	if p.Enabled() {
		t.Error("nil policy enabled")
	}
	if d := p.Decide(engineer()); !d.Allow {
		t.Errorf("nil policy denied: %+v", d)
	}
	if !p.Visible(engineer()) {
		t.Error("nil policy hides")
	}
}

func TestEnabled(t *testing.T) {
	tests := []struct {
		cfg  config.Policy
		want bool
	}{
		{config.Policy{}, false},
		{config.Policy{Default: "allow"}, false},
		{config.Policy{ServerRequests: "allow"}, false},
		{config.Policy{Default: "deny"}, true},
		{config.Policy{ServerRequests: "deny"}, true},
		{examplePolicy(), true},
	}
	for _, tt := range tests {
		if got := mustNew(t, tt.cfg).Enabled(); got != tt.want {
			t.Errorf("New(%+v).Enabled() = %v, want %v", tt.cfg, got, tt.want)
		}
	}
}
