package telemetry_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/telemetry"
)

// A client's trace context, as an agent host would send it.
const (
	clientTrace  = "0af7651916cd43dd8448eb211c80319c"
	clientSpan   = "b7ad6b7169203331"
	clientParent = "00-" + clientTrace + "-" + clientSpan + "-01"
	clientState  = "congo=t61rcWkgMzE"

	metaTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	metaSpan   = "00f067aa0ba902b7"
	metaParent = "00-" + metaTrace + "-" + metaSpan + "-01"
)

func ratio(r float64) *float64 { return &r }

// clientRequest is a POST to the gateway, optionally carrying traceparent
// and tracestate headers.
func clientRequest(traceparent, tracestate string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil) // RemoteAddr 192.0.2.1:1234, HTTP/1.1
	if traceparent != "" {
		r.Header.Set("Traceparent", traceparent)
	}
	if tracestate != "" {
		r.Header.Set("Tracestate", tracestate)
	}
	return r
}

// TestTracingOTLPHTTP follows one tools/call through the gateway: the
// client's traceparent header is continued, the upstream call is a child of
// the server span, the context sent upstream names the client span, and the
// spans reach an OTLP/HTTP collector with the MCP semantic conventions.
func TestTracingOTLPHTTP(t *testing.T) {
	rec, endpoint := newHTTPReceiver(t)
	ctx := t.Context()
	tr, err := telemetry.NewTracing(ctx, config.Tracing{
		Exporter:    "otlp_http",
		Endpoint:    endpoint, // no path: /v1/traces is added
		Headers:     map[string]config.Value{"X-Scope-OrgID": config.Literal("tenant-1")},
		ServiceName: "mcpgate-test",
	}, "1.2.3")
	if err != nil {
		t.Fatal(err)
	}

	sctx, server := tr.StartServer(ctx, clientRequest(clientParent, clientState), telemetry.RPCInfo{
		Method:          "tools/call",
		ID:              []byte("7"),
		SessionID:       "sess-1",
		ProtocolVersion: "2025-11-25",
		Server:          "alpha",
		Params:          []byte(`{"name":"alpha__echo","arguments":{"x":1}}`),
	})
	cctx, client := tr.StartClient(sctx, telemetry.ClientCall{
		Server:          "alpha",
		Replica:         "r0",
		Method:          "tools/call",
		ID:              []byte(`"gw-1"`),
		SessionID:       "up-1",
		ProtocolVersion: "2025-06-18",
		Target:          "echo",
		Address:         "http://127.0.0.1:3001/mcp",
	})
	h := http.Header{"Traceparent": {"00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01"}} // stale, from the client
	tr.Inject(cctx, h)
	params := tr.InjectMeta(cctx, []byte(`{"name":"echo","arguments":{"x":1}}`))
	clientSC := client.SpanContext()
	telemetry.EndSpan(client, "tool_error", 0, "")
	telemetry.EndSpan(server, "protocol_error", -32602, "Invalid params")
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	wantParent := fmt.Sprintf("00-%s-%s-01", clientTrace, clientSC.SpanID())
	if got := h.Values("Traceparent"); len(got) != 1 || got[0] != wantParent || h.Get("Tracestate") != clientState {
		t.Errorf("upstream headers = %v, want traceparent %s and tracestate %s", h, wantParent, clientState)
	}
	wantParams := `{"name":"echo","arguments":{"x":1},"_meta":{"traceparent":"` + wantParent + `","tracestate":"` + clientState + `"}}`
	if string(params) != wantParams {
		t.Errorf("InjectMeta = %s\nwant        %s", params, wantParams)
	}

	spans := rec.exported()
	if len(spans) != 2 {
		t.Fatalf("exported %d spans (%v), want 2", len(spans), spans)
	}
	if got := rec.header("X-Scope-OrgID"); got != "tenant-1" {
		t.Errorf("collector got X-Scope-OrgID %q", got)
	}
	if rec.resource["service.name"] != "mcpgate-test" || rec.resource["service.version"] != "1.2.3" {
		t.Errorf("resource = %v", rec.resource)
	}

	s := spans["tools/call alpha__echo"]
	if s == nil {
		t.Fatalf("no server span named \"tools/call alpha__echo\" in %v", spans)
	}
	if s.GetKind() != tracepb.Span_SPAN_KIND_SERVER || hexID(s.GetTraceId()) != clientTrace || hexID(s.GetParentSpanId()) != clientSpan || s.GetTraceState() != clientState {
		t.Errorf("server span kind %v trace %x parent %x state %q; want SERVER under %s", s.GetKind(), s.GetTraceId(), s.GetParentSpanId(), s.GetTraceState(), clientParent)
	}
	if s.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_ERROR || s.GetStatus().GetMessage() != "Invalid params" {
		t.Errorf("server span status = %v", s.GetStatus())
	}
	if len(s.GetLinks()) != 0 {
		t.Errorf("server span links = %v, want none", s.GetLinks())
	}
	wantServer := map[string]any{
		"mcp.method.name":          "tools/call",
		"jsonrpc.request.id":       "7",
		"mcp.session.id":           "sess-1",
		"mcp.protocol.version":     "2025-11-25",
		"gen_ai.tool.name":         "alpha__echo",
		"gen_ai.operation.name":    "execute_tool",
		"mcpgate.server":           "alpha",
		"network.protocol.name":    "http",
		"network.protocol.version": "1.1",
		"network.transport":        "tcp",
		"client.address":           "192.0.2.1",
		"client.port":              int64(1234),
		"error.type":               "protocol_error",
		"rpc.response.status_code": "-32602",
	}
	if diff := cmp.Diff(wantServer, attrMap(s.GetAttributes())); diff != "" {
		t.Errorf("server span attributes (-want +got):\n%s", diff)
	}

	c := spans["tools/call echo"]
	if c == nil {
		t.Fatalf("no client span named \"tools/call echo\" in %v", spans)
	}
	if c.GetKind() != tracepb.Span_SPAN_KIND_CLIENT || hexID(c.GetTraceId()) != clientTrace || hexID(c.GetParentSpanId()) != hexID(s.GetSpanId()) {
		t.Errorf("client span kind %v trace %x parent %x; want CLIENT, child of the server span %x", c.GetKind(), c.GetTraceId(), c.GetParentSpanId(), s.GetSpanId())
	}
	if c.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_ERROR || c.GetStatus().GetMessage() != "tool_error" {
		t.Errorf("client span status = %v", c.GetStatus())
	}
	wantClient := map[string]any{
		"mcp.method.name":       "tools/call",
		"jsonrpc.request.id":    "gw-1",
		"mcp.session.id":        "up-1",
		"mcp.protocol.version":  "2025-06-18",
		"gen_ai.tool.name":      "echo",
		"gen_ai.operation.name": "execute_tool",
		"mcpgate.server":        "alpha",
		"mcpgate.replica":       "r0",
		"network.protocol.name": "http",
		"network.transport":     "tcp",
		"server.address":        "127.0.0.1",
		"server.port":           int64(3001),
		"error.type":            "tool_error",
	}
	if diff := cmp.Diff(wantClient, attrMap(c.GetAttributes())); diff != "" {
		t.Errorf("client span attributes (-want +got):\n%s", diff)
	}
}

