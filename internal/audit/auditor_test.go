package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
)

func TestNewChecksConfig(t *testing.T) {
	dir := t.TempDir()
	short := config.Literal(strings.Repeat("k", MinKeyBytes-1))
	tests := []struct {
		name string
		cfg  config.Audit
		want string
	}{
		{"no key", config.Audit{Stdout: true}, "audit.key must be set"},
		{"short key", config.Audit{Key: &short, Stdout: true}, "at least 32"},
		{"unset key variable", config.Audit{Key: ptr(config.EnvRef("MCPGATE_TEST_UNSET_AUDIT_KEY")), Stdout: true}, "MCPGATE_TEST_UNSET_AUDIT_KEY is not set"},
		{"on_failure", config.Audit{Key: keyValue(), Stdout: true, OnFailure: "retry"}, "on_failure"},
		{"table", config.Audit{Key: keyValue(), Postgres: &config.AuditPostgres{DSN: config.Literal("postgres://127.0.0.1/test"), Table: "audit; drop table x"}}, "lowercase identifier"},
		{"file in a missing directory", config.Audit{Key: keyValue(), File: &config.AuditFile{Path: filepath.Join(dir, "missing", "audit.jsonl")}}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New(tt.cfg, Options{})
			if err == nil {
				a.Close(context.Background())
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v; want an error containing %q", err, tt.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestDisabledAuditorDropsRecords(t *testing.T) {
	a, err := New(config.Audit{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Enabled() || a.Write(context.Background(), sampleRecord(1)) != nil || a.Healthy() != nil {
		t.Fatal("an auditor without sinks must be disabled, accept writes and be healthy")
	}
	if m, err := a.ArgsHMAC([]byte(`{}`)); m != "" || err != nil {
		t.Fatalf("ArgsHMAC without a key: %q, %v", m, err)
	}
}

func TestKeyFromReference(t *testing.T) {
	t.Setenv("MCPGATE_TEST_AUDIT_KEY", string(testKey))
	var out bytes.Buffer
	a, err := New(config.Audit{Key: ptr(config.EnvRef("MCPGATE_TEST_AUDIT_KEY")), Stdout: true}, Options{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	got, err := a.ArgsHMAC([]byte(`{"a":1}`))
	if want := mustHMAC(t, testKey, `{"a":1}`); err != nil || got != want {
		t.Fatalf("ArgsHMAC with the referenced key: %q, %v; want %q", got, err, want)
	}
}

// TestCanaryNeverStored: an argument value reaches no sink, only its MAC.
func TestCanaryNeverStored(t *testing.T) {
	const canary = "CANARY-SECRET-123"
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	var out bytes.Buffer
	cfg := config.Audit{Key: keyValue(), File: &config.AuditFile{Path: path}, Stdout: true}
	dsn, ok := postgresDSN(t)
	table := ""
	if ok {
		table = testTable(t, dsn)
		cfg.Postgres = &config.AuditPostgres{DSN: config.Literal(dsn), Table: table}
	}
	a, err := New(cfg, Options{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	rec := sampleRecord(1)
	if rec.ArgsHMAC, err = a.ArgsHMAC([]byte(`{"token":"` + canary + `","n":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := a.Write(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	a.Close(context.Background())
	stored := map[string][]byte{"file": readFile(t, path), "stdout": out.Bytes()}
	if table != "" {
		stored["postgres"] = dumpTable(t, dsn, table)
	}
	for sink, b := range stored {
		if bytes.Contains(b, []byte(canary)) {
			t.Errorf("%s sink holds the argument value", sink)
		}
		if !bytes.Contains(b, []byte(rec.ArgsHMAC)) {
			t.Errorf("%s sink lacks the arguments' MAC", sink)
		}
	}
}

func TestStdoutSink(t *testing.T) {
	var out bytes.Buffer
	a, err := New(config.Audit{Key: keyValue(), Stdout: true}, Options{Stdout: &out, Clock: stepClock()})
	if err != nil {
		t.Fatal(err)
	}
	rec := sampleRecord(1)
	rec.Seq, rec.Hash = 99, "forged"
	rec.Time = time.Date(2026, 5, 1, 14, 0, 0, 5, time.FixedZone("CEST", 2*3600))
	if err := a.Write(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	writeRecords(t, a, 2, 2)
	a.Close(context.Background())
	if err := a.Write(context.Background(), rec); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v; want ErrClosed", err)
	}
	lines := bytes.Split(bytes.TrimSuffix(out.Bytes(), []byte("\n")), []byte("\n"))
	if len(lines) != 2 {
		t.Fatalf("%d lines: %s", len(lines), out.Bytes())
	}
	var got map[string]any
	if err := json.Unmarshal(lines[0], &got); err != nil {
		t.Fatal(err)
	}
	if got["time"] != "2026-05-01T12:00:00.000000005Z" || got["kind"] != "call" || got["tool"] != "create_issue" || got["latency_ms"] != 12.5 {
		t.Errorf("record %s", lines[0])
	}
	for _, f := range []string{"seq", "prev_hash", "hash"} {
		if _, ok := got[f]; ok {
			t.Errorf("stdout record carries %s: %s", f, lines[0])
		}
	}
	if rec.Seq != 99 {
		t.Error("Write modified the caller's record")
	}
}

// TestFileFailureAndRepair: a failed fsync fails the write and Healthy;
// the next write removes the unacknowledged bytes and the chain goes on.
func TestFileFailureAndRepair(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	var mu sync.Mutex
	var results []string
	a, err := New(configWithFile(path), Options{Metrics: func(sink, result string) {
		mu.Lock()
		results = append(results, sink+":"+result)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	writeRecords(t, a, 1, 3)
	errDisk := errors.New("disk on fire")
	a.file.sync = func(*os.File) error { return errDisk }
	if err := a.Write(context.Background(), sampleRecord(4)); !errors.Is(err, errDisk) {
		t.Fatalf("Write with a failing fsync: %v", err)
	}
	if err := a.Healthy(); !errors.Is(err, errDisk) {
		t.Fatalf("Healthy after a failed write: %v", err)
	}
	a.file.sync = (*os.File).Sync
	writeRecords(t, a, 5, 5)
	if err := a.Healthy(); err != nil {
		t.Fatalf("Healthy after a good write: %v", err)
	}
	a.Close(context.Background())
	r := mustVerify(t, path)
	if !r.Intact() || r.Records != 4 || r.LastSeq != 4 {
		t.Fatalf("%+v; want records 1, 2, 3 and 5 as seq 1-4", r)
	}
	if bytes.Contains(readFile(t, path), []byte(`"request_id":"4"`)) {
		t.Error("the record whose write failed is in the file")
	}
	mu.Lock()
	defer mu.Unlock()
	if want := "file:ok file:ok file:ok file:error file:ok"; strings.Join(results, " ") != want {
		t.Errorf("metrics %v; want %s", results, want)
	}
}
