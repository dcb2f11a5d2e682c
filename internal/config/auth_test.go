package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAuthEnabled(t *testing.T) {
	tests := []struct {
		name string
		auth Auth
		want bool
	}{
		{"zero", Auth{}, false},
		{"metadata only", Auth{Resource: "https://x", RequiredScopes: []string{"a"}}, false},
		{"jwt", Auth{JWT: []JWTIssuer{{}}}, true},
		{"introspection", Auth{Introspection: []Introspection{{}}}, true},
		{"api key", Auth{APIKeys: []APIKey{{}}}, true},
		{"mtls", Auth{MTLS: &MTLS{}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.auth.Enabled(); got != tt.want {
				t.Errorf("Enabled() = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestAuthOmittedWhenUnset keeps configurations without auth printing as
// they did before auth existed.
func TestAuthOmittedWhenUnset(t *testing.T) {
	c := Default()
	y := string(marshalYAML(t, c))
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(y, "auth") || strings.Contains(string(j), `"auth"`) {
		t.Errorf("unset auth is printed:\n%s\n%s", y, j)
	}
}

// TestAuthResolveSecrets checks that the introspection client secret is
// read by ResolveSecrets, and never printed.
func TestAuthResolveSecrets(t *testing.T) {
	const secret = "s3cr3t-introspection-value"
	file := writeFile(t, secret+"\n")
	c, err := Parse(fmt.Appendf(nil, `
auth:
  resource: https://mcp.example.com/mcp
  introspection:
    - url: https://idp.example.com/introspect
      client_id: mcpgate
      client_secret: {file: %q}
`, file))
	if err != nil {
		t.Fatal(err)
	}
	v := c.Auth.Introspection[0].ClientSecret
	if got := v.Resolved(); got != "" {
		t.Fatalf("Resolved() before ResolveSecrets = %q, want empty", got)
	}
	if err := c.ResolveSecrets(); err != nil {
		t.Fatal(err)
	}
	if got := c.Auth.Introspection[0].ClientSecret.Resolved(); got != secret {
		t.Fatalf("Resolved() = %q, want %q", got, secret)
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{string(marshalYAML(t, c)), string(j), fmt.Sprintf("%v %+v %#v", c, c, c)} {
		if strings.Contains(out, secret) {
			t.Errorf("secret printed:\n%s", out)
		}
	}
}

func TestAuthResolveSecretsMissing(t *testing.T) {
	c, err := Parse([]byte(`
auth:
  resource: https://mcp.example.com/mcp
  introspection:
    - url: https://idp.example.com/introspect
      client_id: mcpgate
      client_secret: {env: MCPGATE_TEST_INTROSPECT_UNSET}
`))
	if err != nil {
		t.Fatal(err)
	}
	ps, ok := errors.AsType[Problems](c.ResolveSecrets())
	want := Problems{{Path: "auth.introspection[0].client_secret", Message: "environment variable MCPGATE_TEST_INTROSPECT_UNSET is not set"}}
	if !ok || !cmp.Equal(want, ps) {
		t.Errorf("ResolveSecrets() = %v, want %v", ps, want)
	}
}

// TestAuthValidateStandalone checks Auth.Validate, which authn uses on
// configurations built in code, against the same rules as Config.Validate.
func TestAuthValidateStandalone(t *testing.T) {
	a := Auth{
		Resource: "https://mcp.example.com/mcp",
		JWT:      []JWTIssuer{{Issuer: "https://idp.example.com", Audiences: []string{"a"}}},
	}
	err := a.Validate()
	ps, ok := errors.AsType[Problems](err)
	if !ok {
		t.Fatalf("Validate() = %v, want Problems", err)
	}
	var paths []string
	for _, p := range ps {
		paths = append(paths, p.Path)
	}
	want := []string{"auth.jwt[0].algorithms", "auth.jwt[0].claims.subject"}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("paths (-want +got):\n%s\n%v", diff, err)
	}
	d := defaultJWTIssuer()
	d.Issuer, d.Audiences = "https://idp.example.com", []string{"a"}
	a.JWT[0] = d
	if err := a.Validate(); err != nil {
		t.Errorf("Validate() with defaults = %v", err)
	}
}

func TestSecureURLProblem(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" for accepted
	}{
		{"https://idp.example.com", ""},
		{"https://idp.example.com:8443/realms/a", ""},
		{"http://127.0.0.1:9000", ""},
		{"http://127.8.9.10", ""},
		{"http://localhost:9000/x", ""},
		{"http://LOCALHOST", ""},
		{"http://[::1]:80", ""},
		{"http://10.0.0.1", "must use https"},
		{"http://localhost.example.com", "must use https"},
		{"http://127.0.0.1.nip.io", "must use https"},
		{"https://", "must include a host"},
		{"idp.example.com", "must be an https URL"},
		{"https:idp.example.com", "must be an absolute https URL"},
		{"https://idp.example.com:99999", "port must be"},
		{"https://u@idp.example.com", "must not contain credentials"},
	}
	for _, tt := range tests {
		got := secureURLProblem(tt.in)
		if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("secureURLProblem(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
