// Command echo is the benchmark upstream: a Go SDK MCP server over legacy
// sessionful Streamable HTTP with an echo tool, optional filler tools for
// catalog benches and a tool returning a large result for streaming benches.
//
// It prints the address it bound as the first line on stdout.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type echoArgs struct {
	Text string `json:"text" jsonschema:"the text to return"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback only)")
	tools := flag.Int("tools", 0, "extra tools tool_000.. with small schemas (catalog benches)")
	resultBytes := flag.Int("result-bytes", 0, "add a tool big returning this many bytes of text (0: no such tool)")
	jsonResponse := flag.Bool("json-response", false, "answer POSTs with application/json instead of text/event-stream")
	flag.Parse()

	host, _, err := net.SplitHostPort(*addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		fmt.Fprintf(os.Stderr, "echo: -addr %q must be a loopback host:port\n", *addr)
		os.Exit(2)
	}

	s := mcp.NewServer(&mcp.Implementation{Name: "bench-echo", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "Return the text argument unchanged."},
		func(_ context.Context, _ *mcp.CallToolRequest, in echoArgs) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
		})
	for i := range *tools {
		name := fmt.Sprintf("tool_%03d", i)
		s.AddTool(&mcp.Tool{
			Name:        name,
			Description: "Filler tool " + name + " for catalog benchmarks.",
			InputSchema: map[string]any{
				"type":       "object",
				"properties": map[string]any{"q": map[string]any{"type": "string", "description": "a query"}},
			},
		}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name}}}, nil
		})
	}
	if n := *resultBytes; n > 0 {
		text := bigText(n)
		s.AddTool(&mcp.Tool{Name: "big", Description: fmt.Sprintf("Return %d bytes of text.", n), InputSchema: map[string]any{"type": "object"}},
			func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}, nil
			})
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())

	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s },
		&mcp.StreamableHTTPOptions{Stateless: false, JSONResponse: *jsonResponse})
	mux := http.NewServeMux()
	mux.Handle("/mcp", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
}

// bigText returns n bytes of printable text that needs no JSON escaping.
func bigText(n int) string {
	const line = "the quick brown fox jumps over the lazy dog 0123456789. "
	var b strings.Builder
	b.Grow(n)
	for b.Len()+len(line) <= n {
		b.WriteString(line)
	}
	b.WriteString(strings.Repeat("x", n-b.Len()))
	return b.String()
}
