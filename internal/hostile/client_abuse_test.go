package hostile

import (
	"bytes"
	"cmp"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// endpoint is one MCP endpoint of the gateway and the name its echo tool
// has there.
type endpoint struct {
	name string // subtest name
	path string
	echo string
}

var endpoints = []endpoint{
	{name: "server", path: "/servers/rec/mcp", echo: "echo"},
	{name: "aggregate", path: "/mcp", echo: "rec__echo"},
}

// Session IDs a client case may send; any other value is sent literally.
const (
	sidSession = ""        // the caller's own session on the endpoint
	sidNone    = "<none>"  // no Mcp-Session-Id
	sidBob     = "<bob>"   // another principal's session on the endpoint
	sidDeleted = "<gone>"  // a session ended with DELETE
	sidOtherEP = "<other>" // the caller's session on the other endpoint
	sidLong    = "<10KiB>" // a 10 KiB ID
)

// clientCase is one hostile request against a gateway endpoint.
type clientCase struct {
	name   string
	method string // default POST
	sid    string
	body   string                // {{echo}} becomes the endpoint's echo tool name
	bodyFn func(endpoint) string // instead of body
	edit   func(*http.Request)
	// raw, when set, sends the request itself (raw TCP and the like).
	raw func(t *testing.T, env *clientEnv, ep endpoint, sid string) reply

	status    int
	code      int64 // JSON-RPC error code; 0 with status 200 means a result
	plain     bool  // the answer comes from net/http itself, not the gateway
	forwarded int   // requests the upstream must receive; -1: not checked
	check     func(t *testing.T, r reply, up []recorded)
}

// clientEnv is the running gateway and its clients for the client cases.
type clientEnv struct {
	g          *gatewayProc
	up         *recordingUpstream
	alice, bob *mcpClient
	keys       map[string]apiKey
	sessions   map[string]map[string]string // endpoint path → kind → session ID
}

const (
	clientMaxBody  = 64 << 10
	clientMaxDepth = 16
)

// TestHostileClients drives both MCP endpoints with malformed JSON-RPC,
// oversized and deep bodies, header abuse and session misuse. Every
// refused request must get a short JSON-RPC error and reach nothing
// upstream; after the table the same sessions still work.
func TestHostileClients(t *testing.T) {
	t.Parallel()
	env := &clientEnv{up: startRecording(t), keys: map[string]apiKey{}, sessions: map[string]map[string]string{}}
	for _, n := range []string{"alice", "bob", "carol"} {
		env.keys[n] = newAPIKey(t)
	}
	var keys strings.Builder
	for _, n := range []string{"alice", "bob", "carol"} {
		fmt.Fprintf(&keys, "    - name: %s\n      sha256: %s\n", n, env.keys[n].sum)
	}
	env.g = startGateway(t, fmt.Sprintf(`http:
  max_body_bytes: %d
  max_json_depth: %d
sessions:
  max_per_principal: 6
auth:
  resource: http://127.0.0.1:8080/mcp
  api_keys:
%sservers:
  rec:
    url: %s
    response_timeout: 5s
    pin: off
`, clientMaxBody, clientMaxDepth, keys.String(), env.up.URL))
	// pin: off above: a tool's first use bumps the pin store's generation,
	// after which (within a second) every session re-lists its tools; that
	// extra tools/list would make the upstream counts of this table racy.
	env.alice = newClient(t, env.g.data, env.keys["alice"].header())
	env.bob = newClient(t, env.g.data, env.keys["bob"].header())

	gets := 0
	for _, ep := range endpoints {
		s := map[string]string{}
		s[sidSession] = env.alice.initialize(ep.path)
		s[sidBob] = env.bob.initialize(ep.path)
		gone := env.alice.initialize(ep.path)
		env.alice.closeSession(ep.path, gone)
		s[sidDeleted] = gone
		env.sessions[ep.path] = s
		gets += 3
	}
	for _, ep := range endpoints {
		other := endpoints[0].path
		if other == ep.path {
			other = endpoints[1].path
		}
		env.sessions[ep.path][sidOtherEP] = env.sessions[other][sidSession]
	}
	env.up.waitGETs(t, gets)
	for _, ep := range endpoints {
		// Lists the tools once, so that later counts are of the cases alone.
		env.alice.echo(ep.path, env.sessions[ep.path][sidSession], ep.echo, "warm-up")
	}
	base := env.g.baseline(t)

	cases := clientCases()
	for _, ep := range endpoints {
		t.Run(ep.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) { env.runCase(t, ep, tc) })
			}
			// The refusals left the session intact, and nothing refused
			// arrived late.
			n := env.up.count()
			env.alice.with(t).echo(ep.path, env.sessions[ep.path][sidSession], ep.echo, "still serving after "+ep.name)
			if got := env.up.since(n); len(got) != 1 || got[0].RPCMethod != "tools/call" {
				t.Errorf("positive control: upstream saw %s, want exactly one tools/call", env.up.describe(n))
			}
		})
	}
	env.g.checkServing(t)
	env.g.checkBounded(t, base, 12)
}

