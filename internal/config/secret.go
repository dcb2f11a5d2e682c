package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// redacted stands in for a referenced value in every printed form.
const redacted = "<secret>"

// Value is a configuration string given either literally or by reference:
//
//	X-Trace: plain string
//	X-Api-Key: {env: EVERYTHING_KEY}
//	Authorization: {file: /run/secrets/token}
//
// A reference is read by [Value.Resolve] or [Config.ResolveSecrets], never
// while loading or validating. Printing or marshaling a Value never reveals a
// referenced value: fmt shows "<secret>", YAML and JSON show the reference.
type Value struct {
	literal string
	ref     bool // written as a mapping: {env: ...} or {file: ...}
	env     string
	file    string
	hasEnv  bool
	hasFile bool
	// resolved is set by ResolveSecrets. It is a pointer so that fmt,
	// printing a Value nested where its methods are unreachable, shows an
	// address rather than the secret.
	resolved *string
}

// Literal returns a Value holding s itself.
func Literal(s string) Value { return Value{literal: s} }

// EnvRef returns a Value read from the environment variable name.
func EnvRef(name string) Value { return Value{ref: true, env: name, hasEnv: true} }

// FileRef returns a Value read from the file at path.
func FileRef(path string) Value { return Value{ref: true, file: path, hasFile: true} }

// IsSecret reports whether v is a reference ({env:} or {file:}) rather than
// a literal.
func (v Value) IsSecret() bool { return v.ref }

// String returns the literal, or "<secret>" for a reference.
func (v Value) String() string {
	if v.ref {
		return redacted
	}
	return v.literal
}

// GoString keeps %#v from printing a resolved secret.
func (v Value) GoString() string {
	switch {
	case !v.ref:
		return fmt.Sprintf("config.Literal(%q)", v.literal)
	case v.hasEnv && !v.hasFile:
		return fmt.Sprintf("config.EnvRef(%q)", v.env)
	case v.hasFile && !v.hasEnv:
		return fmt.Sprintf("config.FileRef(%q)", v.file)
	}
	return fmt.Sprintf("config.Value{env: %q, file: %q}", v.env, v.file)
}

// LogValue keeps slog from logging a resolved secret.
func (v Value) LogValue() slog.Value { return slog.StringValue(v.String()) }

// Resolved returns the literal, or the value ResolveSecrets read for a
// reference; it is empty for a reference that has not been resolved.
func (v Value) Resolved() string {
	if !v.ref {
		return v.literal
	}
	if v.resolved == nil {
		return ""
	}
	return *v.resolved
}

// Resolve returns the literal, or reads the reference now: the environment
// variable, or the file with one trailing newline removed. An unset
// variable, an unreadable file and an empty result are errors.
func (v Value) Resolve() (string, error) {
	if !v.ref {
		return v.literal, nil
	}
	if err := v.refProblem(); err != nil {
		return "", err
	}
	if v.hasEnv {
		s, ok := os.LookupEnv(v.env)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", v.env)
		}
		if s == "" {
			return "", fmt.Errorf("environment variable %s is empty", v.env)
		}
		return s, nil
	}
	b, err := os.ReadFile(v.file)
	if err != nil {
		return "", fmt.Errorf("reading secret file: %w", err)
	}
	s := strings.TrimSuffix(string(b), "\n")
	s = strings.TrimSuffix(s, "\r")
	if s == "" {
		return "", fmt.Errorf("secret file %s is empty", v.file)
	}
	return s, nil
}

// refProblem reports a malformed reference; it never touches the
// environment or the file system.
func (v Value) refProblem() error {
	switch {
	case !v.ref:
		return nil
	case v.hasEnv == v.hasFile:
		return errors.New("a reference must set exactly one of env or file")
	case v.hasEnv && !validEnvName(v.env):
		return fmt.Errorf("env must name an environment variable (letters, digits and _, not starting with a digit), got %q", v.env)
	case v.hasFile && v.file == "":
		return errors.New("file must be a path")
	case v.hasFile && strings.ContainsRune(v.file, 0):
		return errors.New("file must not contain NUL")
	}
	return nil
}

// reference is the marshaled form of a reference.
type reference struct {
	Env  *string `yaml:"env,omitempty" json:"env,omitempty"`
	File *string `yaml:"file,omitempty" json:"file,omitempty"`
}

func (v Value) reference() reference {
	var r reference
	if v.hasEnv {
		r.Env = &v.env
	}
	if v.hasFile {
		r.File = &v.file
	}
	return r
}

// MarshalYAML writes the literal, or the reference ({env: NAME} or
// {file: PATH}), never a resolved secret.
func (v Value) MarshalYAML() (any, error) {
	if !v.ref {
		return v.literal, nil
	}
	return v.reference(), nil
}

// MarshalJSON writes the literal, or the reference ({"env": NAME} or
// {"file": PATH}), never a resolved secret.
func (v Value) MarshalJSON() ([]byte, error) {
	if !v.ref {
		return json.Marshal(v.literal)
	}
	return json.Marshal(v.reference())
}

// UnmarshalYAML accepts a scalar, or a mapping with the keys env and file.
// Whether a reference names exactly one source is left to Validate, so that
// it is reported together with every other problem.
func (v *Value) UnmarshalYAML(n *yaml.Node) error {
	val, err := valueFromNode(n)
	if err != nil {
		return nodeError(n, err)
	}
	*v = val
	return nil
}

func valueFromNode(n *yaml.Node) (Value, error) {
	n = unalias(n)
	switch n.Kind {
	case yaml.ScalarNode:
		if isNull(n) {
			return Value{}, nil
		}
		return Literal(n.Value), nil
	case yaml.MappingNode:
		v := Value{ref: true}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := unalias(n.Content[i]), unalias(n.Content[i+1])
			var dst *string
			switch {
			case k.Kind == yaml.ScalarNode && k.Value == "env" && !v.hasEnv:
				v.hasEnv, dst = true, &v.env
			case k.Kind == yaml.ScalarNode && k.Value == "file" && !v.hasFile:
				v.hasFile, dst = true, &v.file
			case k.Kind == yaml.ScalarNode && (k.Value == "env" || k.Value == "file"):
				return Value{}, fmt.Errorf("duplicate key %q in reference", k.Value)
			default:
				return Value{}, fmt.Errorf("unknown key %s in reference; use {env: NAME} or {file: PATH}", keyName(k))
			}
			if val.Kind != yaml.ScalarNode {
				return Value{}, fmt.Errorf("%s must be a string, not %s", k.Value, kindName(val))
			}
			if !isNull(val) {
				*dst = val.Value
			}
		}
		return v, nil
	}
	return Value{}, fmt.Errorf("must be a string, {env: NAME} or {file: PATH}, not %s", kindName(n))
}
