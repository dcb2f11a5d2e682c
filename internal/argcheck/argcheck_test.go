package argcheck

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// canary stands for a secret passed as an argument: no message may
// contain it.
const canary = "sk-CANARY-7f3a9c"

const fileSchema = `{
	"type": "object",
	"properties": {
		"path": {"type": "string", "minLength": 1},
		"mode": {"enum": ["read", "write"]},
		"count": {"type": "integer", "minimum": 1, "maximum": 10},
		"tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
		"opts": {
			"type": "object",
			"properties": {"depth": {"type": "integer"}},
			"required": ["depth"],
			"additionalProperties": false
		},
		"token": {"type": "string", "pattern": "^tok_[a-z]+$"}
	},
	"required": ["path"],
	"additionalProperties": false
}`

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name, schema, args string
		want               string // "" means valid
	}{
		{"valid", fileSchema, `{"path":"/tmp/x","mode":"read","count":3,"tags":["a","b"],"opts":{"depth":2}}`, ""},
		{"absent arguments", `{"type":"object"}`, ``, ""},
		{"wrong type", fileSchema, `{"path":42}`, `argument "path": expected string, got number`},
		{"missing required", fileSchema, `{"mode":"read"}`, `missing required argument "path"`},
		{"unexpected argument", fileSchema, `{"path":"x","colour":"` + canary + `"}`, `unexpected argument "colour"`},
		{"enum", fileSchema, `{"path":"x","mode":"` + canary + `"}`, `argument "mode": must be one of "read", "write"`},
		{"range", fileSchema, `{"path":"x","count":11}`, `argument "count": must be at most 10`},
		{"nested", fileSchema, `{"path":"x","opts":{"extra":"` + canary + `"}}`,
			`argument "opts": missing required property "depth"; argument "opts": unexpected property "extra"`},
		{"array item", fileSchema, `{"path":"x","tags":["a",7]}`, `argument "tags[1]": expected string, got number`},
		{"unique", fileSchema, `{"path":"x","tags":["` + canary + `","` + canary + `"]}`, `argument "tags": items 0 and 1 must not be equal`},
		{"pattern", fileSchema, `{"path":"x","token":"` + canary + `"}`, `argument "token": must match the pattern "^tok_[a-z]+$"`},
		{"min length", fileSchema, `{"path":""}`, `argument "path": must be at least 1 characters long`},
		{"not an object", fileSchema, `["` + canary + `"]`, `arguments: expected object, got array`},
		{"at most three, sorted", fileSchema, `{"path":1,"mode":"x","count":0,"tags":"y"}`, `argument "count": must be at least 1; argument "mode": must be one of "read", "write"; argument "path": expected string, got number (and 1 more problem)`},
		{"draft-07", `{"$schema":"http://json-schema.org/draft-07/schema#","type":"object",
			"properties":{"id":{"type":"string","format":"uuid"}},"dependencies":{"id":["kind"]}}`,
			`{"id":"` + canary + `"}`, `argument "id": must be a valid uuid`},
		{"draft-07 valid", `{"$schema":"http://json-schema.org/draft-07/schema#","properties":{"n":{"type":"number"}}}`, `{"n":1.5}`, ""},
		{"2020-12 prefixItems", `{"$schema":"https://json-schema.org/draft/2020-12/schema","properties":{"p":{"type":"array","prefixItems":[{"type":"string"}],"items":false}}}`,
			`{"p":["a","` + canary + `"]}`, `argument "p[1]": is not allowed`},
		{"internal ref", `{"$defs":{"name":{"type":"string"}},"properties":{"n":{"$ref":"#/$defs/name"}}}`, `{"n":5}`, `argument "n": expected string, got number`},
		{"oneOf", `{"properties":{"v":{"oneOf":[{"type":"string"},{"type":"integer"}]}}}`, `{"v":true}`, `argument "v": does not match any of the allowed forms`},
		{"const", `{"properties":{"v":{"const":"yes"}}}`, `{"v":"` + canary + `"}`, `argument "v": must be "yes"`},
		{"odd key", `{"properties":{"a b\n":{"type":"string"}}}`, `{"a b\n":1}`, `argument "a b\n": expected string, got number`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Compile([]byte(tc.schema))
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			err = s.Validate([]byte(tc.args))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v, want valid", err)
				}
				return
			}
			var ae *ArgumentError
			if !errors.As(err, &ae) {
				t.Fatalf("Validate = %v, want an *ArgumentError", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("message %q does not contain %q", err.Error(), tc.want)
			}
			if len(ae.Problems) > MaxProblems {
				t.Errorf("%d problems listed, want at most %d", len(ae.Problems), MaxProblems)
			}
			if strings.Contains(err.Error(), canary) || strings.Contains(fmt.Sprintf("%+v", ae), canary) {
				t.Errorf("message echoes an argument value: %q", err.Error())
			}
		})
	}
}

