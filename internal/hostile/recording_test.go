package hostile

import (
	"bytes"
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
)

// recorded is one HTTP request the recording upstream received.
type recorded struct {
	Method    string // HTTP method
	RPCMethod string // JSON-RPC method of the body, if any
	Header    http.Header
	Body      []byte
}

// recordingUpstream is a well-behaved MCP server built with the Go SDK
// (legacy sessionful era, tool "echo") that records every request it
// receives, so that "nothing was forwarded" is measured.
type recordingUpstream struct {
	URL string

	mu   sync.Mutex // guards reqs
	reqs []recorded
}

type echoArgs struct {
	Text string `json:"text"`
	// N takes any JSON, for the nesting cases.
	N any `json:"n,omitempty"`
}

func startRecording(t *testing.T) *recordingUpstream {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "recording", Version: "1.0.0"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "returns its text"},
		func(_ context.Context, _ *mcp.CallToolRequest, in echoArgs) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
		})
	sdk := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	u := &recordingUpstream{}
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
		u.reqs = append(u.reqs, recorded{Method: r.Method, RPCMethod: env.Method, Header: r.Header.Clone(), Body: body})
		u.mu.Unlock()
		sdk.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	u.URL = srv.URL + "/mcp"
	return u
}

// count returns how many requests arrived so far.
func (u *recordingUpstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

// since returns the requests from index n on.
func (u *recordingUpstream) since(n int) []recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.reqs[min(n, len(u.reqs)):])
}

// describe summarizes the requests from index n on.
func (u *recordingUpstream) describe(n int) string {
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

// waitGETs waits until the upstream has received at least n GET requests:
// the gateway opens each upstream session's GET stream asynchronously after
// initialize, and a count taken before it arrives would be off by one.
func (u *recordingUpstream) waitGETs(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := 0
		for _, r := range u.since(0) {
			if r.Method == http.MethodGet {
				got++
			}
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway opened %d upstream GET streams, want %d: upstream saw %s", got, n, u.describe(0))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
