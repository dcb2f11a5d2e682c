package argcheck

import (
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// Bounds on what a message quotes: names and schema values are cut, so
// that one problem stays one short line.
const (
	maxName      = 64
	maxSchemaVal = 40
	maxEnum      = 5
)

// describe turns the library's error tree into at most MaxProblems
// messages. The library's own messages quote the offending values, so
// none of its text is used.
func describe(ve *jsonschema.ValidationError, instance any) *ArgumentError {
	var leaves []*jsonschema.ValidationError
	collect(ve, &leaves)
	msgs := make([]string, 0, len(leaves))
	for _, l := range leaves {
		msgs = append(msgs, problem(l, instance))
	}
	// The library visits properties in map order: sorted, the same
	// arguments always get the same message.
	slices.Sort(msgs)
	msgs = slices.Compact(msgs)
	if len(msgs) == 0 {
		msgs = []string{"arguments do not match the input schema"}
	}
	e := &ArgumentError{Problems: msgs[:min(len(msgs), MaxProblems)], Omitted: max(len(msgs)-MaxProblems, 0)}
	return e
}

// collect gathers the errors worth reporting: leaves, and alternatives
// (anyOf, oneOf, not, contains) as one problem each, since the reasons
// each branch failed would mislead more than help.
func collect(ve *jsonschema.ValidationError, out *[]*jsonschema.ValidationError) {
	switch ve.ErrorKind.(type) {
	case *kind.AnyOf, *kind.OneOf, *kind.Not, *kind.Contains, *kind.MinContains, *kind.MaxContains:
		*out = append(*out, ve)
		return
	}
	if len(ve.Causes) == 0 {
		if _, ok := ve.ErrorKind.(*kind.Group); !ok {
			*out = append(*out, ve)
		}
		return
	}
	for _, c := range ve.Causes {
		collect(c, out)
	}
}

// problem renders one error: where, then what was expected.
func problem(ve *jsonschema.ValidationError, instance any) string {
	loc := location(ve.InstanceLocation, instance)
	root := loc == ""
	at := "arguments"
	if !root {
		at = "argument " + strconv.Quote(loc)
	}
	switch k := ve.ErrorKind.(type) {
	case *kind.Required:
		if root {
			return "missing required " + plural("argument", len(k.Missing)) + " " + names(k.Missing)
		}
		return at + ": missing required " + plural("property", len(k.Missing)) + " " + names(k.Missing)
	case *kind.AdditionalProperties:
		if root {
			return "unexpected " + plural("argument", len(k.Properties)) + " " + names(k.Properties)
		}
		return at + ": unexpected " + plural("property", len(k.Properties)) + " " + names(k.Properties)
	case *kind.DependentRequired:
		return dependency(root, at, k.Prop, k.Missing)
	case *kind.Dependency:
		return dependency(root, at, k.Prop, k.Missing)
	}
	return at + ": " + expectation(ve.ErrorKind)
}

// dependency renders a property that requires others.
func dependency(root bool, at, prop string, missing []string) string {
	if len(missing) == 0 {
		if root {
			return "argument " + names([]string{prop}) + " brings constraints that are not met"
		}
		return at + ": property " + names([]string{prop}) + " brings constraints that are not met"
	}
	if root {
		return "argument " + names([]string{prop}) + " requires " + plural("argument", len(missing)) + " " + names(missing)
	}
	return at + ": property " + names([]string{prop}) + " requires " + names(missing)
}

// expectation says what the schema wanted, from the schema alone.
func expectation(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Type:
		return "expected " + strings.Join(k.Want, " or ") + ", got " + k.Got
	case *kind.Enum:
		return "must be one of " + schemaValues(k.Want)
	case *kind.Const:
		return "must be " + schemaValue(k.Want)
	case *kind.Format:
		return "must be a valid " + cut(k.Want, maxSchemaVal)
	case *kind.Pattern:
		return "must match the pattern " + strconv.Quote(cut(k.Want, 2*maxSchemaVal))
	case *kind.MinLength:
		return fmt.Sprintf("must be at least %d characters long", k.Want)
	case *kind.MaxLength:
		return fmt.Sprintf("must be at most %d characters long", k.Want)
	case *kind.Minimum:
		return "must be at least " + number(k.Want)
	case *kind.Maximum:
		return "must be at most " + number(k.Want)
	case *kind.ExclusiveMinimum:
		return "must be greater than " + number(k.Want)
	case *kind.ExclusiveMaximum:
		return "must be less than " + number(k.Want)
	case *kind.MultipleOf:
		return "must be a multiple of " + number(k.Want)
	case *kind.MinItems:
		return fmt.Sprintf("must have at least %d %s", k.Want, plural("item", k.Want))
	case *kind.MaxItems:
		return fmt.Sprintf("must have at most %d %s", k.Want, plural("item", k.Want))
	case *kind.AdditionalItems:
		return fmt.Sprintf("must have at most %d %s", k.Count, plural("item", k.Count))
	case *kind.MinProperties:
		return fmt.Sprintf("must have at least %d %s", k.Want, plural("property", k.Want))
	case *kind.MaxProperties:
		return fmt.Sprintf("must have at most %d %s", k.Want, plural("property", k.Want))
	case *kind.UniqueItems:
		return fmt.Sprintf("items %d and %d must not be equal", k.Duplicates[0], k.Duplicates[1])
	case *kind.Contains:
		return "must contain at least one matching item"
	case *kind.MinContains:
		return fmt.Sprintf("must contain at least %d matching %s", k.Want, plural("item", k.Want))
	case *kind.MaxContains:
		return fmt.Sprintf("must contain at most %d matching %s", k.Want, plural("item", k.Want))
	case *kind.PropertyNames:
		return "property name " + names([]string{k.Property}) + " is not allowed"
	case *kind.FalseSchema:
		return "is not allowed"
	case *kind.Not:
		return "matches a form that is not allowed"
	case *kind.AnyOf:
		return "does not match any of the allowed forms"
	case *kind.OneOf:
		if len(k.Subschemas) > 1 {
			return "matches more than one of the allowed forms; it must match exactly one"
		}
		return "does not match any of the allowed forms"
	case *kind.ContentEncoding:
		return "must be valid " + cut(k.Want, maxSchemaVal)
	case *kind.ContentMediaType:
		return "must be valid " + cut(k.Want, maxSchemaVal)
	case *kind.ContentSchema:
		return "has content that does not match its schema"
	case *kind.InvalidJsonValue:
		return "is not a valid JSON value"
	}
	return "does not match the input schema"
}

