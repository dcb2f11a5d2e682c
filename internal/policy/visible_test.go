package policy

import (
	"math/rand/v2"
	"testing"

	"github.com/mcpgate/mcpgate/internal/config"
)

func TestVisible(t *testing.T) {
	example := examplePolicy()
	policy := func(def string, rules ...config.PolicyRule) config.Policy {
		return config.Policy{Default: def, Rules: rules}
	}
	deny := func(expr string) config.PolicyRule { return config.PolicyRule{Name: "d", Deny: expr} }
	allow := func(expr string) config.PolicyRule { return config.PolicyRule{Name: "a", Allow: expr} }
	resource := func(uri string) func(*Input) {
		return func(in *Input) { in.Method = MethodResourcesRead; in.URI = uri }
	}
	tests := []struct {
		name string
		cfg  config.Policy
		in   *Input
		want bool
	}{
		{"allowed engineer", example, engineer(), true},
		{"not an engineer", example, engineer(func(in *Input) { in.Principal.Groups = nil }), false},
		{"denied whatever the args", example, engineer(func(in *Input) { in.Tool.Name = "delete_rows" }), false},
		{"args are ignored", example, engineer(args(`{"path": "/etc/passwd"}`)), true},
		{"ungoverned method", policy("deny"), engineer(func(in *Input) { in.Method = "tools/list" }), true},
		{"deny on args may not match", policy("allow", deny(`args.path.startsWith("/etc")`)), engineer(), true},
		{"deny certain despite args", policy("allow", deny(`tool.name == "query" || args.a == 1`)), engineer(), false},
		{"deny certainly false", policy("allow", deny(`tool.name == "other" && args.a == 1`)), engineer(), true},
		{"deny error without args hides", policy("allow", deny(`principal.groups[5] == "x"`)), engineer(), false},
		{"deny error with args shows", policy("allow", deny(`principal.groups[5] == "x" && args.a == 1`)), engineer(), true},
		{"allow on args may match", policy("deny", allow(`args.a == 1`)), engineer(), true},
		{"allow certainly false", policy("deny", allow(`tool.name == "other" && args.a == 1`)), engineer(), false},
		{"allow guarded by has", policy("deny", allow(`has(args.a) && principal.subject == "bob"`)), engineer(), false},
		{"dry run deny never hides", policy("allow", config.PolicyRule{Name: "d", Deny: "true", Mode: "dry_run"}), engineer(), true},
		{"dry run allow never shows", policy("deny", config.PolicyRule{Name: "a", Allow: "true", Mode: "dry_run"}), engineer(), false},
		{"server fallback", config.Policy{ServerRequests: "deny"}, engineer(func(in *Input) { in.Method = MethodSampling }), false},
		{"resource template: uri unknown", policy("allow", config.PolicyRule{Name: "d", Deny: `uri.startsWith("file:///secret/")`,
			Methods: []string{MethodResourcesRead}}), engineer(resource("")), true},
		{"resource with uri", policy("allow", config.PolicyRule{Name: "d", Deny: `uri.startsWith("file:///secret/")`,
			Methods: []string{MethodResourcesRead}}), engineer(resource("file:///secret/key")), false},
		{"resource with another uri", policy("allow", config.PolicyRule{Name: "d", Deny: `uri.startsWith("file:///secret/")`,
			Methods: []string{MethodResourcesRead}}), engineer(resource("file:///public/x")), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustNew(t, tt.cfg)
			if got := p.Visible(tt.in); got != tt.want {
				t.Errorf("Visible = %v, want %v", got, tt.want)
			}
			if !tt.want && p.Decide(tt.in).Allow {
				t.Errorf("hidden, yet Decide allows")
			}
		})
	}
}

// argsFree are expressions that read neither args nor uri, with matches
// and errors depending on the input.
var argsFree = []string{
	`true`, `false`,
	`principal.groups.exists(g, g == "eng")`,
	`"admin" in principal.scopes`,
	`principal.tenant == "prod"`,
	`principal.subject.startsWith("a")`,
	`tool.read_only`, `tool.destructive && !tool.idempotent`,
	`tool.name.startsWith("delete_")`,
	`server == "db"`,
	`principal.groups[1] == "eng"`, // errors when there is one group or none
	`method == "prompts/get"`,
	`principal.client_name == "claude-code" || tool.open_world`,
}

// TestVisibleAgreesWithDecide checks, over random policies whose rules
// read neither args nor uri, that Visible is exactly Decide's Allow.
func TestVisibleAgreesWithDecide(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	allMethods := append(append([]string{}, clientMethods...), serverMethods...)
	for i := range 500 {
		cfg := config.Policy{Default: pick("allow", "deny"), ServerRequests: pick("", "allow", "deny")}
		for j := range rng.IntN(5) {
			r := config.PolicyRule{Name: string(rune('a' + j)), Mode: pick("", "enforce", "dry_run")}
			if rng.IntN(2) == 0 {
				r.Allow = pick(argsFree...)
			} else {
				r.Deny = pick(argsFree...)
			}
			if rng.IntN(3) == 0 {
				r.Methods = []string{pick(allMethods...), pick(allMethods...)}
			}
			cfg.Rules = append(cfg.Rules, r)
		}
		p := mustNew(t, cfg)
		for range 20 {
			in := randomInput(rng)
			in.Method = pick(allMethods...)
			if v, d := p.Visible(in), p.Decide(in); v != d.Allow {
				t.Fatalf("policy %d %+v\ninput %+v\nVisible = %v, Decide = %+v", i, cfg, in, v, d)
			}
		}
	}
}

func randomInput(rng *rand.Rand) *Input {
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	in := engineer()
	in.Principal.Subject = pick("alice", "bob", "")
	in.Principal.Tenant = pick("prod", "dev")
	in.Principal.Groups = [][]string{nil, {"eng"}, {"ops", "eng"}, {"eng", "ops"}}[rng.IntN(4)]
	in.Principal.Scopes = [][]string{nil, {"admin"}}[rng.IntN(2)]
	in.ClientName = pick("claude-code", "other")
	in.Server = pick("db", "files")
	in.Tool = Tool{Name: pick("query", "delete_rows"), ReadOnly: rng.IntN(2) == 0, Destructive: rng.IntN(2) == 0,
		Idempotent: rng.IntN(2) == 0, OpenWorld: rng.IntN(2) == 0}
	in.Args = []byte(pick(``, `{}`, `{"path": "/etc/x"}`, `[`, `{"n": 1}`))
	return in
}
