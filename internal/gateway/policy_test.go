package gateway_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/gateway"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// keyTransport adds an API key to every request.
type keyTransport struct {
	key  string
	base http.RoundTripper
}

func (k keyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Api-Key", k.key)
	return k.base.RoundTrip(r)
}

// connectAs connects a Go SDK client that authenticates with an API key.
func connectAs(t *testing.T, ctx context.Context, endpoint, key string, p *clientProbe) *mcp.ClientSession {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	cs, err := p.client().Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   endpoint,
		HTTPClient: &http.Client{Transport: keyTransport{key: key, base: tr}},
	}, nil)
	if err != nil {
		t.Fatalf("connecting to %s: %v", endpoint, err)
	}
	t.Cleanup(func() {
		cs.Close()
		tr.CloseIdleConnections()
	})
	return cs
}

func keyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// addNamedTool adds a tool that accepts any arguments and says it ran.
func addNamedTool(s *mcp.Server, name, description string, ann *mcp.ToolAnnotations) {
	mcp.AddTool(s, &mcp.Tool{Name: name, Description: description, Annotations: ann},
		func(_ context.Context, _ *mcp.CallToolRequest, _ map[string]any) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name + " ran"}}}, nil, nil
		})
}

// policyUpstreams starts the two servers of the policy tests: db, whose
// annotations are trusted, and files, whose are not.
func policyUpstreams(t *testing.T) (db, files string) {
	t.Helper()
	dbSrv := startSDKServer(t, func(s *mcp.Server) {
		addNamedTool(s, "read_rows", "test tool", &mcp.ToolAnnotations{ReadOnlyHint: true})
		addNamedTool(s, "delete_rows", "test tool", &mcp.ToolAnnotations{})
		addNamedTool(s, "write_note", "test tool", nil)
		s.AddPrompt(&mcp.Prompt{Name: "summary"}, func(context.Context, *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "summarize"}}}}, nil
		})
	}, nil)
	filesSrv := startSDKServer(t, func(s *mcp.Server) {
		addNamedTool(s, "read_file", "test tool", nil)
		// Claims to be read-only; files is not trusted, so the claim is ignored.
		addNamedTool(s, "exec", "test tool", &mcp.ToolAnnotations{ReadOnlyHint: true})
	}, nil)
	return dbSrv.URL, filesSrv.URL
}

// TestPolicyCatalogsAndCalls runs three principals through one policy: each
// sees its own catalog, on /mcp and on /servers/<name>/mcp, and a tool is
// callable exactly when it is listed.
func TestPolicyCatalogsAndCalls(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, files := policyUpstreams(t)
	gw := startGateway(t, fmt.Sprintf(`
listen: 127.0.0.1:0
auth:
  resource: %s
  api_keys:
    - {name: alice, sha256: %q, tenant: prod, groups: [eng]}
    - {name: bob, sha256: %q, tenant: dev, groups: [sales]}
    - {name: carol, sha256: %q, tenant: prod, groups: [admin]}
policy:
  default: deny
  rules:
    - name: engineers-read
      allow: 'principal.groups.exists(g, g == "eng") && tool.read_only'
    - name: sales-notes
      allow: '"sales" in principal.groups && tool.name == "write_note"'
    - name: admins
      allow: '"admin" in principal.groups'
    - name: no-prod-deletes
      deny: 'server == "db" && tool.name.startsWith("delete_") && principal.tenant == "prod"'
      reason: "Deleting in prod is not allowed through agents"
    - name: alice-prompts
      allow: 'principal.subject == "alice"'
      methods: [prompts/get]
    - name: etc-watch
      deny: 'has(args.path) && args.path.startsWith("/etc")'
      mode: dry_run
servers:
  db:
    url: %s
    trusted: true
  files:
    url: %s
    tools:
      read_file:
        annotations: {read_only: true}
`, testResource, keyHash("alice-key-0123456789"), keyHash("bob-key-0123456789"), keyHash("carol-key-0123456789"), db, files), gateway.Options{})

	all := []string{"db__delete_rows", "db__read_rows", "db__write_note", "files__exec", "files__read_file"}
	for _, tc := range []struct {
		who, key string
		want     []string
		prompts  []string
	}{
		{"alice", "alice-key-0123456789", []string{"db__read_rows", "files__read_file"}, []string{"db__summary"}},
		{"bob", "bob-key-0123456789", []string{"db__write_note"}, nil},
		{"carol", "carol-key-0123456789", []string{"db__read_rows", "db__write_note", "files__exec", "files__read_file"}, nil},
	} {
		t.Run(tc.who, func(t *testing.T) {
			cs := connectAs(t, ctx, gw.URL+"/mcp", tc.key, newClientProbe())
			if got := toolNames(t, ctx, cs); !slices.Equal(got, tc.want) {
				t.Errorf("tools on /mcp: %q, want %q", got, tc.want)
			}
			if got := promptNames(t, ctx, cs); !slices.Equal(got, tc.prompts) {
				t.Errorf("prompts on /mcp: %q, want %q", got, tc.prompts)
			}
			// Listed and callable agree, for every tool that exists.
			for _, name := range all {
				res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: map[string]any{}})
				listed := slices.Contains(tc.want, name)
				switch {
				case listed && (err != nil || res.IsError):
					t.Errorf("%s is listed but its call failed: %v %v", name, err, res)
				case !listed && err == nil:
					t.Errorf("%s is not listed but its call succeeded", name)
				case !listed && !isRPCError(err, -32030):
					t.Errorf("%s: want a policy denial (-32030), got %v", name, err)
				}
			}
			// The single-server endpoint shows the same slice of db.
			direct := connectAs(t, ctx, gw.URL+"/servers/db/mcp", tc.key, newClientProbe())
			var wantDB []string
			for _, n := range tc.want {
				if own, ok := strings.CutPrefix(n, "db__"); ok {
					wantDB = append(wantDB, own)
				}
			}
			if got := toolNames(t, ctx, direct); !slices.Equal(got, wantDB) {
				t.Errorf("tools on /servers/db/mcp: %q, want %q", got, wantDB)
			}
		})
	}

	t.Run("denial carries the rule's reason", func(t *testing.T) {
		cs := connectAs(t, ctx, gw.URL+"/mcp", "carol-key-0123456789", newClientProbe())
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "db__delete_rows", Arguments: map[string]any{}})
		if err == nil || !strings.Contains(err.Error(), "Deleting in prod is not allowed through agents") {
			t.Fatalf("delete_rows as carol: %v, want the no-prod-deletes reason", err)
		}
		_, err = cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "db__summary"})
		if err == nil || !strings.Contains(err.Error(), "no rule allows this call") {
			t.Fatalf("prompts/get as carol: %v, want the default denial", err)
		}
	})

	t.Run("dry-run rule logs but allows", func(t *testing.T) {
		cs := connectAs(t, ctx, gw.URL+"/mcp", "alice-key-0123456789", newClientProbe())
		dry := map[string]string{"rule": "etc-watch"}
		before := countSeries(t, gw, "mcpgate_policy_dry_run_total", dry)
		got := callText(t, ctx, cs, &mcp.CallToolParams{Name: "files__read_file", Arguments: map[string]any{"path": "/etc/passwd"}})
		if got != "read_file ran" {
			t.Fatalf("read_file returned %q", got)
		}
		if after := countSeries(t, gw, "mcpgate_policy_dry_run_total", dry); after != before+1 {
			t.Errorf("mcpgate_policy_dry_run_total{rule=etc-watch}: %v → %v, want +1", before, after)
		}
		if !strings.Contains(gw.logs.String(), `"rule":"etc-watch"`) {
			t.Error("no log record names the dry-run rule")
		}
		callText(t, ctx, cs, &mcp.CallToolParams{Name: "files__read_file", Arguments: map[string]any{"path": "/home/alice"}})
		if after := countSeries(t, gw, "mcpgate_policy_dry_run_total", dry); after != before+1 {
			t.Errorf("a call the dry-run rule does not match counted: %v", after)
		}
	})

	t.Run("denials are counted", func(t *testing.T) {
		n := countSeries(t, gw, "mcpgate_policy_denials_total", map[string]string{"server": "db", "tool": "delete_rows", "rule": "no-prod-deletes"})
		if n < 2 { // alice and carol each tried it (bob was denied by default)
			t.Errorf("mcpgate_policy_denials_total{db,delete_rows,no-prod-deletes} = %v, want ≥ 2", n)
		}
	})
}

