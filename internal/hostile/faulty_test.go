package hostile

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// faultyUpstream is a hand-written upstream that speaks just enough MCP
// (initialize with a session ID, notifications with 202, GET with 405,
// tools/list with one tool "boom") and then misbehaves as its mode says.
// Each mode is served at /<mode>/mcp and is its own gateway server.
type faultyUpstream struct {
	URL  string // http://host:port
	evil *httptest.Server
	// evilHits counts requests to the redirect target: any is a redirect
	// followed.
	evilHits atomic.Int64

	mu      sync.Mutex // guards the fields below
	reqs    map[string][]faultyReq
	written map[string]int64         // body bytes a mode's misbehaving handlers wrote
	ended   map[string]chan struct{} // closed when a mode's hanging handler saw its request end
	replies map[string]chan faultyReq
}

// faultyReq is one request a faulty mode received.
type faultyReq struct {
	Method    string
	RPCMethod string
	ID        json.RawMessage
	Params    json.RawMessage
	Header    http.Header
	IsReply   bool // a JSON-RPC response (to a server→client request)
}

// fault is how one mode misbehaves; nil handlers behave.
type fault struct {
	init, list, call func(x *exchange)
}

// exchange is one request being answered by a fault.
type exchange struct {
	f    *faultyUpstream
	mode string
	w    http.ResponseWriter
	r    *http.Request
	id   json.RawMessage
}

func startFaulty(t *testing.T) *faultyUpstream {
	t.Helper()
	f := &faultyUpstream{reqs: map[string][]faultyReq{}, written: map[string]int64{}, ended: map[string]chan struct{}{}, replies: map[string]chan faultyReq{}}
	f.evil = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.evilHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"` + leakMarker + ` from the redirect target"}]}}`))
	}))
	srv := httptest.NewServer(f)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		f.evil.CloseClientConnections()
		f.evil.Close()
	})
	f.URL = srv.URL
	return f
}

func (f *faultyUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mode, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/mcp")
	fl, known := faults[mode]
	if !ok || !known {
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var env struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	json.Unmarshal(body, &env)
	req := faultyReq{Method: r.Method, RPCMethod: env.Method, ID: env.ID, Params: env.Params, Header: r.Header.Clone(),
		IsReply: env.Method == "" && (env.Result != nil || env.Error != nil)}
	f.mu.Lock()
	f.reqs[mode] = append(f.reqs[mode], req)
	replies := f.replies[mode]
	f.mu.Unlock()
	x := &exchange{f: f, mode: mode, w: w, r: r, id: env.ID}
	switch {
	case r.Method == http.MethodGet:
		w.Header().Set("Allow", "POST, DELETE")
		w.WriteHeader(http.StatusMethodNotAllowed)
	case r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusOK)
	case req.IsReply:
		if replies != nil {
			replies <- req
		}
		w.WriteHeader(http.StatusAccepted)
	case env.Method == "initialize" && fl.init != nil:
		fl.init(x)
	case env.Method == "initialize":
		w.Header().Set("Mcp-Session-Id", "faulty-"+mode)
		x.json(`{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"faulty","version":"1"}}`)
	case env.ID == nil:
		w.WriteHeader(http.StatusAccepted)
	case env.Method == "tools/list" && fl.list != nil:
		fl.list(x)
	case env.Method == "tools/list":
		x.json(`{"tools":[{"name":"boom","inputSchema":{"type":"object"}}]}`)
	case env.Method == "tools/call" && fl.call != nil:
		fl.call(x)
	default:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"method not found"}}`, env.ID)
	}
}

// requests returns what mode received.
func (f *faultyUpstream) requests(mode string) []faultyReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs[mode])
}

// bytesWritten returns the body bytes mode's misbehaving handlers wrote.
func (f *faultyUpstream) bytesWritten(mode string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.written[mode]
}

// endedChan is closed when a hanging handler of mode saw its request end.
func (f *faultyUpstream) endedChan(mode string) chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch, ok := f.ended[mode]
	if !ok {
		ch = make(chan struct{})
		f.ended[mode] = ch
	}
	return ch
}

// json answers the request with a JSON-RPC result in a JSON body.
func (x *exchange) json(result string) {
	x.w.Header().Set("Content-Type", "application/json")
	x.w.Write([]byte(`{"jsonrpc":"2.0","id":` + string(x.id) + `,"result":` + result + `}`))
}

