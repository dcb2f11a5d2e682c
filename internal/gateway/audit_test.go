package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/gateway"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const canary = "CANARY-SECRET-7f3a9c"

// readAudit returns the records of an audit file.
func readAudit(t *testing.T, path string) []audit.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []audit.Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r audit.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// TestAuditTrail drives writes, reads and a denial through the gateway:
// each write and the denial is on disk by the time its response arrives,
// reads leave nothing, the chain verifies, and a canary secret sent in
// headers and arguments appears in no log, metric, audit record or error.
func TestAuditTrail(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := startSDKServer(t, func(s *mcp.Server) {
		addNamedTool(s, "read_rows", "reads", &mcp.ToolAnnotations{ReadOnlyHint: true})
		addNamedTool(s, "write_note", "writes", nil)
		addNamedTool(s, "drop_table", "drops", &mcp.ToolAnnotations{})
	}, nil)
	dir := t.TempDir()
	auditPath := filepath.Join(dir, "audit.jsonl")
	t.Setenv("MCPGATE_TEST_AUDIT_KEY", "0123456789abcdef0123456789abcdef-test-key")
	gw := startGateway(t, fmt.Sprintf(`
listen: 127.0.0.1:0
audit:
  key: {env: MCPGATE_TEST_AUDIT_KEY}
  file: {path: %s}
policy:
  default: allow
  rules:
    - name: no-drops
      deny: 'tool.name == "drop_table"'
      reason: "Dropping tables is not allowed"
servers:
  db:
    url: %s
    trusted: true
`, auditPath, srv.URL), gateway.Options{})

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: headerTransport{h: http.Header{"X-Canary": {canary}, "Authorization": {"Bearer " + canary}}, base: tr}}
	cs, err := newClientProbe().client().Connect(ctx, &mcp.StreamableClientTransport{Endpoint: gw.URL + "/mcp", HTTPClient: hc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()

	callText(t, ctx, cs, &mcp.CallToolParams{Name: "db__write_note", Arguments: map[string]any{"text": canary}})
	if recs := readAudit(t, auditPath); len(recs) != 1 {
		t.Fatalf("after one write call the audit file holds %d records, want 1 (written before the response)", len(recs))
	}
	callText(t, ctx, cs, &mcp.CallToolParams{Name: "db__read_rows", Arguments: map[string]any{"q": canary}})
	if recs := readAudit(t, auditPath); len(recs) != 1 {
		t.Fatalf("a read-only call left an audit record: %d records", len(recs))
	}
	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "db__drop_table", Arguments: map[string]any{"name": canary}})
	if !isRPCError(err, -32030) {
		t.Fatalf("drop_table: %v, want a denial", err)
	}
	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "db__no_such_tool", Arguments: map[string]any{"x": canary}})
	if err == nil || strings.Contains(err.Error(), canary) {
		t.Fatalf("unknown tool: %v (must fail, without echoing arguments)", err)
	}

	recs := readAudit(t, auditPath)
	if len(recs) != 2 {
		t.Fatalf("audit holds %d records, want 2 (one write, one denial): %+v", len(recs), recs)
	}
	w, d := recs[0], recs[1]
	if w.Kind != "call" || w.Tool != "write_note" || w.Server != "db" || w.Outcome != "ok" || w.ServerVersion != "1.0.0" ||
		w.SessionID == "" || w.RequestID == "" || w.ClientName != "mcpgate-e2e" || !strings.HasPrefix(w.ArgsHMAC, "hmac-sha256:") || w.LatencyMS <= 0 {
		t.Errorf("write record incomplete: %+v", w)
	}
	if d.Kind != "denial" || d.Tool != "drop_table" || d.Rule != "no-drops" || d.Outcome != "denied" {
		t.Errorf("denial record: %+v", d)
	}
	rep, err := audit.Verify([]string{auditPath})
	if err != nil || len(rep.Problems) != 0 || rep.Records != 2 {
		t.Errorf("verify: %+v, %v", rep, err)
	}

	if m := scrape(t, gw); !strings.Contains(m, `mcpgate_audit_sink_up{sink="file"} 1`) {
		t.Errorf("the metrics do not show the file sink up:\n%s", grepLines(m, "audit"))
	}

	// The canary is nowhere.
	raw, _ := os.ReadFile(auditPath)
	metrics := scrape(t, gw)
	for what, text := range map[string]string{"audit file": string(raw), "gateway log": gw.logs.String(), "metrics": metrics} {
		if strings.Contains(text, canary) {
			t.Errorf("the canary secret appears in the %s", what)
		}
	}
}

// TestAuditFailClosed points the audit trail at a PostgreSQL port where
// nothing listens: writes are refused before reaching the upstream, reads
// go on.
func TestAuditFailClosed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var writes int
	srv := startSDKServer(t, func(s *mcp.Server) {
		addNamedTool(s, "read_rows", "reads", &mcp.ToolAnnotations{ReadOnlyHint: true})
		mcp.AddTool(s, &mcp.Tool{Name: "write_note"}, func(context.Context, *mcp.CallToolRequest, map[string]any) (*mcp.CallToolResult, any, error) {
			writes++
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "written"}}}, nil, nil
		})
	}, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	t.Setenv("MCPGATE_TEST_AUDIT_KEY", "0123456789abcdef0123456789abcdef-test-key")
	gw := startGateway(t, fmt.Sprintf(`
listen: 127.0.0.1:0
audit:
  key: {env: MCPGATE_TEST_AUDIT_KEY}
  postgres: {dsn: "postgres://postgres@127.0.0.1:%d/test?connect_timeout=1"}
servers:
  db:
    url: %s
    trusted: true
`, deadPort, srv.URL), gateway.Options{})
	cs, _ := connectGo(t, ctx, gw.URL+"/mcp", newClientProbe())
	callText(t, ctx, cs, &mcp.CallToolParams{Name: "db__read_rows", Arguments: map[string]any{}})
	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "db__write_note", Arguments: map[string]any{}})
	if !isRPCError(err, -32051) || !strings.Contains(err.Error(), "audit trail is unavailable") {
		t.Fatalf("write with the audit trail down: %v, want -32051", err)
	}
	if writes != 0 {
		t.Errorf("the upstream ran the write %d times while the audit trail was down", writes)
	}
	if m := scrape(t, gw); !strings.Contains(m, `mcpgate_audit_sink_up{sink="postgres"} 0`) {
		t.Errorf("the metrics do not show the PostgreSQL sink down:\n%s", grepLines(m, "audit"))
	}
}

// headerTransport adds fixed headers to every request.
type headerTransport struct {
	h    http.Header
	base http.RoundTripper
}

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.h {
		r.Header[k] = v
	}
	return h.base.RoundTrip(r)
}

// scrape returns the gateway's metrics in the text exposition format.
func scrape(t *testing.T, gw *testGateway) string {
	t.Helper()
	rec := &responseBuffer{header: http.Header{}}
	promhttp.HandlerFor(gw.Gatherer(), promhttp.HandlerOpts{}).ServeHTTP(rec, httptestRequest(t))
	return rec.String()
}

type responseBuffer struct {
	header http.Header
	strings.Builder
}

func (r *responseBuffer) Header() http.Header { return r.header }
func (r *responseBuffer) WriteHeader(int)     {}

func httptestRequest(t *testing.T) *http.Request {
	req, err := http.NewRequest(http.MethodGet, "/metrics", io.NopCloser(strings.NewReader("")))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// grepLines returns the lines of text containing sub.
func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
