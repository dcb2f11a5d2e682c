package mcpwire

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecode checks that Decode never panics and never accepts what another
// parser would read differently: every accepted document is valid JSON that
// encoding/json also decodes, and re-encoding the envelope keeps the message.
func FuzzDecode(f *testing.F) {
	// Seeds live in testdata/fuzz/FuzzDecode.
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		m, err := Decode(data, Limits{})
		if !bytes.Equal(data, orig) {
			t.Fatal("Decode modified its input")
		}
		if err != nil {
			if m != nil {
				t.Fatal("Decode returned a message and an error")
			}
			checkRejection(t, data, err)
			return
		}
		if !json.Valid(data) {
			t.Fatalf("Decode accepted invalid JSON %q", data)
		}
		var v map[string]any
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatalf("Decode accepted %q, encoding/json: %v", data, err)
		}
		checkEnvelope(t, m, v)

		// Re-encoding with the same id keeps the kind; a new id replaces it.
		again := roundTrip(t, m, m.ID)
		if !bytes.Equal(again.ID, m.ID) {
			t.Fatalf("id %q became %q", m.ID, again.ID)
		}
		if m.Kind != KindNotification {
			newID := []byte(`"gw-1"`)
			if again := roundTrip(t, m, newID); !bytes.Equal(again.ID, newID) {
				t.Fatalf("id became %q, want %q", again.ID, newID)
			}
		}

		if m.Params != nil && m.Params[0] == '{' {
			for _, k := range []string{"name", "arguments", "_meta"} {
				raw, ok := ParamsField(m.Params, k)
				if want, has := v["params"].(map[string]any)[k]; has != ok {
					t.Fatalf("ParamsField(%q) found=%v, encoding/json found=%v", k, ok, has)
				} else if ok {
					var got any
					if err := json.Unmarshal(raw, &got); err != nil {
						t.Fatalf("ParamsField(%q) = %q: %v", k, raw, err)
					}
					if s, isStr := want.(string); isStr {
						if got, ok := StringValue(raw); !ok || got != s {
							t.Fatalf("StringValue(%q) = %q, %v; want %q", raw, got, ok, s)
						}
					}
				}
			}
			replaced := ReplaceParamsField(m.Params, "name", []byte(`"gw"`))
			var p map[string]any
			if err := json.Unmarshal(replaced, &p); err != nil || p["name"] != "gw" {
				t.Fatalf("ReplaceParamsField(%q) = %q: %v", m.Params, replaced, err)
			}
		}
	})
}

// checkRejection checks that err is justified where encoding/json can judge:
// envelope and batch errors come only after the whole document validated, and
// a syntax error on JSON that encoding/json accepts must be one of the
// stricter rules (invalid UTF-8, lone surrogates, float64 overflow).
func checkRejection(t *testing.T, data []byte, err error) {
	t.Helper()
	valid := json.Valid(data)
	switch {
	case errors.Is(err, ErrEnvelope), errors.Is(err, ErrBatch):
		if !valid {
			t.Fatalf("%v for invalid JSON %q", err, data)
		}
	case errors.Is(err, ErrSyntax):
		if !valid {
			return
		}
		var v any
		if !utf8.Valid(data) || json.Unmarshal(data, &v) != nil || loneSurrogateEscape.Match(data) {
			return
		}
		t.Fatalf("%v for %q, which encoding/json accepts", err, data)
	}
}

// loneSurrogateEscape over-approximates documents holding a surrogate escape.
var loneSurrogateEscape = regexp.MustCompile(`\\u[dD][89a-fA-F]`)

// checkEnvelope compares the decoded envelope with encoding/json's reading.
func checkEnvelope(t *testing.T, m *Message, v map[string]any) {
	t.Helper()
	if v["jsonrpc"] != "2.0" {
		t.Fatalf("jsonrpc = %v", v["jsonrpc"])
	}
	if method, _ := v["method"].(string); method != m.Method {
		t.Fatalf("Method = %q, encoding/json reads %q", m.Method, method)
	}
	for name, raw := range map[string][]byte{"id": m.ID, "params": m.Params, "result": m.Result, "error": m.Error} {
		want, ok := v[name]
		if ok != (raw != nil) {
			t.Fatalf("%s present=%v, encoding/json present=%v", name, raw != nil, ok)
		}
		if !ok {
			continue
		}
		var got any
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("%s = %q: %v", name, raw, err)
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		if !bytes.Equal(gb, wb) {
			t.Fatalf("%s = %s, encoding/json reads %s", name, gb, wb)
		}
	}
	if m.Kind == KindError {
		code, _ := v["error"].(map[string]any)["code"].(float64)
		if float64(m.ErrorCode) != code {
			t.Fatalf("ErrorCode = %d, encoding/json reads %v", m.ErrorCode, code)
		}
	}
}

// roundTrip re-encodes m with id and decodes the result.
func roundTrip(t *testing.T, m *Message, id []byte) *Message {
	t.Helper()
	b := WithID(m, id)
	again, err := Decode(b, Limits{})
	if err != nil {
		t.Fatalf("Decode(WithID(%q)) = %q: %v", m.Raw, b, err)
	}
	if again.Kind != m.Kind || again.Method != m.Method || !bytes.Equal(again.Params, m.Params) ||
		!bytes.Equal(again.Result, m.Result) || !bytes.Equal(again.Error, m.Error) || again.ErrorCode != m.ErrorCode {
		t.Fatalf("WithID changed the message:\n%q\n%q", m.Raw, b)
	}
	return again
}

// TestFuzzSeeds keeps the seed corpus honest: valid_* seeds decode and
// hostile_* seeds are rejected.
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var valid, hostile int
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		header, value, _ := strings.Cut(string(b), "\n")
		value = strings.TrimSpace(value)
		if header != "go test fuzz v1" || !strings.HasPrefix(value, "[]byte(") || !strings.HasSuffix(value, ")") {
			t.Fatalf("%s: not a fuzz corpus file", e.Name())
		}
		data, err := strconv.Unquote(value[len("[]byte(") : len(value)-1])
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		_, err = Decode([]byte(data), Limits{})
		switch {
		case strings.HasPrefix(e.Name(), "valid_"):
			valid++
			if err != nil {
				t.Errorf("%s: %v", e.Name(), err)
			}
		case strings.HasPrefix(e.Name(), "hostile_"):
			hostile++
			if err == nil {
				t.Errorf("%s: accepted", e.Name())
			}
		}
	}
	if valid < 5 || hostile < 15 {
		t.Errorf("corpus has %d valid and %d hostile seeds", valid, hostile)
	}
}