// write writes body bytes, counting them, and reports whether the client
// is still there.
func (x *exchange) write(p []byte) bool {
	n, err := x.w.Write(p)
	x.f.mu.Lock()
	x.f.written[x.mode] += int64(n)
	x.f.mu.Unlock()
	return err == nil
}

func (x *exchange) flush() { x.w.(http.Flusher).Flush() }

// sse starts an event stream answer.
func (x *exchange) sse() {
	x.w.Header().Set("Content-Type", "text/event-stream")
	x.w.Header().Set("X-Upstream-Debug", leakMarker)
	x.w.WriteHeader(http.StatusOK)
	x.flush()
}

// event writes one SSE event of the given type ("" for the default).
func (x *exchange) event(typ, data string) bool {
	var b strings.Builder
	if typ != "" {
		b.WriteString("event: " + typ + "\n")
	}
	b.WriteString("data: " + data + "\n\n")
	ok := x.write([]byte(b.String()))
	x.flush()
	return ok
}

// hang blocks until the gateway gives up on the request, and records that
// it did.
func (x *exchange) hang() {
	<-x.r.Context().Done()
	x.markEnded()
}

// markEnded records that the gateway ended the mode's request.
func (x *exchange) markEnded() {
	ch := x.f.endedChan(x.mode)
	x.f.mu.Lock()
	defer x.f.mu.Unlock()
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// crash closes the connection under the response.
func (x *exchange) crash() {
	conn, _, err := http.NewResponseController(x.w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}

// raw replaces the whole HTTP response with the given bytes.
func (x *exchange) raw(resp string) {
	conn, _, err := http.NewResponseController(x.w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	defer conn.Close()
	io.WriteString(conn, resp)
}

// errorPage answers with an HTML error page that must not reach a client.
func (x *exchange) errorPage(status int) {
	x.w.Header().Set("Content-Type", "text/html; charset=utf-8")
	x.w.Header().Set("X-Upstream-Debug", leakMarker)
	x.w.Header().Set("Set-Cookie", "upstream="+leakMarker)
	x.w.WriteHeader(status)
	x.write([]byte("<!DOCTYPE html><html><head><title>Error</title></head><body><h1>" + leakMarker +
		"</h1><p>Traceback (most recent call last): internal path /srv/app/secret.py line 42</p></body></html>"))
}

// response is a JSON-RPC tools/call result with text.
func response(id json.RawMessage, text string) string {
	t, _ := json.Marshal(text)
	return `{"jsonrpc":"2.0","id":` + string(id) + `,"result":{"content":[{"type":"text","text":` + string(t) + `}]}}`
}

// progress is a progress notification of about n bytes.
func progress(i, n int) string {
	pad := strings.Repeat("p", max(0, n-120))
	return fmt.Sprintf(`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":%d,"message":"%s"}}`, i, pad)
}

// Sizes for the flooding modes.
const (
	faultyMaxResponse = 1 << 20   // max_response_bytes of every faulty server
	hugeBytes         = 100 << 20 // what a "huge" mode tries to send
	dripDelay         = 100 * time.Millisecond
)

var (
	bombOnce sync.Once
	bomb     []byte
)

// gzipBomb is 256 MiB of JSON whitespace, gzipped to a few hundred KiB:
// one compressed MiB repeated as gzip members, which a reader inflates
// one after the other.
func gzipBomb() []byte {
	bombOnce.Do(func() {
		member := func(p []byte) []byte {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			zw.Write(p)
			zw.Close()
			return buf.Bytes()
		}
		spaces := member(bytes.Repeat([]byte(" "), 1<<20))
		bomb = member([]byte(`{"jsonrpc":"2.0","id":1,"result":`))
		for range 256 {
			bomb = append(bomb, spaces...)
		}
		bomb = append(bomb, member([]byte(`{}}`))...)
	})
	return bomb
}

// flood writes chunk until n bytes are written or the gateway stops
// reading.
func (x *exchange) flood(chunk []byte, n int) {
	for written := 0; written < n; written += len(chunk) {
		if !x.write(chunk) {
			return
		}
	}
}

// faults are the faulty modes, by name (the gateway server is f-<name>).
var faults = map[string]fault{
	"crash-mid-event": {call: func(x *exchange) {
		x.sse()
		x.write([]byte(`event: message` + "\n" + `data: {"jsonrpc":"2.0","id":` + string(x.id) + `,"result":{"content":[{"type":"text","text":"` + leakMarker))
		x.flush()
		x.crash()
	}},
	"crash-resumable": {call: func(x *exchange) {
		x.sse()
		x.write([]byte("id: ev-1\ndata: \n\n"))
		x.write([]byte(`data: {"jsonrpc":"2.0","id":` + string(x.id) + `,"result":{"content":[{"type":"text","text":"` + leakMarker))
		x.flush()
		x.crash()
	}},
	"crash-before-headers": {call: func(x *exchange) { x.crash() }},
	"hang":                 {call: func(x *exchange) { x.hang() }},
	"hang-after-headers":   {call: func(x *exchange) { x.sse(); x.hang() }},
	"hang-list":            {list: func(x *exchange) { x.hang() }},
	"html-500":             {call: func(x *exchange) { x.errorPage(http.StatusInternalServerError) }},
	"html-502":             {call: func(x *exchange) { x.errorPage(http.StatusBadGateway) }},
	"html-200":             {call: func(x *exchange) { x.errorPage(http.StatusOK) }},
	"html-list":            {list: func(x *exchange) { x.errorPage(http.StatusServiceUnavailable) }},
	"status-401": {call: func(x *exchange) {
		x.w.Header().Set("WWW-Authenticate", `Bearer realm="`+leakMarker+`"`)
		x.errorPage(http.StatusUnauthorized)
	}},
	"status-403": {call: func(x *exchange) { x.errorPage(http.StatusForbidden) }},
	"status-404": {call: func(x *exchange) { x.errorPage(http.StatusNotFound) }},
	"status-429": {call: func(x *exchange) {
		x.w.Header().Set("Retry-After", "1")
		x.errorPage(http.StatusTooManyRequests)
	}},
	"text-plain": {call: func(x *exchange) {
		x.w.Header().Set("Content-Type", "text/plain")
		x.write([]byte(response(x.id, leakMarker)))
	}},
	"no-content-type": {call: func(x *exchange) {
		x.w.Header()["Content-Type"] = nil // no sniffing either
		x.write([]byte(response(x.id, leakMarker)))
	}},
	"truncated-json": {call: func(x *exchange) {
		body := response(x.id, leakMarker)
		x.w.Header().Set("Content-Type", "application/json")
		x.w.Header().Set("Content-Length", "4096")
		x.write([]byte(body[:len(body)/2]))
		x.flush()
		x.crash()
	}},
	"invalid-json": {call: func(x *exchange) {
		x.w.Header().Set("Content-Type", "application/json")
		x.write([]byte(`{"jsonrpc":"2.0","id":` + string(x.id) + `,"result":{"content":[` + leakMarker + `]}}`))
	}},
	"deep-json": {call: func(x *exchange) {
		x.w.Header().Set("Content-Type", "application/json")
		x.write([]byte(`{"jsonrpc":"2.0","id":` + string(x.id) + `,"result":{"content":[],"x":` +
			strings.Repeat("[", 100000) + `"` + leakMarker + `"` + strings.Repeat("]", 100000) + `}}`))
	}},
	"wrong-id-json": {call: func(x *exchange) {
		x.w.Header().Set("Content-Type", "application/json")
		x.write([]byte(response(json.RawMessage(`987654`), leakMarker)))
	}},
	"wrong-id-sse": {call: func(x *exchange) {
		x.sse()
		x.event("", response(json.RawMessage(`"`+string(bytes.Trim(x.id, `"`))+`-other"`), leakMarker))
		x.event("", response(json.RawMessage(`987654`), leakMarker))
	}},
	"event-other-type": {call: func(x *exchange) {
		x.sse()
		x.event("x-debug", response(x.id, leakMarker))
		x.event("message", response(x.id, "clean"))
	}},
	"progress-flood": {call: func(x *exchange) {
		x.sse()
		for i := 0; ; i++ {
			if !x.write([]byte("data: " + progress(i, 200) + "\n\n")) {
				x.markEnded()
				return
			}
			if i%50 == 0 {
				x.flush()
				time.Sleep(time.Millisecond)
			}
		}
	}},
	"big-event-flood": {call: func(x *exchange) {
		x.sse()
		ev := []byte("data: " + progress(0, faultyMaxResponse/2) + "\n\n")
		for x.write(ev) {
		}
	}},
	"endless-event": {call: func(x *exchange) {
		x.sse()
		x.flood([]byte("data: "+strings.Repeat("e", 64<<10)+"\n"), hugeBytes)
	}},
	"huge-line": {call: func(x *exchange) {
		x.sse()
		x.write([]byte("data: "))
		x.flood(bytes.Repeat([]byte("l"), 64<<10), 10<<20)
		x.hang()
	}},
	"huge-json": {call: func(x *exchange) {
		x.w.Header().Set("Content-Type", "application/json")
		x.write([]byte(`{"jsonrpc":"2.0","id":` + string(x.id) + `,"result":{"content":[{"type":"text","text":"`))
		x.flood(bytes.Repeat([]byte("h"), 64<<10), hugeBytes)
	}},
	"huge-json-declared": {call: func(x *exchange) {
		x.w.Header().Set("Content-Type", "application/json")
		x.w.Header().Set("Content-Length", fmt.Sprint(hugeBytes))
		x.flood(bytes.Repeat([]byte(" "), 64<<10), hugeBytes)
	}},
	"gzip-bomb": {call: func(x *exchange) {
		x.w.Header().Set("Content-Type", "application/json")
		x.w.Header().Set("Content-Encoding", "gzip")
		x.write(gzipBomb())
	}},
	"gzip-bomb-sse": {call: func(x *exchange) {
		x.w.Header().Set("Content-Encoding", "gzip")
		x.sse()
		x.write(gzipBomb())
	}},
	"slow-drip": {call: func(x *exchange) {
		body := response(x.id, leakMarker)
		x.w.Header().Set("Content-Type", "application/json")
		x.w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		drip(x, body)
	}},
	"slow-drip-sse": {call: func(x *exchange) {
		x.sse()
		drip(x, "data: "+response(x.id, leakMarker)+"\n\n")
	}},
	"redirect": {call: func(x *exchange) {
		http.Redirect(x.w, x.r, x.f.evil.URL+"/mcp", http.StatusTemporaryRedirect)
	}},
	"redirect-init": {init: func(x *exchange) {
		http.Redirect(x.w, x.r, x.f.evil.URL+"/mcp", http.StatusFound)
	}},
	"html-init":  {init: func(x *exchange) { x.errorPage(http.StatusOK) }},
	"hang-init":  {init: func(x *exchange) { x.hang() }},
	"error-init": {init: func(x *exchange) { x.errorPage(http.StatusInternalServerError) }},
	"sid-control": {init: func(x *exchange) {
		rawInit(x, "faulty\x01\x1bsession")
	}},
	"sid-10k": {init: func(x *exchange) { rawInit(x, strings.Repeat("s", 10<<10)) }},
	"endless-pages": {list: func(x *exchange) {
		x.json(fmt.Sprintf(`{"tools":[{"name":"t%d","inputSchema":{"type":"object"}}],"nextCursor":"c%d"}`, time.Now().UnixNano(), time.Now().UnixNano()))
	}},
	"server-requests": {call: serverRequests},
	"cap-probe": {call: func(x *exchange) {
		x.w.Header().Set("Content-Type", "application/json")
		x.write([]byte(response(x.id, strings.Repeat("c", 2<<20))))
	}},
}

// drip writes body one byte per dripDelay.
func drip(x *exchange, body string) {
	x.flush()
	for i := range len(body) {
		if !x.write([]byte{body[i]}) {
			return
		}
		x.flush()
		select {
		case <-time.After(dripDelay):
		case <-x.r.Context().Done():
			return
		}
	}
}

// rawInit answers initialize with a raw response carrying session ID sid.
func rawInit(x *exchange, sid string) {
	body := `{"jsonrpc":"2.0","id":` + string(x.id) + `,"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"` + leakMarker + `","version":"1"}}}`
	x.raw("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: " + sid +
		fmt.Sprintf("\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body))
}

// serverRequests sends two server→client requests whose IDs imitate the
// gateway's own ("mcpgate-1") and a plain integer, waits for the client's
// answers to come back through the gateway, and reports which IDs they
// carried.
func serverRequests(x *exchange) {
	replies := make(chan faultyReq, 4)
	x.f.mu.Lock()
	x.f.replies[x.mode] = replies
	x.f.mu.Unlock()
	x.sse()
	x.event("", `{"jsonrpc":"2.0","id":"mcpgate-1","method":"elicitation/create","params":{"message":"first?","requestedSchema":{"type":"object","properties":{}}}}`)
	x.event("", `{"jsonrpc":"2.0","id":1,"method":"elicitation/create","params":{"message":"second?","requestedSchema":{"type":"object","properties":{}}}}`)
	var got []string
	for len(got) < 2 {
		select {
		case r := <-replies:
			got = append(got, string(r.ID))
		case <-x.r.Context().Done():
			return
		}
	}
	slices.Sort(got)
	x.event("", response(x.id, strings.Join(got, " ")))
}
