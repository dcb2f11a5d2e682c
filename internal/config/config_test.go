package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with the file at path, or rewrites it with -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/config -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

func testFiles(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no files match testdata/%s", pattern)
	}
	return files
}

func marshalYAML(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestGood loads each testdata/*.good.yml and compares the configuration,
// marshaled back to YAML with every default filled in, with
// <name>.good.yml.out.
func TestGood(t *testing.T) {
	files := testFiles(t, "*.good.yml")
	if len(files) < 6 {
		t.Errorf("only %d good cases", len(files))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			c, err := Load(file)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			for name, s := range c.Servers {
				if s.Name != name {
					t.Errorf("Servers[%q].Name = %q", name, s.Name)
				}
			}
			out := marshalYAML(t, c)
			golden(t, file+".out", string(out))

			// What we write, we read back unchanged.
			again, err := Parse(out)
			if err != nil {
				t.Fatalf("Parse(marshaled): %v\n%s", err, out)
			}
			if diff := cmp.Diff(c, again, cmp.AllowUnexported(Value{}), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("round trip changed the config (-first +second):\n%s", diff)
			}
		})
	}
}

// TestBad loads each testdata/*.bad.yml and compares the error with
// <name>.bad.yml.err.
func TestBad(t *testing.T) {
	files := testFiles(t, "*.bad.yml")
	if len(files) < 15 {
		t.Errorf("only %d bad cases", len(files))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse(data)
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", c)
			}
			if c != nil {
				t.Errorf("Parse returned a config with an error")
			}
			if _, ok := errors.AsType[Problems](err); !ok {
				t.Errorf("error is %T, want Problems", err)
			}
			golden(t, file+".err", err.Error()+"\n")
		})
	}
}

func TestParseEmpty(t *testing.T) {
	for _, in := range []string{"", "\n", "# only a comment\n", "---\n", "~\n", "null\n"} {
		c, err := Parse([]byte(in))
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if diff := cmp.Diff(Default(), c); diff != "" {
			t.Errorf("Parse(%q) differs from Default() (-want +got):\n%s", in, diff)
		}
	}
}

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestServerDefaults checks that an absent key takes its default and an
// explicit value, even one equal to a zero, is kept.
func TestServerDefaults(t *testing.T) {
	c, err := Parse([]byte(`
shutdown_grace: 0s
servers:
  a: {url: "http://127.0.0.1:1/mcp"}
  b: {command: [x], response_timeout: 1s}
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.ShutdownGrace != 0 {
		t.Errorf("ShutdownGrace = %v, want 0s", c.ShutdownGrace)
	}
	want := defaultServer()
	if got := c.Servers["a"]; got.ConnectTimeout != want.ConnectTimeout || got.ResponseTimeout != want.ResponseTimeout || got.RestartBackoffMax != want.RestartBackoffMax {
		t.Errorf("server a = %+v, want the defaults", got)
	}
	if got := c.Servers["b"].ResponseTimeout.D().String(); got != "1s" {
		t.Errorf("server b response_timeout = %s, want 1s", got)
	}
	if c.Servers["a"].IsStdio() || !c.Servers["b"].IsStdio() {
		t.Errorf("IsStdio: a=%v b=%v, want false, true", c.Servers["a"].IsStdio(), c.Servers["b"].IsStdio())
	}
}

func TestValidateSortedByPath(t *testing.T) {
	const second = Duration(time.Second)
	c := Default()
	c.Log.Level = "loud"
	c.HTTP.MaxJSONDepth = 0
	c.Listen = ""
	c.Servers["zz"] = &Server{URL: "ftp://x", ConnectTimeout: second, ResponseTimeout: second, RestartBackoffMax: second}
	err := c.Validate()
	ps, ok := errors.AsType[Problems](err)
	if !ok {
		t.Fatalf("Validate() = %v, want Problems", err)
	}
	var paths []string
	for _, p := range ps {
		paths = append(paths, p.Path)
	}
	want := []string{"http.max_json_depth", "listen", "log.level", "servers.zz.url"}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("paths (-want +got):\n%s\n%v", diff, err)
	}
}

func TestLoadErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.yml")
	if _, err := Load(missing); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load(missing) = %v, want a not-exist error naming the path", err)
	}
	bad := filepath.Join("testdata", "multiple.bad.yml")
	_, err := Load(bad)
	if _, ok := errors.AsType[Problems](err); !ok || !strings.HasPrefix(err.Error(), "config "+bad+": ") {
		t.Errorf("Load(bad) = %v, want Problems prefixed with the path", err)
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.yml"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if _, ok := errors.AsType[Problems](err); !ok {
				t.Fatalf("error is %T, want Problems: %v", err, err)
			}
			return
		}
		out := marshalYAML(t, c)
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(marshaled): %v\n%s", err, out)
		}
		if diff := cmp.Diff(c, again, cmp.AllowUnexported(Value{}), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("round trip changed the config (-first +second):\n%s", diff)
		}
	})
}
