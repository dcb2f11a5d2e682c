package audit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
)

func keyValue() *config.Value {
	v := config.Literal(string(testKey))
	return &v
}

// stepClock returns a clock that advances by one second per call, so
// rotated file names are distinct and sort in rotation order.
func stepClock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

func configWithFile(path string) config.Audit {
	return config.Audit{Key: keyValue(), File: &config.AuditFile{Path: path}}
}

func newFileAuditor(t *testing.T, path string, maxBytes int64) *Auditor {
	t.Helper()
	cfg := configWithFile(path)
	cfg.File.MaxBytes = maxBytes
	a, err := New(cfg, Options{Clock: stepClock()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(context.Background()) })
	return a
}

func sampleRecord(i int) *Record {
	return &Record{
		Kind: KindCall, RequestID: fmt.Sprint(i), Principal: fmt.Sprintf("user-%d", i),
		ClientName: "test-client", ClientVersion: "1.0", SessionID: "s1", Server: "github",
		ServerVersion: "2.1.0", Tool: "create_issue", ToolVersion: "v3", Outcome: "ok",
		LatencyMS: 12.5, Rule: "writers", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
		ArgsHMAC: "hmac-sha256:" + fmt.Sprintf("%064x", i),
	}
}

func writeRecords(t *testing.T, a *Auditor, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if err := a.Write(context.Background(), sampleRecord(i)); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
}

// rotatedFiles returns the rotated files of path, oldest first.
func rotatedFiles(t *testing.T, path string) []string {
	t.Helper()
	files, err := filepath.Glob(path + ".*")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

func mustVerify(t *testing.T, files ...string) Report {
	t.Helper()
	r, err := Verify(files)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
