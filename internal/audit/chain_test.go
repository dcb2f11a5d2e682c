package audit

import (
	"bytes"
	"testing"
)

// FuzzParseLine feeds verification arbitrary lines: it must never panic,
// and a record the file sink encodes must always check out.
func FuzzParseLine(f *testing.F) {
	rec := sampleRecord(1)
	rec.Seq, rec.PrevHash = 1, zeroHash
	line, err := encodeLine(rec)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(bytes.TrimSuffix(line, []byte("\n")), "x")
	f.Add([]byte(`{"seq":1,"prev_hash":"00","hash":"00"}`), "\x00")
	f.Add([]byte(`[]`), "\u2028")
	f.Fuzz(func(t *testing.T, line []byte, principal string) {
		parseLine(line)
		r := sampleRecord(2)
		r.Principal, r.Seq, r.PrevHash = principal, 7, zeroHash
		enc, err := encodeLine(r)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Count(enc, []byte("\n")) != 1 {
			t.Fatalf("encoded record spans lines: %q", enc)
		}
		got, ok, err := parseLine(bytes.TrimSuffix(enc, []byte("\n")))
		if err != nil || !ok || got.Seq != 7 || got.Hash != r.Hash {
			t.Fatalf("own record %q: %+v, %v, %v", enc, got, ok, err)
		}
	})
}
