// Package argcheck validates tool-call arguments against the tool's
// inputSchema before a call goes upstream, so that a model's malformed call
// is answered at once with a short, readable reason instead of an upstream
// failure.
//
// Schemas are JSON Schema 2020-12 unless their $schema names draft-04,
// draft-06, draft-07 or 2019-09. Nothing is ever loaded from outside the
// schema: a $ref to another document (http, https, file or any other URL)
// makes the schema fail to compile. A schema that does not compile must not
// block calls: the caller forwards them unvalidated (see [Cache.Get]).
//
// Error messages name arguments and say what was expected, never the
// values given: arguments may hold secrets.
package argcheck

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// ErrInvalidSchema is wrapped by the errors of schemas that do not compile.
var ErrInvalidSchema = errors.New("input schema does not compile")

// MaxSchemaBytes bounds the size of a schema Compile accepts.
const MaxSchemaBytes = 4 << 20

// schemaURL names the schema being compiled; relative references resolve
// against it and, being outside the schema, are refused.
const schemaURL = "urn:mcpgate:input-schema"

// Schema is a compiled inputSchema. A nil *Schema accepts everything.
type Schema struct {
	s *jsonschema.Schema
}

// Compile compiles a tool's inputSchema. Its error wraps ErrInvalidSchema.
func Compile(inputSchema []byte) (s *Schema, err error) {
	// The library has not seen every schema an upstream may send: a panic
	// in it is a schema that does not compile, not a crashed gateway.
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("%w: compiler failed: %v", ErrInvalidSchema, r)
		}
	}()
	return compile(inputSchema)
}

func compile(inputSchema []byte) (*Schema, error) {
	if len(inputSchema) > MaxSchemaBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidSchema, MaxSchemaBytes)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(inputSchema))
	if err != nil {
		return nil, fmt.Errorf("%w: not JSON: %v", ErrInvalidSchema, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(refuseLoader{})
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSchema, err)
	}
	s, err := c.Compile(schemaURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSchema, err)
	}
	return &Schema{s: s}, nil
}

// refuseLoader loads nothing: a tool's schema must be self-contained. The
// standard meta-schemas named by $schema are built into the library and
// need no loader.
type refuseLoader struct{}

var errRemoteRef = errors.New("references outside the schema are not loaded")

func (refuseLoader) Load(string) (any, error) { return nil, errRemoteRef }

// Validate checks a call's arguments (raw JSON; absent arguments count as
// an empty object). A mismatch is an *ArgumentError.
func (s *Schema) Validate(args []byte) error {
	if s == nil {
		return nil
	}
	if len(bytes.TrimSpace(args)) == 0 {
		args = []byte("{}")
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(args))
	if err != nil {
		return &ArgumentError{Problems: []string{"arguments are not valid JSON"}}
	}
	err = s.s.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return &ArgumentError{Problems: []string{"arguments could not be checked against the input schema"}}
	}
	return describe(ve, v)
}

// ArgumentError says why arguments do not match the schema.
type ArgumentError struct {
	// Problems are at most MaxProblems short descriptions, such as
	// `argument "path": expected string, got number`. They name arguments
	// and expectations from the schema, never argument values.
	Problems []string
	// Omitted counts further problems left out.
	Omitted int
}

// MaxProblems bounds the problems an ArgumentError lists.
const MaxProblems = 3

// Error joins the problems with "; ".
func (e *ArgumentError) Error() string {
	var b bytes.Buffer
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p)
	}
	if e.Omitted > 0 {
		fmt.Fprintf(&b, " (and %d more %s)", e.Omitted, plural("problem", e.Omitted))
	}
	return b.String()
}
