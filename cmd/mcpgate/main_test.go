package main

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary act as mcpgate itself for the tests that
// run it as a process.
func TestMain(m *testing.M) {
	if os.Getenv("MCPGATE_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "mcpgate.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUsageAndVersion(t *testing.T) {
	if code, _, stderr := runCLI(); code != 2 || !strings.Contains(stderr, "Commands:") {
		t.Errorf("no command: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := runCLI("frobnicate"); code != 2 || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, stderr %q", code, stderr)
	}
	if code, stdout, _ := runCLI("version"); code != 0 || !regexp.MustCompile(`^mcpgate \S+ \(go1\.`).MatchString(stdout) {
		t.Errorf("version: exit %d, %q", code, stdout)
	}
	for _, cmd := range []string{"serve", "validate", "demo", "version"} {
		code, _, stderr := runCLI(cmd, "--help")
		if code != 0 || !strings.Contains(stderr, "Usage:\n  mcpgate "+cmd) {
			t.Errorf("%s --help: exit %d, %q", cmd, code, stderr)
		}
	}
}

func TestValidate(t *testing.T) {
	good := writeFile(t, "servers:\n  notes:\n    url: http://127.0.0.1:3001/mcp\n")
	if code, stdout, stderr := runCLI("validate", "-c", good); code != 0 || !strings.Contains(stdout, "ok (1 servers)") {
		t.Errorf("good config: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	bad := writeFile(t, "listen: nowhere\nservers:\n  Bad_Name:\n    url: ftp://x\n  both:\n    url: http://127.0.0.1:1/mcp\n    command: [x]\n    hedaers: {}\n")
	code, _, stderr := runCLI("validate", "--config", bad)
	if code != 1 {
		t.Fatalf("bad config: exit %d, want 1; stderr %q", code, stderr)
	}
	for _, want := range []string{`unknown key "hedaers"`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	shape := writeFile(t, "listen: nowhere\nservers:\n  Bad_Name:\n    url: ftp://x\n  both:\n    url: http://127.0.0.1:1/mcp\n    command: [x]\n")
	code, _, stderr = runCLI("validate", "-c", shape)
	if code != 1 || !strings.Contains(stderr, "problems:") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, path := range []string{"listen:", "servers.Bad_Name", "servers.both"} {
		if !strings.Contains(stderr, path) {
			t.Errorf("stderr does not name %s:\n%s", path, stderr)
		}
	}
	secret := writeFile(t, "servers:\n  s:\n    url: http://127.0.0.1:1/mcp\n    headers: {X-Api-Key: {env: MCPGATE_TEST_UNSET_VARIABLE}}\n")
	if code, _, stderr := runCLI("validate", "-c", secret); code != 1 || !strings.Contains(stderr, "MCPGATE_TEST_UNSET_VARIABLE") {
		t.Errorf("unset secret: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := runCLI("validate"); code != 2 || !strings.Contains(stderr, "--config FILE is required") {
		t.Errorf("no file: exit %d, stderr %q", code, stderr)
	}
}

func TestServeRefusesPublicAddressWithoutAuth(t *testing.T) {
	cfg := writeFile(t, "listen: 0.0.0.0:0\nadmin: {listen: 127.0.0.1:0}\n")
	code, _, stderr := runCLI("serve", "-c", cfg)
	if code != 1 || !strings.Contains(stderr, "refusing to serve listen 0.0.0.0:0 without authentication") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	admin := writeFile(t, "listen: 127.0.0.1:0\nadmin: {listen: 0.0.0.0:0}\n")
	if code, _, stderr := runCLI("serve", "-c", admin); code != 1 || !strings.Contains(stderr, "admin.listen") {
		t.Fatalf("public admin: exit %d, stderr %q", code, stderr)
	}
}

// TestDemo runs `mcpgate demo` as a process, makes a call through it and
// stops it with SIGTERM.
func TestDemo(t *testing.T) {
	cmd := exec.Command(os.Args[0], "demo", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "MCPGATE_TEST_MAIN=1")
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	urlRE := regexp.MustCompile(`(http://127\.0\.0\.1:\d+)/mcp`)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := urlRE.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
				break
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	var base string
	select {
	case base = <-found:
	case <-time.After(30 * time.Second):
		t.Fatalf("demo printed no URL; stderr:\n%s", stderr.String())
	}
	post := func(sid, body string) (*http.Response, string) {
		req, _ := http.NewRequest("POST", base+"/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	resp, _ := post("", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	sid := resp.Header.Get("Mcp-Session-Id")
	post(sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	_, body := post(sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"demo__read_note","arguments":{"name":"welcome"}}}`)
	if !strings.Contains(body, "This note came through mcpgate.") {
		t.Fatalf("demo__read_note: %s", body)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo exited with %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("demo did not stop on SIGTERM")
	}
	if !strings.Contains(stderr.String(), "mcpgate stopped") {
		t.Errorf("no clean stop in the log:\n%s", stderr.String())
	}
}

func TestValidateLoadsCertificates(t *testing.T) {
	cfg := writeFile(t, "tls: {cert_file: /nonexistent/tls.crt, key_file: /nonexistent/tls.key}\n")
	code, _, stderr := runCLI("validate", "-c", cfg)
	if code != 1 || !strings.Contains(stderr, "tls:") || !strings.Contains(stderr, "/nonexistent/tls.crt") {
		t.Fatalf("missing certificate: exit %d, stderr %q", code, stderr)
	}
}

// TestExamplesValidate keeps the shipped examples true: each passes
// `mcpgate validate` with its references set (and the audit directory,
// which validate checks, pointed at a temporary one).
func TestExamplesValidate(t *testing.T) {
	t.Setenv("EVERYTHING_API_KEY", "example-key-0123456789")
	t.Setenv("REDIS_URL", "redis://127.0.0.1:6379/15")
	t.Setenv("MCPGATE_AUDIT_KEY", "0123456789abcdef0123456789abcdef")
	t.Setenv("GITHUB_TOKEN", "ghp_example0123456789")
	for _, name := range []string{"mcpgate.yaml", "policy.yaml"} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("..", "..", "examples", name))
			if err != nil {
				t.Fatal(err)
			}
			text := strings.ReplaceAll(string(b), "/var/log/mcpgate/", t.TempDir()+"/")
			if code, stdout, stderr := runCLI("validate", "-c", writeFile(t, text)); code != 0 {
				t.Errorf("examples/%s: exit %d\n%s%s", name, code, stdout, stderr)
			}
		})
	}
}