// TestTracingOTLPGRPC exports over gRPC and checks that trace context in
// params._meta wins over the HTTP headers, which become a link, as the MCP
// semantic conventions ask of servers.
func TestTracingOTLPGRPC(t *testing.T) {
	rec, endpoint := newGRPCReceiver(t)
	ctx := t.Context()
	tr, err := telemetry.NewTracing(ctx, config.Tracing{
		Exporter: "otlp_grpc",
		Endpoint: endpoint,
		Insecure: true,
		Headers:  map[string]config.Value{"X-Scope-OrgID": config.Literal("tenant-2")},
	}, "dev")
	if err != nil {
		t.Fatal(err)
	}
	params := []byte(`{"name":"search","_meta":{"traceparent":"` + metaParent + `","tracestate":"rojo=00f067aa0ba902b7","progressToken":3}}`)
	_, span := tr.StartServer(ctx, clientRequest(clientParent, ""), telemetry.RPCInfo{Method: "prompts/get", ID: []byte(`"a"`), Params: params})
	telemetry.EndSpan(span, "ok", 0, "")
	_, span = tr.StartServer(ctx, clientRequest("", ""), telemetry.RPCInfo{Method: "resources/read", ID: []byte("8"), Params: []byte(`{"uri":"file:///srv/a.txt","_meta":{"traceparent":"` + metaParent + `"}}`)})
	telemetry.EndSpan(span, "ok", 0, "")
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	spans := rec.exported()
	if got := rec.header("x-scope-orgid"); got != "tenant-2" {
		t.Errorf("collector got x-scope-orgid %q", got)
	}
	if rec.resource["service.name"] != "mcpgate" {
		t.Errorf("service.name = %v, want the default mcpgate", rec.resource["service.name"])
	}
	s := spans["prompts/get search"]
	if s == nil {
		t.Fatalf("no span \"prompts/get search\" in %v", spans)
	}
	if hexID(s.GetTraceId()) != metaTrace || hexID(s.GetParentSpanId()) != metaSpan || s.GetTraceState() != "rojo=00f067aa0ba902b7" {
		t.Errorf("span trace %x parent %x state %q; want the _meta parent %s", s.GetTraceId(), s.GetParentSpanId(), s.GetTraceState(), metaParent)
	}
	if l := s.GetLinks(); len(l) != 1 || hexID(l[0].GetTraceId()) != clientTrace || hexID(l[0].GetSpanId()) != clientSpan {
		t.Errorf("links = %v, want one to the HTTP traceparent %s", l, clientParent)
	}
	if got := attrMap(s.GetAttributes()); got["gen_ai.prompt.name"] != "search" || got["jsonrpc.request.id"] != "a" || got["gen_ai.operation.name"] != nil || got["error.type"] != nil {
		t.Errorf("prompts/get attributes = %v", got)
	}
	if s.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_UNSET {
		t.Errorf("ok span status = %v, want unset", s.GetStatus())
	}
	r := spans["resources/read"] // a URI is never part of the name
	if r == nil {
		t.Fatalf("no span \"resources/read\" in %v", spans)
	}
	if got := attrMap(r.GetAttributes()); got["mcp.resource.uri"] != "file:///srv/a.txt" || hexID(r.GetParentSpanId()) != metaSpan || len(r.GetLinks()) != 0 {
		t.Errorf("resources/read span: attributes %v parent %x links %v", got, r.GetParentSpanId(), r.GetLinks())
	}
}

