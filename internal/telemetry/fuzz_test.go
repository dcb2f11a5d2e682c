package telemetry

import (
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzSafeString: whatever a client sends, the escaped form is valid UTF-8
// without control or bidi characters, so it cannot forge a log record.
func FuzzSafeString(f *testing.F) {
	for _, s := range []string{"plain", "a\nb", "\x1b[31mred", "\u2028", "\u202e", "\xff\xfe", "tab\t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := SafeString(s)
		if !utf8.ValidString(out) {
			t.Fatalf("SafeString(%q) = %q is not valid UTF-8", s, out)
		}
		for _, r := range out {
			if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r) {
				t.Fatalf("SafeString(%q) = %q keeps %U", s, out, r)
			}
		}
	})
}

// FuzzMetaTraceContext: params._meta comes from clients.
func FuzzMetaTraceContext(f *testing.F) {
	f.Add([]byte(`{"_meta":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}`))
	f.Add([]byte(`{"_meta":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, params []byte) {
		MetaTraceContext(params)
	})
}
