package gateway_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/gateway"
)

// conformanceResult is what one run of the official conformance suite found.
type conformanceResult struct {
	Passed, Failed int            // from the summary line
	Scenarios      map[string]int // scenario → SUCCESS checks
	Failures       []string
	Output         string
}

var totalRE = regexp.MustCompile(`(?m)^Total: (\d+) passed, (\d+) failed$`)
var scenarioDirRE = regexp.MustCompile(`^server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$`)

// runConformance runs @modelcontextprotocol/conformance against url.
func runConformance(t *testing.T, url string) conformanceResult {
	t.Helper()
	_, modules := node(t)
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cli := filepath.Join(modules, "@modelcontextprotocol/conformance/dist/index.js")
	stdout, stderr, err := runNode(t, ctx, out, cli, "server", "--url", url, "--requirements", "2025-11-25", "-o", out)
	res := conformanceResult{Scenarios: map[string]int{}, Output: stdout + stderr}
	m := totalRE.FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("conformance printed no summary (err %v):\n%s\n%s", err, stdout, stderr)
	}
	res.Passed, _ = strconv.Atoi(m[1])
	res.Failed, _ = strconv.Atoi(m[2])
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		sm := scenarioDirRE.FindStringSubmatch(e.Name())
		if sm == nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(out, e.Name(), "checks.json"))
		if err != nil {
			t.Fatalf("scenario %s: %v", sm[1], err)
		}
		var checks []struct {
			ID, Status, ErrorMessage string
		}
		if err := json.Unmarshal(data, &checks); err != nil {
			t.Fatalf("scenario %s: %v", sm[1], err)
		}
		for _, c := range checks {
			switch c.Status {
			case "SUCCESS":
				res.Scenarios[sm[1]]++
			case "FAILURE":
				res.Failures = append(res.Failures, sm[1]+"/"+c.ID+": "+c.ErrorMessage)
			}
		}
	}
	return res
}

// TestConformanceThroughGateway runs the official MCP conformance suite
// against the Go SDK's everything-server directly and through
// /servers/everything/mcp: no check fails, and every check that passes
// directly passes through the gateway.
func TestConformanceThroughGateway(t *testing.T) {
	node(t)
	up := startEverything(t)
	gw := startGateway(t, "listen: 127.0.0.1:0\nservers:\n  everything:\n    url: "+up.URL+"\n", gateway.Options{})

	direct := runConformance(t, up.URL)
	through := runConformance(t, gw.URL+"/servers/everything/mcp")
	t.Logf("direct: %d passed, %d failed; through the gateway: %d passed, %d failed", direct.Passed, direct.Failed, through.Passed, through.Failed)
	if direct.Failed != 0 || direct.Passed == 0 {
		t.Fatalf("the everything-server fails conformance directly (%d failed): the peer is broken\n%s", direct.Failed, direct.Output)
	}
	if through.Failed != 0 || len(through.Failures) != 0 {
		t.Errorf("through the gateway, %d checks failed:", through.Failed)
		for _, f := range through.Failures {
			t.Errorf("  %s", f)
		}
	}
	// The gateway may pass more than the server alone: it primes its SSE
	// streams with resumable event IDs, which the Go server does not.
	if through.Passed < direct.Passed {
		t.Errorf("passed %d checks through the gateway, %d directly", through.Passed, direct.Passed)
	}
	for sc, n := range direct.Scenarios {
		if through.Scenarios[sc] < n {
			t.Errorf("scenario %s: %d checks passed through the gateway, %d directly", sc, through.Scenarios[sc], n)
		}
	}
	if t.Failed() {
		t.Logf("conformance output through the gateway:\n%s", through.Output)
	}
}