// TestTracingSampling checks ParentBased(TraceIDRatioBased(0)): a sampled
// parent, from a header or from _meta, is honoured; new traces and
// unsampled parents are not exported.
func TestTracingSampling(t *testing.T) {
	rec, endpoint := newHTTPReceiver(t)
	ctx := t.Context()
	tr, err := telemetry.NewTracing(ctx, config.Tracing{Exporter: "otlp_http", Endpoint: endpoint + "/v1/traces", SampleRatio: ratio(0)}, "dev")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		target      string
		traceparent string
		meta        string
	}{
		{"sampled-header", clientParent, ""},
		{"sampled-meta", "", metaParent},
		{"no-parent", "", ""},
		{"unsampled-header", "00-" + clientTrace + "-" + clientSpan + "-00", ""},
		{"unsampled-meta", clientParent, "00-" + metaTrace + "-" + metaSpan + "-00"}, // _meta wins
	} {
		params := `{"name":"` + tc.target + `"}`
		if tc.meta != "" {
			params = `{"name":"` + tc.target + `","_meta":{"traceparent":"` + tc.meta + `"}}`
		}
		_, span := tr.StartServer(ctx, clientRequest(tc.traceparent, ""), telemetry.RPCInfo{Method: "tools/call", Params: []byte(params)})
		telemetry.EndSpan(span, "ok", 0, "")
	}
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(maps.Keys(rec.exported()))
	if diff := cmp.Diff([]string{"tools/call sampled-header", "tools/call sampled-meta"}, got); diff != "" {
		t.Errorf("exported spans (-want +got):\n%s", diff)
	}
}

// TestTracingNone checks that without an exporter nothing is recorded but
// the client's trace context is passed upstream unchanged, in headers and
// in _meta, and that nothing is injected when there is no trace.
func TestTracingNone(t *testing.T) {
	ctx := t.Context()
	tr, err := telemetry.NewTracing(ctx, config.Tracing{Exporter: "none"}, "dev")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		traceparent string
		params      string
		wantParent  string
	}{
		{"header", clientParent, `{"name":"echo"}`, clientParent},
		{"meta", clientParent, `{"name":"echo","_meta":{"traceparent":"` + metaParent + `"}}`, metaParent},
		{"none", "", `{"name":"echo"}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sctx, server := tr.StartServer(ctx, clientRequest(tc.traceparent, ""), telemetry.RPCInfo{Method: "tools/call", Params: []byte(tc.params)})
			cctx, client := tr.StartClient(sctx, telemetry.ClientCall{Server: "alpha", Method: "tools/call", Target: "echo"})
			if server.IsRecording() || client.IsRecording() {
				t.Error("spans are recording without an exporter")
			}
			h := http.Header{"Traceparent": {"00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01"}}
			tr.Inject(cctx, h)
			params := tr.InjectMeta(cctx, []byte(`{"name":"echo"}`))
			telemetry.EndSpan(client, "ok", 0, "")
			telemetry.EndSpan(server, "ok", 0, "")
			if got := h.Get("Traceparent"); got != tc.wantParent {
				t.Errorf("upstream traceparent = %q, want %q", got, tc.wantParent)
			}
			wantParams := `{"name":"echo"}`
			if tc.wantParent != "" {
				wantParams = `{"name":"echo","_meta":{"traceparent":"` + tc.wantParent + `"}}`
			}
			if string(params) != wantParams {
				t.Errorf("InjectMeta = %s, want %s", params, wantParams)
			}
		})
	}
	if err := tr.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

func TestNewTracingErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  config.Tracing
		want string
	}{
		{"exporter", config.Tracing{Exporter: "zipkin"}, "exporter must be"},
		{"url", config.Tracing{Exporter: "otlp_http", Endpoint: "127.0.0.1:4318"}, "must be an http or https URL"},
		{"unresolved", config.Tracing{
			Exporter: "otlp_http", Endpoint: "http://127.0.0.1:4318",
			Headers: map[string]config.Value{"Authorization": config.EnvRef("OTLP_TOKEN")},
		}, "telemetry.tracing.headers.Authorization: the reference has not been resolved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := telemetry.NewTracing(context.Background(), tc.cfg, "dev")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewTracing = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
