package gateway_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/gateway"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP trace endpoint that keeps every span.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
}

func startOTLPReceiver(t *testing.T) (*otlpReceiver, string) {
	t.Helper()
	rcv := &otlpReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rcv.mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				rcv.spans = append(rcv.spans, ss.Spans...)
			}
		}
		rcv.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return rcv, srv.URL
}

func (r *otlpReceiver) find(name string, kind tracepb.Span_SpanKind) *tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.spans {
		if s.Name == name && s.Kind == kind {
			return s
		}
	}
	return nil
}

func spanAttr(s *tracepb.Span, key string) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			if v := kv.Value.GetStringValue(); v != "" {
				return v
			}
			return fmt.Sprint(kv.Value.GetIntValue())
		}
	}
	return ""
}

// TestTracesAndMetrics sends known traffic with a client trace context:
// the exported spans form client → gateway server span → upstream client
// span, the upstream receives the gateway's span as parent in its headers
// and in params._meta, the access log carries the trace ID, and the
// request counters hold exactly the traffic sent.
func TestTracesAndMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var mu sync.Mutex
	var upHeaders []string // traceparent headers of upstream tools/call requests
	var upMeta []string    // their params._meta.traceparent
	srv := startSDKServer(t, func(s *mcp.Server) {
		mcp.AddTool(s, &mcp.Tool{Name: "echo"}, func(_ context.Context, req *mcp.CallToolRequest, in map[string]any) (*mcp.CallToolResult, any, error) {
			mu.Lock()
			upMeta = append(upMeta, fmt.Sprint(req.Params.Meta["traceparent"]))
			mu.Unlock()
			if in["fail"] == true {
				return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "failed"}}}, nil, nil
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}, nil, nil
		})
		addNamedTool(s, "forbidden", "never allowed", nil)
	}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tp := r.Header.Get("Traceparent"); tp != "" {
				mu.Lock()
				upHeaders = append(upHeaders, tp)
				mu.Unlock()
			}
			h.ServeHTTP(w, r)
		})
	})
	rcv, otlpURL := startOTLPReceiver(t)
	gw := startGateway(t, fmt.Sprintf(`
listen: 127.0.0.1:0
telemetry:
  tracing: {exporter: otlp_http, endpoint: %s, insecure: true}
policy:
  default: allow
  rules:
    - {name: no-forbidden, deny: 'tool.name == "forbidden"'}
servers:
  up:
    url: %s
`, otlpURL, srv.URL), gateway.Options{})

	const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	const clientSpan = "00f067aa0ba902b7"
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: headerTransport{h: http.Header{"Traceparent": {"00-" + clientTrace + "-" + clientSpan + "-01"}}, base: tr}}
	cs, err := newClientProbe().client().Connect(ctx, &mcp.StreamableClientTransport{Endpoint: gw.URL + "/servers/up/mcp", HTTPClient: hc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	toolNames(t, ctx, cs)
	callText(t, ctx, cs, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"secret": canary}})
	callText(t, ctx, cs, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{}})
	if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"fail": true}}); err != nil || !res.IsError {
		t.Fatalf("failing echo: %v %v", res, err)
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "forbidden", Arguments: map[string]any{}}); !isRPCError(err, -32030) {
		t.Fatalf("forbidden: %v", err)
	}

	// Exact request counts for the traffic above.
	for _, c := range []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"method": "tools/call", "server": "up", "tool": "echo", "outcome": "ok"}, 2},
		{map[string]string{"method": "tools/call", "server": "up", "tool": "echo", "outcome": "tool_error"}, 1},
		{map[string]string{"method": "tools/call", "server": "up", "tool": "forbidden", "outcome": "denied"}, 1},
		{map[string]string{"method": "tools/list", "server": "up", "outcome": "ok"}, 1},
		{map[string]string{"method": "initialize", "outcome": "ok"}, 1},
		{map[string]string{"method": "tools/call"}, 4},
	} {
		if got := countSeries(t, gw, "mcpgate_requests_total", c.labels); got != c.want {
			t.Errorf("mcpgate_requests_total%v = %v, want %v", c.labels, got, c.want)
		}
	}
	if got := countSeries(t, gw, "mcpgate_upstream_requests_total", map[string]string{"server": "up", "method": "tools/call"}); got != 3 {
		t.Errorf("mcpgate_upstream_requests_total{up,tools/call} = %v, want 3 (the denied call never left)", got)
	}
	if got := countSeries(t, gw, "mcpgate_sessions_active", nil); got != 1 {
		t.Errorf("mcpgate_sessions_active = %v, want 1", got)
	}
	if got := countSeries(t, gw, "mcpgate_catalog_tools", map[string]string{"server": "up"}); got != 2 {
		t.Errorf("mcpgate_catalog_tools{up} = %v, want 2", got)
	}

	gw.Close() // flushes the exporter
	server := rcv.find("tools/call echo", tracepb.Span_SPAN_KIND_SERVER)
	client := rcv.find("tools/call echo", tracepb.Span_SPAN_KIND_CLIENT)
	if server == nil || client == nil {
		t.Fatalf("want a server and a client span named %q; got %d spans", "tools/call echo", len(rcv.spans))
	}
	if got := hex.EncodeToString(server.TraceId); got != clientTrace {
		t.Errorf("server span trace %s, want the client's %s", got, clientTrace)
	}
	if got := hex.EncodeToString(server.ParentSpanId); got != clientSpan {
		t.Errorf("server span parent %s, want the client's span %s", got, clientSpan)
	}
	if string(client.ParentSpanId) != string(server.SpanId) || string(client.TraceId) != string(server.TraceId) {
		t.Error("the upstream client span is not a child of the server span")
	}
	if got := spanAttr(server, "mcp.method.name"); got != "tools/call" {
		t.Errorf("server span mcp.method.name = %q", got)
	}
	if got := spanAttr(server, "gen_ai.tool.name"); got != "echo" {
		t.Errorf("server span gen_ai.tool.name = %q", got)
	}
	if denied := rcv.find("tools/call forbidden", tracepb.Span_SPAN_KIND_SERVER); denied == nil || spanAttr(denied, "error.type") != "denied" {
		t.Errorf("the denied call's span should carry error.type=denied: %v", denied)
	}
	// What the upstream saw: the gateway's client spans as parents.
	mu.Lock()
	defer mu.Unlock()
	clientSpans := map[string]bool{}
	rcv.mu.Lock()
	for _, s := range rcv.spans {
		if s.Kind == tracepb.Span_SPAN_KIND_CLIENT {
			clientSpans[hex.EncodeToString(s.SpanId)] = true
		}
	}
	rcv.mu.Unlock()
	if len(upMeta) != 3 {
		t.Fatalf("upstream saw %d tools/call, want 3", len(upMeta))
	}
	for i, tp := range upMeta {
		parts := strings.Split(tp, "-")
		if len(parts) != 4 || parts[1] != clientTrace || !clientSpans[parts[2]] {
			t.Errorf("upstream call %d: params._meta.traceparent %q is not a gateway client span of the client's trace", i, tp)
		}
	}
	sawHeader := false
	for _, tp := range upHeaders {
		parts := strings.Split(tp, "-")
		if len(parts) == 4 && parts[1] == clientTrace && clientSpans[parts[2]] {
			sawHeader = true
		}
		if strings.Contains(tp, clientSpan) {
			t.Errorf("the client's own traceparent reached the upstream: %s", tp)
		}
	}
	if !sawHeader {
		t.Errorf("no upstream request carried a gateway span in its traceparent header: %q", upHeaders)
	}
	if !strings.Contains(gw.logs.String(), `"trace_id":"`+clientTrace+`"`) {
		t.Error("access records do not carry the trace_id")
	}
	if !strings.Contains(gw.logs.String(), `"client":"mcpgate-e2e"`) || !strings.Contains(gw.logs.String(), `"replica":"`) {
		t.Error("access records do not carry the client and the upstream replica")
	}
	// Arguments never become span attributes.
	rcv.mu.Lock()
	for _, s := range rcv.spans {
		for _, kv := range s.Attributes {
			if strings.Contains(kv.Value.String(), canary) {
				t.Errorf("span %q attribute %s carries the canary argument", s.Name, kv.Key)
			}
		}
	}
	rcv.mu.Unlock()
}
