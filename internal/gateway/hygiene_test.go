package gateway_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/internal/gateway"
)

// Transport hygiene: every request the gateway refuses is refused before
// anything reaches the upstream. The upstream records every request it gets,
// so "nothing forwarded" is measured, not assumed.

// recordedRequest is one HTTP request a recordingMCP received.
type recordedRequest struct {
	Method        string // HTTP method
	SessionID     string // the request's Mcp-Session-Id
	RPCMethod     string // JSON-RPC method of the body, if any
	Body          []byte
	RespSessionID string // the response's Mcp-Session-Id
}

// recordingMCP is a Go SDK MCP server (legacy sessionful era, one tool
// "echo") on a loopback httptest server that records every request.
type recordingMCP struct {
	URL string

	mu   sync.Mutex // guards reqs
	reqs []recordedRequest
}

type echoInput struct {
	Text string `json:"text"`
}

func startRecordingMCP(t *testing.T) *recordingMCP {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "recording-upstream", Version: "1.0.0"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "returns its text"}, func(_ context.Context, _ *mcp.CallToolRequest, in echoInput) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
	})
	// A tool taking any arguments, for nesting tests: echo's schema
	// refuses unknown members.
	mcp.AddTool(s, &mcp.Tool{Name: "any"}, func(context.Context, *mcp.CallToolRequest, map[string]any) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{}, nil, nil
	})
	// The longest tool name the specification allows.
	mcp.AddTool(s, &mcp.Tool{Name: strings.Repeat("a", 128)}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{}, nil, nil
	})
	sdk := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	u := &recordingMCP{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "reading body", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var env struct {
			Method string `json:"method"`
		}
		json.Unmarshal(body, &env)
		u.mu.Lock()
		i := len(u.reqs)
		u.reqs = append(u.reqs, recordedRequest{Method: r.Method, SessionID: r.Header.Get("Mcp-Session-Id"), RPCMethod: env.Method, Body: body})
		u.mu.Unlock()
		sdk.ServeHTTP(&sessionCapture{ResponseWriter: w, record: func(sid string) {
			u.mu.Lock()
			u.reqs[i].RespSessionID = sid
			u.mu.Unlock()
		}}, r)
	}))
	t.Cleanup(func() {
		// A stream the gateway failed to close must fail the test, not
		// hang Close.
		srv.CloseClientConnections()
		srv.Close()
	})
	u.URL = srv.URL + "/mcp"
	return u
}

// sessionCapture records the response's Mcp-Session-Id as the header is
// written, before the client can see the response.
type sessionCapture struct {
	http.ResponseWriter
	record  func(sid string)
	written bool
}

func (w *sessionCapture) WriteHeader(code int) {
	if !w.written {
		w.written = true
		w.record(w.Header().Get("Mcp-Session-Id"))
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *sessionCapture) Write(b []byte) (int, error) {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *sessionCapture) Flush() {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *sessionCapture) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// count returns how many requests arrived so far.
func (u *recordingMCP) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

// since returns the requests from index n on.
func (u *recordingMCP) since(n int) []recordedRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.reqs[n:])
}

// rpcCount counts the POSTs carrying the JSON-RPC method.
func (u *recordingMCP) rpcCount(method string) int {
	n := 0
	for _, r := range u.since(0) {
		if r.Method == http.MethodPost && r.RPCMethod == method {
			n++
		}
	}
	return n
}

// upstreamSession returns the upstream's own session ID created by the
// first initialize at or after index n.
func (u *recordingMCP) upstreamSession(t *testing.T, n int) string {
	t.Helper()
	for _, r := range u.since(n) {
		if r.RPCMethod == "initialize" && r.RespSessionID != "" {
			return r.RespSessionID
		}
	}
	t.Fatalf("no upstream initialize with a session ID after request %d; upstream saw %s", n, u.describe(n))
	return ""
}

