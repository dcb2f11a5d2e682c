package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads the YAML file at path and parses it with [Parse].
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, FileError(path, err)
	}
	return c, nil
}

// FileError names the config file in err, and counts the problems when
// err holds several, one per line, as every command reports them.
func FileError(path string, err error) error {
	if ps, ok := errors.AsType[Problems](err); ok && len(ps) > 1 {
		return fmt.Errorf("config %s: %d problems:\n%w", path, len(ps), err)
	}
	return fmt.Errorf("config %s: %w", path, err)
}

// Parse decodes a YAML configuration onto [Default] and validates it. An
// empty document yields the defaults. Unknown keys, duplicate keys and
// values of the wrong shape are reported with their line and path; when
// the document decodes, the result of [Config.Validate] is returned. Every
// error Parse returns for a faulty document is [Problems].
func Parse(data []byte) (*Config, error) {
	root, ps := parseDocument(data)
	if ps != nil {
		return nil, ps.err()
	}
	c := Default()
	if root != nil {
		if ps := checkShape(root); ps != nil {
			return nil, ps.err()
		}
		// The shape check already rejects unknown keys; KnownFields stays
		// on so that the decoder never silently drops one.
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(c); err != nil {
			return nil, decodeProblems(err).err()
		}
	}
	if c.Servers == nil {
		c.Servers = map[string]*Server{} // "servers:" with no value
	}
	for name, s := range c.Servers {
		if s != nil {
			s.Name = name
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// parseDocument returns the top-level mapping of data, or nil for an empty
// document.
func parseDocument(data []byte) (*yaml.Node, Problems) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, nil
	} else if err != nil {
		return nil, syntaxProblems(err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return nil, Problems{{Line: next.Line, Message: "only one YAML document is allowed"}}
	} else if !errors.Is(err, io.EOF) {
		return nil, syntaxProblems(err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	root := unalias(doc.Content[0])
	if isNull(root) {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, Problems{{Line: root.Line, Message: fmt.Sprintf("the top level must be a mapping of settings, not %s", kindName(root))}}
	}
	return root, nil
}

// syntaxProblems rewords a YAML syntax error, which carries its line in
// its text.
func syntaxProblems(err error) Problems {
	return Problems{{Message: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}
}

// decodeProblems rewords a decoding error; after the shape check it is not
// expected, so it is passed on as it is.
func decodeProblems(err error) Problems {
	if te, ok := errors.AsType[*yaml.TypeError](err); ok {
		ps := make(Problems, len(te.Errors))
		for i, e := range te.Errors {
			ps[i] = Problem{Message: e}
		}
		return ps
	}
	return Problems{{Message: strings.TrimPrefix(err.Error(), "yaml: ")}}
}