func (env *clientEnv) runCase(t *testing.T, ep endpoint, tc clientCase) {
	sid := tc.sid
	switch sid {
	case sidNone:
		sid = ""
	case sidLong:
		sid = strings.Repeat("A", 10<<10)
	case sidSession, sidBob, sidDeleted, sidOtherEP:
		sid = env.sessions[ep.path][sid]
	}
	n := env.up.count()
	var r reply
	if tc.raw != nil {
		r = tc.raw(t, env, ep, sid)
	} else {
		body := strings.ReplaceAll(tc.body, "{{echo}}", ep.echo)
		if tc.bodyFn != nil {
			body = tc.bodyFn(ep)
		}
		r = env.alice.with(t).do(cmp.Or(tc.method, http.MethodPost), ep.path, sid, body, tc.edit)
	}
	got := env.up.since(n)
	if tc.forwarded >= 0 && len(got) != tc.forwarded {
		t.Errorf("upstream received %d requests, want %d: %s", len(got), tc.forwarded, env.up.describe(n))
	}
	switch {
	case tc.plain:
		if r.Status != tc.status {
			t.Errorf("HTTP %d, want %d: %s", r.Status, tc.status, clip(r.Body))
		}
	case tc.status != http.StatusOK || tc.code != 0:
		wantError(t, r, tc.status, tc.code)
	default:
		if r.Status != http.StatusOK {
			t.Errorf("HTTP %d, want 200: %s", r.Status, clip(r.Body))
		}
	}
	if tc.check != nil {
		tc.check(t, r, got)
	}
}

// setHeader returns an edit that sets a request header.
func setHeader(k, v string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set(k, v) }
}

