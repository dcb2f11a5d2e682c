package mcpwire

// The helpers in this file read objects that Decode already validated, so
// they only scan for structure. On malformed input they report "not found"
// instead of panicking.

// member locates one member of an object: the key with its quotes at
// d[keyStart:keyEnd] and the value at d[valStart:valEnd].
type member struct {
	keyStart, keyEnd int
	valStart, valEnd int
	esc              bool // the key holds escapes
}

// members iterates over the top-level members of the object in d.
type members struct {
	d   []byte
	i   int
	n   int  // members returned so far
	bad bool // d is not a well-formed object
}

// newMembers starts an iteration; it reports false if d does not start with
// an object (after whitespace).
func newMembers(d []byte) (members, bool) {
	i := skipSpace(d, 0)
	if i >= len(d) || d[i] != '{' {
		return members{}, false
	}
	return members{d: d, i: i + 1}, true
}

// next returns the next member, or false at the end of the object or on
// malformed input (then it.bad is set).
func (it *members) next() (member, bool) {
	d := it.d
	i := skipSpace(d, it.i)
	if i < len(d) && d[i] == '}' && it.n == 0 {
		it.i = i + 1
		return member{}, false
	}
	if it.n > 0 {
		if i >= len(d) {
			it.bad = true
			return member{}, false
		}
		if d[i] == '}' {
			it.i = i + 1
			return member{}, false
		}
		if d[i] != ',' {
			it.bad = true
			return member{}, false
		}
		i = skipSpace(d, i+1)
	}
	if i >= len(d) || d[i] != '"' {
		it.bad = true
		return member{}, false
	}
	var m member
	var flags strFlags
	var reason string
	m.keyStart = i
	m.keyEnd, flags, reason = scanString(d, i)
	m.esc = flags&strEscaped != 0
	if reason != "" {
		it.bad = true
		return member{}, false
	}
	i = skipSpace(d, m.keyEnd)
	if i >= len(d) || d[i] != ':' {
		it.bad = true
		return member{}, false
	}
	m.valStart = skipSpace(d, i+1)
	end, ok := skipValue(d, m.valStart)
	if !ok {
		it.bad = true
		return member{}, false
	}
	m.valEnd = end
	it.i = end
	it.n++
	return m, true
}

// keyIs reports whether the member's unescaped key equals key.
func (m member) keyIs(d []byte, key string) bool {
	body := d[m.keyStart+1 : m.keyEnd-1]
	if !m.esc {
		return string(body) == key
	}
	if len(body) < len(key) { // escapes only lengthen a key
		return false
	}
	var buf [64]byte
	return string(appendUnescaped(buf[:0], body)) == key
}

func skipSpace(d []byte, i int) int {
	for i < len(d) && isSpace(d[i]) {
		i++
	}
	return i
}

// skipValue returns the end of the value starting at d[i]. It trusts that the
// value is valid and only tracks strings and bracket depth.
func skipValue(d []byte, i int) (int, bool) {
	if i >= len(d) {
		return i, false
	}
	switch d[i] {
	case '"':
		end, _, reason := scanString(d, i)
		return end, reason == ""
	case '{', '[':
		depth := 0
		for i < len(d) {
			switch d[i] {
			case '"':
				end, _, reason := scanString(d, i)
				if reason != "" {
					return i, false
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
			i++
		}
		return i, false
	}
	j := i
	for j < len(d) {
		switch c := d[j]; c {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j, j > i
		}
		j++
	}
	return j, j > i
}

// ParamsField returns the raw value of the top-level key in params, an object
// that Decode already validated, e.g. ParamsField(m.Params, "name"). Keys are
// compared after unescaping. It reports false when the key is absent or
// params is not an object.
func ParamsField(params []byte, key string) ([]byte, bool) {
	it, ok := newMembers(params)
	if !ok {
		return nil, false
	}
	for {
		m, ok := it.next()
		if !ok {
			return nil, false
		}
		if m.keyIs(params, key) {
			return params[m.valStart:m.valEnd], true
		}
	}
}

// ReplaceParamsField returns a new object: params with the value of the
// top-level key replaced by value, or with "key":value appended when the key
// is absent. Every other byte of params is kept as it is. value must be valid
// JSON. Nil or empty params is treated as {}; if params is not a well-formed
// object, ReplaceParamsField returns nil.
func ReplaceParamsField(params []byte, key string, value []byte) []byte {
	if len(trimSpace(params)) == 0 {
		out := make([]byte, 0, len(key)+len(value)+5)
		out = append(out, '{')
		out = appendQuoted(out, key)
		out = append(out, ':')
		out = append(out, value...)
		return append(out, '}')
	}
	it, ok := newMembers(params)
	if !ok {
		return nil
	}
	insert := it.i // just after '{' for an empty object
	for {
		m, ok := it.next()
		if !ok {
			break
		}
		if m.keyIs(params, key) {
			out := make([]byte, 0, len(params)-(m.valEnd-m.valStart)+len(value))
			out = append(out, params[:m.valStart]...)
			out = append(out, value...)
			return append(out, params[m.valEnd:]...)
		}
		insert = m.valEnd
	}
	if it.bad || len(trimSpace(params[it.i:])) != 0 {
		return nil
	}
	out := make([]byte, 0, len(params)+len(key)+len(value)+6)
	out = append(out, params[:insert]...)
	if it.n > 0 {
		out = append(out, ',')
	}
	out = appendQuoted(out, key)
	out = append(out, ':')
	out = append(out, value...)
	return append(out, params[insert:]...)
}

// ValidToolName reports whether name matches ^[A-Za-z0-9._-]{1,128}$, the
// MCP tool name rule.
func ValidToolName(name string) bool {
	if len(name) == 0 || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
