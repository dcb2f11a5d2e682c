package hostile

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// mcpClient is a raw Streamable HTTP client of one gateway: it sends what
// a well-behaved client sends, and lets each case spoil it.
type mcpClient struct {
	t     *testing.T
	base  string      // http://host:port
	extra http.Header // sent on every request (the API key)
	hc    *http.Client
}

func newClient(t *testing.T, base string, extra http.Header) *mcpClient {
	tr := &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	// The timeout turns a response the gateway wrongly holds open into a
	// failure instead of a hang.
	return &mcpClient{t: t, base: base, extra: extra, hc: &http.Client{Transport: tr, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// with returns the client reporting failures to t (a subtest).
func (c *mcpClient) with(t *testing.T) *mcpClient {
	cp := *c
	cp.t = t
	return &cp
}

// reply is a response read whole (a very long one only in part).
type reply struct {
	Status  int
	Header  http.Header
	Body    []byte // at most keepBody bytes: the start, or the end of a longer stream
	Size    int64  // bytes received in all
	Elapsed time.Duration
	Leaked  bool // the body contained leakMarker
	ReadErr error
}

const keepBody = 4 << 20

// leakMarker is in every body and header a faulty upstream sends: it must
// never reach a client.
const leakMarker = "UPSTREAM-LEAK-5c1f"

// request builds a request with the headers of a well-behaved client.
func (c *mcpClient) request(method, path, sid, body string) *http.Request {
	c.t.Helper()
	var rd io.Reader
	if body != "" || method == http.MethodPost {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range c.extra {
		req.Header[k] = v
	}
	switch method {
	case http.MethodGet:
		req.Header.Set("Accept", "text/event-stream")
	case http.MethodPost:
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
	}
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	return req
}

// do sends a request built by request and spoiled by edit, and reads the
// whole response.
func (c *mcpClient) do(method, path, sid, body string, edit func(*http.Request)) reply {
	c.t.Helper()
	req := c.request(method, path, sid, body)
	if edit != nil {
		edit(req)
	}
	return c.send(req)
}

func (c *mcpClient) send(req *http.Request) reply {
	c.t.Helper()
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	r := readReply(resp.Body)
	r.Status, r.Header, r.Elapsed = resp.StatusCode, resp.Header, time.Since(start)
	if r.ReadErr != nil {
		c.t.Errorf("%s %s: reading the body after %s: %v", req.Method, req.URL.Path, r.Elapsed, r.ReadErr)
	}
	return r
}

// readReply reads a body to its end, keeping at most keepBody bytes (for a
// longer one, the last ones) and noticing leakMarker anywhere in it.
func readReply(body io.Reader) reply {
	var r reply
	buf := make([]byte, 64<<10)
	var tail []byte // the end of the previous chunk, for markers split across chunks
	for {
		n, err := body.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			r.Size += int64(n)
			if bytes.Contains(append(tail, chunk...), []byte(leakMarker)) {
				r.Leaked = true
			}
			tail = append(tail[:0], chunk[max(0, n-len(leakMarker)):]...)
			r.Body = append(r.Body, chunk...)
			if len(r.Body) > keepBody {
				// Keep the end: the final message of a long stream.
				r.Body = append(r.Body[:0:0], r.Body[len(r.Body)-keepBody/2:]...)
			}
		}
		if err == io.EOF {
			return r
		}
		if err != nil {
			r.ReadErr = err
			return r
		}
	}
}

// rpcMsg is one JSON-RPC message as a client receives it.
type rpcMsg struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
	Result  json.RawMessage `json:"result"`
	Error   *struct {
		Code    *int64          `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

func (m rpcMsg) String() string {
	b, _ := json.Marshal(m)
	if len(b) > 512 {
		b = append(b[:512], "…"...)
	}
	return string(b)
}

// messages returns the JSON-RPC messages of a reply: the body when it is
// JSON, every event's data when it is an event stream.
func messages(t *testing.T, r reply) []rpcMsg {
	t.Helper()
	ct := r.Header.Get("Content-Type")
	var datas [][]byte
	switch {
	case strings.HasPrefix(ct, "application/json"):
		datas = [][]byte{r.Body}
	case strings.HasPrefix(ct, "text/event-stream"):
		datas = sseData(r.Body)
	default:
		t.Fatalf("HTTP %d with Content-Type %q, want JSON or an event stream: %s", r.Status, ct, clip(r.Body))
	}
	var out []rpcMsg
	for _, d := range datas {
		var m rpcMsg
		dec := json.NewDecoder(bytes.NewReader(d))
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("not a JSON-RPC message: %v: %s", err, clip(d))
		}
		if dec.More() {
			t.Fatalf("more than one JSON value in a message: %s", clip(d))
		}
		if m.JSONRPC != "2.0" {
			t.Fatalf(`message lacks "jsonrpc":"2.0": %s`, clip(d))
		}
		out = append(out, m)
	}
	return out
}

// sseData returns the data of each event in an event stream, skipping
// events without data (priming events). A stream kept only in part may
// start mid-event; that partial event is dropped.
func sseData(body []byte) [][]byte {
	var out [][]byte
	var data []byte
	has := false
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, len(body)+1)
	first := true
	for sc.Scan() {
		line := sc.Text()
		if first && !strings.HasPrefix(line, "id:") && !strings.HasPrefix(line, "data:") && !strings.HasPrefix(line, "event:") && line != "" {
			first = false
			continue
		}
		first = false
		switch {
		case line == "":
			if has && len(bytes.TrimSpace(data)) > 0 {
				out = append(out, data)
			}
			data, has = nil, false
		case strings.HasPrefix(line, "data:"):
			v := strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")
			if has {
				data = append(data, '\n')
			}
			data = append(data, v...)
			has = true
		}
	}
	if has && len(bytes.TrimSpace(data)) > 0 {
		out = append(out, data)
	}
	return out
}

// final returns the last message of a reply, which must be the response.
func final(t *testing.T, r reply) rpcMsg {
	t.Helper()
	ms := messages(t, r)
	if len(ms) == 0 {
		t.Fatalf("HTTP %d: no JSON-RPC message in the body: %s", r.Status, clip(r.Body))
	}
	return ms[len(ms)-1]
}

// maxErrorBody bounds a gateway error: short, with nothing echoed.
const maxErrorBody = 1024

// wantError asserts that r is a short JSON-RPC error in a JSON body with
// the HTTP status and (if not 0) code, and returns it.
func wantError(t *testing.T, r reply, status int, code int64) rpcMsg {
	t.Helper()
	if r.Status != status {
		t.Errorf("HTTP %d, want %d: %s", r.Status, status, clip(r.Body))
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("HTTP %d error with Content-Type %q, want application/json: %s", r.Status, ct, clip(r.Body))
	}
	if len(r.Body) > maxErrorBody {
		t.Errorf("error body of %d bytes, want a short one (at most %d): %s", len(r.Body), maxErrorBody, clip(r.Body))
	}
	m := final(t, r)
	checkErrorMsg(t, m, code)
	return m
}

// checkErrorMsg asserts m is a JSON-RPC error with a code (code, if not 0)
// and a message, and an id member.
func checkErrorMsg(t *testing.T, m rpcMsg, code int64) {
	t.Helper()
	if m.Error == nil || m.Result != nil {
		t.Fatalf("want a JSON-RPC error, got %s", m)
	}
	if m.Error.Code == nil || m.Error.Message == "" {
		t.Fatalf("JSON-RPC error without a code or a message: %s", m)
	}
	if code != 0 && *m.Error.Code != code {
		t.Errorf("error code %d, want %d: %s", *m.Error.Code, code, m)
	}
	if m.ID == nil {
		t.Errorf(`error without "id" (null when unknown): %s`, m)
	}
}

// clip shortens a body for a failure message.
func clip(b []byte) string {
	if len(b) > 600 {
		return fmt.Sprintf("%q… (%d bytes)", b[:600], len(b))
	}
	return fmt.Sprintf("%q", b)
}

const initializeBody = `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"sampling":{},"elicitation":{}},"clientInfo":{"name":"hostile","version":"1"}}}`

// initialize opens a session on path and returns its ID.
func (c *mcpClient) initialize(path string) string {
	c.t.Helper()
	r := c.do(http.MethodPost, path, "", initializeBody, func(r *http.Request) { r.Header.Del("MCP-Protocol-Version") })
	if r.Status != http.StatusOK {
		c.t.Fatalf("initialize %s: HTTP %d: %s", path, r.Status, clip(r.Body))
	}
	sid := r.Header.Get("Mcp-Session-Id")
	if sid == "" {
		c.t.Fatalf("initialize %s: no Mcp-Session-Id", path)
	}
	if m := final(c.t, r); m.Result == nil {
		c.t.Fatalf("initialize %s: no result: %s", path, m)
	}
	r = c.do(http.MethodPost, path, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, nil)
	if r.Status != http.StatusAccepted {
		c.t.Fatalf("notifications/initialized on %s: HTTP %d, want 202: %s", path, r.Status, clip(r.Body))
	}
	return sid
}

// closeSession ends a session with DELETE.
func (c *mcpClient) closeSession(path, sid string) {
	c.t.Helper()
	r := c.do(http.MethodDelete, path, sid, "", nil)
	if r.Status != http.StatusNoContent {
		c.t.Errorf("DELETE session on %s: HTTP %d, want 204: %s", path, r.Status, clip(r.Body))
	}
}

// callBody is a tools/call request.
func callBody(id int, tool, text string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":{"text":%q}}}`, id, tool, text)
}

