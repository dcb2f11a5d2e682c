package catalog

import (
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// FuzzDecodeCursor: cursors come from clients. Decoding never panics, and
// only a cursor of the current generation with a sane offset decodes.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(EncodeCursor(3, 10), uint64(3))
	f.Add("", uint64(0))
	f.Add("!!!", uint64(1))
	f.Fuzz(func(t *testing.T, c string, gen uint64) {
		off, err := DecodeCursor(c, gen)
		if err == nil {
			if off < 0 {
				t.Fatalf("negative offset %d from %q", off, c)
			}
			if got, err := DecodeCursor(EncodeCursor(gen, off), gen); err != nil || got != off {
				t.Fatalf("round trip of offset %d: %d, %v", off, got, err)
			}
		}
	})
}

// FuzzTemplate: URI templates come from upstreams and URIs from clients.
// Compiling and matching never panic and stay fast.
func FuzzTemplate(f *testing.F) {
	f.Add("file:///{path}", "file:///etc/hosts")
	f.Add("db://{table}/{id}", "db://users/7")
	f.Add("x{+a}{#b}{?c,d}", "xyz")
	f.Add(strings.Repeat("{a}", 50), strings.Repeat("b", 500))
	f.Fuzz(func(t *testing.T, tmpl, uri string) {
		start := time.Now()
		tp, err := CompileTemplate(tmpl)
		if err == nil {
			tp.Match(uri)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("template %q on %q took %v", tmpl, uri, d)
		}
	})
}

// FuzzSplit: qualified names come from clients (the gateway checks the
// tool-name pattern first); for valid names Split inverts Qualify.
func FuzzSplit(f *testing.F) {
	f.Add("github__create_issue")
	f.Add("__x")
	f.Add("a__b__c")
	f.Fuzz(func(t *testing.T, name string) {
		srv, own, ok := Split(name)
		if !ok || !mcpwire.ValidToolName(name) {
			return
		}
		if q, ok := Qualify(srv, own); !ok || q != name {
			t.Fatalf("Split(%q) = %q, %q but Qualify gives %q, %v", name, srv, own, q, ok)
		}
	})
}
