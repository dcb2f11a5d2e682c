package mcpwire

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

// plain marks bytes that may appear unescaped in a JSON string and need no
// further checks: printable ASCII other than '"' and '\\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// strFlags describe a string accepted by scanString.
type strFlags uint8

const (
	strEscaped  strFlags = 1 << iota // holds a backslash escape
	strNonASCII                      // holds raw bytes >= 0x80
)

// scanString validates the JSON string that starts at d[i] == '"'. On success
// it returns the index just past the closing quote, what the string holds,
// and an empty reason. On failure it returns the offset of the offending byte
// and the reason.
func scanString(d []byte, i int) (end int, flags strFlags, reason string) {
	i++
	for {
		// Skip plain bytes eight at a time; the tail one at a time.
		for {
			if i+8 > len(d) {
				for i < len(d) && plain[d[i]] {
					i++
				}
				break
			}
			if m := special8(binary.LittleEndian.Uint64(d[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(d) {
			return i, flags, "unterminated string"
		}
		switch c := d[i]; {
		case c == '"':
			return i + 1, flags, ""
		case c == '\\':
			n := escapeLen(d, i)
			if n == 0 {
				return i, flags, "invalid escape in string"
			}
			flags |= strEscaped
			i += n
		case c < 0x20:
			return i, flags, "control character in string"
		default:
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size == 1 {
				return i, flags, "invalid UTF-8 in string"
			}
			flags |= strNonASCII
			i += size
		}
	}
}

const (
	lsb8 = 0x0101010101010101
	msb8 = 0x8080808080808080
)

// special8 marks, in the high bit of each byte, the bytes of the
// little-endian word x that are not plain: controls, '"', '\\' and bytes
// >= 0x80. Bytes above the first marked one may be marked falsely (borrows),
// so only the lowest mark is meaningful.
func special8(x uint64) uint64 {
	ctl := (x - lsb8*0x20) &^ x
	q := x ^ (lsb8 * '"')
	q = (q - lsb8) &^ q
	b := x ^ (lsb8 * '\\')
	b = (b - lsb8) &^ b
	return (ctl | q | b | x) & msb8
}

// escapeLen returns the length of the valid escape sequence at d[i] == '\\',
// or 0. A \u escape of a surrogate is valid only as a high surrogate followed
// by an escaped low surrogate: lone surrogates are decoded differently by
// different parsers.
func escapeLen(d []byte, i int) int {
	if i+1 >= len(d) {
		return 0
	}
	switch d[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2
	case 'u':
		r, ok := hex4(d, i+2)
		switch {
		case !ok, r >= 0xDC00 && r <= 0xDFFF:
			return 0
		case r >= 0xD800 && r <= 0xDBFF:
			if i+7 >= len(d) || d[i+6] != '\\' || d[i+7] != 'u' {
				return 0
			}
			lo, ok := hex4(d, i+8)
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return 0
			}
			return 12
		}
		return 6
	}
	return 0
}

// hex4 decodes the four hex digits at d[i:].
func hex4(d []byte, i int) (rune, bool) {
	if i+4 > len(d) {
		return 0, false
	}
	var r rune
	for _, c := range d[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// appendUnescaped appends the decoded form of s, the contents of a JSON
// string already accepted by scanString (without its quotes).
func appendUnescaped(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			j := i + 1
			for j < len(s) && s[j] != '\\' {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		switch s[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, _ := hex4(s, i+2)
			if r >= 0xD800 && r <= 0xDBFF {
				lo, _ := hex4(s, i+8)
				r = (r-0xD800)<<10 | (lo - 0xDC00) + 0x10000
				i += 6
			}
			dst = utf8.AppendRune(dst, r)
			i += 6
			continue
		default: // '"', '\\', '/'
			dst = append(dst, s[i+1])
		}
		i += 2
	}
	return dst
}

// StringValue decodes raw, a JSON string value such as one returned by
// ParamsField. It reports false if raw is not a valid JSON string (surrounding
// whitespace is allowed).
func StringValue(raw []byte) (string, bool) {
	raw = trimSpace(raw)
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	end, flags, reason := scanString(raw, 0)
	if reason != "" || end != len(raw) {
		return "", false
	}
	body := raw[1 : end-1]
	if flags&strEscaped == 0 {
		return string(body), true
	}
	return string(appendUnescaped(make([]byte, 0, len(body)), body)), true
}

// appendQuoted appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does; U+2028 and U+2029 are escaped for JavaScript readers.
func appendQuoted(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if plain[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// isSpace reports whether c is JSON whitespace.
func isSpace(c byte) bool {
	return c <= ' ' && (c == ' ' || c == '\t' || c == '\n' || c == '\r')
}

// trimSpace removes leading and trailing JSON whitespace.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}