// location renders an instance location as a.b[0].c, telling array
// indexes from keys by walking the instance.
func location(tokens []string, instance any) string {
	var b strings.Builder
	cur := instance
	for _, tok := range tokens {
		switch v := cur.(type) {
		case []any:
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(v) {
				fmt.Fprintf(&b, "[%d]", i)
				cur = v[i]
				continue
			}
		case map[string]any:
			cur = v[tok]
		default:
			cur = nil
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(cut(tok, maxName))
	}
	return b.String()
}

// names quotes property names, at most maxEnum of them.
func names(ns []string) string {
	quoted := make([]string, 0, min(len(ns), maxEnum))
	for i, n := range ns {
		if i == maxEnum {
			quoted = append(quoted, fmt.Sprintf("and %d more", len(ns)-maxEnum))
			break
		}
		quoted = append(quoted, strconv.Quote(cut(n, maxName)))
	}
	return strings.Join(quoted, ", ")
}

// schemaValues lists allowed values from the schema (never the caller's).
func schemaValues(vs []any) string {
	out := make([]string, 0, min(len(vs), maxEnum))
	for i, v := range vs {
		if i == maxEnum {
			out = append(out, fmt.Sprintf("and %d more", len(vs)-maxEnum))
			break
		}
		out = append(out, schemaValue(v))
	}
	return strings.Join(out, ", ")
}

func schemaValue(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "the schema's value"
	}
	if len(b) > maxSchemaVal {
		return cut(string(b), maxSchemaVal)
	}
	return string(b)
}

func number(r *big.Rat) string {
	if r == nil {
		return "the schema's bound"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// cut shortens s to at most n bytes on a rune boundary, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func plural(word string, n int) string {
	if n == 1 {
		return word
	}
	if word == "property" {
		return "properties"
	}
	return word + "s"
}
