package store

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"
)

func TestFingerprint(t *testing.T) {
	const base = `{"name":"read","title":"Read","description":"Reads a file","inputSchema":{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]},"outputSchema":{"type":"object"},"annotations":{"readOnlyHint":true}}`
	cases := []struct {
		name, other string
		same        bool
	}{
		{"key order and whitespace", `{ "annotations": {"readOnlyHint": true},
			"outputSchema": {"type": "object"},
			"inputSchema": {"required": ["path"], "properties": {"path": {"type": "string"}}, "type": "object"},
			"description": "Reads a file", "title": "Read", "name": "read" }`, true},
		{"string escapes", `{"name":"r\u0065ad","title":"Read","description":"Reads a file","inputSchema":{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]},"outputSchema":{"type":"object"},"annotations":{"readOnlyHint":true}}`, true},
		{"_meta and icons", `{"_meta":{"x":1},"icons":[{"src":"https://cdn.example/i.png"}],"name":"read","title":"Read","description":"Reads a file","inputSchema":{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]},"outputSchema":{"type":"object"},"annotations":{"readOnlyHint":true}}`, true},
		{"name", strings.Replace(base, `"name":"read"`, `"name":"read2"`, 1), false},
		{"title", strings.Replace(base, `"Read"`, `"Read!"`, 1), false},
		{"title removed", strings.Replace(base, `"title":"Read",`, ``, 1), false},
		{"description", strings.Replace(base, `Reads a file`, `Reads a file.`, 1), false},
		{"input property type", strings.Replace(base, `"path":{"type":"string"}`, `"path":{"type":"array"}`, 1), false},
		{"required", strings.Replace(base, `["path"]`, `[]`, 1), false},
		{"output schema", strings.Replace(base, `"outputSchema":{"type":"object"}`, `"outputSchema":{"type":"array"}`, 1), false},
		{"annotation value", strings.Replace(base, `"readOnlyHint":true`, `"readOnlyHint":false`, 1), false},
		{"annotation added", strings.Replace(base, `"readOnlyHint":true`, `"readOnlyHint":true,"destructiveHint":true`, 1), false},
	}
	hash, canonical, err := Fingerprint([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(hash) {
		t.Errorf("hash %q", hash)
	}
	if sum := sha256.Sum256(canonical); hash != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Errorf("hash is not the SHA-256 of the canonical form")
	}
	const wantCanonical = `{"annotations":{"readOnlyHint":true},"description":"Reads a file","inputSchema":{"properties":{"path":{"type":"string"}},"required":["path"],"type":"object"},"name":"read","outputSchema":{"type":"object"},"title":"Read"}`
	if string(canonical) != wantCanonical {
		t.Errorf("canonical\n%s\nwant\n%s", canonical, wantCanonical)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, _, err := Fingerprint([]byte(tc.other))
			if err != nil {
				t.Fatal(err)
			}
			if (h == hash) != tc.same {
				t.Errorf("same hash = %v, want %v", h == hash, tc.same)
			}
		})
	}
}

func TestFingerprintNullIsAbsent(t *testing.T) {
	a, _, _ := Fingerprint([]byte(`{"name":"x","outputSchema":null}`))
	b, _, _ := Fingerprint([]byte(`{"name":"x"}`))
	if a != b || a == "" {
		t.Errorf("null member changes the hash: %s vs %s", a, b)
	}
}

func TestFingerprintErrors(t *testing.T) {
	for _, in := range []string{
		``,
		`not json`,
		`[{"name":"x"}]`,
		`"x"`,
		`{"description":"no name"}`,
		`{"name":42}`,
		`{"name":"x","description":"a","description":"b"}`,
		`{"name":"x","inputSchema":{"type":"object","type":"array"}}`,
		`{"name":"x"} {}`,
	} {
		if h, _, err := Fingerprint([]byte(in)); err == nil {
			t.Errorf("Fingerprint(%q) = %s, want an error", in, h)
		}
	}
}

func FuzzFingerprint(f *testing.F) {
	f.Add([]byte(v1))
	f.Add([]byte(`{"name":"x","inputSchema":{"a":[1,2.5e10,"\u0000"]}}`))
	f.Fuzz(func(t *testing.T, tool []byte) {
		h, c, err := Fingerprint(tool)
		if err != nil {
			return
		}
		// The canonical form is a fixed point.
		h2, c2, err := Fingerprint(c)
		if err != nil || h2 != h || string(c2) != string(c) {
			t.Fatalf("canonical form %s is not stable: %s, %v", c, c2, err)
		}
		describeChange(c, []byte(v1))
	})
}
