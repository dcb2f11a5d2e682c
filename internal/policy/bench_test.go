package policy

import (
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/identity"
)

// examplePolicy is the policy of docs/policy.md.
func examplePolicy() config.Policy {
	return config.Policy{
		Default: "deny",
		Rules: []config.PolicyRule{
			{Name: "engineers-read", Allow: `principal.groups.exists(g, g == "eng") && tool.read_only`},
			{Name: "no-prod-deletes", Deny: `server == "db" && tool.name.startsWith("delete_") && principal.tenant == "prod"`,
				Reason: "Deleting in prod is not allowed through agents"},
			{Name: "try-new-rule", Deny: `has(args.path) && args.path.startsWith("/etc")`, Mode: "dry_run"},
		},
	}
}

func BenchmarkDecide(b *testing.B) {
	p, err := New(examplePolicy())
	if err != nil {
		b.Fatal(err)
	}
	in := &Input{
		Principal: identity.Principal{Method: "jwt", Subject: "alice", Tenant: "prod", Groups: []string{"ops", "eng"}},
		Server:    "db",
		Tool:      Tool{Name: "query", ReadOnly: true},
		Method:    MethodToolsCall,
		Args:      []byte(`{"path":"/home/alice","limit":10}`),
		Time:      time.Unix(1700000000, 0),
	}
	if d := p.Decide(in); !d.Allow || d.Rule != "engineers-read" {
		b.Fatalf("Decide = %+v", d)
	}
	b.ReportAllocs()
	for b.Loop() {
		p.Decide(in)
	}
}

// BenchmarkVisible is one entry of a tools/list under the example policy,
// whose dry-run rule on args is skipped and whose others read no args.
func BenchmarkVisible(b *testing.B) {
	p, err := New(examplePolicy())
	if err != nil {
		b.Fatal(err)
	}
	in := &Input{
		Principal: identity.Principal{Method: "jwt", Subject: "alice", Tenant: "prod", Groups: []string{"ops", "eng"}},
		Server:    "db",
		Tool:      Tool{Name: "query", ReadOnly: true},
		Method:    MethodToolsCall,
	}
	if !p.Visible(in) {
		b.Fatal("not visible")
	}
	b.ReportAllocs()
	for b.Loop() {
		p.Visible(in)
	}
}