const (
	listBody = `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	echoBody = `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"{{echo}}","arguments":{"text":"hi"}}}`
)

// nested returns a tools/call whose arguments nest to total depth depth.
func nested(depth int) string {
	inner := depth - 3 // the message, params and arguments objects
	return `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"{{echo}}","arguments":{"text":"deep","n":` +
		strings.Repeat("[", inner) + "1" + strings.Repeat("]", inner) + `}}}`
}

// padded returns a body function: a tools/call of exactly n bytes on the
// endpoint.
func padded(n int) func(endpoint) string {
	return func(ep endpoint) string {
		head, tail := `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"`+ep.echo+`","arguments":{"text":"`, `"}}}`
		return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
	}
}

// resultOK asserts a reply carries a tools/call result.
func resultOK(t *testing.T, r reply, _ []recorded) {
	t.Helper()
	if m := final(t, r); m.Error != nil || m.Result == nil {
		t.Errorf("want a result, got %s", m)
	}
}

func clientCases() []clientCase {
	bad := func(name, body string, code int64) clientCase {
		return clientCase{name: name, body: body, status: http.StatusBadRequest, code: code}
	}
	const inv, parse = -32600, -32700
	return append(slicesConcat(
		malformedCases(bad, inv, parse),
		sizeCases(parse),
		headerCases(),
		sessionCases(),
	), toolCases()...)
}

func slicesConcat(ss ...[]clientCase) []clientCase {
	var out []clientCase
	for _, s := range ss {
		out = append(out, s...)
	}
	return out
}

func malformedCases(bad func(string, string, int64) clientCase, inv, parse int64) []clientCase {
	return []clientCase{
		bad("missing jsonrpc", `{"id":1,"method":"tools/list"}`, inv),
		bad("jsonrpc 1.0", `{"jsonrpc":"1.0","id":1,"method":"tools/list"}`, inv),
		bad("jsonrpc as a number", `{"jsonrpc":2.0,"id":1,"method":"tools/list"}`, inv),
		bad("id as an object", `{"jsonrpc":"2.0","id":{"a":1},"method":"tools/list"}`, inv),
		bad("id as an array", `{"jsonrpc":"2.0","id":[1],"method":"tools/list"}`, inv),
		bad("id as a bool", `{"jsonrpc":"2.0","id":true,"method":"tools/list"}`, inv),
		bad("id as a float", `{"jsonrpc":"2.0","id":1.5,"method":"tools/list"}`, inv),
		bad("id nested past max_json_depth", `{"jsonrpc":"2.0","id":`+strings.Repeat("[", 40)+strings.Repeat("]", 40)+`,"method":"tools/list"}`, parse),
		bad("method as a number", `{"jsonrpc":"2.0","id":1,"method":7}`, inv),
		bad("method empty", `{"jsonrpc":"2.0","id":1,"method":""}`, inv),
		bad("params as a string", `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":"x"}`, inv),
		bad("request with a result", `{"jsonrpc":"2.0","id":1,"method":"tools/list","result":{}}`, inv),
		bad("duplicate envelope key", `{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}`, parse),
		bad("duplicate key in arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"{{echo}}","arguments":{"text":"a","text":"b"}}}`, parse),
		bad("case-variant envelope key", `{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call"}`, parse),
		bad("case-variant key in params", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"{{echo}}","Name":"other","arguments":{}}}`, parse),
		bad("NUL-suffixed key", `{"jsonrpc":"2.0","id":1,"method":"tools/list","method\u0000":"tools/call"}`, parse),
		bad("raw control character in a string", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\",\"params\":{\"x\":\"a\x01b\"}}", parse),
		bad("batch", `[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/list"}]`, inv),
		bad("empty batch", `[]`, inv),
		bad("empty body", ``, parse),
		bad("whitespace body", " \t\r\n ", parse),
		bad("JSON null", `null`, inv),
		bad("truncated JSON", `{"jsonrpc":"2.0","id":1,"method":"tools/li`, parse),
		bad("trailing garbage", `{"jsonrpc":"2.0","id":1,"method":"tools/list"} {"jsonrpc":"2.0","id":2,"method":"tools/call"}`, parse),
		bad("UTF-8 BOM", "\xef\xbb\xbf"+listBody, parse),
		bad("invalid UTF-8", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"{{echo}}\",\"arguments\":{\"text\":\"\xff\xfe\"}}}", parse),
		bad("lone surrogate", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"{{echo}}","arguments":{"text":"\ud800"}}}`, parse),
		bad("number overflowing float64", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"{{echo}}","arguments":{"text":"x","n":1e999999}}}`, parse),
		bad("id overflowing float64", `{"jsonrpc":"2.0","id":1e999999,"method":"tools/list"}`, parse),
		{
			name: "client response to no pending request", body: `{"jsonrpc":"2.0","id":"mcpgate-999","result":{}}`,
			status: http.StatusBadRequest, code: inv,
		},
		{
			name: "initialize with Mcp-Session-Id", body: initializeBody,
			status: http.StatusBadRequest, code: inv,
		},
		{
			name: "initialize as a notification", sid: sidNone,
			body:   `{"jsonrpc":"2.0","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`,
			status: http.StatusBadRequest, code: inv,
		},
		{
			name: "initialize without protocolVersion", sid: sidNone,
			body:   `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`,
			status: http.StatusOK, code: -32602,
		},
		{
			// The upstream gets the gateway's own ID, never the client's.
			name: "64 KiB string id is not forwarded", body: `{"jsonrpc":"2.0","id":"` + strings.Repeat("i", 60<<10) + `","method":"tools/list"}`,
			status: http.StatusOK, forwarded: 1,
			check: func(t *testing.T, r reply, up []recorded) {
				if m := final(t, r); m.Error != nil || len(m.ID) < 60<<10 {
					t.Errorf("want the result with the client's id, got %s", m)
				}
				if len(up) == 1 && len(up[0].Body) > 4096 {
					t.Errorf("the upstream got a %d-byte request: the client's id was forwarded", len(up[0].Body))
				}
			},
		},
		bad("integer id beyond int64", `{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"tools/list"}`, inv),
	}
}

