package mcpwire

import "strconv"

// The encoders write members in a fixed order (jsonrpc, id, then method and
// params, result or error) and copy raw values verbatim, so a payload the
// gateway does not change is never re-encoded. Raw values must be valid JSON;
// they are not checked here.

const jsonrpcPrefix = `{"jsonrpc":"2.0"`

// WithID re-encodes m's envelope with id as its raw JSON id, keeping the
// params, result and error bytes as they are. A nil id omits the member
// (a request then becomes a notification). Unknown top-level members of m
// are dropped.
func WithID(m *Message, id []byte) []byte {
	switch m.Kind {
	case KindResponse:
		return appendResponse(make([]byte, 0, 48+len(id)+len(m.Result)), id, "result", m.Result)
	case KindError:
		return appendResponse(make([]byte, 0, 48+len(id)+len(m.Error)), id, "error", m.Error)
	}
	return appendRequest(make([]byte, 0, 48+len(id)+len(m.Method)+len(m.Params)), id, m.Method, m.Params)
}

// NewRequest encodes a request. A nil params omits the member.
func NewRequest(id []byte, method string, params []byte) []byte {
	return appendRequest(make([]byte, 0, 48+len(id)+len(method)+len(params)), id, method, params)
}

// NewNotification encodes a notification. A nil params omits the member.
func NewNotification(method string, params []byte) []byte {
	return appendRequest(make([]byte, 0, 40+len(method)+len(params)), nil, method, params)
}

// NewResult encodes a successful response. A nil id is written as null and a
// nil result as {} (MCP results are objects).
func NewResult(id []byte, result []byte) []byte {
	if id == nil {
		id = []byte("null")
	}
	if result == nil {
		result = []byte("{}")
	}
	return appendResponse(make([]byte, 0, 48+len(id)+len(result)), id, "result", result)
}

// NewError encodes an error response. A nil id is written as null, as
// JSON-RPC requires when the request's id could not be read. message is
// JSON-escaped; a nil data omits the member.
func NewError(id []byte, code int64, message string, data []byte) []byte {
	if id == nil {
		id = []byte("null")
	}
	b := make([]byte, 0, 80+len(id)+len(message)+len(data))
	b = append(b, jsonrpcPrefix...)
	b = append(b, `,"id":`...)
	b = append(b, id...)
	b = append(b, `,"error":{"code":`...)
	b = strconv.AppendInt(b, code, 10)
	b = append(b, `,"message":`...)
	b = appendQuoted(b, message)
	if data != nil {
		b = append(b, `,"data":`...)
		b = append(b, data...)
	}
	return append(b, "}}"...)
}

func appendRequest(b, id []byte, method string, params []byte) []byte {
	b = append(b, jsonrpcPrefix...)
	if id != nil {
		b = append(b, `,"id":`...)
		b = append(b, id...)
	}
	b = append(b, `,"method":`...)
	b = appendQuoted(b, method)
	if params != nil {
		b = append(b, `,"params":`...)
		b = append(b, params...)
	}
	return append(b, '}')
}

func appendResponse(b, id []byte, name string, value []byte) []byte {
	b = append(b, jsonrpcPrefix...)
	if id != nil {
		b = append(b, `,"id":`...)
		b = append(b, id...)
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	b = append(b, value...)
	return append(b, '}')
}
