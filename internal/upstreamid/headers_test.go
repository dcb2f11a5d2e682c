package upstreamid_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpgate/mcpgate/internal/identity"
	"github.com/mcpgate/mcpgate/internal/upstreamid"
)

func TestHeaders(t *testing.T) {
	tests := []struct {
		name                  string
		p                     identity.Principal
		client, session, tool string
		want                  http.Header
	}{
		{
			name:   "every header",
			p:      identity.Principal{Method: "jwt", Subject: "alice", Tenant: "acme", Groups: []string{"dev", "ops"}},
			client: "claude-code", session: "s-1", tool: "echo",
			want: http.Header{
				"X-Mcpgate-Subject": {"alice"}, "X-Mcpgate-Tenant": {"acme"}, "X-Mcpgate-Groups": {"dev,ops"},
				"X-Mcpgate-Client": {"claude-code"}, "X-Mcpgate-Session": {"s-1"}, "X-Mcpgate-Tool": {"echo"},
			},
		},
		{
			name: "empty ones left out",
			p:    identity.Principal{Method: "api_key", Subject: "ci-bot", Groups: []string{""}},
			want: http.Header{"X-Mcpgate-Subject": {"ci-bot"}},
		},
		{
			name:   "header injection is escaped",
			p:      identity.Principal{Subject: "eve\r\nX-Mcpgate-Subject: admin", Tenant: "a\x00b", Groups: []string{"a,b", "c"}},
			client: "Jos\u00e9 100%", tool: "t\x7f",
			want: http.Header{
				"X-Mcpgate-Subject": {"eve%0D%0AX-Mcpgate-Subject:%20admin"}, "X-Mcpgate-Tenant": {"a%00b"},
				"X-Mcpgate-Groups": {"a%2Cb,c"}, "X-Mcpgate-Client": {"Jos%C3%A9%20100%25"}, "X-Mcpgate-Tool": {"t%7F"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := upstreamid.Headers(tt.p, tt.client, tt.session, tt.tool)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Headers (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzHeaders: whatever a caller's identity holds, every header value is
// visible ASCII and decodes back to what was given.
func FuzzHeaders(f *testing.F) {
	f.Add("alice", "acme", "dev", "ops", "client", "tool")
	f.Add("a\r\nb", "\x00", "a,b", "", "Jos\u00e9", "%41")
	f.Fuzz(func(t *testing.T, sub, tenant, g1, g2, client, tool string) {
		p := identity.Principal{Subject: sub, Tenant: tenant, Groups: []string{g1, g2}}
		h := upstreamid.Headers(p, client, "sess", tool)
		for name, vs := range h {
			if len(vs) != 1 {
				t.Fatalf("%s has %d values", name, len(vs))
			}
			for i := range len(vs[0]) {
				if c := vs[0][i]; c <= ' ' || c >= 0x7f {
					t.Fatalf("%s = %q holds byte %#x", name, vs[0], c)
				}
			}
		}
		for name, want := range map[string]string{
			upstreamid.HeaderSubject: sub, upstreamid.HeaderTenant: tenant,
			upstreamid.HeaderClient: client, upstreamid.HeaderTool: tool,
		} {
			got, err := url.PathUnescape(h.Get(name))
			if err != nil || got != want {
				t.Errorf("%s decodes to %q (%v), want %q", name, got, err, want)
			}
		}
		var groups []string
		for _, g := range []string{g1, g2} {
			if g != "" {
				groups = append(groups, g)
			}
		}
		var got []string
		if v := h.Get(upstreamid.HeaderGroups); v != "" {
			for part := range strings.SplitSeq(v, ",") {
				g, err := url.PathUnescape(part)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, g)
			}
		}
		if diff := cmp.Diff(groups, got); diff != "" {
			t.Errorf("groups (-want +got):\n%s", diff)
		}
	})
}
