// Package mcpwire owns the JSON-RPC envelope on the wire: strict decoding of
// untrusted messages and cheap re-encoding that keeps payload bytes untouched.
//
// Decode validates the whole document in one pass, at every depth, and rejects
// what lets two JSON parsers disagree about the same bytes: duplicate keys,
// keys that differ only in case (Go's encoding/json folds case and keeps the
// last duplicate; see CVE-2026-27896), keys containing NUL, invalid UTF-8, lone
// surrogates and numbers that overflow float64. Only the envelope is decoded;
// params, result and error stay raw slices of the input so the gateway
// forwards exactly the bytes it checked.
package mcpwire

import (
	"errors"
	"strconv"
)

// Kind is the shape of a JSON-RPC message.
type Kind uint8

// Message kinds. The zero Kind is not a valid message kind.
const (
	KindRequest      Kind = iota + 1 // has "method" and "id"
	KindNotification                 // has "method" and no "id"
	KindResponse                     // has "id" and "result"
	KindError                        // has "id" and "error"
)

// String returns the lowercase name of k.
func (k Kind) String() string {
	switch k {
	case KindRequest:
		return "request"
	case KindNotification:
		return "notification"
	case KindResponse:
		return "response"
	case KindError:
		return "error"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Message is a decoded JSON-RPC envelope. Its byte slices alias Raw: callers
// must not modify Raw while the Message is in use.
type Message struct {
	Raw       []byte // the input
	Kind      Kind
	ID        []byte // raw JSON of the id (e.g. `7` or `"abc"`), nil when absent
	Method    string
	Params    []byte // raw JSON, nil when absent
	Result    []byte // raw JSON, nil when absent
	Error     []byte // raw JSON of the error object, nil when absent
	ErrorCode int64  // decoded from Error
}

// Limits bounds what Decode accepts.
type Limits struct {
	// MaxDepth is the maximum nesting of objects and arrays; the top-level
	// object counts as 1. Zero or negative means DefaultMaxDepth.
	MaxDepth int
}

// DefaultMaxDepth is the nesting limit used when Limits.MaxDepth is not set.
const DefaultMaxDepth = 64

func (l Limits) maxDepth() int {
	if l.MaxDepth <= 0 {
		return DefaultMaxDepth
	}
	return l.MaxDepth
}

// Errors returned by Decode wrap one of these; match them with errors.Is.
var (
	ErrSyntax         = errors.New("invalid JSON")
	ErrBatch          = errors.New("batch messages are not supported")
	ErrDepth          = errors.New("nesting too deep")
	ErrDuplicateKey   = errors.New("duplicate key")
	ErrCaseVariantKey = errors.New("case-variant key")
	ErrNULKey         = errors.New("key contains NUL")
	ErrEnvelope       = errors.New("invalid JSON-RPC envelope")
)

// JSON-RPC and MCP error codes.
const (
	CodeParseError       = -32700
	CodeInvalidRequest   = -32600
	CodeMethodNotFound   = -32601
	CodeInvalidParams    = -32602
	CodeInternalError    = -32603
	CodeResourceNotFound = -32002
)

// wireError carries a short factual message for the peer and the sentinel
// that classifies it.
type wireError struct {
	kind error
	msg  string
}

func (e *wireError) Error() string { return e.msg }
func (e *wireError) Unwrap() error { return e.kind }

// maxQuotedKey bounds how much of a key an error message echoes.
const maxQuotedKey = 64

// quoteKey quotes k for an error message: at most maxQuotedKey bytes, cut on
// a rune boundary, with control characters escaped by %q.
func quoteKey(k []byte) string {
	if len(k) <= maxQuotedKey {
		return strconv.Quote(string(k))
	}
	n := maxQuotedKey
	for n > 0 && k[n]&0xC0 == 0x80 { // do not split a UTF-8 sequence
		n--
	}
	return strconv.Quote(string(k[:n])) + "..."
}
