package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/config"
)

// writeAuditFile writes n chained records through the file sink.
func writeAuditFile(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	key := config.Literal(strings.Repeat("k", audit.MinKeyBytes))
	a, err := audit.New(config.Audit{Key: &key, File: &config.AuditFile{Path: path}}, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		rec := &audit.Record{Kind: audit.KindCall, Principal: "alice", Server: "github", Tool: "create_issue", Outcome: "ok", RequestID: string(rune('a' + i))}
		if err := a.Write(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAuditVerify(t *testing.T) {
	good := writeAuditFile(t, 6)
	code, stdout, stderr := runCLI("audit", "verify", good)
	if code != 0 || stdout != "ok: 6 records, chain intact (first seq 1, last seq 6)\n" {
		t.Fatalf("good file: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(b, []byte(`"request_id":"d"`), []byte(`"request_id":"x"`), 1)
	tampered := filepath.Join(t.TempDir(), "tampered.jsonl")
	if err := os.WriteFile(tampered, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCLI("audit", "verify", tampered)
	if code != 1 || stdout != "" || !strings.Contains(stderr, tampered+":4: record 4: ") || !strings.Contains(stderr, "edited") {
		t.Fatalf("tampered file: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestAuditUsage(t *testing.T) {
	tests := []struct {
		args     []string
		code     int
		inStderr string
	}{
		{[]string{"audit"}, 2, "mcpgate audit <command>"},
		{[]string{"audit", "--help"}, 0, "verify"},
		{[]string{"audit", "frob"}, 2, `unknown command "frob"`},
		{[]string{"audit", "verify"}, 2, "name the audit files"},
		{[]string{"audit", "verify", "--help"}, 0, "Usage:\n  mcpgate audit verify FILE..."},
		{[]string{"audit", "verify", "--bogus"}, 2, "flag provided but not defined"},
		{[]string{"audit", "verify", filepath.Join(t.TempDir(), "missing.jsonl")}, 1, "no such file"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, stderr := runCLI(tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.inStderr) {
				t.Errorf("exit %d, stderr %q; want %d with %q", code, stderr, tt.code, tt.inStderr)
			}
		})
	}
}
