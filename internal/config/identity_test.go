package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestIdentityOmittedWhenUnset keeps configurations without identity
// printing as they did before it existed.
func TestIdentityOmittedWhenUnset(t *testing.T) {
	c, err := Parse([]byte("servers:\n  a: {url: \"http://127.0.0.1:1/mcp\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	y := string(marshalYAML(t, c))
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(y, "identity") || strings.Contains(string(j), "identity") {
		t.Errorf("unset identity is printed:\n%s\n%s", y, j)
	}
}

func TestIdentityDefaults(t *testing.T) {
	c, err := Parse([]byte(`
auth:
  resource: https://mcp.example.com:8443/mcp
  api_keys:
    - {name: ci-bot, sha256: "840bd5f539f1d4fc7f18b521fb2b66e14c4ace79ee3093b654b48b721e6abb11"}
identity:
  signing_key: {file: /run/k.pem}
servers:
  a: {url: "https://a.example.com/mcp", identity: {jwt: {}}}
  b: {url: "https://b.example.com/mcp", identity: {jwt: {audience: "urn:b", ttl: 45s}}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.IdentityIssuer(); got != "https://mcp.example.com:8443" {
		t.Errorf("IdentityIssuer() = %q, want the origin of auth.resource", got)
	}
	if !c.Identity.Enabled() || c.Identity.KeyFile() != "/run/k.pem" {
		t.Errorf("Enabled() = %v, KeyFile() = %q", c.Identity.Enabled(), c.Identity.KeyFile())
	}
	a, b := c.Servers["a"], c.Servers["b"]
	if got := a.IdentityAudience(); got != "https://a.example.com/mcp" {
		t.Errorf("default audience = %q, want the server's url", got)
	}
	if a.Identity.JWT.TTL.D().String() != "5m0s" || b.Identity.JWT.TTL.D().String() != "45s" {
		t.Errorf("ttl a = %s, b = %s", a.Identity.JWT.TTL, b.Identity.JWT.TTL)
	}
	if got := b.IdentityAudience(); got != "urn:b" {
		t.Errorf("audience = %q", got)
	}
	c.Identity.Issuer = "https://gw.example.com"
	if got := c.IdentityIssuer(); got != "https://gw.example.com" {
		t.Errorf("IdentityIssuer() = %q, want identity.issuer", got)
	}
}

// TestIdentityResolveSecrets: the key file must exist and hold an
// unencrypted PEM private key; its content is never kept.
func TestIdentityResolveSecrets(t *testing.T) {
	const pemKey = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIBqDPKvTMxWLEe0XRV5s+G6lUwJ6nDFXoxZvS4yT5L2e\n-----END PRIVATE KEY-----\n"
	tests := []struct {
		name, content, want string
	}{
		{"private key", pemKey, ""},
		{"certificate and key", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" + pemKey, ""},
		{"public key", "-----BEGIN PUBLIC KEY-----\nMCow\n-----END PUBLIC KEY-----\n", "holds no PEM private key"},
		{"encrypted", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n", "encrypted"},
		{"empty", "", "is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := identityConfig(t, writeFile(t, tt.content))
			err := c.ResolveSecrets()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("ResolveSecrets: %v", err)
				}
				if c.Identity.SigningKey.Resolved() != "" {
					t.Error("the key was kept in the config")
				}
				return
			}
			ps, ok := errors.AsType[Problems](err)
			if !ok || len(ps) != 1 || ps[0].Path != "identity.signing_key" || !strings.Contains(ps[0].Message, tt.want) {
				t.Fatalf("ResolveSecrets = %v, want identity.signing_key: ...%s...", err, tt.want)
			}
		})
	}
	c := identityConfig(t, filepath.Join(t.TempDir(), "missing.pem"))
	if err := c.ResolveSecrets(); err == nil || !strings.Contains(err.Error(), "identity.signing_key") {
		t.Errorf("missing key file: %v", err)
	}
}

func identityConfig(t *testing.T, keyFile string) *Config {
	t.Helper()
	c, err := Parse(fmt.Appendf(nil, "identity:\n  signing_key: {file: %q}\n  issuer: https://gw.example.com\n", keyFile))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
