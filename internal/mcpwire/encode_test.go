package mcpwire

import (
	"encoding/json"
	"testing"
)

func TestWithID(t *testing.T) {
	tests := []struct {
		name string
		in   string
		id   string // "" means nil
		want string
		kind Kind
	}{
		{
			name: "request keeps params bytes",
			in:   `{"id":1, "params" : { "name":"x",  "arguments":{"b":2,"a":1} } ,"method":"tools/call","jsonrpc":"2.0","extra":true}`,
			id:   `"gw-7"`,
			want: `{"jsonrpc":"2.0","id":"gw-7","method":"tools/call","params":{ "name":"x",  "arguments":{"b":2,"a":1} }}`,
			kind: KindRequest,
		},
		{
			name: "request without params",
			in:   `{"jsonrpc":"2.0","id":"a","method":"ping"}`,
			id:   `42`,
			want: `{"jsonrpc":"2.0","id":42,"method":"ping"}`,
			kind: KindRequest,
		},
		{
			name: "escaped method is re-encoded",
			in:   `{"jsonrpc":"2.0","id":1,"method":"a\"b\u0001\u2028"}`,
			id:   `2`,
			want: `{"jsonrpc":"2.0","id":2,"method":"a\"b\u0001\u2028"}`,
			kind: KindRequest,
		},
		{
			name: "notification keeps no id",
			in:   `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}`,
			want: `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}`,
			kind: KindNotification,
		},
		{
			name: "notification given an id becomes a request",
			in:   `{"jsonrpc":"2.0","method":"x"}`,
			id:   `1`,
			want: `{"jsonrpc":"2.0","id":1,"method":"x"}`,
			kind: KindRequest,
		},
		{
			name: "response",
			in:   `{"jsonrpc":"2.0","id":"gw-7","result":{"content":[{"type":"text","text":"hi"}],"isError":false}}`,
			id:   `1`,
			want: `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hi"}],"isError":false}}`,
			kind: KindResponse,
		},
		{
			name: "error",
			in:   `{"jsonrpc":"2.0","id":"gw-7","error":{"code":-32602,"message":"bad","data":[1]}}`,
			id:   `"orig"`,
			want: `{"jsonrpc":"2.0","id":"orig","error":{"code":-32602,"message":"bad","data":[1]}}`,
			kind: KindError,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode([]byte(tt.in), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			var id []byte
			if tt.id != "" {
				id = []byte(tt.id)
			}
			got := WithID(m, id)
			if string(got) != tt.want {
				t.Fatalf("WithID = %s\nwant     %s", got, tt.want)
			}
			m2, err := Decode(got, Limits{})
			if err != nil {
				t.Fatalf("Decode(WithID): %v", err)
			}
			if m2.Kind != tt.kind || m2.Method != m.Method || string(m2.ID) != tt.id ||
				string(m2.Params) != string(m.Params) || string(m2.Result) != string(m.Result) || string(m2.Error) != string(m.Error) {
				t.Errorf("round trip: got %+v, from %+v", m2, m)
			}
		})
	}
}

func TestConstructors(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
		kind Kind // 0: not decodable by Decode (null id)
	}{
		{"request", NewRequest([]byte(`1`), "tools/call", []byte(`{"name":"x"}`)), `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}`, KindRequest},
		{"request without params", NewRequest([]byte(`"a"`), "ping", nil), `{"jsonrpc":"2.0","id":"a","method":"ping"}`, KindRequest},
		{"request escapes method", NewRequest([]byte(`1`), "a\"\\\n", nil), `{"jsonrpc":"2.0","id":1,"method":"a\"\\\n"}`, KindRequest},
		{"notification", NewNotification("notifications/cancelled", []byte(`{"requestId":1}`)), `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`, KindNotification},
		{"notification without params", NewNotification("notifications/initialized", nil), `{"jsonrpc":"2.0","method":"notifications/initialized"}`, KindNotification},
		{"result", NewResult([]byte(`7`), []byte(`{"tools":[]}`)), `{"jsonrpc":"2.0","id":7,"result":{"tools":[]}}`, KindResponse},
		{"nil result", NewResult([]byte(`7`), nil), `{"jsonrpc":"2.0","id":7,"result":{}}`, KindResponse},
		{"result with nil id", NewResult(nil, []byte(`{}`)), `{"jsonrpc":"2.0","id":null,"result":{}}`, 0},
		{"error", NewError([]byte(`"x"`), CodeInvalidParams, "bad arguments", nil), `{"jsonrpc":"2.0","id":"x","error":{"code":-32602,"message":"bad arguments"}}`, KindError},
		{"error with data", NewError([]byte(`1`), CodeResourceNotFound, "not found", []byte(`{"uri":"file:///x"}`)), `{"jsonrpc":"2.0","id":1,"error":{"code":-32002,"message":"not found","data":{"uri":"file:///x"}}}`, KindError},
		{"error with nil id", NewError(nil, CodeParseError, "parse error", nil), `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}`, 0},
		{
			"error escapes message", NewError([]byte(`1`), CodeInternalError, "a\"b\\c\x00\x1f\t\u2029<\xff>", nil),
			`{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"a\"b\\c\u0000\u001f\t\u2029<\ufffd>"}}`, KindError,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.got) != tt.want {
				t.Fatalf("got  %s\nwant %s", tt.got, tt.want)
			}
			if !json.Valid(tt.got) {
				t.Fatalf("not valid JSON: %s", tt.got)
			}
			if tt.kind == 0 {
				return
			}
			m, err := Decode(tt.got, Limits{})
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if m.Kind != tt.kind {
				t.Errorf("Kind = %v, want %v", m.Kind, tt.kind)
			}
		})
	}
}

func TestNewErrorMessageRoundTrip(t *testing.T) {
	for _, msg := range []string{"", "plain", "quote \" backslash \\", "ctl \x00\x01\x1f\x7f", "utf8 日本 😀", "bad \xff\xfe utf8", "\u2028\u2029"} {
		b := NewError([]byte(`1`), CodeInvalidRequest, msg, nil)
		m, err := Decode(b, Limits{})
		if err != nil {
			t.Fatalf("Decode(NewError(%q)): %v", msg, err)
		}
		raw, _ := ParamsField(m.Error, "message")
		got, ok := StringValue(raw)
		var want string
		_ = json.Unmarshal(b[len(`{"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":`):len(b)-2], &want)
		if !ok || got != want {
			t.Errorf("message %q decoded as %q, encoding/json reads %q", msg, got, want)
		}
		if m.ErrorCode != CodeInvalidRequest {
			t.Errorf("ErrorCode = %d", m.ErrorCode)
		}
	}
}