// echo calls the echo tool (named tool on this endpoint) and asserts that
// it answers text: the positive control that the gateway still serves.
func (c *mcpClient) echo(path, sid, tool, text string) {
	c.t.Helper()
	r := c.do(http.MethodPost, path, sid, callBody(4242, tool, text), nil)
	if r.Status != http.StatusOK {
		c.t.Fatalf("positive control: tools/call %s on %s: HTTP %d: %s", tool, path, r.Status, clip(r.Body))
	}
	m := final(c.t, r)
	if got := toolText(c.t, m); got != text {
		c.t.Fatalf("positive control: tools/call %s returned %q, want %q", tool, got, text)
	}
}

// toolText returns the text of a one-text-item tools/call result.
func toolText(t *testing.T, m rpcMsg) string {
	t.Helper()
	if m.Error != nil || m.Result == nil {
		t.Fatalf("want a tools/call result, got %s", m)
	}
	var res struct {
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		IsError bool `json:"isError"`
	}
	if err := json.Unmarshal(m.Result, &res); err != nil {
		t.Fatalf("tools/call result: %v: %s", err, m)
	}
	if res.IsError || len(res.Content) != 1 || res.Content[0].Type != "text" {
		t.Fatalf("unexpected tools/call result %s", m)
	}
	return res.Content[0].Text
}

// headerLeaks reports a header of h that carries leakMarker.
func headerLeaks(h http.Header) string {
	for k, vs := range h {
		for _, v := range vs {
			if strings.Contains(k, leakMarker) || strings.Contains(v, leakMarker) {
				return k + ": " + v
			}
		}
	}
	return ""
}
