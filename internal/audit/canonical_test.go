package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func mustHMAC(t *testing.T, key []byte, args string) string {
	t.Helper()
	m, err := ArgsHMAC(key, []byte(args))
	if err != nil {
		t.Fatalf("ArgsHMAC(%s): %v", args, err)
	}
	return m
}

func TestArgsHMACEquivalentSpellings(t *testing.T) {
	tests := []struct {
		name string
		a, b string
	}{
		{"key order", `{"a":1,"b":"x"}`, `{"b":"x","a":1}`},
		{"whitespace", `{"a":[1,2,{"c":null}]}`, " {\n\t\"a\" : [ 1 , 2 , { \"c\" : null } ] }\r\n"},
		{"string escapes", `{"s":"é\n/"}`, `{"s":"\u00e9\u000a\/"}`},
		{"number spelling", `{"n":[1,0.5,100,-0]}`, `{"n":[1.0,5e-1,1E2,0]}`},
		{"nested key order", `{"o":{"y":1,"x":2}}`, `{"o":{"x":2,"y":1}}`},
		{"inexact numbers, key order", `{"a":1e400,"b":"s"}`, `{"b":"s","a":10e399}`},
		{"inexact numbers, spelling", `[9007199254740993]`, `[90071992547409930e-1]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if a, b := mustHMAC(t, testKey, tt.a), mustHMAC(t, testKey, tt.b); a != b {
				t.Errorf("%s and %s have different MACs:\n%s\n%s", tt.a, tt.b, a, b)
			}
		})
	}
}

func TestArgsHMACDistinguishes(t *testing.T) {
	tests := []struct {
		name string
		a, b string
	}{
		{"value", `{"path":"/etc/passwd"}`, `{"path":"/etc/shadow"}`},
		{"type", `{"n":1}`, `{"n":"1"}`},
		{"nesting", `{"a":{"b":1}}`, `{"a":[{"b":1}]}`},
		{"large integers a double cannot tell apart", `{"id":9007199254740993}`, `{"id":9007199254740992}`},
		{"large integer and its string", `{"id":9007199254740993}`, `{"id":"9007199254740993"}`},
		{"out of range and its string", `[1e400]`, `["1e400"]`},
		// The rewrite prefixes string values; a string that looks like
		// a rewritten number must stay distinct.
		{"string spelled like a rewritten number", `[1e400,"x"]`, `["n:1e400","x"]`},
		{"rewritten strings", `[1e400,"s:x"]`, `[1e400,"x"]`},
		{"keys are not rewritten", `{"a":1e400}`, `{"s:a":1e400}`},
		{"underflow and zero", `[1e-400]`, `[0]`},
		{"precision", `[0.1]`, `[0.10000000000000001]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if a, b := mustHMAC(t, testKey, tt.a), mustHMAC(t, testKey, tt.b); a == b {
				t.Errorf("%s and %s share the MAC %s", tt.a, tt.b, a)
			}
		})
	}
}

func TestArgsHMACKeyed(t *testing.T) {
	const args = `{"q":"hello"}`
	a := mustHMAC(t, testKey, args)
	other := bytes.Clone(testKey)
	other[0] ^= 1
	if b := mustHMAC(t, other, args); a == b {
		t.Error("a one-bit change of the key gives the same MAC")
	}
	if !strings.HasPrefix(a, "hmac-sha256:") || len(a) != len("hmac-sha256:")+64 {
		t.Errorf("MAC %q is not hmac-sha256:<64 hex>", a)
	}
	if m, err := ArgsHMAC(testKey, nil); m != "" || err != nil {
		t.Errorf("no arguments: %q, %v; want empty", m, err)
	}
}

// TestArgsHMACEdgeCases: numbers a double cannot hold, NUL, surrogate
// pairs and long documents canonicalize; what is not one JSON value, or
// has duplicate keys, invalid UTF-8 or a lone surrogate, is refused.
func TestArgsHMACEdgeCases(t *testing.T) {
	good := []string{
		`1e400`, `-1e400`, `1e-400`, `123456789012345678901234567890123456789`,
		`1.7976931348623157e308`, `5e-324`, `0e99999999999999999999`, `[1e99999999999999999999]`,
		`"\u0000"`, `"\ud83d\ude00"`, `{"":""}`, `[]`, `{}`, `null`, `true`, `"x"`,
		`[` + strings.Repeat("1,", 10000) + `1]`,
		`"` + strings.Repeat("é", 10000) + `"`,
	}
	for _, args := range good {
		if _, err := ArgsHMAC(testKey, []byte(args)); err != nil {
			t.Errorf("%.40s: %v", args, err)
		}
	}
	bad := []string{
		`{"a":1,"a":2}`, `{"a":1`, `nope`, `{"a":1} x`, "\"\xff\"", `"\ud800"`, `[01]`, `1 2`,
	}
	for _, args := range bad {
		if _, err := ArgsHMAC(testKey, []byte(args)); !errors.Is(err, ErrNotJSON) {
			t.Errorf("%q: error %v, want ErrNotJSON", args, err)
		}
	}
}

// FuzzArgsHMAC checks that canonicalization never panics, that whatever it
// accepts it accepts again re-indented, with the same MAC.
func FuzzArgsHMAC(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":[true,null,"x"]}`, `[1e400,"s"]`, `{"x":9007199254740993}`, `"\u00e9"`, `{"a":{"b":-0.0}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := ArgsHMAC(testKey, raw)
		if err != nil || m == "" {
			return
		}
		var out bytes.Buffer
		if err := json.Indent(&out, raw, " ", "\t"); err != nil {
			t.Fatalf("accepted %q, which json.Indent rejects: %v", raw, err)
		}
		m2, err := ArgsHMAC(testKey, out.Bytes())
		if err != nil || m2 != m {
			t.Fatalf("re-indented %q: %q, %v; want %q", raw, m2, err, m)
		}
	})
}
