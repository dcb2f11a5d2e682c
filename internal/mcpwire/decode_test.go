package mcpwire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"testing"
)

const callPrefix = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":`

// call wraps arguments in a tools/call request.
func call(args string) string {
	return callPrefix + `{"name":"t","arguments":` + args + `}}`
}

// paramsOf returns the params of a document built by call or nest.
func paramsOf(doc string) string {
	return doc[len(callPrefix) : len(doc)-1]
}

// nest returns a request whose params.arguments nests objects until the
// whole document is depth levels deep.
func nest(depth int, open, close string) string {
	inner := depth - 2 // below the envelope and params
	return call(strings.Repeat(open, inner) + "1" + strings.Repeat(close, inner))
}

func TestDecodeAccepts(t *testing.T) {
	manyKeys := func(n int) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `"k%d":%d`, i, i)
		}
		b.WriteString("}")
		return b.String()
	}
	tests := []struct {
		name   string
		in     string
		lim    Limits
		kind   Kind
		id     string
		method string
		params string
		result string
		errObj string
		code   int64
	}{
		{
			name: "tools/call", in: call(`{"a":1,"b":[true,false,null],"c":{"d":"e"}}`), kind: KindRequest, id: `1`, method: "tools/call",
			params: `{"name":"t","arguments":{"a":1,"b":[true,false,null],"c":{"d":"e"}}}`,
		},
		{name: "string id", in: `{"jsonrpc":"2.0","id":"abc","method":"ping"}`, kind: KindRequest, id: `"abc"`, method: "ping"},
		{name: "empty string id", in: `{"jsonrpc":"2.0","id":"","method":"ping"}`, kind: KindRequest, id: `""`, method: "ping"},
		{name: "negative id", in: `{"jsonrpc":"2.0","id":-7,"method":"ping"}`, kind: KindRequest, id: `-7`, method: "ping"},
		{name: "max int64 id", in: `{"jsonrpc":"2.0","id":9223372036854775807,"method":"ping"}`, kind: KindRequest, id: `9223372036854775807`, method: "ping"},
		{name: "min int64 id", in: `{"jsonrpc":"2.0","id":-9223372036854775808,"method":"ping"}`, kind: KindRequest, id: `-9223372036854775808`, method: "ping"},
		{name: "notification", in: `{"jsonrpc":"2.0","method":"notifications/initialized"}`, kind: KindNotification, method: "notifications/initialized"},
		{name: "params array", in: `{"jsonrpc":"2.0","method":"x","params":[1,2]}`, kind: KindNotification, method: "x", params: `[1,2]`},
		{name: "empty params", in: `{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}`, kind: KindRequest, id: `2`, method: "tools/list", params: `{}`},
		{name: "response", in: `{"jsonrpc":"2.0","id":1,"result":{"content":[]}}`, kind: KindResponse, id: `1`, result: `{"content":[]}`},
		{name: "null result", in: `{"jsonrpc":"2.0","id":1,"result":null}`, kind: KindResponse, id: `1`, result: `null`},
		{
			name: "error", in: `{"jsonrpc":"2.0","id":"x","error":{"code":-32601,"message":"no such method","data":{"m":"y"}}}`, kind: KindError, id: `"x"`,
			errObj: `{"code":-32601,"message":"no such method","data":{"m":"y"}}`, code: CodeMethodNotFound,
		},
		{name: "member order", in: `{"result":{},"id":3,"jsonrpc":"2.0"}`, kind: KindResponse, id: `3`, result: `{}`},
		{
			name: "whitespace everywhere", in: " \t\r\n{ \"jsonrpc\" : \"2.0\" , \"id\" : 1 , \"method\" : \"ping\" , \"params\" : { \"a\" : [ 1 , 2 ] } } \n",
			kind: KindRequest, id: `1`, method: "ping", params: "{ \"a\" : [ 1 , 2 ] }",
		},
		{name: "unknown top-level key", in: `{"jsonrpc":"2.0","id":1,"method":"ping","extension":{"x":[1]}}`, kind: KindRequest, id: `1`, method: "ping"},
		{name: "escaped member name", in: `{"jsonrpc":"2.0","id":1,"\u006dethod":"ping"}`, kind: KindRequest, id: `1`, method: "ping"},
		{name: "escaped method value", in: `{"jsonrpc":"2.0","id":1,"method":"tools\/call"}`, kind: KindRequest, id: `1`, method: "tools/call"},
		{name: "escaped jsonrpc value", in: `{"jsonrpc":"\u0032.0","method":"x"}`, kind: KindNotification, method: "x"},
		{name: "all escapes", in: call(`{"s":"\" \\ \/ \b \f \n \r \t \u00e9 \uFFFF"}`), kind: KindRequest, id: `1`, method: "tools/call", params: `{"name":"t","arguments":{"s":"\" \\ \/ \b \f \n \r \t \u00e9 \uFFFF"}}`},
		{name: "surrogate pair", in: call(`{"s":"\ud83d\ude00","\uD83D\uDE00":1}`), kind: KindRequest, id: `1`, method: "tools/call", params: `{"name":"t","arguments":{"s":"\ud83d\ude00","\uD83D\uDE00":1}}`},
		{name: "raw UTF-8", in: call(`{"é":"日本語 😀"}`), kind: KindRequest, id: `1`, method: "tools/call", params: `{"name":"t","arguments":{"é":"日本語 😀"}}`},
		{name: "numbers", in: call(`[0,-0,1.5,-1.5e10,1E+2,1e-2,0.0001,1.7976931348623157e308,1e-400,123456789012345678901234567890]`), kind: KindRequest, id: `1`, method: "tools/call", params: `{"name":"t","arguments":[0,-0,1.5,-1.5e10,1E+2,1e-2,0.0001,1.7976931348623157e308,1e-400,123456789012345678901234567890]}`},
		{name: "same key in sibling objects", in: call(`[{"a":1,"b":2},{"a":1,"b":2},{"a":{"a":{"a":1}}}]`), kind: KindRequest, id: `1`, method: "tools/call", params: `{"name":"t","arguments":[{"a":1,"b":2},{"a":1,"b":2},{"a":{"a":{"a":1}}}]}`},
		{name: "same escaped key in sibling objects", in: call(`{"x":{"\u0061":1},"y":{"\u0061":1},"\u0061":2}`), kind: KindRequest, id: `1`, method: "tools/call", params: `{"name":"t","arguments":{"x":{"\u0061":1},"y":{"\u0061":1},"\u0061":2}}`},
		{name: "key case variant in sibling objects", in: call(`[{"name":1},{"Name":2}]`), kind: KindRequest, id: `1`, method: "tools/call", params: `{"name":"t","arguments":[{"name":1},{"Name":2}]}`},
		{name: "very many keys", in: call(manyKeys(200000)), kind: KindRequest, id: `1`, method: "tools/call", params: `{"name":"t","arguments":` + manyKeys(200000) + `}`},
		{name: "many keys", in: call(manyKeys(1000)), kind: KindRequest, id: `1`, method: "tools/call", params: `{"name":"t","arguments":` + manyKeys(1000) + `}`},
		{name: "depth at default limit", in: nest(64, `{"a":`, `}`), kind: KindRequest, id: `1`, method: "tools/call", params: paramsOf(nest(64, `{"a":`, `}`))},
		{name: "depth limit 2", in: `{"jsonrpc":"2.0","method":"x","params":{}}`, lim: Limits{MaxDepth: 2}, kind: KindNotification, method: "x", params: `{}`},
		{name: "array depth at limit", in: nest(10, `[`, `]`), lim: Limits{MaxDepth: 10}, kind: KindRequest, id: `1`, method: "tools/call", params: paramsOf(nest(10, `[`, `]`))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode([]byte(tt.in), tt.lim)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if m.Kind != tt.kind || string(m.ID) != tt.id || m.Method != tt.method || m.ErrorCode != tt.code {
				t.Errorf("got kind=%v id=%s method=%q code=%d, want kind=%v id=%s method=%q code=%d",
					m.Kind, m.ID, m.Method, m.ErrorCode, tt.kind, tt.id, tt.method, tt.code)
			}
			for _, f := range []struct {
				name      string
				got       []byte
				want      string
				wantExist bool
			}{
				{"params", m.Params, tt.params, tt.params != ""},
				{"result", m.Result, tt.result, tt.result != ""},
				{"error", m.Error, tt.errObj, tt.errObj != ""},
			} {
				if (f.got != nil) != f.wantExist || string(f.got) != f.want {
					t.Errorf("%s = %q (nil=%v), want %q", f.name, f.got, f.got == nil, f.want)
				}
				if f.got != nil && !aliases(m.Raw, f.got) {
					t.Errorf("%s is a copy, want a slice of Raw", f.name)
				}
			}
			if &m.Raw[0] != &[]byte(tt.in)[0] && string(m.Raw) != tt.in {
				t.Errorf("Raw = %q, want the input", m.Raw)
			}
		})
	}
}

