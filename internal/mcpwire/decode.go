package mcpwire

import (
	"bytes"
	"math"
)

// Decode strictly validates data as one JSON-RPC 2.0 message and decodes its
// envelope. The returned Message aliases data.
//
// The whole document must be valid JSON (RFC 8259, valid UTF-8, no lone
// surrogates, numbers within float64 range) nested at most lim.MaxDepth deep,
// and no object at any depth may hold two keys that are equal, equal under
// Unicode case folding, or contain NUL, after unescaping. The top-level value
// must be an object; a top-level key that is a case variant of an envelope
// member ("ID", "Method") is rejected. Unknown top-level keys are ignored.
//
// Errors wrap ErrSyntax, ErrBatch, ErrDepth, ErrDuplicateKey,
// ErrCaseVariantKey, ErrNULKey or ErrEnvelope.
func Decode(data []byte, lim Limits) (*Message, error) {
	s := getScanner(data, lim.maxDepth())
	defer putScanner(s)
	if err := s.scan(); err != nil {
		return nil, err
	}
	switch trimSpace(data)[0] {
	case '{':
	case '[':
		return nil, &wireError{kind: ErrBatch, msg: ErrBatch.Error()}
	default:
		return nil, envelopeErr("message is not a JSON object")
	}
	m := Message{Raw: data}
	if err := s.decodeEnvelope(&m); err != nil {
		return nil, err
	}
	out := m // allocate only for a valid message
	return &out, nil
}

func envelopeErr(msg string) error {
	return &wireError{kind: ErrEnvelope, msg: ErrEnvelope.Error() + ": " + msg}
}

func (s *scanner) raw(f field) []byte {
	sp := s.env[f]
	if !sp.ok {
		return nil
	}
	return s.data[sp.start:sp.end]
}

// decodeEnvelope applies the JSON-RPC 2.0 envelope rules to the top-level
// members recorded by scan.
func (s *scanner) decodeEnvelope(m *Message) error {
	if v, ok := decodeString(s.raw(fieldJSONRPC)); !ok || v != "2.0" {
		return envelopeErr(`"jsonrpc" must be "2.0"`)
	}
	if id := s.raw(fieldID); id != nil {
		if id[0] != '"' {
			if _, ok := parseInt64(id); !ok {
				return envelopeErr(`"id" must be a string or an integer`)
			}
		}
		m.ID = id
	}
	if raw := s.raw(fieldMethod); raw != nil {
		v, ok := decodeString(raw)
		if !ok || v == "" {
			return envelopeErr(`"method" must be a non-empty string`)
		}
		m.Method = v
	}
	if p := s.raw(fieldParams); p != nil {
		if p[0] != '{' && p[0] != '[' {
			return envelopeErr(`"params" must be an object or an array`)
		}
		m.Params = p
	}
	m.Result = s.raw(fieldResult)
	m.Error = s.raw(fieldError)

	if s.env[fieldMethod].ok {
		if m.Result != nil || m.Error != nil {
			return envelopeErr(`a request must not have "result" or "error"`)
		}
		m.Kind = KindNotification
		if m.ID != nil {
			m.Kind = KindRequest
		}
		return nil
	}
	switch {
	case m.Result == nil && m.Error == nil:
		return envelopeErr(`message has no "method", "result" or "error"`)
	case m.Result != nil && m.Error != nil:
		return envelopeErr(`a response must not have both "result" and "error"`)
	case m.ID == nil:
		return envelopeErr(`a response must have an "id"`)
	case m.Params != nil:
		return envelopeErr(`a response must not have "params"`)
	}
	if m.Result != nil {
		m.Kind = KindResponse
		return nil
	}
	code, err := errorCode(m.Error)
	if err != nil {
		return err
	}
	m.Kind, m.ErrorCode = KindError, code
	return nil
}

// errorCode checks a validated JSON-RPC error object and returns its code.
func errorCode(obj []byte) (int64, error) {
	if obj[0] != '{' {
		return 0, envelopeErr(`"error" must be an object`)
	}
	code, ok := ParamsField(obj, "code")
	if !ok {
		return 0, envelopeErr(`"error" must have an integer "code"`)
	}
	n, ok := parseInt64(code)
	if !ok {
		return 0, envelopeErr(`"error" must have an integer "code"`)
	}
	if msg, ok := ParamsField(obj, "message"); !ok || msg[0] != '"' {
		return 0, envelopeErr(`"error" must have a string "message"`)
	}
	return n, nil
}

// decodeString decodes a raw JSON string value that scan already validated.
// Well-known MCP method names are returned without allocating.
func decodeString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	body := raw[1 : len(raw)-1]
	if bytes.IndexByte(body, '\\') >= 0 {
		return string(appendUnescaped(make([]byte, 0, len(body)), body)), true
	}
	return intern(body), true
}

// intern returns b as a string, sharing the constant for common values.
func intern(b []byte) string {
	switch string(b) { // the conversion does not allocate
	case "2.0":
		return "2.0"
	case "initialize":
		return "initialize"
	case "ping":
		return "ping"
	case "tools/list":
		return "tools/list"
	case "tools/call":
		return "tools/call"
	case "resources/list":
		return "resources/list"
	case "resources/read":
		return "resources/read"
	case "resources/templates/list":
		return "resources/templates/list"
	case "resources/subscribe":
		return "resources/subscribe"
	case "resources/unsubscribe":
		return "resources/unsubscribe"
	case "prompts/list":
		return "prompts/list"
	case "prompts/get":
		return "prompts/get"
	case "completion/complete":
		return "completion/complete"
	case "logging/setLevel":
		return "logging/setLevel"
	case "roots/list":
		return "roots/list"
	case "sampling/createMessage":
		return "sampling/createMessage"
	case "elicitation/create":
		return "elicitation/create"
	case "server/discover":
		return "server/discover"
	case "subscriptions/listen":
		return "subscriptions/listen"
	case "notifications/initialized":
		return "notifications/initialized"
	case "notifications/cancelled":
		return "notifications/cancelled"
	case "notifications/progress":
		return "notifications/progress"
	case "notifications/message":
		return "notifications/message"
	case "notifications/tools/list_changed":
		return "notifications/tools/list_changed"
	case "notifications/resources/list_changed":
		return "notifications/resources/list_changed"
	case "notifications/resources/updated":
		return "notifications/resources/updated"
	case "notifications/prompts/list_changed":
		return "notifications/prompts/list_changed"
	case "notifications/roots/list_changed":
		return "notifications/roots/list_changed"
	}
	return string(b)
}

// parseInt64 parses raw as a JSON integer (no fraction or exponent) that fits
// in int64.
func parseInt64(raw []byte) (int64, bool) {
	raw = trimSpace(raw)
	neg := len(raw) > 0 && raw[0] == '-'
	if neg {
		raw = raw[1:]
	}
	if len(raw) == 0 || len(raw) > 1 && raw[0] == '0' {
		return 0, false
	}
	const cutoff = 1 << 63 // magnitude of math.MinInt64
	var u uint64
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if u > (cutoff-d)/10 {
			return 0, false
		}
		u = u*10 + d
	}
	if neg {
		if u == cutoff {
			return math.MinInt64, true
		}
		return -int64(u), true
	}
	if u == cutoff {
		return 0, false
	}
	return int64(u), true
}
