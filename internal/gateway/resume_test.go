package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/gateway"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// gatedServer is a Go SDK server whose "gated" tool sends one progress
// notification, waits for the test to open the gate, then sends another and
// returns.
func gatedServer(t *testing.T, gate <-chan struct{}) string {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "gated", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "gated"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		tok := req.Params.GetProgressToken()
		req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: 1, Total: 2})
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: 2, Total: 2})
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "gate passed"}}}, nil, nil
	})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(srv.Close)
	return srv.URL + "/mcp"
}

// mcpClient is a raw Streamable HTTP client for transport-level tests.
type mcpClient struct {
	t   *testing.T
	url string
	sid string
}

func (c *mcpClient) do(method, body string, hdr map[string]string) *http.Response {
	c.t.Helper()
	req, err := http.NewRequest(method, c.url, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	if c.sid != "" {
		req.Header.Set("Mcp-Session-Id", c.sid)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp
}

func (c *mcpClient) initialize() {
	c.t.Helper()
	resp := c.do("POST", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`, nil)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		c.t.Fatalf("initialize: HTTP %d", resp.StatusCode)
	}
	c.sid = resp.Header.Get("Mcp-Session-Id")
	resp = c.do("POST", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, nil)
	resp.Body.Close()
}

type sseEvent struct{ id, data string }

// readEvents reads SSE events until stop returns true or the stream ends.
func readEvents(r *bufio.Reader, stop func(sseEvent) bool) []sseEvent {
	var out []sseEvent
	var ev sseEvent
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return out
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			out = append(out, ev)
			if stop(ev) {
				return out
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			ev.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			ev.data += strings.TrimPrefix(line, "data: ")
		}
	}
}

// TestResumeWithLastEventID: a client whose POST stream breaks mid-call
// resumes it with GET and Last-Event-ID and receives exactly the events it
// missed, ending with the response.
func TestResumeWithLastEventID(t *testing.T) {
	gate := make(chan struct{})
	up := gatedServer(t, gate)
	gw := startGateway(t, fmt.Sprintf("listen: 127.0.0.1:0\nservers:\n  gated:\n    url: %s\n", up), gateway.Options{})
	c := &mcpClient{t: t, url: gw.URL + "/mcp"}
	c.initialize()

	resp := c.do("POST", `{"jsonrpc":"2.0","id":"call-1","method":"tools/call","params":{"name":"gated__gated","arguments":{},"_meta":{"progressToken":"p"}}}`, nil)
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q, want an event stream", ct)
	}
	evs := readEvents(bufio.NewReader(resp.Body), func(e sseEvent) bool { return strings.Contains(e.data, "notifications/progress") })
	resp.Body.Close() // the connection breaks after the first progress
	if len(evs) < 2 || evs[0].data != "" || evs[0].id == "" {
		t.Fatalf("want a priming event then the first progress, got %+v", evs)
	}
	last := evs[len(evs)-1]
	if last.id == "" || !strings.Contains(last.data, `"progress":1`) {
		t.Fatalf("first progress event = %+v", last)
	}
	close(gate) // the call goes on without the client

	resp = c.do("GET", "", map[string]string{"Last-Event-ID": last.id, "Accept": "text/event-stream"})
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("resume: HTTP %d", resp.StatusCode)
	}
	done := make(chan []sseEvent, 1)
	go func() {
		done <- readEvents(bufio.NewReader(resp.Body), func(e sseEvent) bool { return strings.Contains(e.data, `"result"`) })
	}()
	var rest []sseEvent
	select {
	case rest = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("resumed stream did not deliver the response")
	}
	var data []string
	for _, e := range rest {
		if e.data != "" {
			data = append(data, e.data)
		}
	}
	if len(data) != 2 || !strings.Contains(data[0], `"progress":2`) ||
		!strings.Contains(data[1], `"id":"call-1"`) || !strings.Contains(data[1], "gate passed") {
		t.Fatalf("resumed events = %q; want the second progress then the response with the client's id", data)
	}

	// An unknown stream cannot be resumed.
	resp2 := c.do("GET", "", map[string]string{"Last-Event-ID": "999_1", "Accept": "text/event-stream"})
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusNotFound {
		t.Errorf("resuming an unknown stream: HTTP %d, want 404", resp2.StatusCode)
	}
}