func TestNilSchemaAcceptsEverything(t *testing.T) {
	var s *Schema
	if err := s.Validate([]byte(`"anything"`)); err != nil {
		t.Fatal(err)
	}
}

func TestInvalidArgumentsJSON(t *testing.T) {
	s, err := Compile([]byte(`{"type":"object"}`))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Validate([]byte(`{"k":"` + canary))
	if err == nil || strings.Contains(err.Error(), canary) {
		t.Fatalf("Validate(bad JSON) = %v", err)
	}
}

// TestNoRemoteReferences: a $ref outside the schema, by URL or file, is
// never fetched; the schema does not compile.
func TestNoRemoteReferences(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/schema+json")
		w.Write([]byte(`{"type":"string"}`))
	}))
	defer srv.Close()
	for _, tc := range []struct{ name, schema string }{
		{"http ref", `{"properties":{"a":{"$ref":"` + srv.URL + `/s.json"}}}`},
		{"relative ref under an http $id", `{"$id":"` + srv.URL + `/root.json","properties":{"a":{"$ref":"other.json"}}}`},
		{"http meta-schema", `{"$schema":"` + srv.URL + `/meta.json","type":"object"}`},
		{"file ref", `{"properties":{"a":{"$ref":"file:///etc/passwd"}}}`},
		{"relative ref", `{"properties":{"a":{"$ref":"defs.json#/x"}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile([]byte(tc.schema))
			if !errors.Is(err, ErrInvalidSchema) {
				t.Fatalf("Compile = %v, want ErrInvalidSchema", err)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the schema server was asked %d times", n)
	}
}

func TestCompileErrors(t *testing.T) {
	for _, schema := range []string{``, `{`, `{"type":"nonsense"}`, `{"minimum":"ten"}`, `{"pattern":"(?!x)"}`, `[1,2]`,
		`{"type":"object"}` + strings.Repeat(" ", MaxSchemaBytes)} {
		if _, err := Compile([]byte(schema)); !errors.Is(err, ErrInvalidSchema) {
			t.Errorf("Compile(%.40q) = %v, want ErrInvalidSchema", schema, err)
		}
	}
}

func TestCache(t *testing.T) {
	var logs bytes.Buffer
	c := NewCache(2, slog.New(slog.NewTextHandler(&logs, nil)))
	a, b, bad := []byte(`{"type":"object"}`), []byte(`{"type":"string"}`), []byte(`{"type":"nonsense"}`)
	s1, err := c.Get(a)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := c.Get(append([]byte(nil), a...))
	if s1 != s2 {
		t.Error("the same schema bytes compiled twice")
	}
	if hits, misses := c.Stats(); hits != 1 || misses != 1 {
		t.Errorf("stats = %d hits, %d misses; want 1, 1", hits, misses)
	}
	for range 3 {
		s, err := c.Get(bad)
		if s != nil || !errors.Is(err, ErrInvalidSchema) {
			t.Fatalf("Get(bad) = %v, %v", s, err)
		}
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("a bad schema was logged %d times, want once:\n%s", n, logs.String())
	}
	c.Get(b) // evicts a, the least recently used
	if c.Len() != 2 {
		t.Errorf("Len = %d, want 2", c.Len())
	}
	if s3, _ := c.Get(a); s3 == s1 {
		t.Error("an evicted schema was still cached")
	}
}

// FuzzValidate: no schema and arguments make Compile or Validate panic or
// hang, and a message never carries the arguments' string values.
func FuzzValidate(f *testing.F) {
	f.Add([]byte(fileSchema), []byte(`{"path":1,"mode":"x"}`))
	f.Add([]byte(`{"$schema":"http://json-schema.org/draft-07/schema#","items":[{"type":"string"}],"additionalItems":false}`), []byte(`["a",1]`))
	f.Add([]byte(`{"$defs":{"a":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"}`), []byte(`{}`))
	f.Add([]byte(`{"$dynamicAnchor":"x","anyOf":[{"$dynamicRef":"#x"},{"type":"null"}]}`), []byte(`null`))
	f.Add([]byte(`{"properties":{"a":{"contains":{"const":1},"minContains":2}}}`), []byte(`{"a":[1]}`))
	f.Fuzz(func(t *testing.T, schema, args []byte) {
		s, err := compile(schema)
		if err != nil {
			return
		}
		err = s.Validate(args)
		var ae *ArgumentError
		if err != nil && !errors.As(err, &ae) {
			t.Fatalf("Validate returned %T", err)
		}
		if ae != nil && len(ae.Problems) > MaxProblems {
			t.Fatalf("%d problems", len(ae.Problems))
		}
	})
}
