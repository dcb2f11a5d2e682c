package load

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type echoArgs struct {
	Text string `json:"text"`
}

// sdkServer is a real Go SDK server in the legacy sessionful mode.
func sdkServer(t *testing.T, jsonResponse bool) string {
	s := mcp.NewServer(&mcp.Implementation{Name: "echo", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in echoArgs) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{JSONResponse: jsonResponse})
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}

func TestRunAgainstSDKServer(t *testing.T) {
	for _, jsonResponse := range []bool{false, true} {
		url := sdkServer(t, jsonResponse)
		var marks []string
		var logged atomic.Int32
		res, err := Run(context.Background(), Config{
			URL: url, Concurrency: 2, Warmup: 50 * time.Millisecond, Duration: 200 * time.Millisecond,
			Request: ToolCall("echo", 16),
			Mark:    func(e string) { marks = append(marks, e) },
			Logf:    func(string, ...any) { logged.Add(1) },
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Calls == 0 || res.Errors != nil || logged.Load() != 0 {
			t.Errorf("json=%v: %d calls, errors %v", jsonResponse, res.Calls, res.Errors)
		}
		if strings.Join(marks, ",") != "measure_start,measure_end" {
			t.Errorf("marks = %v", marks)
		}
		if res.P50 <= 0 || res.P99 < res.P50 || res.Max < res.P99 {
			t.Errorf("latencies p50 %v p99 %v max %v", res.P50, res.P99, res.Max)
		}
	}
}

func TestErrorsAreCounted(t *testing.T) {
	url := sdkServer(t, false)
	res, err := Run(context.Background(), Config{
		URL: url, Concurrency: 1, Warmup: 0, Duration: 100 * time.Millisecond,
		Request: ToolCall("no_such_tool", 1),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Calls != 0 || res.Errors[ErrKindRPC]+res.Errors[ErrKindTool] == 0 {
		t.Errorf("calls %d, errors %v; want only errors", res.Calls, res.Errors)
	}
}

func TestListCountsItems(t *testing.T) {
	url := sdkServer(t, false)
	res, err := Run(context.Background(), Config{
		URL: url, Concurrency: 1, Duration: 50 * time.Millisecond, Request: NewRequest("tools/list", `{}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Items != 1 || res.First <= 0 {
		t.Errorf("items %d first %v", res.Items, res.First)
	}
}
