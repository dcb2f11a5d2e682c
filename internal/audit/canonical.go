package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
)

// ErrNotJSON is returned by [ArgsHMAC] for arguments that are not one valid
// JSON value.
var ErrNotJSON = errors.New("arguments are not valid JSON")

// hmacPrefix names the algorithm in Record.ArgsHMAC.
const hmacPrefix = "hmac-sha256:"

// exactPrefix starts the canonical form of a document holding a number
// that an IEEE 754 double cannot hold exactly. No RFC 8785 document starts
// with "m", so the two forms never collide.
const exactPrefix = "mcpgate-exact-numbers:"

// ArgsHMAC returns "hmac-sha256:<hex>", the HMAC-SHA256 under key of the
// RFC 8785 canonical JSON of rawArgs, so that two spellings of the same
// arguments (key order, whitespace, escapes, 1.0 and 1) give the same MAC
// and the MAC reveals nothing about the values without the key. Empty
// rawArgs give "". Arguments that are not JSON, or that hold duplicate keys
// or invalid UTF-8, are an error wrapping [ErrNotJSON].
//
// RFC 8785 reads numbers as IEEE 754 doubles, which would give
// 9007199254740993 and 9007199254740992 one MAC and reject 1e400. A
// document with such a number is canonicalized with each such number kept
// exactly (see canonicalArgs), so distinct arguments keep distinct MACs.
func ArgsHMAC(key, rawArgs []byte) (string, error) {
	if len(rawArgs) == 0 {
		return "", nil
	}
	c, err := canonicalArgs(rawArgs)
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, key)
	m.Write(c)
	return hmacPrefix + hex.EncodeToString(m.Sum(nil)), nil
}

// canonicalArgs returns the RFC 8785 form of raw. When raw holds a number
// that does not survive conversion to a double (out of range, or more
// precise than a double), it returns exactPrefix followed by the RFC 8785
// form of a rewritten document in which every string value gets the prefix
// "s:" and every such number becomes the string "n:" plus its exact
// normalized decimal; numbers a double holds stay numbers. The rewrite is
// injective, so no two different documents share a form.
func canonicalArgs(raw []byte) ([]byte, error) {
	if !json.Valid(raw) || !utf8.Valid(raw) {
		return nil, ErrNotJSON
	}
	rewritten, exact := rewriteInexact(raw)
	if exact {
		raw = rewritten
	}
	c, err := jcs.Transform(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotJSON, err)
	}
	if exact {
		c = append([]byte(exactPrefix), c...)
	}
	return c, nil
}

// rewriteInexact scans valid JSON. If every number in it is held exactly
// by a double it returns (nil, false); otherwise the rewritten document
// described at canonicalArgs and true.
func rewriteInexact(raw []byte) ([]byte, bool) {
	var out *bytes.Buffer // allocated at the first inexact number
	start := 0            // raw[start:i] is not yet copied to out
	var tokens [][2]int   // string values seen before out existed
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '"':
			end := stringEnd(raw, i)
			if !isKey(raw, end) {
				if out == nil {
					tokens = append(tokens, [2]int{i, end})
				} else {
					out.Write(raw[start : i+1])
					out.WriteString("s:")
					start = i + 1
				}
			}
			i = end
		case c == '-' || c >= '0' && c <= '9':
			end := i + 1
			for end < len(raw) && strings.IndexByte("+-.eE0123456789", raw[end]) >= 0 {
				end++
			}
			if norm, ok := inexactNumber(string(raw[i:end])); ok {
				if out == nil {
					out = new(bytes.Buffer)
					out.Grow(len(raw) + 16)
					for _, t := range tokens { // string values before this point
						out.Write(raw[start : t[0]+1])
						out.WriteString("s:")
						start = t[0] + 1
					}
				}
				out.Write(raw[start:i])
				out.WriteString(`"n:` + norm + `"`)
				start = end
			}
			i = end
		default:
			i++
		}
	}
	if out == nil {
		return nil, false
	}
	out.Write(raw[start:])
	return out.Bytes(), true
}

// stringEnd returns the index just past the string starting at raw[i].
func stringEnd(raw []byte, i int) int {
	for j := i + 1; j < len(raw); j++ {
		switch raw[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(raw)
}

// isKey reports whether the string ending before raw[end] is an object
// key: in valid JSON, exactly when a colon follows it.
func isKey(raw []byte, end int) bool {
	for ; end < len(raw); end++ {
		switch raw[end] {
		case ' ', '\t', '\n', '\r':
		case ':':
			return true
		default:
			return false
		}
	}
	return false
}

// inexactNumber reports whether the JSON number tok is not held exactly by
// the double nearest to it, and if so returns its exact normalized form.
func inexactNumber(tok string) (string, bool) {
	norm := normalizeNumber(tok)
	f, err := strconv.ParseFloat(tok, 64)
	if err != nil || norm != normalizeNumber(strconv.FormatFloat(f, 'e', -1, 64)) {
		return norm, true
	}
	return "", false
}

// normalizeNumber returns the value of a JSON number (or of Go's 'e'
// format) as [-]DIGITSeEXP with no leading or trailing zeros in DIGITS, or
// "0" for zero of either sign; equal values give equal strings.
func normalizeNumber(tok string) string {
	neg := strings.HasPrefix(tok, "-")
	tok = strings.TrimPrefix(tok, "-")
	mant, expText, _ := strings.Cut(strings.ToLower(tok), "e")
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := strings.TrimLeft(intPart+frac, "0")
	if digits == "" {
		return "0"
	}
	trimmed := strings.TrimRight(digits, "0")
	exp := new(big.Int)
	if expText != "" {
		exp.SetString(strings.TrimPrefix(expText, "+"), 10)
	}
	exp.Add(exp, big.NewInt(int64(len(digits)-len(trimmed)-len(frac))))
	sign := ""
	if neg {
		sign = "-"
	}
	return sign + trimmed + "e" + exp.String()
}