// aliases reports whether sub is a slice of whole's backing array.
func aliases(whole, sub []byte) bool {
	for i := range whole {
		if &whole[i] == &sub[0] {
			return true
		}
	}
	return false
}

func TestDecodeRejects(t *testing.T) {
	long := strings.Repeat("k", 200)
	tests := []struct {
		name string
		in   string
		lim  Limits
		want error
		msg  string // substring of the error message, optional
	}{
		// Syntax.
		{name: "empty", in: ``, want: ErrSyntax, msg: "unexpected end of input"},
		{name: "only whitespace", in: " \n", want: ErrSyntax},
		{name: "unterminated object", in: `{"jsonrpc":"2.0"`, want: ErrSyntax},
		{name: "missing value", in: `{"a":}`, want: ErrSyntax},
		{name: "missing colon", in: `{"a" 1}`, want: ErrSyntax},
		{name: "trailing comma in object", in: `{"jsonrpc":"2.0","method":"x",}`, want: ErrSyntax},
		{name: "trailing comma in array", in: call(`[1,]`), want: ErrSyntax},
		{name: "leading comma", in: call(`[,1]`), want: ErrSyntax},
		{name: "mismatched brackets", in: call(`[1}`), want: ErrSyntax},
		{name: "unquoted key", in: `{jsonrpc:"2.0"}`, want: ErrSyntax},
		{name: "single quotes", in: `{'jsonrpc':'2.0'}`, want: ErrSyntax},
		{name: "trailing garbage", in: `{"jsonrpc":"2.0","method":"x"} x`, want: ErrSyntax, msg: "data after top-level value"},
		{name: "two documents", in: `{"jsonrpc":"2.0","method":"x"}{}`, want: ErrSyntax},
		{name: "byte order mark", in: "\xef\xbb\xbf" + `{"jsonrpc":"2.0","method":"x"}`, want: ErrSyntax},
		{name: "vertical tab is not whitespace", in: "{\v\"jsonrpc\":\"2.0\",\"method\":\"x\"}", want: ErrSyntax},
		{name: "comment", in: `{"jsonrpc":"2.0",/*c*/"method":"x"}`, want: ErrSyntax},
		{name: "bad literal", in: call(`tru`), want: ErrSyntax},
		{name: "capital literal", in: call(`True`), want: ErrSyntax},
		{name: "NaN", in: call(`NaN`), want: ErrSyntax},
		{name: "Infinity", in: call(`-Infinity`), want: ErrSyntax},
		{name: "leading zero", in: call(`01`), want: ErrSyntax},
		{name: "negative leading zero", in: call(`-01`), want: ErrSyntax},
		{name: "plus sign", in: call(`+1`), want: ErrSyntax},
		{name: "bare minus", in: call(`-`), want: ErrSyntax},
		{name: "missing fraction digits", in: call(`1.`), want: ErrSyntax},
		{name: "missing integer digits", in: call(`.5`), want: ErrSyntax},
		{name: "missing exponent digits", in: call(`1e`), want: ErrSyntax},
		{name: "missing signed exponent digits", in: call(`1e+`), want: ErrSyntax},
		{name: "hex number", in: call(`0x10`), want: ErrSyntax},
		{name: "number overflows float64", in: call(`1e400`), want: ErrSyntax, msg: "number out of range"},
		{name: "negative number overflows float64", in: call(`-1.8e308`), want: ErrSyntax},
		{name: "huge exponent", in: call(`1e99999999999999999999999`), want: ErrSyntax},
		{name: "huge integer", in: call(strings.Repeat("9", 400)), want: ErrSyntax},
		{name: "unterminated string", in: `{"jsonrpc":"2.0","method":"x`, want: ErrSyntax, msg: "unterminated string"},
		{name: "raw newline in string", in: call(`"a` + "\n" + `b"`), want: ErrSyntax, msg: "control character"},
		{name: "raw NUL in string", in: call("\"a\x00b\""), want: ErrSyntax},
		{name: "raw tab in key", in: call("{\"a\tb\":1}"), want: ErrSyntax},
		{name: "invalid escape", in: call(`"\x41"`), want: ErrSyntax, msg: "invalid escape"},
		{name: "escaped single quote", in: call(`"\'"`), want: ErrSyntax},
		{name: "short unicode escape", in: call(`"\u12"`), want: ErrSyntax},
		{name: "non-hex unicode escape", in: call(`"\u12G4"`), want: ErrSyntax},
		{name: "escape at end of input", in: `{"a":"\`, want: ErrSyntax},
		{name: "lone high surrogate", in: call(`"\ud800"`), want: ErrSyntax},
		{name: "lone high surrogate at end of string", in: call(`"x\uDBFF"`), want: ErrSyntax},
		{name: "lone low surrogate", in: call(`"\udc00"`), want: ErrSyntax},
		{name: "high surrogate then non-surrogate", in: call(`"\ud800\u0041"`), want: ErrSyntax},
		{name: "high surrogate then high surrogate", in: call(`"\ud800\ud800"`), want: ErrSyntax},
		{name: "high surrogate then other escape", in: call(`"\ud800\n"`), want: ErrSyntax},
		{name: "lone surrogate in key", in: call(`{"\ud800":1}`), want: ErrSyntax},
		{name: "invalid UTF-8 byte", in: call("\"a\xffb\""), want: ErrSyntax, msg: "invalid UTF-8"},
		{name: "invalid UTF-8 in key", in: call("{\"\xfe\":1}"), want: ErrSyntax},
		{name: "invalid UTF-8 in method", in: "{\"jsonrpc\":\"2.0\",\"method\":\"\xc3\"}", want: ErrSyntax},
		{name: "overlong encoding", in: call("\"\xc0\xaf\""), want: ErrSyntax},
		{name: "UTF-8 encoded surrogate", in: call("\"\xed\xa0\x80\""), want: ErrSyntax},
		{name: "truncated UTF-8 sequence", in: call("\"\xe6\x97\""), want: ErrSyntax},
		{name: "code point above U+10FFFF", in: call("\"\xf4\x90\x80\x80\""), want: ErrSyntax},
		{name: "invalid UTF-8 outside strings", in: "{\"jsonrpc\":\"2.0\",\"method\":\"x\"}\xff", want: ErrSyntax},

		// Top level.
		{name: "batch", in: `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, want: ErrBatch},
		{name: "empty batch", in: `[]`, want: ErrBatch},
		{name: "top-level string", in: `"jsonrpc"`, want: ErrEnvelope, msg: "not a JSON object"},
		{name: "top-level number", in: `1`, want: ErrEnvelope},
		{name: "top-level null", in: `null`, want: ErrEnvelope},

		// Depth.
		{name: "depth past default limit", in: nest(65, `{"a":`, `}`), want: ErrDepth, msg: "nesting deeper than 64 levels"},
		{name: "array depth past limit", in: nest(11, `[`, `]`), lim: Limits{MaxDepth: 10}, want: ErrDepth},
		{name: "deep unterminated nesting", in: strings.Repeat("[", 100000), want: ErrDepth},
		{name: "depth limit 1", in: `{"jsonrpc":"2.0","method":"x","params":{}}`, lim: Limits{MaxDepth: 1}, want: ErrDepth},

		// Duplicate keys.
		{name: "duplicate method", in: `{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call"}`, want: ErrDuplicateKey, msg: `duplicate key "method" at offset`},
		{name: "duplicate id", in: `{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}`, want: ErrDuplicateKey},
		{name: "duplicate jsonrpc", in: `{"jsonrpc":"2.0","jsonrpc":"1.0","method":"ping"}`, want: ErrDuplicateKey},
		{name: "duplicate unknown key", in: `{"jsonrpc":"2.0","method":"ping","x":1,"x":1}`, want: ErrDuplicateKey},
		{name: "duplicate after unescaping", in: `{"jsonrpc":"2.0","id":1,"method":"ping","\u006dethod":"tools/call"}`, want: ErrDuplicateKey, msg: `"method"`},
		{name: "duplicate with both escaped", in: call(`{"\u0061":1,"\u0061":2}`), want: ErrDuplicateKey},
		{name: "duplicate with escaped slash", in: call(`{"a/b":1,"a\/b":2}`), want: ErrDuplicateKey},
		{name: "duplicate surrogate pair key", in: call(`{"😀":1,"\ud83d\ude00":2}`), want: ErrDuplicateKey},
		{name: "duplicate in params", in: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}`, want: ErrDuplicateKey, msg: `"name"`},
		{name: "duplicate in arguments", in: call(`{"path":"/tmp","path":"/etc/passwd"}`), want: ErrDuplicateKey, msg: `"path"`},
		{name: "duplicate deep in arguments", in: call(`{"a":[{"b":{"c":1,"d":2,"c":3}}]}`), want: ErrDuplicateKey},
		{name: "duplicate after nested object", in: call(`{"a":{"x":1},"b":2,"a":3}`), want: ErrDuplicateKey},
		{name: "duplicate in result", in: `{"jsonrpc":"2.0","id":1,"result":{"isError":false,"isError":true}}`, want: ErrDuplicateKey},
		{name: "duplicate in error data", in: `{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m","data":{"a":1,"a":2}}}`, want: ErrDuplicateKey},
		{name: "duplicate in error object", in: `{"jsonrpc":"2.0","id":1,"error":{"code":1,"code":2,"message":"m"}}`, want: ErrDuplicateKey},
		{name: "duplicate empty key", in: call(`{"":1,"":2}`), want: ErrDuplicateKey},
		{name: "duplicate in large object", in: call(`{` + manyMembers(100) + `,"k7":0}`), want: ErrDuplicateKey, msg: `"k7"`},
		{name: "duplicate at map threshold", in: call(`{` + manyMembers(linearKeys) + `,"k0":0}`), want: ErrDuplicateKey},
		{name: "duplicate escaped in large object", in: call(`{` + manyMembers(100) + `,"\u006b99":0}`), want: ErrDuplicateKey},
		{name: "duplicate long key is truncated", in: call(`{"` + long + `":1,"` + long + `":2}`), want: ErrDuplicateKey, msg: `"` + long[:maxQuotedKey] + `"...`},

		// Case variants.
		{name: "case variant in arguments", in: call(`{"name":"a","Name":"b"}`), want: ErrCaseVariantKey, msg: `"Name" differs only in case from "name"`},
		{name: "case variant in params", in: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","NAME":"b"}}`, want: ErrCaseVariantKey},
		{name: "case variant top level", in: `{"jsonrpc":"2.0","id":1,"method":"ping","Method":"tools/call"}`, want: ErrCaseVariantKey},
		{name: "case variant of envelope member alone", in: `{"jsonrpc":"2.0","id":1,"Method":"tools/call"}`, want: ErrCaseVariantKey, msg: `"Method" differs only in case from "method"`},
		{name: "case variant of id alone", in: `{"jsonrpc":"2.0","ID":1,"method":"ping"}`, want: ErrCaseVariantKey},
		{name: "case variant of jsonrpc alone", in: `{"JSONRPC":"2.0","method":"ping"}`, want: ErrCaseVariantKey},
		{name: "case variant of result alone", in: `{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"},"Result":{}}`, want: ErrCaseVariantKey},
		{name: "long s folds to s", in: `{"jsonrpc":"2.0","id":1,"method":"ping","paramſ":{}}`, want: ErrCaseVariantKey},
		{name: "escaped case variant", in: call(`{"name":1,"\u004eame":2}`), want: ErrCaseVariantKey},
		{name: "Kelvin sign folds to k", in: call(`{"k":1,"\u212a":2}`), want: ErrCaseVariantKey},
		{name: "Kelvin sign and capital K", in: call(`{"K":1,"` + "\u212a" + `":2}`), want: ErrCaseVariantKey},
		{name: "Kelvin sign in 10-byte key", in: call(`{"kkkkkkkkkk":1,"KKKKKKKKK` + "\u212a" + `":2}`), want: ErrCaseVariantKey},
		{name: "Kelvin sign in 16-byte key", in: call(`{"abcdefghijklmnok":1,"ABCDEFGHIJKLMNO\u212a":2}`), want: ErrCaseVariantKey},
		{name: "case variant in 20-byte key", in: call(`{"abcdefghijklmnopqrst":1,"abcdefghijklmnopqrsT":2}`), want: ErrCaseVariantKey},
		{name: "duplicate 16-byte key at end of input", in: `{"jsonrpc":"2.0","method":"x","abcdefghijklmnop":1,"abcdefghijklmnop":2}`, want: ErrDuplicateKey},
		{name: "non-ASCII case variant", in: call(`{"été":1,"ÉTÉ":2}`), want: ErrCaseVariantKey},
		{name: "Greek sigma forms", in: call(`{"σ":1,"ς":2}`), want: ErrCaseVariantKey},
		{name: "case variant deep in arguments", in: call(`{"a":{"b":[{"Path":1,"pAth":2}]}}`), want: ErrCaseVariantKey},
		{name: "non-ASCII case variant in large object", in: call(`{` + manyMembers(40) + `,"été":1,"ÉTÉ":2}`), want: ErrCaseVariantKey},
		{name: "case variant in large object", in: call(`{` + manyMembers(100) + `,"K42":0}`), want: ErrCaseVariantKey, msg: `"K42" differs only in case from "k42"`},

		// NUL in keys.
		{name: "NUL-suffixed method", in: `{"jsonrpc":"2.0","id":1,"method":"ping","method\u0000":"tools/call"}`, want: ErrNULKey, msg: `"method\x00"`},
		{name: "NUL-suffixed method alone", in: `{"jsonrpc":"2.0","id":1,"method\u0000":"ping"}`, want: ErrNULKey},
		{name: "NUL key", in: call(`{"\u0000":1}`), want: ErrNULKey},
		{name: "NUL inside key in arguments", in: call(`{"na\u0000me":1}`), want: ErrNULKey},
		{name: "NUL key deep", in: call(`[[{"a":{"b\u0000":1}}]]`), want: ErrNULKey},

		// Envelope.
		{name: "missing jsonrpc", in: `{"id":1,"method":"ping"}`, want: ErrEnvelope, msg: `"jsonrpc" must be "2.0"`},
		{name: "jsonrpc 1.0", in: `{"jsonrpc":"1.0","id":1,"method":"ping"}`, want: ErrEnvelope},
		{name: "jsonrpc with space", in: `{"jsonrpc":"2.0 ","id":1,"method":"ping"}`, want: ErrEnvelope},
		{name: "jsonrpc number", in: `{"jsonrpc":2.0,"id":1,"method":"ping"}`, want: ErrEnvelope},
		{name: "jsonrpc null", in: `{"jsonrpc":null,"id":1,"method":"ping"}`, want: ErrEnvelope},
		{name: "null id", in: `{"jsonrpc":"2.0","id":null,"method":"ping"}`, want: ErrEnvelope, msg: `"id" must be a string or an integer`},
		{name: "fractional id", in: `{"jsonrpc":"2.0","id":1.5,"method":"ping"}`, want: ErrEnvelope},
		{name: "integral fraction id", in: `{"jsonrpc":"2.0","id":1.0,"method":"ping"}`, want: ErrEnvelope},
		{name: "exponent id", in: `{"jsonrpc":"2.0","id":1e3,"method":"ping"}`, want: ErrEnvelope},
		{name: "id past int64", in: `{"jsonrpc":"2.0","id":9223372036854775808,"method":"ping"}`, want: ErrEnvelope},
		{name: "id below int64", in: `{"jsonrpc":"2.0","id":-9223372036854775809,"method":"ping"}`, want: ErrEnvelope},
		{name: "huge id", in: `{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"ping"}`, want: ErrEnvelope},
		{name: "boolean id", in: `{"jsonrpc":"2.0","id":true,"method":"ping"}`, want: ErrEnvelope},
		{name: "object id", in: `{"jsonrpc":"2.0","id":{},"method":"ping"}`, want: ErrEnvelope},
		{name: "array id", in: `{"jsonrpc":"2.0","id":[1],"method":"ping"}`, want: ErrEnvelope},
		{name: "empty method", in: `{"jsonrpc":"2.0","id":1,"method":""}`, want: ErrEnvelope, msg: `"method" must be a non-empty string`},
		{name: "number method", in: `{"jsonrpc":"2.0","id":1,"method":1}`, want: ErrEnvelope},
		{name: "null method", in: `{"jsonrpc":"2.0","id":1,"method":null}`, want: ErrEnvelope},
		{name: "string params", in: `{"jsonrpc":"2.0","id":1,"method":"x","params":"a"}`, want: ErrEnvelope, msg: `"params" must be an object or an array`},
		{name: "null params", in: `{"jsonrpc":"2.0","id":1,"method":"x","params":null}`, want: ErrEnvelope},
		{name: "number params", in: `{"jsonrpc":"2.0","id":1,"method":"x","params":1}`, want: ErrEnvelope},
		{name: "request with result", in: `{"jsonrpc":"2.0","id":1,"method":"x","result":{}}`, want: ErrEnvelope, msg: `a request must not have "result" or "error"`},
		{name: "request with error", in: `{"jsonrpc":"2.0","id":1,"method":"x","error":{"code":1,"message":"m"}}`, want: ErrEnvelope},
		{name: "notification with result", in: `{"jsonrpc":"2.0","method":"x","result":null}`, want: ErrEnvelope},
		{name: "no method, result or error", in: `{"jsonrpc":"2.0","id":1}`, want: ErrEnvelope, msg: `message has no "method", "result" or "error"`},
		{name: "only jsonrpc", in: `{"jsonrpc":"2.0"}`, want: ErrEnvelope},
		{name: "empty object", in: `{}`, want: ErrEnvelope},
		{name: "response without id", in: `{"jsonrpc":"2.0","result":{}}`, want: ErrEnvelope, msg: `a response must have an "id"`},
		{name: "error without id", in: `{"jsonrpc":"2.0","error":{"code":-32700,"message":"parse error"}}`, want: ErrEnvelope},
		{name: "error with null id", in: `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}`, want: ErrEnvelope},
		{name: "result and error", in: `{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"m"}}`, want: ErrEnvelope, msg: `both "result" and "error"`},
		{name: "response with params", in: `{"jsonrpc":"2.0","id":1,"result":{},"params":{}}`, want: ErrEnvelope},
		{name: "error not an object", in: `{"jsonrpc":"2.0","id":1,"error":"boom"}`, want: ErrEnvelope, msg: `"error" must be an object`},
		{name: "error null", in: `{"jsonrpc":"2.0","id":1,"error":null}`, want: ErrEnvelope},
		{name: "error without code", in: `{"jsonrpc":"2.0","id":1,"error":{"message":"m"}}`, want: ErrEnvelope, msg: `integer "code"`},
		{name: "error with fractional code", in: `{"jsonrpc":"2.0","id":1,"error":{"code":1.5,"message":"m"}}`, want: ErrEnvelope},
		{name: "error with exponent code", in: `{"jsonrpc":"2.0","id":1,"error":{"code":-3e4,"message":"m"}}`, want: ErrEnvelope},
		{name: "error with string code", in: `{"jsonrpc":"2.0","id":1,"error":{"code":"-32600","message":"m"}}`, want: ErrEnvelope},
		{name: "error with huge code", in: `{"jsonrpc":"2.0","id":1,"error":{"code":99999999999999999999,"message":"m"}}`, want: ErrEnvelope},
		{name: "error without message", in: `{"jsonrpc":"2.0","id":1,"error":{"code":1}}`, want: ErrEnvelope, msg: `string "message"`},
		{name: "error with number message", in: `{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":2}}`, want: ErrEnvelope},
	}
	sentinels := []error{ErrSyntax, ErrBatch, ErrDepth, ErrDuplicateKey, ErrCaseVariantKey, ErrNULKey, ErrEnvelope}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode([]byte(tt.in), tt.lim)
			if err == nil {
				t.Fatalf("Decode accepted %.200q", tt.in)
			}
			if m != nil {
				t.Errorf("Decode returned a message with error %v", err)
			}
			for _, s := range sentinels {
				if got, want := errors.Is(err, s), s == tt.want; got != want {
					t.Errorf("errors.Is(%q, %v) = %v, want %v", err, s, got, want)
				}
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
			if len(err.Error()) > 300 {
				t.Errorf("error message is %d bytes long: %q", len(err.Error()), err)
			}
			for _, c := range []byte(err.Error()) {
				if c < 0x20 || c == 0x7F {
					t.Errorf("error message holds control character %#x: %q", c, err)
				}
			}
		})
	}
}

