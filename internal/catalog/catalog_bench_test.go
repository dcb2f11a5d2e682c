package catalog

import "testing"

func BenchmarkQualify(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := Qualify("github", "create_pull_request_review"); !ok {
			b.Fatal("not qualified")
		}
	}
}

func BenchmarkSplit(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := Split("github__create_pull_request_review"); !ok {
			b.Fatal("not split")
		}
	}
}

func BenchmarkEncodeCursor(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = EncodeCursor(42, 1000)
	}
}

func BenchmarkDecodeCursor(b *testing.B) {
	c := EncodeCursor(42, 1000)
	b.ReportAllocs()
	for b.Loop() {
		if off, err := DecodeCursor(c, 42); err != nil || off != 1000 {
			b.Fatal(off, err)
		}
	}
}

func BenchmarkTemplateMatch(b *testing.B) {
	for _, bc := range []struct {
		name, tmpl, uri string
		want            bool
	}{
		{"simple_hit", "demo://notes/{name}", "demo://notes/welcome", true},
		{"simple_miss", "demo://notes/{name}", "file:///etc/hosts", false},
		{"reserved_hit", "file:///{+path}", "file:///srv/share/reports/2026/q3/summary.md", true},
		{"query_hit", "api://items{?page,limit}", "api://items?page=2&limit=50", true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			t, err := CompileTemplate(bc.tmpl)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if t.Match(bc.uri) != bc.want {
					b.Fatal("wrong match")
				}
			}
		})
	}
}

func BenchmarkCompileTemplate(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CompileTemplate("file:///{+path}{?rev}"); err != nil {
			b.Fatal(err)
		}
	}
}