func sizeCases(parse int64) []clientCase {
	return []clientCase{
		{name: "body at max_body_bytes", bodyFn: padded(clientMaxBody), status: http.StatusOK, forwarded: 1, check: resultOK},
		{name: "body over max_body_bytes", bodyFn: padded(clientMaxBody + 1), status: http.StatusRequestEntityTooLarge, code: -32600},
		{name: "8 MiB body", bodyFn: padded(8 << 20), status: http.StatusRequestEntityTooLarge, code: -32600},
		{
			name: "chunked body over max_body_bytes", bodyFn: padded(clientMaxBody + 1),
			edit:   func(r *http.Request) { r.ContentLength = -1 },
			status: http.StatusRequestEntityTooLarge, code: -32600,
		},
		{name: "nesting at max_json_depth", body: nested(clientMaxDepth), status: http.StatusOK, forwarded: 1, check: resultOK},
		{name: "nesting over max_json_depth", body: nested(clientMaxDepth + 1), status: http.StatusBadRequest, code: parse},
		{name: "nesting 30000 deep", body: nested(30000), status: http.StatusBadRequest, code: parse},
		{name: "unclosed nesting 10000 deep", body: `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"a":` + strings.Repeat(`{"a":`, 10000), status: http.StatusBadRequest, code: parse},
	}
}

