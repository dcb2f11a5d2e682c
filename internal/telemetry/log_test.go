package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mcpgate/mcpgate/internal/telemetry"
)

func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(telemetry.LogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "gateway")

	logger.InfoContext(spanContext(t), "request", "outcome", "ok")
	logger.InfoContext(context.Background(), "request", "outcome", "ok")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d records, want 2:\n%s", len(lines), buf.String())
	}
	var with, without map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &with); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &without); err != nil {
		t.Fatal(err)
	}
	if with["trace_id"] != clientTrace || with["span_id"] != clientSpan || with["component"] != "gateway" || with["outcome"] != "ok" {
		t.Errorf("record with a span = %v, want trace_id %s and span_id %s", with, clientTrace, clientSpan)
	}
	if _, ok := without["trace_id"]; ok {
		t.Errorf("record without a span has trace_id: %v", without)
	}
}

func TestSafeString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain tool_name-1.2", "plain tool_name-1.2"},
		{"café ✓ 日本", "café ✓ 日本"},
		{`C:\path\kept`, `C:\path\kept`},
		{"a\nb\rc\td", `a\nb\rc\td`},
		{"x\x1b[2Jy\x07\x00\x7f", `x\x1b[2Jy\x07\x00\x7f`},
		{"csi\u009b31m", `csi\u009b31m`},
		{"line\u2028para\u2029", `line\u2028para\u2029`},
		{"rtl\u202eexe.txt\u2066", `rtl\u202eexe.txt\u2066`},
		{"bad\xff\xfeutf8", `bad\xff\xfeutf8`},
		{"", ""},
	} {
		if got := telemetry.SafeString(tc.in); got != tc.want {
			t.Errorf("SafeString(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestSafeStringInLogs writes hostile text through both slog handlers the
// gateway offers and checks that each record stays one line of valid UTF-8
// with no control or reordering characters that a terminal or log viewer
// would act on.
func TestSafeStringInLogs(t *testing.T) {
	hostile := []string{
		"ok\n{\"level\":\"INFO\",\"msg\":\"request\",\"principal\":\"admin\"}",
		"ok\r\ntime=2026-01-01 level=INFO msg=forged",
		"\x1b]8;;http://evil\x07click\x1b]8;;\x07\x1b[2J",
		"\u009b2J\u0085next",
		"a\u2028b\u2029c",
		"\u202egnp.exe",
		"\xff\xfe\xc0\x80",
	}
	handlers := map[string]func(*bytes.Buffer) slog.Handler{
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	}
	for name, newHandler := range handlers {
		for _, s := range hostile {
			var buf bytes.Buffer
			slog.New(newHandler(&buf)).Info("request", "tool", telemetry.SafeString(s), telemetry.SafeString(s), "key")
			out := buf.String()
			if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
				t.Errorf("%s: %q wrote more than one line: %q", name, s, out)
			}
			if !utf8.ValidString(out) {
				t.Errorf("%s: %q wrote invalid UTF-8: %q", name, s, out)
			}
			for _, r := range strings.TrimSuffix(out, "\n") {
				if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == '\u2028' || r == '\u2029' || (r >= '\u202a' && r <= '\u202e') {
					t.Errorf("%s: %q wrote %U: %q", name, s, r, out)
				}
			}
		}
	}
}

func BenchmarkSafeStringClean(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		telemetry.SafeString("github__create_issue")
	}
}
