package policy

import (
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// maxArgsDepth bounds the nesting of arguments, as encoding/json does.
const maxArgsDepth = 10000

var errArgs = errors.New("invalid JSON")

// parseArgs turns the raw arguments of a call into a CEL map. Absent or
// null arguments are an empty map; anything but a JSON object is an error
// value, so that a rule reading args fails to evaluate rather than
// guessing.
//
// Numbers become int (an integer that fits in int64) or double. The
// parser is a small one of our own: it runs on every call whose rules
// read args, and encoding/json's reflection costs several times more.
func parseArgs(raw []byte) ref.Val {
	p := argParser{data: raw}
	p.space()
	if p.i == len(p.data) || p.literal("null") {
		p.space()
		if p.i == len(p.data) {
			return emptyMap
		}
		return types.NewErr("args: invalid JSON")
	}
	if p.data[p.i] != '{' {
		return types.NewErr("args: not a JSON object")
	}
	v, err := p.value(0)
	if err == nil {
		p.space()
		if p.i != len(p.data) {
			err = errArgs
		}
	}
	if err != nil {
		return types.NewErr("args: invalid JSON")
	}
	return v
}

// argParser decodes JSON straight into CEL values, so that reading them
// converts nothing.
type argParser struct {
	data []byte
	i    int
}

func (p *argParser) space() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// literal consumes word if the input continues with it.
func (p *argParser) literal(word string) bool {
	if len(p.data)-p.i >= len(word) && string(p.data[p.i:p.i+len(word)]) == word {
		p.i += len(word)
		return true
	}
	return false
}

func (p *argParser) value(depth int) (ref.Val, error) {
	if depth > maxArgsDepth {
		return nil, errArgs
	}
	p.space()
	if p.i == len(p.data) {
		return nil, errArgs
	}
	switch c := p.data[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, err := p.string()
		return types.String(s), err
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case p.literal("true"):
		return types.True, nil
	case p.literal("false"):
		return types.False, nil
	case p.literal("null"):
		return types.NullValue, nil
	}
	return nil, errArgs
}

func (p *argParser) object(depth int) (ref.Val, error) {
	p.i++ // {
	m := map[string]ref.Val{}
	p.space()
	if p.i < len(p.data) && p.data[p.i] == '}' {
		p.i++
		return types.NewMap(types.DefaultTypeAdapter, m), nil
	}
	for {
		p.space()
		if p.i == len(p.data) || p.data[p.i] != '"' {
			return nil, errArgs
		}
		k, err := p.string()
		if err != nil {
			return nil, err
		}
		p.space()
		if p.i == len(p.data) || p.data[p.i] != ':' {
			return nil, errArgs
		}
		p.i++
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		m[k] = v
		p.space()
		if p.i == len(p.data) {
			return nil, errArgs
		}
		switch p.data[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return types.NewMap(types.DefaultTypeAdapter, m), nil
		default:
			return nil, errArgs
		}
	}
}

func (p *argParser) array(depth int) (ref.Val, error) {
	p.i++ // [
	var l []ref.Val
	p.space()
	if p.i < len(p.data) && p.data[p.i] == ']' {
		p.i++
		return types.NewRefValList(types.DefaultTypeAdapter, l), nil
	}
	for {
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		l = append(l, v)
		p.space()
		if p.i == len(p.data) {
			return nil, errArgs
		}
		switch p.data[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return types.NewRefValList(types.DefaultTypeAdapter, l), nil
		default:
			return nil, errArgs
		}
	}
}

// string decodes a string. One without escapes and in valid UTF-8 is
// copied as it is; any other goes through encoding/json, which knows every
// escape and replaces invalid UTF-8 as it always has.
func (p *argParser) string() (string, error) {
	start := p.i
	p.i++ // "
	plain := true
	for p.i < len(p.data) {
		switch c := p.data[p.i]; {
		case c == '"':
			p.i++
			raw := p.data[start:p.i]
			if plain && utf8.Valid(raw) {
				return string(raw[1 : len(raw)-1]), nil
			}
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return "", errArgs
			}
			return s, nil
		case c == '\\':
			plain = false
			p.i += 2
		case c < 0x20:
			return "", errArgs
		default:
			p.i++
		}
	}
	return "", errArgs
}

// number decodes a JSON number: an integer that fits in int64 becomes an
// int, any other a double (beyond its range, ±Inf).
func (p *argParser) number() (ref.Val, error) {
	start := p.i
	if p.data[p.i] == '-' {
		p.i++
	}
	integer := true
	switch {
	case p.i < len(p.data) && p.data[p.i] == '0':
		p.i++
	case p.digits() == 0:
		return nil, errArgs
	}
	if p.i < len(p.data) && p.data[p.i] == '.' {
		integer = false
		p.i++
		if p.digits() == 0 {
			return nil, errArgs
		}
	}
	if p.i < len(p.data) && (p.data[p.i] == 'e' || p.data[p.i] == 'E') {
		integer = false
		p.i++
		if p.i < len(p.data) && (p.data[p.i] == '+' || p.data[p.i] == '-') {
			p.i++
		}
		if p.digits() == 0 {
			return nil, errArgs
		}
	}
	s := string(p.data[start:p.i])
	if integer {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return types.Int(n), nil
		}
	}
	f, _ := strconv.ParseFloat(s, 64)
	return types.Double(f), nil
}

// digits consumes a run of digits and returns its length.
func (p *argParser) digits() int {
	start := p.i
	for p.i < len(p.data) && p.data[p.i] >= '0' && p.data[p.i] <= '9' {
		p.i++
	}
	return p.i - start
}
