package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveRefusesWeakSecrets(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("tooshort\n"), 0o600)
	t.Setenv("MCPGATE_TEST_PLACEHOLDER", "ChangeMe")
	t.Setenv("MCPGATE_TEST_REAL", "k3y-0f-the-upstream-9f8e7d6c")
	c, err := Parse([]byte(`
auth:
  resource: https://mcp.example.com/mcp
  introspection:
    - {url: https://idp.example.com/introspect, client_id: mcpgate, client_secret: {file: ` + short + `}}
servers:
  a:
    url: http://127.0.0.1:1/mcp
    headers:
      X-Api-Key: {env: MCPGATE_TEST_PLACEHOLDER}
  b:
    url: http://127.0.0.1:2/mcp
    headers:
      X-Api-Key: {env: MCPGATE_TEST_REAL}
`))
	if err != nil {
		t.Fatal(err)
	}
	err = c.ResolveSecrets()
	if err == nil {
		t.Fatal("weak secrets accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		"servers.a.headers.X-Api-Key: resolves to a well-known placeholder value",
		"auth.introspection[0].client_secret: is too weak",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "servers.b") || strings.Contains(msg, "ChangeMe") || strings.Contains(msg, "tooshort") {
		t.Errorf("error names a good secret or echoes a value:\n%s", msg)
	}
	if got := c.Servers["b"].Headers["X-Api-Key"].Resolved(); got != "k3y-0f-the-upstream-9f8e7d6c" {
		t.Errorf("good secret not resolved: %q", got)
	}
}
