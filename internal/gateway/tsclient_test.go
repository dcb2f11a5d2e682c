package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/gateway"
)

// TestTypeScriptClientAggregate drives /mcp with the official TypeScript
// SDK client, aggregating the Go everything-server over HTTP and
// @modelcontextprotocol/server-everything over stdio: namespaced tools from
// both, a call on each, progress, sampling and elicitation relayed.
func TestTypeScriptClientAggregate(t *testing.T) {
	nodeBin, modules := node(t)
	up := startEverything(t)
	stdioEntry := filepath.Join(modules, "@modelcontextprotocol/server-everything/dist/index.js")
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
servers:
  go:
    url: %s
  ts:
    command: [%q, %q, "stdio"]
`, up.URL, nodeBin, stdioEntry)
	gw := startGateway(t, cfg, gateway.Options{})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	script := filepath.Join(repoRoot(t), "test/node/aggregate-client.mjs")
	stdout, stderr, err := runNode(t, ctx, t.TempDir(), script, gw.URL+"/mcp",
		"go__test_simple_text", `{}`,
		"ts__echo", `{"message":"through mcpgate"}`,
		"go__test_tool_with_progress", `{}`,
		"ts__trigger-long-running-operation", `{"duration":0.3,"steps":3}`,
		"go__test_sampling", `{"prompt":"hi"}`,
		"ts__trigger-sampling-request", `{"prompt":"hello"}`,
		"go__test_elicitation", `{"message":"who are you?"}`,
		"ts__trigger-elicitation-request", `{}`,
	)
	if err != nil {
		t.Fatalf("aggregate-client failed: %v\nstderr:\n%s", err, stderr)
	}
	var out struct {
		ProtocolVersion string
		ServerInfo      struct{ Name string }
		Tools           []string
		Calls           map[string]struct {
			Result struct {
				Content []struct{ Type, Text string }
				IsError bool
			}
			Progress []json.RawMessage
		}
		Elicitations, Samplings int
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("client output: %v\n%s", err, stdout)
	}
	if out.ServerInfo.Name != "mcpgate" || out.ProtocolVersion == "" {
		t.Errorf("serverInfo %q, protocolVersion %q", out.ServerInfo.Name, out.ProtocolVersion)
	}
	for _, want := range []string{"go__test_simple_text", "go__test_sampling", "ts__echo", "ts__trigger-sampling-request", "ts__trigger-elicitation-request"} {
		if !slices.Contains(out.Tools, want) {
			t.Errorf("tools/list lacks %s", want)
		}
	}
	for _, name := range out.Tools {
		if !strings.HasPrefix(name, "go__") && !strings.HasPrefix(name, "ts__") {
			t.Errorf("tool %q is not namespaced", name)
		}
	}
	text := func(tool string) string {
		c, ok := out.Calls[tool]
		if !ok {
			t.Errorf("no result for %s", tool)
			return ""
		}
		if c.Result.IsError {
			t.Errorf("%s returned isError: %+v", tool, c.Result.Content)
		}
		var b strings.Builder
		for _, ct := range c.Result.Content {
			b.WriteString(ct.Text)
		}
		return b.String()
	}
	if got := text("go__test_simple_text"); got == "" {
		t.Error("go__test_simple_text returned no text")
	}
	if got := text("ts__echo"); !strings.Contains(got, "through mcpgate") {
		t.Errorf("ts__echo = %q", got)
	}
	text("go__test_tool_with_progress")
	text("ts__trigger-long-running-operation")
	if n := len(out.Calls["go__test_tool_with_progress"].Progress); n < 3 {
		t.Errorf("go__test_tool_with_progress: %d progress notifications, want 3", n)
	}
	if n := len(out.Calls["ts__trigger-long-running-operation"].Progress); n < 3 {
		t.Errorf("ts__trigger-long-running-operation: %d progress notifications, want 3", n)
	}
	if got := text("go__test_sampling"); !strings.Contains(got, "sampled by aggregate-client") {
		t.Errorf("go__test_sampling = %q", got)
	}
	if got := text("ts__trigger-sampling-request"); !strings.Contains(got, "sampled by aggregate-client") {
		t.Errorf("ts__trigger-sampling-request = %q", got)
	}
	text("go__test_elicitation")
	text("ts__trigger-elicitation-request")
	if out.Samplings != 2 || out.Elicitations != 2 {
		t.Errorf("client answered %d samplings and %d elicitations, want 2 and 2", out.Samplings, out.Elicitations)
	}
}