// waitFor polls cond until it holds or d passes.
func (u *recordingMCP) waitFor(d time.Duration, cond func([]recordedRequest) bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond(u.since(0)) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitStream waits for the gateway's standalone GET stream of upstream
// session sid, which the gateway opens asynchronously after initialize:
// a count snapshot taken before it arrives would be wrong.
func (u *recordingMCP) waitStream(t *testing.T, sid string) {
	t.Helper()
	if !u.waitFor(5*time.Second, func(rs []recordedRequest) bool {
		return slices.ContainsFunc(rs, func(r recordedRequest) bool { return r.Method == http.MethodGet && r.SessionID == sid })
	}) {
		t.Fatalf("the gateway opened no GET stream for upstream session %s; upstream saw %s", sid, u.describe(0))
	}
}

func (u *recordingMCP) describe(n int) string {
	var parts []string
	for _, r := range u.since(n) {
		s := r.Method
		if r.RPCMethod != "" {
			s += " " + r.RPCMethod
		}
		parts = append(parts, s)
	}
	return fmt.Sprintf("%d requests [%s]", len(parts), strings.Join(parts, ", "))
}

// rawMCP is a raw Streamable HTTP client of one gateway endpoint.
type rawMCP struct {
	t     *testing.T
	url   string
	extra http.Header // sent on every request (e.g. X-Test-User)
	hc    *http.Client
}

func newRawMCP(t *testing.T, url string, extra http.Header) *rawMCP {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	// The timeout turns a stream the gateway wrongly holds open into a
	// failure instead of a hang.
	return &rawMCP{t: t, url: url, extra: extra, hc: &http.Client{Transport: tr, Timeout: 15 * time.Second}}
}

// rawResponse is a response read whole.
type rawResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// do sends a request with the headers of a well-behaved client (and the
// session ID, if sid is set); edit may then spoil it.
func (c *rawMCP) do(method, sid, body string, edit func(*http.Request)) rawResponse {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.url, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range c.extra {
		req.Header[k] = v
	}
	switch method {
	case http.MethodGet:
		req.Header.Set("Accept", "text/event-stream")
	default:
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
	}
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	if edit != nil {
		edit(req)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, c.url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: reading body: %v", method, c.url, err)
	}
	return rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

const initializeBody = `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

// initialize opens a session (initialize, then notifications/initialized)
// and returns its ID.
func (c *rawMCP) initialize() string {
	c.t.Helper()
	resp := c.do(http.MethodPost, "", initializeBody, func(r *http.Request) { r.Header.Del("MCP-Protocol-Version") })
	if resp.Status != http.StatusOK {
		c.t.Fatalf("initialize: HTTP %d: %s", resp.Status, resp.Body)
	}
	sid := resp.Header.Get("Mcp-Session-Id")
	if sid == "" {
		c.t.Fatalf("initialize: no Mcp-Session-Id in the response")
	}
	if m := rpcMessage(c.t, resp); m.Result == nil {
		c.t.Fatalf("initialize: no result: %s", resp.Body)
	}
	resp = c.do(http.MethodPost, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, nil)
	if resp.Status != http.StatusAccepted {
		c.t.Fatalf("notifications/initialized: HTTP %d (want 202): %s", resp.Status, resp.Body)
	}
	return sid
}

// callEcho calls the echo tool and returns the text of its result.
func (c *rawMCP) callEcho(sid string, id int, text string) string {
	c.t.Helper()
	resp := c.do(http.MethodPost, sid, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":%q}}}`, id, text), nil)
	if resp.Status != http.StatusOK {
		c.t.Fatalf("tools/call echo: HTTP %d: %s", resp.Status, resp.Body)
	}
	return echoText(c.t, rpcMessage(c.t, resp))
}

