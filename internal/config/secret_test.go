package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestValueUnmarshalYAML(t *testing.T) {
	tests := []struct {
		in         string
		wantSecret bool
		wantString string
		wantGo     string
		wantErr    string
	}{
		{in: `v: plain`, wantString: "plain", wantGo: `config.Literal("plain")`},
		{in: `v: 123`, wantString: "123", wantGo: `config.Literal("123")`},
		{in: `v: ""`, wantString: "", wantGo: `config.Literal("")`},
		{in: `v: {env: API_KEY}`, wantSecret: true, wantString: "<secret>", wantGo: `config.EnvRef("API_KEY")`},
		{in: "v:\n  file: /run/secrets/x", wantSecret: true, wantString: "<secret>", wantGo: `config.FileRef("/run/secrets/x")`},
		{in: `v: {env: A, file: B}`, wantSecret: true, wantString: "<secret>", wantGo: `config.Value{env: "A", file: "B"}`},
		{in: `v: {}`, wantSecret: true, wantString: "<secret>", wantGo: `config.Value{env: "", file: ""}`},
		{in: `v: {vault: x}`, wantErr: `line 1: unknown key "vault" in reference; use {env: NAME} or {file: PATH}`},
		{in: `v: {env: A, env: B}`, wantErr: `line 1: duplicate key "env" in reference`},
		{in: `v: {env: {x: y}}`, wantErr: `line 1: env must be a string, not a mapping`},
		{in: `v: [a]`, wantErr: `line 1: must be a string, {env: NAME} or {file: PATH}, not a list`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got struct{ V Value }
			err := yaml.Unmarshal([]byte(tt.in), &got)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.V.IsSecret() != tt.wantSecret || got.V.String() != tt.wantString || got.V.GoString() != tt.wantGo {
				t.Errorf("IsSecret, String, GoString = %v, %q, %q; want %v, %q, %q",
					got.V.IsSecret(), got.V.String(), got.V.GoString(), tt.wantSecret, tt.wantString, tt.wantGo)
			}
		})
	}
}

func TestValueMarshal(t *testing.T) {
	tests := []struct {
		v        Value
		wantYAML string
		wantJSON string
	}{
		{Literal("x-1"), "x-1\n", `"x-1"`},
		{EnvRef("API_KEY"), "env: API_KEY\n", `{"env":"API_KEY"}`},
		{FileRef("/s"), "file: /s\n", `{"file":"/s"}`},
	}
	for _, tt := range tests {
		y, err := yaml.Marshal(tt.v)
		if err != nil || string(y) != tt.wantYAML {
			t.Errorf("yaml.Marshal(%#v) = %q, %v; want %q", tt.v, y, err, tt.wantYAML)
		}
		j, err := json.Marshal(tt.v)
		if err != nil || string(j) != tt.wantJSON {
			t.Errorf("json.Marshal(%#v) = %s, %v; want %s", tt.v, j, err, tt.wantJSON)
		}
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestValueResolve(t *testing.T) {
	t.Setenv("MCPGATE_TEST_SET", "from-env")
	t.Setenv("MCPGATE_TEST_EMPTY", "")
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name    string
		v       Value
		want    string
		wantErr string
	}{
		{"literal", Literal("plain"), "plain", ""},
		{"empty literal", Literal(""), "", ""},
		{"env", EnvRef("MCPGATE_TEST_SET"), "from-env", ""},
		{"env unset", EnvRef("MCPGATE_TEST_UNSET"), "", "environment variable MCPGATE_TEST_UNSET is not set"},
		{"env empty", EnvRef("MCPGATE_TEST_EMPTY"), "", "environment variable MCPGATE_TEST_EMPTY is empty"},
		{"file", FileRef(writeFile(t, "tok")), "tok", ""},
		{"file newline", FileRef(writeFile(t, "tok\n")), "tok", ""},
		{"file crlf", FileRef(writeFile(t, "tok\r\n")), "tok", ""},
		{"file trims one newline only", FileRef(writeFile(t, "tok\n\n")), "tok\n", ""},
		{"file keeps spaces", FileRef(writeFile(t, " tok \n")), " tok ", ""},
		{"file empty", FileRef(writeFile(t, "")), "", "is empty"},
		{"file only newline", FileRef(writeFile(t, "\n")), "", "is empty"},
		{"file missing", FileRef(missing), "", "reading secret file: open " + missing},
		{"both", Value{ref: true, env: "A", file: "b", hasEnv: true, hasFile: true}, "", "exactly one of env or file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.v.Resolve()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Resolve() = %q, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Resolve() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestSecretsNeverPrinted resolves secrets from the environment and a file
// and checks that neither value shows up in any printed or marshaled form
// of the configuration.
func TestSecretsNeverPrinted(t *testing.T) {
	const envSecret, fileSecret = "s3cr3t-from-env-7f1d", "s3cr3t-from-file-c9a2"
	t.Setenv("MCPGATE_TEST_KEY", envSecret)
	file := writeFile(t, fileSecret+"\n")
	c, err := Parse([]byte(fmt.Sprintf(`
servers:
  web:
    url: https://example.com/mcp
    headers:
      X-Api-Key: {env: MCPGATE_TEST_KEY}
      Authorization: {file: %q}
  local:
    command: [server]
    env:
      TOKEN: {env: MCPGATE_TEST_KEY}
      PASSWORD: {file: %q}
`, file, file)))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ResolveSecrets(); err != nil {
		t.Fatal(err)
	}
	web, local := c.Servers["web"], c.Servers["local"]
	if got := web.Headers["X-Api-Key"].Resolved(); got != envSecret {
		t.Fatalf("X-Api-Key resolved to %q, want the env secret", got)
	}
	if got := local.Env["PASSWORD"].Resolved(); got != fileSecret {
		t.Fatalf("PASSWORD resolved to %q, want the file secret", got)
	}

	// A struct that holds a Value where fmt cannot call its methods.
	hidden := struct{ v Value }{web.Headers["X-Api-Key"]}

	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		for _, x := range []any{c, *c, web, *web, local, *local, web.Headers, local.Env, web.Headers["Authorization"], hidden} {
			outputs = append(outputs, fmt.Sprintf(verb, x))
		}
	}
	for _, x := range []any{c, web, local} {
		y, err := yaml.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		j, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		outputs = append(outputs, string(y), string(j))
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	logger.Info("config", "header", web.Headers["X-Api-Key"], "env", local.Env["PASSWORD"], "server", web)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "header", web.Headers["X-Api-Key"], "server", local)
	outputs = append(outputs, logs.String())

	for _, out := range outputs {
		if strings.Contains(out, envSecret) || strings.Contains(out, fileSecret) {
			t.Errorf("secret revealed in:\n%s", out)
		}
	}
	// The references themselves are still shown.
	all := strings.Join(outputs, "\n")
	for _, want := range []string{"<secret>", "MCPGATE_TEST_KEY", file} {
		if !strings.Contains(all, want) {
			t.Errorf("no output mentions %q", want)
		}
	}
}