// countSeries sums the values of the gateway's metric series named name
// whose labels include every pair of want.
func countSeries(t *testing.T, gw *testGateway, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := gw.Gatherer().Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// isRPCError reports whether err carries a JSON-RPC error with code.
func isRPCError(err error, code int64) bool {
	var e *jsonrpc.Error
	return errors.As(err, &e) && e.Code == code
}

// TestPolicyServerRequests: a rule on sampling/createMessage keeps a
// server's sampling requests from the client; the server gets the refusal.
func TestPolicyServerRequests(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sampler := func(s *mcp.Server) {
		mcp.AddTool(s, &mcp.Tool{Name: "summarize"}, func(ctx context.Context, req *mcp.CallToolRequest, _ map[string]any) (*mcp.CallToolResult, any, error) {
			res, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{
				Messages:  []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: "summarize this"}}},
				MaxTokens: 10,
			})
			text := "sampled"
			if err != nil {
				text = "sampling refused: " + err.Error()
			} else if tc, ok := res.Content.(*mcp.TextContent); ok {
				text = "sampled: " + tc.Text
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}, nil, nil
		})
	}
	open, closed := startSDKServer(t, sampler, nil), startSDKServer(t, sampler, nil)
	gw := startGateway(t, fmt.Sprintf(`
listen: 127.0.0.1:0
policy:
  default: allow
  rules:
    - name: no-sampling-for-untrusted
      deny: 'server == "untrusted"'
      methods: [sampling/createMessage]
      reason: "Sampling is not allowed for this server"
servers:
  trusted:
    url: %s
  untrusted:
    url: %s
`, open.URL, closed.URL), gateway.Options{})
	probe := newClientProbe()
	cs, _ := connectGo(t, ctx, gw.URL+"/mcp", probe)
	if got := callText(t, ctx, cs, &mcp.CallToolParams{Name: "trusted__summarize", Arguments: map[string]any{}}); !strings.HasPrefix(got, "sampled: ") {
		t.Fatalf("sampling for the allowed server: %q", got)
	}
	got := callText(t, ctx, cs, &mcp.CallToolParams{Name: "untrusted__summarize", Arguments: map[string]any{}})
	if !strings.Contains(got, "sampling refused") || !strings.Contains(got, "Sampling is not allowed for this server") {
		t.Fatalf("sampling for the denied server: %q, want the policy's refusal", got)
	}
	if n := len(probe.samplingPrompts()); n != 1 {
		t.Errorf("the client answered %d sampling requests, want 1 (the denied one never reached it)", n)
	}
}