// rpcMsg is a JSON-RPC response as the client receives it.
type rpcMsg struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *struct {
		Code    *int64          `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

// rpcMessage returns the JSON-RPC response in a body: the whole body when
// it is JSON, the last message when it is an event stream.
func rpcMessage(t *testing.T, resp rawResponse) rpcMsg {
	t.Helper()
	ct := resp.Header.Get("Content-Type")
	var data []byte
	switch {
	case strings.HasPrefix(ct, "application/json"):
		data = resp.Body
	case strings.HasPrefix(ct, "text/event-stream"):
		sc := bufio.NewScanner(bytes.NewReader(resp.Body))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data:"); ok && strings.TrimSpace(d) != "" {
				data = []byte(strings.TrimSpace(d))
			}
		}
	default:
		t.Fatalf("response Content-Type %q (HTTP %d), want JSON or an event stream: %q", ct, resp.Status, resp.Body)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var m rpcMsg
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("response is not a JSON-RPC message: %v: %q", err, resp.Body)
	}
	if dec.More() {
		t.Fatalf("response holds more than one JSON value: %q", data)
	}
	if m.JSONRPC != "2.0" {
		t.Fatalf(`response lacks "jsonrpc":"2.0": %q`, data)
	}
	return m
}

// rpcError asserts that resp is a JSON-RPC error object, in a JSON body, and
// returns it.
func rpcError(t *testing.T, resp rawResponse) rpcMsg {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error response Content-Type %q, want application/json: %q", ct, resp.Body)
	}
	m := rpcMessage(t, resp)
	if m.Error == nil || m.Result != nil {
		t.Fatalf("want a JSON-RPC error object, got %s", resp.Body)
	}
	if m.Error.Code == nil || m.Error.Message == "" {
		t.Fatalf("JSON-RPC error lacks a code or a message: %s", resp.Body)
	}
	if m.ID == nil {
		t.Fatalf(`JSON-RPC error lacks "id" (null when unknown): %s`, resp.Body)
	}
	return m
}

// echoText returns the text of an echo tools/call result.
func echoText(t *testing.T, m rpcMsg) string {
	t.Helper()
	if m.Error != nil || m.Result == nil {
		t.Fatalf("tools/call echo: want a result, got error %+v", m.Error)
	}
	var res struct {
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		IsError bool `json:"isError"`
	}
	if err := json.Unmarshal(m.Result, &res); err != nil {
		t.Fatalf("tools/call echo: result: %v: %s", err, m.Result)
	}
	if res.IsError || len(res.Content) != 1 || res.Content[0].Type != "text" {
		t.Fatalf("tools/call echo: unexpected result %s", m.Result)
	}
	return res.Content[0].Text
}

// recGatewayConfig is a gateway config fronting the recording upstream as
// server "rec", with extra top-level YAML.
func recGatewayConfig(up *recordingMCP, extra string) string {
	return "listen: 127.0.0.1:0\n" + extra + "servers:\n  rec:\n    url: " + up.URL + "\n"
}

// padTo pads the echo text of a tools/call so that the body is exactly n
// bytes long.
func padTo(t *testing.T, n int) string {
	t.Helper()
	const head, tail = `{"jsonrpc":"2.0","id":30,"method":"tools/call","params":{"name":"echo","arguments":{"text":"`, `"}}}`
	pad := n - len(head) - len(tail)
	if pad < 0 {
		t.Fatalf("cannot pad a body to %d bytes", n)
	}
	return head + strings.Repeat("x", pad) + tail
}

// nestedCall is a tools/call whose arguments nest to total depth depth (the
// top-level object counting as 1).
func nestedCall(id, depth int) string {
	inner := depth - 3 // top-level object, params, arguments
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"any","arguments":{"text":"deep","n":%s1%s}}}`,
		id, strings.Repeat("[", inner), strings.Repeat("]", inner))
}