// manyMembers returns n members "k0":0 ... "k<n-1>":<n-1>, without braces.
func manyMembers(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":%d`, i, i)
	}
	return b.String()
}

func TestDecodeErrorOffset(t *testing.T) {
	in := `{"jsonrpc":"2.0","id":1,"method":"ping","method":"x"}`
	_, err := Decode([]byte(in), Limits{})
	want := fmt.Sprintf(`duplicate key "method" at offset %d`, strings.LastIndex(in, `"method"`))
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

// TestDecodeReuse interleaves hostile and valid documents, so a scanner
// recycled after an error must not carry state into the next document.
func TestDecodeReuse(t *testing.T) {
	valid := call(`{"a":{"b":1},"c":[{"d":1}]}`)
	hostile := []string{
		call(`{"a":{"b":1,"b":2}}`),
		call(`{` + manyMembers(200) + `,"k1":1}`),
		call(`{"x":{` + manyMembers(100) + `,"\u0000":1}}`),
		nest(70, `{"a":`, `}`),
		call(`{"\u0061\u0062":{"a":[`),
	}
	for range 3 {
		for _, h := range hostile {
			if _, err := Decode([]byte(h), Limits{}); err == nil {
				t.Fatalf("Decode accepted %q", h)
			}
			m, err := Decode([]byte(valid), Limits{})
			if err != nil {
				t.Fatalf("Decode(valid) after %.40q: %v", h, err)
			}
			if m.Method != "tools/call" || string(m.ID) != "1" {
				t.Fatalf("Decode(valid) = %+v", m)
			}
		}
	}
}

func TestDecodeConcurrent(t *testing.T) {
	docs := []string{
		call(`{"a":1}`),
		`{"jsonrpc":"2.0","id":"x","result":{"content":[{"type":"text","text":"hi"}]}}`,
		call(`{` + manyMembers(64) + `}`),
	}
	done := make(chan error)
	for g := range 4 {
		go func() {
			for i := range 500 {
				in := docs[(g+i)%len(docs)]
				m, err := Decode([]byte(in), Limits{})
				if err != nil {
					done <- err
					return
				}
				if !bytes.Equal(m.Raw, []byte(in)) {
					done <- fmt.Errorf("Raw mismatch")
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{
		KindRequest: "request", KindNotification: "notification", KindResponse: "response", KindError: "error", 0: "Kind(0)", 9: "Kind(9)",
	} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", uint8(k), got, want)
		}
	}
}

func TestFoldMatchesEqualFold(t *testing.T) {
	// Every pair of runes in the first planes: canonical forms agree exactly
	// when bytes.EqualFold does.
	var runes []rune
	for r := rune(0); r < 0x2000; r++ {
		runes = append(runes, r)
	}
	runes = append(runes, 0x212A, 0x212B, 0x1E9E, 0x2126, 0x10400, 0x10428, 0x1E900, 0x1E922)
	byFold := map[rune][]rune{}
	for _, r := range runes {
		byFold[foldRune(r)] = append(byFold[foldRune(r)], r)
	}
	for _, r := range runes {
		a := []byte(string(r))
		for _, o := range []rune{r, foldRune(r), r + 1, r - 1, r + 32, r - 32} {
			b := []byte(string(o))
			same := bytes.Equal(appendFold(nil, a), appendFold(nil, b))
			if same != bytes.EqualFold(a, b) {
				t.Errorf("fold(%U) vs fold(%U): equal=%v, EqualFold=%v", r, o, same, !same)
			}
		}
	}
	for f, group := range byFold {
		for _, r := range group {
			if !bytes.EqualFold([]byte(string(r)), []byte(string(f))) {
				t.Errorf("%U grouped with %U but not EqualFold", r, f)
			}
		}
	}
}

// TestFoldKeyHashConsistent checks that keys equal under bytes.EqualFold get
// the same hash whichever path computes it: words loaded from the input,
// a copy near the end of the input, or the non-ASCII canonical form.
func TestFoldKeyHashConsistent(t *testing.T) {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	for n := 0; n <= 24; n++ {
		base := strings.Repeat(letters, 2)[:n]
		variants := []string{base, strings.ToUpper(base), strings.ReplaceAll(base, "k", "\u212a"), strings.ReplaceAll(base, "s", "\u017f")}
		var want uint64
		for i, v := range variants {
			for _, pad := range []string{"", strings.Repeat(" ", 32)} {
				data := []byte(`"` + v + `"` + pad)
				s := scanner{data: data}
				ref := keyRef{off: 1, n: len(v), ascii: isASCII([]byte(v))}
				got := s.foldKeyHash(ref, []byte(v))
				if i == 0 && pad == "" {
					want = got
				}
				if got != want {
					t.Errorf("key %q (pad %d): hash %#x, want %#x as for %q", v, len(pad), got, want, base)
				}
				if h := hashFolded(appendFold(nil, []byte(v))); h != want {
					t.Errorf("hashFolded(%q) = %#x, want %#x", v, h, want)
				}
			}
		}
	}
}

func TestAppendUpperASCII(t *testing.T) {
	var all []byte
	for c := range 128 {
		all = append(all, byte(c))
	}
	for start := range 9 {
		for end := start; end <= len(all); end += 7 {
			k := all[start:end]
			got := appendUpperASCII([]byte("x"), k)
			want := appendFold([]byte("x"), k)
			if !bytes.Equal(got, want) {
				t.Fatalf("appendUpperASCII(%q) = %q, want %q", k, got, want)
			}
		}
	}
}

func TestSpecial8(t *testing.T) {
	for c := range 256 {
		for pos := range 8 {
			w := []byte("abcdefgh")
			w[pos] = byte(c)
			m := special8(binary.LittleEndian.Uint64(w))
			first := 8
			if m != 0 {
				first = bits.TrailingZeros64(m) >> 3
			}
			want := 8
			for i, b := range w {
				if !plain[b] {
					want = i
					break
				}
			}
			if first != want {
				t.Fatalf("special8(%q): first special byte %d, want %d", w, first, want)
			}
		}
	}
}

func TestParseInt64(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"-0", 0, true}, {"7", 7, true}, {"-7", -7, true},
		{"9223372036854775807", 9223372036854775807, true},
		{"-9223372036854775808", -9223372036854775808, true},
		{"9223372036854775808", 0, false}, {"-9223372036854775809", 0, false},
		{"18446744073709551616", 0, false}, {"99999999999999999999", 0, false},
		{"", 0, false}, {"-", 0, false}, {"01", 0, false}, {"1.0", 0, false}, {"1e2", 0, false}, {`"1"`, 0, false},
	}
	for _, tt := range tests {
		got, ok := parseInt64([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseInt64(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