func headerCases() []clientCase {
	forbidden := func(name string, edit func(*http.Request)) clientCase {
		return clientCase{name: name, body: echoBody, edit: edit, status: http.StatusForbidden, code: -32600}
	}
	unauth := func(name string, edit func(*http.Request)) clientCase {
		return clientCase{name: name, body: echoBody, edit: edit, status: http.StatusUnauthorized, code: -32600,
			check: func(t *testing.T, r reply, _ []recorded) {
				if r.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("401 without WWW-Authenticate")
				}
			}}
	}
	return []clientCase{
		forbidden("foreign Host", func(r *http.Request) { r.Host = "evil.example.com" }),
		forbidden("foreign Host with a loopback prefix", func(r *http.Request) { r.Host = "127.0.0.1.evil.example.com" }),
		forbidden("foreign Host, localhost suffix", func(r *http.Request) { r.Host = "evil-localhost" }),
		forbidden("foreign Origin", setHeader("Origin", "http://evil.example.com")),
		forbidden("Origin null", setHeader("Origin", "null")),
		forbidden("Origin with a loopback-looking host", setHeader("Origin", "http://localhost.evil.example.com")),
		forbidden("Origin with user info", setHeader("Origin", "http://localhost@evil.example.com")),
		{name: "Content-Type text/plain", body: echoBody, edit: setHeader("Content-Type", "text/plain"), status: http.StatusUnsupportedMediaType, code: -32600},
		{name: "Content-Type application/jsonx", body: echoBody, edit: setHeader("Content-Type", "application/jsonx"), status: http.StatusUnsupportedMediaType, code: -32600},
		{name: "Content-Type form", body: echoBody, edit: setHeader("Content-Type", "application/x-www-form-urlencoded"), status: http.StatusUnsupportedMediaType, code: -32600},
		{name: "no Content-Type", body: echoBody, edit: func(r *http.Request) { r.Header.Del("Content-Type") }, status: http.StatusUnsupportedMediaType, code: -32600},
		{name: "Accept application/json only", body: echoBody, edit: setHeader("Accept", "application/json"), status: http.StatusNotAcceptable, code: -32600},
		{name: "no Accept", body: echoBody, edit: func(r *http.Request) { r.Header.Del("Accept") }, status: http.StatusNotAcceptable, code: -32600},
		{name: "Accept */* is served", body: echoBody, edit: setHeader("Accept", "*/*"), status: http.StatusOK, forwarded: 1, check: resultOK},
		{name: "MCP-Protocol-Version garbage", body: echoBody, edit: setHeader("MCP-Protocol-Version", "2025-13-45<script>"), status: http.StatusBadRequest, code: -32022},
		unauth("no credential", func(r *http.Request) { r.Header.Del("X-Api-Key") }),
		unauth("unknown API key", setHeader("X-Api-Key", strings.Repeat("0", 64))),
		unauth("two credentials", setHeader("Authorization", "Bearer "+strings.Repeat("0", 64))),
		unauth("X-Api-Key twice", func(r *http.Request) { r.Header.Add("X-Api-Key", "second") }),
		unauth("token in the query", func(r *http.Request) { r.URL.RawQuery = "access_token=abc" }),
		unauth("API key of 64 KiB", setHeader("X-Api-Key", strings.Repeat("k", 64<<10))),
		{
			// Client headers, credentials included, never reach an upstream.
			name: "500 junk headers and the credential are not forwarded", body: echoBody, status: http.StatusOK, forwarded: 1,
			edit: func(r *http.Request) {
				for i := range 500 {
					r.Header.Set(fmt.Sprintf("X-Junk-%d", i), "junk")
				}
				r.Header.Set("Cookie", "session=client-cookie")
			},
			check: func(t *testing.T, r reply, up []recorded) {
				resultOK(t, r, up)
				for _, u := range up {
					for k := range u.Header {
						if strings.HasPrefix(k, "X-Junk-") || k == "X-Api-Key" || k == "Cookie" || k == "Authorization" {
							t.Errorf("client header %s reached the upstream", k)
						}
					}
				}
			},
		},
		{name: "header over 1 MiB", body: echoBody, edit: setHeader("X-Big", strings.Repeat("b", 1<<20+8<<10)), status: http.StatusRequestHeaderFieldsTooLarge, plain: true},
		{name: "2 MiB URL", body: echoBody, edit: func(r *http.Request) { r.URL.RawQuery = "q=" + strings.Repeat("u", 2<<20) }, status: http.StatusRequestHeaderFieldsTooLarge, plain: true},
		{name: "PUT", method: http.MethodPut, body: echoBody, status: http.StatusMethodNotAllowed, code: -32600},
		{name: "GET without Accept text/event-stream", method: http.MethodGet, edit: setHeader("Accept", "application/json"), status: http.StatusNotAcceptable, code: -32600},
	}
}

