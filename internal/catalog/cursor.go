package catalog

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// ErrBadCursor is returned for a cursor the gateway did not issue, or one
// issued for a catalog that has since changed.
var ErrBadCursor = errors.New("invalid or expired cursor")

const cursorPrefix = "mcpgate1."

// EncodeCursor returns an opaque cursor for the page starting at offset of
// the catalog generation gen.
func EncodeCursor(gen uint64, offset int) string {
	s := cursorPrefix + strconv.FormatUint(gen, 36) + "." + strconv.Itoa(offset)
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// DecodeCursor reverses EncodeCursor. The cursor must belong to generation gen.
func DecodeCursor(cursor string, gen uint64) (offset int, err error) {
	if len(cursor) > 128 {
		return 0, ErrBadCursor
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return 0, ErrBadCursor
	}
	rest, ok := strings.CutPrefix(string(b), cursorPrefix)
	if !ok {
		return 0, ErrBadCursor
	}
	g, o, ok := strings.Cut(rest, ".")
	if !ok {
		return 0, ErrBadCursor
	}
	gg, err1 := strconv.ParseUint(g, 36, 64)
	oo, err2 := strconv.Atoi(o)
	if err1 != nil || err2 != nil || gg != gen || oo < 0 {
		return 0, ErrBadCursor
	}
	return oo, nil
}

// Page returns the bounds of the page of size pageSize that starts at
// offset in a list of n items, and the offset of the next page (-1 if none).
func Page(n, offset, pageSize int) (lo, hi, next int) {
	lo = min(offset, n)
	hi = min(lo+pageSize, n)
	next = -1
	if hi < n {
		next = hi
	}
	return lo, hi, next
}
