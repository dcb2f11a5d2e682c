package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestResolveSecrets(t *testing.T) {
	t.Setenv("MCPGATE_TEST_A", "value-a")
	file := writeFile(t, "value-b\n")
	c, err := Parse([]byte(fmt.Sprintf(`
servers:
  web:
    url: https://example.com/mcp
    headers:
      X-Api-Key: {env: MCPGATE_TEST_A}
      Authorization: {file: %q}
      X-Trace: plain
  local:
    command: [server]
    env:
      A: {env: MCPGATE_TEST_A}
      B: {file: %q}
      MODE: fast
`, file, file)))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Servers["web"].Headers["X-Api-Key"].Resolved(); got != "" {
		t.Errorf("Resolved() before ResolveSecrets = %q, want empty", got)
	}
	if err := c.ResolveSecrets(); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for name, s := range c.Servers {
		for k, v := range s.Headers {
			got[name+".headers."+k] = v.Resolved()
		}
		for k, v := range s.Env {
			got[name+".env."+k] = v.Resolved()
		}
	}
	want := map[string]string{
		"web.headers.X-Api-Key":     "value-a",
		"web.headers.Authorization": "value-b",
		"web.headers.X-Trace":       "plain",
		"local.env.A":               "value-a",
		"local.env.B":               "value-b",
		"local.env.MODE":            "fast",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("resolved values (-want +got):\n%s", diff)
	}
}

// TestResolveSecretsReportsAll checks that every failing reference is
// reported with its path, and that the others still resolve.
func TestResolveSecretsReportsAll(t *testing.T) {
	t.Setenv("MCPGATE_TEST_OK", "ok")
	t.Setenv("MCPGATE_TEST_EMPTY", "")
	empty := writeFile(t, "")
	missing := filepath.Join(t.TempDir(), "missing")
	c, err := Parse([]byte(fmt.Sprintf(`
servers:
  web:
    url: https://example.com/mcp
    headers:
      X-Api-Key: {env: MCPGATE_TEST_UNSET}
      X-Ok-Key: {env: MCPGATE_TEST_OK}
      Authorization: {file: %q}
  local:
    command: [server]
    env:
      A: {env: MCPGATE_TEST_EMPTY}
      B: {file: %q}
`, missing, empty)))
	if err != nil {
		t.Fatal(err)
	}
	err = c.ResolveSecrets()
	ps, ok := errors.AsType[Problems](err)
	if !ok {
		t.Fatalf("ResolveSecrets() = %v, want Problems", err)
	}
	want := Problems{
		{Path: "servers.local.env.A", Message: "environment variable MCPGATE_TEST_EMPTY is empty"},
		{Path: "servers.local.env.B", Message: "secret file " + empty + " is empty"},
		{Path: "servers.web.headers.Authorization", Message: "reading secret file: open " + missing + ": no such file or directory"},
		{Path: "servers.web.headers.X-Api-Key", Message: "environment variable MCPGATE_TEST_UNSET is not set"},
	}
	if diff := cmp.Diff(want, ps); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if got := c.Servers["web"].Headers["X-Ok-Key"].Resolved(); got != "ok" {
		t.Errorf("X-Ok-Key resolved to %q, want ok", got)
	}
}

// TestValidateReadsNothing checks that Validate accepts references whose
// sources do not exist: it must work offline.
func TestValidateReadsNothing(t *testing.T) {
	_, err := Parse([]byte(`
servers:
  web:
    url: https://example.com/mcp
    headers:
      Authorization: {file: /nonexistent/mcpgate/token}
      X-Api-Key: {env: MCPGATE_TEST_NEVER_SET}
`))
	if err != nil {
		t.Fatal(err)
	}
}

func TestResolveStateAndAudit(t *testing.T) {
	t.Setenv("MCPGATE_TEST_REDIS", "redis://:s3cret-pass@127.0.0.1:6379/15")
	t.Setenv("MCPGATE_TEST_AUDIT", "0123456789abcdef0123456789abcdef")
	c, err := Parse([]byte(`
state:
  redis: {url: {env: MCPGATE_TEST_REDIS}}
audit:
  key: {env: MCPGATE_TEST_AUDIT}
  stdout: true
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ResolveSecrets(); err != nil {
		t.Fatal(err)
	}
	if got := c.State.Redis.URL.Resolved(); got != "redis://:s3cret-pass@127.0.0.1:6379/15" {
		t.Errorf("state.redis.url resolved to %q", got)
	}
	if got := c.Audit.Key.Resolved(); got != "0123456789abcdef0123456789abcdef" {
		t.Errorf("audit.key resolved to %q", got)
	}

	t.Setenv("MCPGATE_TEST_AUDIT", "too-short")
	os.Unsetenv("MCPGATE_TEST_REDIS")
	err = c.ResolveSecrets()
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 2 {
		t.Fatalf("want two problems (short key, unset Redis URL), got %v", err)
	}
}
