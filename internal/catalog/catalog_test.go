package catalog

import (
	"errors"
	"strings"
	"testing"
)

func TestQualifyAndSplit(t *testing.T) {
	q, ok := Qualify("files", "read_file")
	if q != "files__read_file" || !ok {
		t.Fatalf("Qualify = %q, %v", q, ok)
	}
	if _, ok := Qualify("files", strings.Repeat("x", 125)); ok {
		t.Fatal("name over 128 characters accepted")
	}
	if _, ok := Qualify("files", "bad name"); ok {
		t.Fatal("name with a space accepted")
	}
	for _, tc := range []struct{ in, server, name string }{
		{"files__read_file", "files", "read_file"},
		{"a-b__x__y", "a-b", "x__y"},
	} {
		s, n, ok := Split(tc.in)
		if !ok || s != tc.server || n != tc.name {
			t.Errorf("Split(%q) = %q, %q, %v", tc.in, s, n, ok)
		}
	}
	for _, bad := range []string{"noseparator", "__x", "x__", ""} {
		if _, _, ok := Split(bad); ok {
			t.Errorf("Split(%q) ok", bad)
		}
	}
}

func TestCursor(t *testing.T) {
	c := EncodeCursor(7, 100)
	if strings.Contains(c, "100") {
		t.Fatalf("cursor %q is not opaque", c)
	}
	off, err := DecodeCursor(c, 7)
	if err != nil || off != 100 {
		t.Fatalf("DecodeCursor = %d, %v", off, err)
	}
	if _, err := DecodeCursor(c, 8); !errors.Is(err, ErrBadCursor) {
		t.Fatalf("stale generation accepted: %v", err)
	}
	for _, bad := range []string{"", "xyz", "bWNwZ2F0ZTEuNy4tMQ", strings.Repeat("A", 200)} {
		if _, err := DecodeCursor(bad, 7); !errors.Is(err, ErrBadCursor) {
			t.Errorf("DecodeCursor(%q) err = %v", bad, err)
		}
	}
}

func TestPage(t *testing.T) {
	for _, tc := range []struct{ n, off, size, lo, hi, next int }{
		{10, 0, 4, 0, 4, 4},
		{10, 8, 4, 8, 10, -1},
		{10, 12, 4, 10, 10, -1},
		{0, 0, 4, 0, 0, -1},
	} {
		lo, hi, next := Page(tc.n, tc.off, tc.size)
		if lo != tc.lo || hi != tc.hi || next != tc.next {
			t.Errorf("Page(%d,%d,%d) = %d,%d,%d", tc.n, tc.off, tc.size, lo, hi, next)
		}
	}
}

func TestTemplateMatch(t *testing.T) {
	for _, tc := range []struct {
		tmpl, uri string
		want      bool
	}{
		{"test://template/{id}/data", "test://template/42/data", true},
		{"test://template/{id}/data", "test://template/4/2/data", false},
		{"file:///{+path}", "file:///a/b/c.txt", true},
		{"demo://notes/{name}", "demo://notes/x", true},
		{"demo://notes/{name}", "other://notes/x", false},
		{"api://items{?page,limit}", "api://items?page=2", true},
		{"a.b://{x}", "aXb://1", false},
	} {
		tp, err := CompileTemplate(tc.tmpl)
		if err != nil {
			t.Fatal(err)
		}
		if got := tp.Match(tc.uri); got != tc.want {
			t.Errorf("%q matches %q = %v, want %v", tc.tmpl, tc.uri, got, tc.want)
		}
	}
}