func TestTransportHygiene(t *testing.T) {
	up := startRecordingMCP(t)
	gw := startGateway(t, recGatewayConfig(up, "http:\n  max_body_bytes: 2048\n  max_json_depth: 8\n"), gateway.Options{})
	c := newRawMCP(t, gw.URL+"/servers/rec/mcp", nil)

	before := up.count()
	sid := c.initialize()
	upSID := up.upstreamSession(t, before)
	up.waitStream(t, upSID)

	const (
		sidValid = "" // the session established above
		sidNone  = "none"
	)
	setHeader := func(k, v string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set(k, v) }
	}
	echoCall := func(id int, text string) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":%q}}}`, id, text)
	}
	toolCall := func(id int, name string) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":{}}}`, id, name)
	}
	const toolsList = `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`

	tests := []struct {
		name      string
		path      string // default /servers/rec/mcp
		method    string // default POST
		sid       string // sidValid, sidNone or a literal session ID
		body      string
		edit      func(*http.Request)
		status    int
		forwarded int // requests the upstream must receive: 0 for every refusal

		wantErr  bool                          // the body must be a JSON-RPC error object
		wantCode int64                         // if set, the error's code
		wantID   string                        // if set, the error's id, as raw JSON
		check    func(*testing.T, rawResponse) // further checks
	}{
		{
			// The session's first call lists the server's tools first:
			// the gateway needs the tool's annotations and pin.
			name: "positive control: tools/call echo", body: echoCall(1, "hello through the gateway"),
			status: http.StatusOK, forwarded: 2,
			check: func(t *testing.T, r rawResponse) {
				if got := echoText(t, rpcMessage(t, r)); got != "hello through the gateway" {
					t.Errorf("echo returned %q", got)
				}
			},
		},
		{
			name: "Host not allowed", body: echoCall(3, "x"), edit: func(r *http.Request) { r.Host = "evil.example.com" },
			status: http.StatusForbidden, wantErr: true, wantID: "null",
		},
		{
			name: "Host not allowed, with a port", body: echoCall(3, "x"), edit: func(r *http.Request) { r.Host = "evil.example.com:80" },
			status: http.StatusForbidden, wantErr: true, wantID: "null",
		},
		{
			// A DNS-rebinding page must not learn which server names
			// exist: 403 for every MCP path, known server or not.
			name: "Host not allowed, unknown server", path: "/servers/no-such-server/mcp", body: echoCall(3, "x"),
			edit:   func(r *http.Request) { r.Host = "evil.example.com" },
			status: http.StatusForbidden, wantErr: true, wantID: "null",
		},
		{
			name: "foreign Origin, unknown server", path: "/servers/no-such-server/mcp", body: echoCall(3, "x"),
			edit:   setHeader("Origin", "http://evil.example.com"),
			status: http.StatusForbidden, wantErr: true, wantID: "null",
		},
		{
			name: "foreign Origin", body: echoCall(4, "x"), edit: setHeader("Origin", "http://evil.example.com"),
			status: http.StatusForbidden, wantErr: true, wantID: "null",
		},
		{
			name: "Origin null", body: echoCall(4, "x"), edit: setHeader("Origin", "null"),
			status: http.StatusForbidden, wantErr: true, wantID: "null",
		},
		{
			name: "loopback Origin is accepted", body: toolsList, edit: setHeader("Origin", "http://localhost:1234"),
			status: http.StatusOK, forwarded: 1,
			check: func(t *testing.T, r rawResponse) {
				if m := rpcMessage(t, r); m.Error != nil || !strings.Contains(string(m.Result), `"echo"`) {
					t.Errorf("tools/list with a loopback Origin: want the echo tool, got %s", r.Body)
				}
			},
		},
		{
			name: "Content-Type text/plain", body: echoCall(5, "x"), edit: setHeader("Content-Type", "text/plain"),
			status: http.StatusUnsupportedMediaType, wantErr: true, wantID: "null",
		},
		{
			name: "no Content-Type", body: echoCall(5, "x"), edit: func(r *http.Request) { r.Header.Del("Content-Type") },
			status: http.StatusUnsupportedMediaType, wantErr: true, wantID: "null",
		},
		{
			name: "Accept without text/event-stream", body: echoCall(6, "x"), edit: setHeader("Accept", "application/json"),
			status: http.StatusNotAcceptable, wantErr: true, wantID: "null",
		},
		{
			name: "body at max_body_bytes is accepted", body: padTo(t, 2048),
			status: http.StatusOK, forwarded: 1,
		},
		{
			name: "body over max_body_bytes", body: padTo(t, 2049),
			status: http.StatusRequestEntityTooLarge, wantErr: true, wantID: "null",
		},
		{
			name: "body far over max_body_bytes", body: padTo(t, 64<<10),
			status: http.StatusRequestEntityTooLarge, wantErr: true, wantID: "null",
		},
		{
			name: "nesting at max_json_depth is accepted", body: nestedCall(7, 8),
			status: http.StatusOK, forwarded: 1,
		},
		{
			name: "nesting over max_json_depth", body: nestedCall(7, 9),
			status: http.StatusBadRequest, wantErr: true,
		},
		{
			name: "duplicate key", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"tools/list"}`,
			status: http.StatusBadRequest, wantErr: true,
		},
		{
			name: "case-variant key in arguments", body: `{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x","path":"/tmp/a","Path":"/etc/passwd"}}}`,
			status: http.StatusBadRequest, wantErr: true,
		},
		{
			name: "case-variant envelope key", body: `{"jsonrpc":"2.0","id":8,"method":"tools/list","Method":"tools/call"}`,
			status: http.StatusBadRequest, wantErr: true,
		},
		{
			name: "NUL-suffixed key", body: `{"jsonrpc":"2.0","id":9,"method":"tools/list","method\u0000":"tools/call"}`,
			status: http.StatusBadRequest, wantErr: true,
		},
		{
			name: "NUL-suffixed key in arguments", body: `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x","text\u0000":"y"}}}`,
			status: http.StatusBadRequest, wantErr: true,
		},
		{
			name: "batch", body: `[{"jsonrpc":"2.0","id":10,"method":"tools/list"}]`,
			status: http.StatusBadRequest, wantErr: true,
		},
		{
			name: "invalid JSON", body: `{"jsonrpc":"2.0","id":11,"method":"tools/list"`,
			status: http.StatusBadRequest, wantErr: true, wantCode: -32700,
		},
		{
			name: "unsupported MCP-Protocol-Version", body: echoCall(12, "x"), edit: setHeader("MCP-Protocol-Version", "2024-01-01"),
			status: http.StatusBadRequest, wantErr: true, wantID: "null",
		},
		{
			name: "MCP-Protocol-Version 2026-07-28", body: echoCall(13, "x"), edit: setHeader("MCP-Protocol-Version", "2026-07-28"),
			status: http.StatusBadRequest, wantErr: true, wantCode: -32022,
			check: func(t *testing.T, r rawResponse) { checkSupported(t, rpcMessage(t, r)) },
		},
		{
			name: "server/discover without session", sid: sidNone, body: `{"jsonrpc":"2.0","id":14,"method":"server/discover"}`,
			edit:   func(r *http.Request) { r.Header.Del("MCP-Protocol-Version") },
			status: http.StatusBadRequest, wantErr: true, wantCode: -32022, wantID: "14",
			check: func(t *testing.T, r rawResponse) { checkSupported(t, rpcMessage(t, r)) },
		},
		{
			name: "tools/list without Mcp-Session-Id", sid: sidNone, body: `{"jsonrpc":"2.0","id":15,"method":"tools/list"}`,
			status: http.StatusBadRequest, wantErr: true, wantID: "15",
		},
		{
			name: "unknown session ID", sid: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", body: `{"jsonrpc":"2.0","id":16,"method":"tools/list"}`,
			status: http.StatusNotFound, wantErr: true, wantID: "16",
		},
		{
			name: "upstream's own session ID", sid: upSID, body: `{"jsonrpc":"2.0","id":17,"method":"tools/list"}`,
			status: http.StatusNotFound, wantErr: true, wantID: "17",
		},
		{
			name: "tool name with a space", body: toolCall(18, "a b"),
			status: http.StatusOK, wantErr: true, wantCode: -32602, wantID: "18",
		},
		{
			name: "tool name of 129 characters", body: toolCall(19, strings.Repeat("a", 129)),
			status: http.StatusOK, wantErr: true, wantCode: -32602, wantID: "19",
		},
		{
			name: "empty tool name", body: toolCall(20, ""),
			status: http.StatusOK, wantErr: true, wantCode: -32602, wantID: "20",
		},
		{
			name: "tool name with a slash", body: toolCall(21, "../echo"),
			status: http.StatusOK, wantErr: true, wantCode: -32602, wantID: "21",
		},
		{
			name: "tool name of 128 characters is forwarded", body: toolCall(22, strings.Repeat("a", 128)),
			status: http.StatusOK, forwarded: 1,
		},
		{
			name: "PUT", method: http.MethodPut, body: echoCall(23, "x"),
			status: http.StatusMethodNotAllowed, wantErr: true, wantID: "null",
			check: func(t *testing.T, r rawResponse) {
				if a := r.Header.Get("Allow"); !strings.Contains(a, "POST") {
					t.Errorf("405 without an Allow header listing POST: Allow %q", a)
				}
			},
		},
		{
			name: "GET without Accept text/event-stream", method: http.MethodGet, edit: setHeader("Accept", "application/json"),
			status: http.StatusNotAcceptable, wantErr: true, wantID: "null",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := cmp.Or(tt.method, http.MethodPost)
			s := tt.sid
			switch s {
			case sidValid:
				s = sid
			case sidNone:
				s = ""
			}
			cl := c
			if tt.path != "" {
				cl = newRawMCP(t, gw.URL+tt.path, nil)
			}
			n := up.count()
			resp := cl.do(method, s, tt.body, tt.edit)
			if resp.Status != tt.status {
				t.Errorf("HTTP %d, want %d; body %s", resp.Status, tt.status, resp.Body)
			}
			if got := up.count() - n; got != tt.forwarded {
				t.Errorf("upstream received %d requests, want %d: %s", got, tt.forwarded, up.describe(n))
			}
			if tt.wantErr {
				m := rpcError(t, resp)
				if tt.wantCode != 0 && *m.Error.Code != tt.wantCode {
					t.Errorf("error code %d, want %d: %s", *m.Error.Code, tt.wantCode, resp.Body)
				}
				if tt.wantID != "" && string(m.ID) != tt.wantID {
					t.Errorf("error id %s, want %s", m.ID, tt.wantID)
				}
			}
			if tt.check != nil {
				tt.check(t, resp)
			}
		})
	}

	// The refusals above left the session intact, and nothing refused
	// arrived late.
	n := up.count()
	if got := c.callEcho(sid, 99, "still here"); got != "still here" {
		t.Errorf("echo after the hostile requests returned %q", got)
	}
	if got := up.since(n); len(got) != 1 || got[0].RPCMethod != "tools/call" {
		t.Errorf("final call: upstream saw %s, want exactly one tools/call", up.describe(n))
	}
	var calls []string
	for _, r := range up.since(before) {
		if r.Method == http.MethodPost {
			calls = append(calls, r.RPCMethod)
		}
	}
	want := []string{"initialize", "notifications/initialized", "tools/list", "tools/call", "tools/list", "tools/call", "tools/call", "tools/call", "tools/call"}
	if !slices.Equal(calls, want) {
		t.Errorf("upstream POSTs over the whole test: %q, want %q", calls, want)
	}
}

// checkSupported asserts an unsupported-version error lists 2025-11-25.
func checkSupported(t *testing.T, m rpcMsg) {
	t.Helper()
	if m.Error == nil {
		t.Fatal("want an error")
	}
	var data struct {
		Supported []string `json:"supported"`
	}
	if err := json.Unmarshal(m.Error.Data, &data); err != nil {
		t.Fatalf("error data %s: %v", m.Error.Data, err)
	}
	if !slices.Contains(data.Supported, "2025-11-25") {
		t.Errorf("error data.supported = %q, want it to list 2025-11-25", data.Supported)
	}
}
