package authn

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpgate/mcpgate/internal/identity"
)

func TestAPIKeys(t *testing.T) {
	const (
		keyA = "k1-random-test-key-aaaaaaaaaaaaaaaaaaaaaaaa" // sha256 840bd5f5...
		keyB = "k2-random-test-key-bbbbbbbbbbbbbbbbbbbbbbbb" // sha256 a5b819e5...
	)
	e := newEnv(t, `
auth:
  resource: https://mcp.example.com/mcp
  api_keys:
    - {name: ci-bot, sha256: 840bd5f539f1d4fc7f18b521fb2b66e14c4ace79ee3093b654b48b721e6abb11, groups: [ci], tenant: acme, scopes: [mcp.read]}
    - {name: deploy, sha256: A5B819E5A603CCA54C29FBF4A659EBD5891D1F70941C3078CF5A612A84CCA003}
`)
	ciBot := &identity.Principal{Method: "api_key", Subject: "ci-bot", Tenant: "acme", Groups: []string{"ci"}, Scopes: []string{"mcp.read"}}
	deploy := &identity.Principal{Method: "api_key", Subject: "deploy"}
	tests := []struct {
		name   string
		header string
		value  string
		want   *identity.Principal
	}{
		{"X-Api-Key", "X-Api-Key", keyA, ciBot},
		{"Bearer", "Authorization", "Bearer " + keyA, ciBot},
		{"key of another entry", "X-Api-Key", keyB, deploy},
		{"another entry as Bearer", "Authorization", "Bearer " + keyB, deploy},
		{"wrong key", "X-Api-Key", keyA[:len(keyA)-1] + "b", nil},
		{"wrong key as Bearer", "Authorization", "Bearer " + strings.ToUpper(keyA), nil},
		{"key with a space", "X-Api-Key", keyA + " x", nil},
		{"key with a NUL", "X-Api-Key", keyA + "\x00", nil},
		{"key with a prefix", "X-Api-Key", "x" + keyA, nil},
		{"oversized key", "X-Api-Key", strings.Repeat("a", maxAPIKeyBytes+1), nil},
		{"hash instead of key", "X-Api-Key", "840bd5f539f1d4fc7f18b521fb2b66e14c4ace79ee3093b654b48b721e6abb11", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/mcp", nil)
			r.Header[tt.header] = []string{tt.value}
			before := len(e.logs.String())
			got, ok := e.auth(t, r)
			switch {
			case tt.want == nil && ok:
				t.Fatalf("accepted as %v", got)
			case tt.want != nil && !ok:
				t.Fatalf("refused; log:\n%s", e.logs.String()[before:])
			case tt.want != nil:
				if diff := cmp.Diff(*tt.want, got); diff != "" {
					t.Errorf("principal (-want +got):\n%s", diff)
				}
			}
			if logs := e.logs.String()[before:]; len(tt.value) > 8 && strings.Contains(logs, tt.value) {
				t.Errorf("key logged:\n%s", logs)
			}
		})
	}

	// A caller mutating its principal does not change the next one.
	p, _ := e.auth(t, func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/mcp", nil)
		r.Header.Set("X-Api-Key", keyA)
		return r
	}())
	p.Groups[0] = "admin"
	r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/mcp", nil)
	r.Header.Set("X-Api-Key", keyA)
	if again, _ := e.auth(t, r); again.Groups[0] != "ci" {
		t.Errorf("groups changed to %v", again.Groups)
	}
}

func TestAPIKeyHeaderWithoutKeys(t *testing.T) {
	rsP := newIdP(t, "")
	e := newEnv(t, jwtConfig(rsP.issuer, rsP.srv.URL+"/jwks", ""))
	r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/mcp", nil)
	r.Header.Set("X-Api-Key", "k1-random-test-key-aaaaaaaaaaaaaaaaaaaaaaaa")
	if p, ok := e.auth(t, r); ok {
		t.Errorf("accepted as %v", p)
	}
}
