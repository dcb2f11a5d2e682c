package policy

import (
	"testing"

	"cel.dev/cel-go/common/types"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/identity"
)

// fuzzPolicy mixes rules on args (some unguarded, so that they fail on
// most inputs) with rules on everything else.
func fuzzPolicy() config.Policy {
	return config.Policy{
		Default:        "deny",
		ServerRequests: "allow",
		Rules: []config.PolicyRule{
			{Name: "engineers-read", Allow: `principal.groups.exists(g, g == "eng") && tool.read_only`},
			{Name: "no-prod-deletes", Deny: `server == "db" && tool.name.startsWith("delete_") && principal.tenant == "prod"`},
			{Name: "etc", Deny: `args.path.startsWith("/etc")`},
			{Name: "small", Allow: `has(args.limit) && args.limit < 10 && principal.subject != "mallory"`},
			{Name: "mallory", Deny: `principal.subject == "mallory" || (has(args.path) && args.path.contains(".."))`},
			{Name: "wide", Allow: `tool.name.endsWith("_any") || args.size() > 3`},
			{Name: "typed", Allow: `args.n + 1 > 2`},
			{Name: "locked", Deny: `principal.tenant == "locked" && args.size() >= 0`},
			{Name: "anonymous", Deny: `principal.subject == ""`, Methods: []string{MethodToolsCall, MethodPromptsGet}},
			{Name: "destructive", Deny: `tool.destructive && !("admin" in principal.scopes)`},
			{Name: "try", Deny: `args.items.exists(i, i == "x")`, Mode: "dry_run"},
			{Name: "sampling", Deny: `server == "db" && has(args.messages)`, Methods: []string{MethodSampling}},
			{Name: "files", Allow: `uri.startsWith("file:///pub/")`, Methods: []string{MethodResourcesRead}},
		},
	}
}

// fuzzArgsFree holds rules that read neither args nor uri, for which
// Visible must equal Decide.
func fuzzArgsFree() config.Policy {
	return config.Policy{
		Default: "deny",
		Rules: []config.PolicyRule{
			{Name: "engineers-read", Allow: `principal.groups.exists(g, g == "eng") && tool.read_only`},
			{Name: "no-prod-deletes", Deny: `server == "db" && tool.name.startsWith("delete_") && principal.tenant == "prod"`},
			{Name: "second-group", Deny: `principal.groups[1] == "ops"`},
			{Name: "idempotent", Allow: `tool.idempotent && principal.tenant != ""`, Methods: []string{MethodToolsCall, MethodPromptsGet}},
		},
	}
}

func FuzzDecide(f *testing.F) {
	f.Add([]byte(`{"path":"/etc/passwd"}`), "alice", "prod", "eng", "query", uint8(1), uint8(0))
	f.Add([]byte(`{"limit":3}`), "bob", "dev", "ops", "delete_rows", uint8(3), uint8(1))
	f.Add([]byte(`{"n":1.5,"items":["x"]}`), "", "locked", "", "x_any", uint8(15), uint8(2))
	f.Add([]byte(`[1]`), "mallory", "", "eng", "", uint8(0), uint8(3))
	f.Add([]byte(`{"a":1,"b":2,"c":3,"d":{"e":[null,true]}}`), "carol", "prod", "eng", "read", uint8(2), uint8(4))
	f.Add([]byte(`{"path":"../x","limit":9.99}`), "dave", "", "", "delete_", uint8(4), uint8(5))
	mixed, err := New(fuzzPolicy())
	if err != nil {
		f.Fatal(err)
	}
	free, err := New(fuzzArgsFree())
	if err != nil {
		f.Fatal(err)
	}
	methods := append(append([]string{}, clientMethods...), serverMethods...)
	f.Fuzz(func(t *testing.T, rawArgs []byte, subject, tenant, group, tool string, flags, method uint8) {
		in := &Input{
			Principal: identity.Principal{Method: "jwt", Subject: subject, Tenant: tenant, Groups: []string{"x", group}},
			Server:    "db",
			Tool: Tool{Name: tool, ReadOnly: flags&1 != 0, Destructive: flags&2 != 0,
				Idempotent: flags&4 != 0, OpenWorld: flags&8 != 0},
			Method: methods[int(method)%len(methods)],
		}
		if flags&16 != 0 {
			in.Principal.Groups = in.Principal.Groups[1:]
		}
		if flags&32 != 0 {
			in.URI = "file:///pub/" + tool
		}
		if flags&64 != 0 {
			in.Principal.Scopes = []string{"admin"}
		}
		visible := mixed.Visible(in)
		// Visible must not read the arguments it ignores.
		in.Args = rawArgs
		if mixed.Visible(in) != visible {
			t.Fatalf("Visible depends on Args %q", rawArgs)
		}
		if !visible {
			for _, a := range [][]byte{rawArgs, nil, []byte(`{}`), []byte(`{"path":"/tmp","limit":1,"n":5}`), []byte(`{"a":1,"b":2,"c":3,"d":4}`)} {
				in.Args = a
				if d := mixed.Decide(in); d.Allow {
					t.Fatalf("hidden, yet Decide(args %q) allows: %+v (input %+v)", a, d, in)
				}
			}
		}
		in.Args = rawArgs
		if v, d := free.Visible(in), free.Decide(in); v != d.Allow {
			t.Fatalf("rules without args: Visible = %v, Decide = %+v (input %+v)", v, d, in)
		}
	})
}

// FuzzParseArgs checks the arguments parser against encoding/json: it
// accepts exactly the JSON objects, and decodes them to the same values.
func FuzzParseArgs(f *testing.F) {
	for _, s := range []string{``, `null`, `{}`, `{"a":1}`, `{"a":[1,2.5,-3e2,"x\u00e9\n",true,false,null,{}]}`,
		`{"a":1,}`, `{"a" 1}`, `[1]`, `"s"`, `{"a":01}`, `{"a":-}`, `{"a":1e}`, `{"\ud800":"\xff"}`, ` { } `, `{}x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got := parseArgs(raw)
		want, wantOK := decodeStd(raw)
		if gotOK := !types.IsError(got); gotOK != wantOK {
			t.Fatalf("parseArgs(%q) = %v, want ok=%v", raw, got, wantOK)
		}
		if wantOK && !sameJSON(got, want) {
			t.Fatalf("parseArgs(%q) = %v, encoding/json gives %v", raw, got, want)
		}
	})
}
