package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// tamper rewrites the lines of a good file (each without its newline);
// the result is joined with newlines, and a trailing newline unless
// torn is set.
type tamper struct {
	name     string
	edit     func(t *testing.T, lines [][]byte) [][]byte
	torn     bool
	wantLine int
	wantMsg  string
}

// forge returns line re-encoded after change, with a hash recomputed so
// that the record on its own looks genuine.
func forge(t *testing.T, line []byte, change func(*Record)) []byte {
	t.Helper()
	var r Record
	if err := json.Unmarshal(line, &r); err != nil {
		t.Fatal(err)
	}
	change(&r)
	out, err := encodeLine(&r)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(out, []byte("\n"))
}

func TestVerifyDetectsTampering(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	a := newFileAuditor(t, path, 0)
	writeRecords(t, a, 1, 10)
	a.Close(context.Background())
	good := readFile(t, path)
	if r := mustVerify(t, path); !r.Intact() || r.Records != 10 || r.FirstSeq != 1 || r.LastSeq != 10 {
		t.Fatalf("untouched file: %+v", r)
	}

	tests := []tamper{
		{name: "edit a field", edit: func(t *testing.T, l [][]byte) [][]byte {
			l[4] = bytes.Replace(l[4], []byte(`"principal":"user-5"`), []byte(`"principal":"user-X"`), 1)
			return l
		}, wantLine: 5, wantMsg: "was edited"},
		{name: "edit a field and recompute its hash", edit: func(t *testing.T, l [][]byte) [][]byte {
			l[4] = forge(t, l[4], func(r *Record) { r.Outcome = "denied" })
			return l
		}, wantLine: 6, wantMsg: "prev_hash does not match"},
		{name: "delete a line", edit: func(t *testing.T, l [][]byte) [][]byte {
			return append(l[:4:4], l[5:]...)
		}, wantLine: 5, wantMsg: "seq 6 follows seq 4: 1 records missing"},
		{name: "delete the first line", edit: func(t *testing.T, l [][]byte) [][]byte {
			return l[1:]
		}, wantLine: 0}, // undetectable alone: the chain may start in an earlier file; FirstSeq shows 2
		{name: "swap two lines", edit: func(t *testing.T, l [][]byte) [][]byte {
			l[2], l[3] = l[3], l[2]
			return l
		}, wantLine: 3, wantMsg: "seq 4 follows seq 2"},
		{name: "repeat a line", edit: func(t *testing.T, l [][]byte) [][]byte {
			return append(l[:3:3], append([][]byte{l[2]}, l[3:]...)...)
		}, wantLine: 4, wantMsg: "out of order or repeated"},
		{name: "truncate the last line mid-record", edit: func(t *testing.T, l [][]byte) [][]byte {
			l[9] = l[9][:len(l[9])/2]
			return l
		}, torn: true, wantLine: 10, wantMsg: "incomplete last line"},
		{name: "insert a forged record with a recomputed hash but wrong prev", edit: func(t *testing.T, l [][]byte) [][]byte {
			f := forge(t, l[3], func(r *Record) { r.Seq, r.PrevHash, r.Principal = 5, strings.Repeat("ab", 32), "mallory" })
			return append(l[:4:4], append([][]byte{f}, l[4:]...)...)
		}, wantLine: 5, wantMsg: "prev_hash does not match"},
		{name: "insert a forged record that links correctly", edit: func(t *testing.T, l [][]byte) [][]byte {
			var prev Record
			json.Unmarshal(l[3], &prev)
			f := forge(t, l[3], func(r *Record) { r.Seq, r.PrevHash, r.Principal = 5, prev.Hash, "mallory" })
			return append(l[:4:4], append([][]byte{f}, l[4:]...)...)
		}, wantLine: 6, wantMsg: "seq 5 follows seq 5"},
		{name: "replace the first record's prev_hash", edit: func(t *testing.T, l [][]byte) [][]byte {
			l[0] = forge(t, l[0], func(r *Record) { r.PrevHash = strings.Repeat("11", 32) })
			return l
		}, wantLine: 1, wantMsg: "prev_hash of 64 zeros"},
		{name: "replace a line with garbage", edit: func(t *testing.T, l [][]byte) [][]byte {
			l[6] = []byte(`{"kind":"call"}`)
			return l
		}, wantLine: 7, wantMsg: "not an audit record"},
		{name: "add a duplicate key", edit: func(t *testing.T, l [][]byte) [][]byte {
			l[1] = bytes.Replace(l[1], []byte(`{`), []byte(`{"outcome":"denied",`), 1)
			return l
		}, wantLine: 2, wantMsg: "not an audit record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := bytes.Split(bytes.TrimSuffix(bytes.Clone(good), []byte("\n")), []byte("\n"))
			out := bytes.Join(tt.edit(t, lines), []byte("\n"))
			if !tt.torn {
				out = append(out, '\n')
			}
			p := filepath.Join(t.TempDir(), "tampered.jsonl")
			if err := os.WriteFile(p, out, 0o600); err != nil {
				t.Fatal(err)
			}
			r := mustVerify(t, p)
			if tt.wantLine == 0 {
				if !r.Intact() || r.FirstSeq != 2 {
					t.Fatalf("report %+v; want intact from seq 2", r)
				}
				return
			}
			if r.Intact() {
				t.Fatalf("tampering not detected: %+v", r)
			}
			p0 := r.Problems[0]
			if p0.Line != tt.wantLine || p0.Record != tt.wantLine || p0.File != p || !strings.Contains(p0.Message, tt.wantMsg) {
				t.Errorf("first problem %q; want line %d with %q", p0, tt.wantLine, tt.wantMsg)
			}
		})
	}
}

func TestRotationKeepsTheChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	const maxBytes = 4096
	a := newFileAuditor(t, path, maxBytes)
	writeRecords(t, a, 1, 60)
	a.Close(context.Background())

	old := rotatedFiles(t, path)
	if len(old) < 3 {
		t.Fatalf("%d rotated files after 60 records of ~600 bytes with max_bytes %d; want at least 3", len(old), maxBytes)
	}
	for _, f := range append(old, path) {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > maxBytes {
			t.Errorf("%s is %d bytes, more than max_bytes %d", f, fi.Size(), maxBytes)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	all := append(old, path)
	r := mustVerify(t, all...)
	if !r.Intact() || r.FirstSeq != 1 || r.LastSeq != uint64(60+len(old)) || r.Files != len(all) {
		t.Fatalf("verify across %d files: %+v", len(all), r)
	}

	t.Run("last file missing", func(t *testing.T) {
		r := mustVerify(t, old...)
		if r.Intact() || !strings.Contains(r.Problems[0].Message, "ends with a rotation marker") || r.Problems[0].File != old[len(old)-1] {
			t.Fatalf("dropping the newest file not detected: %+v", r)
		}
	})
	t.Run("middle file missing", func(t *testing.T) {
		files := append(append([]string{}, old[:1]...), all[2:]...)
		r := mustVerify(t, files...)
		if r.Intact() || r.Problems[0].File != all[2] || r.Problems[0].Line != 1 || !strings.Contains(r.Problems[0].Message, "at the end of "+old[0]) {
			t.Fatalf("dropping a middle file not detected: %+v", r)
		}
	})
	t.Run("files out of order", func(t *testing.T) {
		files := append([]string{all[1], all[0]}, all[2:]...)
		if r := mustVerify(t, files...); r.Intact() {
			t.Fatal("files given out of order not detected")
		}
	})
}

func TestRestartContinuesTheChain(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	a := newFileAuditor(t, path, 0)
	writeRecords(t, a, 1, 5)
	a.Close(context.Background())

	a = newFileAuditor(t, path, 0)
	writeRecords(t, a, 6, 8)
	a.Close(context.Background())
	if r := mustVerify(t, path); !r.Intact() || r.Records != 8 || r.LastSeq != 8 {
		t.Fatalf("after a restart: %+v", r)
	}

	// As if the gateway stopped right after rotating: the chain continues
	// from the newest rotated file.
	rotatedTo := path + ".20260501T120000.000000000Z"
	if err := os.Rename(path, rotatedTo); err != nil {
		t.Fatal(err)
	}
	a = newFileAuditor(t, path, 0)
	writeRecords(t, a, 9, 10)
	a.Close(context.Background())
	if r := mustVerify(t, rotatedTo, path); !r.Intact() || r.Records != 10 || r.LastSeq != 10 {
		t.Fatalf("after a restart with no current file: %+v", r)
	}
}

func TestRestartAfterTornWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	a := newFileAuditor(t, path, 0)
	writeRecords(t, a, 1, 5)
	a.Close(context.Background())
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"time":"2026-05-01T12:00:06Z","kind":"ca`)
	f.Close()

	a = newFileAuditor(t, path, 0)
	writeRecords(t, a, 6, 7)
	a.Close(context.Background())

	aside := rotatedFiles(t, path)
	if len(aside) != 1 {
		t.Fatalf("rotated files %v; want the torn file moved aside", aside)
	}
	r := mustVerify(t, aside[0], path)
	if len(r.Problems) != 1 || r.Problems[0].File != aside[0] || r.Problems[0].Line != 6 || !strings.Contains(r.Problems[0].Message, "incomplete last line") {
		t.Fatalf("torn record: %+v; want exactly one problem, line 6 of %s", r, aside[0])
	}
	if r.LastSeq != 7 {
		t.Errorf("last seq %d; want 7 (the torn record is kept out of the chain)", r.LastSeq)
	}
	if r := mustVerify(t, path); !r.Intact() || r.FirstSeq != 6 {
		t.Errorf("new file alone: %+v", r)
	}
}

func TestRestartRefusesUnreadableLastRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := os.WriteFile(path, []byte("not json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(configWithFile(path), Options{})
	if err == nil || !strings.Contains(err.Error(), "last record cannot be read") {
		t.Fatalf("New: %v; want the unreadable last record reported", err)
	}
}

// TestConcurrentWritesShareFsyncs holds the first fsync until all 64
// writers have queued, so the rest must share the next one.
func TestConcurrentWritesShareFsyncs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	a := newFileAuditor(t, path, 0)
	const writers = 64
	var queued atomic.Int32
	allQueued := make(chan struct{})
	a.file.b.enqueued = func() {
		if queued.Add(1) == writers {
			close(allQueued)
		}
	}
	var once sync.Once
	a.file.sync = func(f *os.File) error {
		once.Do(func() { <-allQueued })
		return f.Sync()
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Go(func() { errs <- a.Write(context.Background(), sampleRecord(i)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := a.file.syncs.Load(); n > 2 {
		t.Errorf("%d fsyncs for %d concurrent records; want at most 2", n, writers)
	}
	a.Close(context.Background())
	r := mustVerify(t, path)
	if !r.Intact() || r.Records != writers {
		t.Fatalf("%+v", r)
	}
	seen := map[string]bool{}
	for line := range bytes.Lines(readFile(t, path)) {
		var rec Record
		json.Unmarshal(line, &rec)
		seen[rec.RequestID] = true
	}
	for i := range writers {
		if !seen[fmt.Sprint(i)] {
			t.Errorf("record %d missing", i)
		}
	}
}

func TestLinesAreEscaped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	a := newFileAuditor(t, path, 0)
	rec := sampleRecord(1)
	rec.Principal = "a\nb\r\x00c\u2028d\x1b[31m"
	rec.ClientName = "bad\xffutf8"
	rec.Detail = map[string]string{"note\n": "x\ty"}
	if err := a.Write(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	writeRecords(t, a, 2, 2)
	a.Close(context.Background())
	b := readFile(t, path)
	for i, c := range b {
		if c < 0x20 && c != '\n' {
			t.Fatalf("raw control byte %#x at offset %d", c, i)
		}
	}
	if n := bytes.Count(b, []byte("\n")); n != 2 {
		t.Fatalf("%d lines; want 2", n)
	}
	if r := mustVerify(t, path); !r.Intact() {
		t.Fatalf("%+v", r)
	}
}
