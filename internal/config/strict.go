package config

import (
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxShapeNodes bounds the shape check, which follows aliases, so that an
// alias bomb fails instead of running away.
const maxShapeNodes = 200_000

var (
	durationType = reflect.TypeFor[Duration]()
	valueType    = reflect.TypeFor[Value]()
)

// shape checks a YAML tree against the Go types it will be decoded into,
// before decoding. It reports, with line and key path, what the decoder
// would report with neither: unknown and duplicate keys, lists where
// mappings belong, malformed scalars. A tree that passes decodes cleanly.
type shape struct {
	problems Problems
	visited  int
}

// checkShape returns the shape problems of the document root, decoded
// into a Config.
func checkShape(root *yaml.Node) Problems {
	var s shape
	s.check(root, reflect.TypeFor[Config](), "")
	return s.problems
}

func (s *shape) add(n *yaml.Node, path, format string, args ...any) {
	s.problems = append(s.problems, Problem{Path: path, Line: n.Line, Message: fmt.Sprintf(format, args...)})
}

func (s *shape) check(n *yaml.Node, t reflect.Type, path string) {
	if s.visited++; s.visited == maxShapeNodes {
		s.add(n, path, "document too large (more than %d nodes after expanding aliases)", maxShapeNodes)
	}
	if s.visited >= maxShapeNodes {
		return
	}
	n = unalias(n)
	if isNull(n) {
		return // null keeps the default
	}
	switch t {
	case durationType:
		if _, err := durationFromNode(n); err != nil {
			s.add(n, path, "%v", err)
		}
		return
	case valueType:
		if _, err := valueFromNode(n); err != nil {
			s.add(n, path, "%v", err)
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		s.check(n, t.Elem(), path)
	case reflect.Struct:
		fields := yamlFields(t)
		s.mapping(n, path, func(k, v *yaml.Node) {
			ft, ok := fields[k.Value]
			if !ok {
				s.add(k, path, "unknown key %s", keyName(k))
				return
			}
			s.check(v, ft, join(path, k.Value))
		})
	case reflect.Map:
		s.mapping(n, path, func(k, v *yaml.Node) {
			s.check(v, t.Elem(), join(path, k.Value))
		})
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			s.add(n, path, "must be a list, not %s", kindName(n))
			return
		}
		for i, item := range n.Content {
			s.check(item, t.Elem(), index(path, i))
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			s.add(n, path, "must be a string, not %s", kindName(n))
		}
	case reflect.Int, reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.Decode(reflect.New(t).Interface()) != nil {
			s.add(n, path, "must be a whole number, not %s", describe(n))
		}
	default:
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			s.add(n, path, "must be a %s, not %s", t, kindName(n))
		}
	}
}

// mapping calls f for each key of the mapping n, following merge keys
// ("<<: *anchor"), after checking that keys are strings and not repeated.
func (s *shape) mapping(n *yaml.Node, path string, f func(k, v *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		s.add(n, path, "must be a mapping, not %s", kindName(n))
		return
	}
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := unalias(n.Content[i]), n.Content[i+1]
		if isMergeKey(k) {
			s.merge(v, path, f)
			continue
		}
		if k.Kind != yaml.ScalarNode || isNull(k) {
			s.add(k, path, "keys must be strings, not %s", kindName(k))
			continue
		}
		if line, ok := seen[k.Value]; ok {
			s.add(k, path, "duplicate key %s (first at line %d)", keyName(k), line)
			continue
		}
		seen[k.Value] = k.Line
		f(k, v)
	}
}

// merge checks the mappings merged into a mapping by a "<<" key.
func (s *shape) merge(v *yaml.Node, path string, f func(k, v *yaml.Node)) {
	v = unalias(v)
	if v.Kind == yaml.SequenceNode {
		for _, item := range v.Content {
			s.mapping(unalias(item), path, f)
		}
		return
	}
	s.mapping(v, path, f)
}

// yamlFields maps the YAML keys of struct type t to field types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return fields
}

func unalias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

func isMergeKey(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Value == "<<" && n.ShortTag() == "!!merge"
}

// kindName names the kind of n for messages.
func kindName(n *yaml.Node) string {
	switch unalias(n).Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "null"
		}
		return "a string"
	}
	return "an empty document"
}

// describe names n for a message, quoting a short scalar.
func describe(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && len(n.Value) <= 40 {
		return fmt.Sprintf("%q", n.Value)
	}
	return kindName(n)
}

// keyName quotes a mapping key for a message.
func keyName(k *yaml.Node) string {
	if k.Kind == yaml.ScalarNode {
		return fmt.Sprintf("%q", k.Value)
	}
	return kindName(k)
}

// nodeError reports err at n's line in the form the YAML decoder collects,
// so that decoding continues and reports every such error.
func nodeError(n *yaml.Node, err error) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
}
