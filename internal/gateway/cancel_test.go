package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/gateway"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestCancellationMappedThrough: a client that cancels a call sends
// notifications/cancelled with its own request ID; the upstream must see
// the cancellation of the request the gateway sent it.
func TestCancellationMappedThrough(t *testing.T) {
	started := make(chan struct{}, 1)
	cancelled := make(chan struct{}, 1)
	srv := startSDKServer(t, func(s *mcp.Server) {
		mcp.AddTool(s, &mcp.Tool{Name: "wait"}, func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			started <- struct{}{}
			select {
			case <-ctx.Done():
				cancelled <- struct{}{}
				return nil, nil, ctx.Err()
			case <-time.After(30 * time.Second):
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "not cancelled"}}}, nil, nil
			}
		})
	}, nil)
	gw := startGateway(t, fmt.Sprintf("listen: 127.0.0.1:0\nservers:\n  slow:\n    url: %s/mcp\n", srv.URL), gateway.Options{})

	for _, endpoint := range []string{"/mcp", "/servers/slow/mcp"} {
		t.Run(endpoint, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cs, _ := connectGo(t, ctx, gw.URL+endpoint, newClientProbe())
			name := "wait"
			if endpoint == "/mcp" {
				name = "slow__wait"
			}
			callCtx, cancelCall := context.WithCancel(ctx)
			errc := make(chan error, 1)
			go func() {
				_, err := cs.CallTool(callCtx, &mcp.CallToolParams{Name: name, Arguments: map[string]any{}})
				errc <- err
			}()
			select {
			case <-started:
			case <-ctx.Done():
				t.Fatal("the call never reached the upstream")
			}
			cancelCall()
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Errorf("client call: %v, want context.Canceled", err)
			}
			select {
			case <-cancelled:
			case <-time.After(10 * time.Second):
				t.Fatal("the upstream's handler was never cancelled")
			}
		})
	}
}