func sessionCases() []clientCase {
	list := func(name, sid string, status int) clientCase {
		return clientCase{name: name, sid: sid, body: listBody, status: status, code: -32600}
	}
	rawWithSID := func(sidBytes string) func(*testing.T, *clientEnv, endpoint, string) reply {
		return func(t *testing.T, env *clientEnv, ep endpoint, _ string) reply {
			req := "POST " + ep.path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
				"Accept: application/json, text/event-stream\r\nX-Api-Key: " + env.keys["alice"].key + "\r\n" +
				"Mcp-Session-Id: " + sidBytes + "\r\nConnection: close\r\n" +
				fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(listBody), listBody)
			return rawExchange(t, env.g.addr, req)
		}
	}
	return []clientCase{
		list("no Mcp-Session-Id", sidNone, http.StatusBadRequest),
		list("unknown session", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", http.StatusNotFound),
		list("another principal's session", sidBob, http.StatusNotFound),
		list("session after DELETE", sidDeleted, http.StatusNotFound),
		list("session of the other endpoint", sidOtherEP, http.StatusNotFound),
		list("10 KiB session ID", sidLong, http.StatusNotFound),
		list("session ID with a path", "../../etc/passwd", http.StatusNotFound),
		{name: "session ID with control characters", raw: rawWithSID("abc\x01\x7fdef"), status: http.StatusBadRequest, plain: true},
		{name: "session ID with a bare CR", raw: rawWithSID("abc\rdef"), status: http.StatusBadRequest, plain: true},
		{name: "DELETE of another principal's session", method: http.MethodDelete, sid: sidBob, status: http.StatusNotFound, code: -32600},
		{name: "DELETE of a deleted session", method: http.MethodDelete, sid: sidDeleted, status: http.StatusNotFound, code: -32600},
		{name: "DELETE without a session", method: http.MethodDelete, sid: sidNone, status: http.StatusBadRequest, code: -32600},
		{name: "GET of another principal's session", method: http.MethodGet, sid: sidBob, status: http.StatusNotFound, code: -32600},
		{name: "GET without a session", method: http.MethodGet, sid: sidNone, status: http.StatusBadRequest, code: -32600},
		{
			name: "GET with a malformed Last-Event-ID", method: http.MethodGet, edit: setHeader("Last-Event-ID", strings.Repeat("x", 4096)),
			status: http.StatusBadRequest, code: -32600,
		},
		{
			name: "GET with another stream's Last-Event-ID", method: http.MethodGet, edit: setHeader("Last-Event-ID", "999999_1"),
			status: http.StatusNotFound, code: -32600,
		},
		{
			// Each initialize reaches the upstream on /servers/rec/mcp (and
			// /mcp); the one over the cap must not.
			name: "session flood past max_per_principal",
			raw: func(t *testing.T, env *clientEnv, ep endpoint, _ string) reply {
				carol := newClient(t, env.g.data, env.keys["carol"].header())
				var sids []string
				for range 6 {
					sids = append(sids, carol.initialize(ep.path))
				}
				n := env.up.count()
				r := carol.do(http.MethodPost, ep.path, "", initializeBody, nil)
				// The earlier sessions' upstream GET streams open on their
				// own time; only a POST would be the refused initialize.
				for _, req := range env.up.since(n) {
					if req.Method == http.MethodPost {
						t.Errorf("the refused initialize reached the upstream: %s", env.up.describe(n))
						break
					}
				}
				for _, s := range sids {
					carol.closeSession(ep.path, s)
				}
				return r
			},
			status: http.StatusTooManyRequests, code: -32600, forwarded: -1,
		},
	}
}

func toolCases() []clientCase {
	call := func(name, params string, code int64) clientCase {
		return clientCase{name: name, body: `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":` + params + `}`, status: http.StatusOK, code: code}
	}
	return []clientCase{
		call("tool name with a space", `{"name":"a b","arguments":{}}`, -32602),
		call("tool name with a slash", `{"name":"../{{echo}}","arguments":{}}`, -32602),
		call("tool name of 129 characters", `{"name":"`+strings.Repeat("t", 129)+`","arguments":{}}`, -32602),
		call("tool name with NUL", `{"name":"{{echo}}\u0000","arguments":{}}`, -32602),
		call("tool name as a number", `{"name":7,"arguments":{}}`, -32602),
		call("no tool name", `{"arguments":{}}`, -32602),
		call("params as an array", `["{{echo}}"]`, -32602),
		call("unknown tool", `{"name":"no_such_tool","arguments":{}}`, -32602),
		call("unknown tool of 128 characters", `{"name":"`+strings.Repeat("t", 128)+`","arguments":{}}`, -32602),
		{
			// The upstream rejects it; the gateway must answer with an
			// error of some kind and stay healthy.
			name: "arguments as a string", body: `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"{{echo}}","arguments":"text"}}`,
			status: http.StatusOK, forwarded: -1,
			check: func(t *testing.T, r reply, _ []recorded) {
				m := final(t, r)
				if m.Error == nil && !bytes.Contains(m.Result, []byte(`"isError":true`)) {
					t.Errorf("want an error for string arguments, got %s", m)
				}
			},
		},
	}
}
