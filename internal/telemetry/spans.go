package telemetry

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// Attribute keys, from the OpenTelemetry semantic conventions for MCP
// (semantic-conventions-genai, docs/gen-ai/mcp.md) and the general
// registry, plus the gateway's own under mcpgate.*.
const (
	attrMCPMethod          = "mcp.method.name"
	attrMCPSession         = "mcp.session.id"
	attrMCPProtocolVersion = "mcp.protocol.version"
	attrMCPResourceURI     = "mcp.resource.uri"
	attrJSONRPCRequestID   = "jsonrpc.request.id"
	attrGenAIToolName      = "gen_ai.tool.name"
	attrGenAIPromptName    = "gen_ai.prompt.name"
	attrGenAIOperation     = "gen_ai.operation.name"
	attrErrorType          = "error.type"
	attrRPCStatusCode      = "rpc.response.status_code"
	attrNetProtocolName    = "network.protocol.name"
	attrNetProtocolVersion = "network.protocol.version"
	attrNetTransport       = "network.transport"
	attrClientAddress      = "client.address"
	attrClientPort         = "client.port"
	attrServerAddress      = "server.address"
	attrServerPort         = "server.port"
	attrGatewayServer      = "mcpgate.server"
	attrGatewayReplica     = "mcpgate.replica"
)

// W3C trace context keys, in HTTP headers and in params._meta alike.
const (
	keyTraceparent = "traceparent"
	keyTracestate  = "tracestate"
)

// RPCInfo describes the client message a server span covers.
type RPCInfo struct {
	Method          string // the JSON-RPC method
	ID              []byte // the raw JSON id; nil (or null) for a notification
	SessionID       string // the gateway session, "" in the stateless era
	ProtocolVersion string // the negotiated MCP revision
	Server          string // the configured server the message routes to, "" if none
	// Target names the tool (tools/call) or prompt (prompts/get) as the
	// client sent it; when empty it is read from Params.
	Target string
	// Params are the raw params, which Decode validated: their _meta
	// carries the client's per-message trace context, and their name or
	// uri the target.
	Params []byte
}

// StartServer starts the span of one client message. Its parent is the
// trace context in params._meta when there is one (MCP's convention for
// per-message context, which the semantic conventions tell servers to
// prefer), with the HTTP request's traceparent, if different, as a link;
// otherwise the HTTP traceparent; otherwise ctx's span. End it with EndSpan.
func (t *Tracing) StartServer(ctx context.Context, r *http.Request, rpc RPCInfo) (context.Context, trace.Span) {
	var header trace.SpanContext
	if r != nil {
		header = t.spanContext(propagation.HeaderCarrier(r.Header))
	}
	meta := t.metaSpanContext(rpc.Params)
	var opts []trace.SpanStartOption
	switch {
	case meta.IsValid():
		ctx = trace.ContextWithRemoteSpanContext(ctx, meta)
		if header.IsValid() && !header.Equal(meta) {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: header}))
		}
	case header.IsValid():
		ctx = trace.ContextWithRemoteSpanContext(ctx, header)
	}

	target := rpc.Target
	if target == "" {
		target = paramString(rpc.Params, "name")
	}
	attrs := make([]attribute.KeyValue, 0, 14)
	attrs = rpcAttributes(attrs, rpc.Method, rpc.ID, rpc.SessionID, rpc.ProtocolVersion, target, rpc.Params)
	if rpc.Server != "" {
		attrs = append(attrs, attribute.String(attrGatewayServer, rpc.Server))
	}
	if r != nil {
		attrs = append(attrs,
			attribute.String(attrNetProtocolName, "http"),
			attribute.String(attrNetProtocolVersion, protocolVersion(r)),
			attribute.String(attrNetTransport, "tcp"))
		if host, port, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			attrs = append(attrs, attribute.String(attrClientAddress, host))
			if p, err := strconv.Atoi(port); err == nil {
				attrs = append(attrs, attribute.Int(attrClientPort, p))
			}
		}
	}
	opts = append(opts, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	return t.tracer.Start(ctx, spanName(rpc.Method, target), opts...)
}

// ClientCall describes a message the gateway sends to an upstream.
type ClientCall struct {
	Server          string // the configured server
	Replica         string // the replica within the server, as in the metrics
	Method          string // the JSON-RPC method
	ID              []byte // the raw JSON id sent upstream; nil for a notification
	SessionID       string // the upstream session, "" if none
	ProtocolVersion string // the MCP revision spoken upstream
	Target          string // the tool or prompt name as the upstream knows it
	// Address is the replica's URL (http) or host:port; "" for a stdio
	// server, which makes the transport a pipe.
	Address string
}

// StartClient starts the span of one upstream call, a child of ctx's span.
// Send its context upstream with Inject and InjectMeta; end it with EndSpan.
func (t *Tracing) StartClient(ctx context.Context, c ClientCall) (context.Context, trace.Span) {
	attrs := make([]attribute.KeyValue, 0, 14)
	attrs = rpcAttributes(attrs, c.Method, c.ID, c.SessionID, c.ProtocolVersion, c.Target, nil)
	attrs = append(attrs, attribute.String(attrGatewayServer, c.Server))
	if c.Replica != "" {
		attrs = append(attrs, attribute.String(attrGatewayReplica, c.Replica))
	}
	if c.Address == "" {
		attrs = append(attrs, attribute.String(attrNetTransport, "pipe"))
	} else {
		attrs = append(attrs, attribute.String(attrNetProtocolName, "http"), attribute.String(attrNetTransport, "tcp"))
		if host, port := hostPort(c.Address); host != "" {
			attrs = append(attrs, attribute.String(attrServerAddress, host))
			if port > 0 {
				attrs = append(attrs, attribute.Int(attrServerPort, port))
			}
		}
	}
	return t.tracer.Start(ctx, spanName(c.Method, c.Target),
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// EndSpan ends a span started by StartServer or StartClient with the
// request's outcome. Any outcome but ok sets error.type to the outcome and
// the span status to Error, described by message (the JSON-RPC error
// message, or the outcome when empty). code is the JSON-RPC error code of
// the response, 0 if there was none.
func EndSpan(span trace.Span, outcome string, code int64, message string) {
	if code != 0 {
		span.SetAttributes(attribute.String(attrRPCStatusCode, strconv.FormatInt(code, 10)))
	}
	if outcome != "" && outcome != OutcomeOK {
		span.SetAttributes(attribute.String(attrErrorType, fold(outcome, outcomes)))
		if message == "" {
			message = outcome
		}
		span.SetStatus(codes.Error, message)
	}
	span.End()
}

// Inject sets the traceparent and tracestate headers of an upstream request
// from ctx's span, and removes them when ctx carries no trace, so that a
// client's headers are never forwarded in place of the gateway's.
func (t *Tracing) Inject(ctx context.Context, h http.Header) {
	h.Del(keyTraceparent)
	h.Del(keyTracestate)
	t.prop.Inject(ctx, propagation.HeaderCarrier(h))
}

// InjectMeta returns params with _meta.traceparent and _meta.tracestate set
// from ctx's span, creating _meta (and params) when absent; every other
// byte of params is kept. params must be a validated JSON object, null or
// empty; anything else, or a ctx without a trace, returns params unchanged.
func (t *Tracing) InjectMeta(ctx context.Context, params []byte) []byte {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return params
	}
	carrier := propagation.MapCarrier{}
	t.prop.Inject(ctx, carrier)
	if string(params) == "null" {
		params = nil
	}
	meta, ok := mcpwire.ParamsField(params, "_meta")
	var out []byte
	if ok {
		out = meta
	}
	for _, key := range []string{keyTraceparent, keyTracestate} {
		v, ok := carrier[key]
		if !ok || v == "" {
			continue
		}
		quoted, _ := json.Marshal(v)
		if next := mcpwire.ReplaceParamsField(out, key, quoted); next != nil {
			out = next
		} else { // _meta is not an object: replace it
			out = mcpwire.ReplaceParamsField(nil, key, quoted)
		}
	}
	if res := mcpwire.ReplaceParamsField(params, "_meta", out); res != nil {
		return res
	}
	return params
}

// MetaTraceContext returns the W3C trace context that params._meta
// carries, "" where a key is absent or not a string. params must have
// been validated by Decode.
func MetaTraceContext(params []byte) (traceparent, tracestate string) {
	meta, ok := mcpwire.ParamsField(params, "_meta")
	if !ok {
		return "", ""
	}
	return paramString(meta, keyTraceparent), paramString(meta, keyTracestate)
}

func (t *Tracing) metaSpanContext(params []byte) trace.SpanContext {
	tp, ts := MetaTraceContext(params)
	if tp == "" {
		return trace.SpanContext{}
	}
	return t.spanContext(propagation.MapCarrier{keyTraceparent: tp, keyTracestate: ts})
}

func (t *Tracing) spanContext(c propagation.TextMapCarrier) trace.SpanContext {
	return trace.SpanContextFromContext(t.prop.Extract(context.Background(), c))
}

// rpcAttributes appends the MCP attributes common to server and client
// spans.
func rpcAttributes(attrs []attribute.KeyValue, method string, id []byte, session, version, target string, params []byte) []attribute.KeyValue {
	attrs = append(attrs, attribute.String(attrMCPMethod, method))
	if s, ok := requestID(id); ok {
		attrs = append(attrs, attribute.String(attrJSONRPCRequestID, s))
	}
	if session != "" {
		attrs = append(attrs, attribute.String(attrMCPSession, session))
	}
	if version != "" {
		attrs = append(attrs, attribute.String(attrMCPProtocolVersion, version))
	}
	switch method {
	case "tools/call":
		if target != "" {
			attrs = append(attrs, attribute.String(attrGenAIToolName, target))
		}
		attrs = append(attrs, attribute.String(attrGenAIOperation, "execute_tool"))
	case "prompts/get":
		if target != "" {
			attrs = append(attrs, attribute.String(attrGenAIPromptName, target))
		}
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		if uri := paramString(params, "uri"); uri != "" {
			attrs = append(attrs, attribute.String(attrMCPResourceURI, uri))
		}
	}
	return attrs
}

// spanName is "{mcp.method.name} {target}" for a tool or prompt target, as
// the conventions ask. A target that is not a well-formed name (which a
// client can send at will) is left out to keep span names low-cardinality
// and printable.
func spanName(method, target string) string {
	if method == "" {
		method = "HTTP"
	}
	if target != "" && mcpwire.ValidToolName(target) {
		return method + " " + target
	}
	return method
}

// requestID formats a raw JSON-RPC id as jsonrpc.request.id: a string id
// unquoted, a number as written; null or absent has none.
func requestID(raw []byte) (string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", false
	}
	if s, ok := mcpwire.StringValue(raw); ok {
		return s, true
	}
	return string(raw), true
}

func paramString(params []byte, key string) string {
	raw, ok := mcpwire.ParamsField(params, key)
	if !ok {
		return ""
	}
	s, _ := mcpwire.StringValue(raw)
	return s
}

func protocolVersion(r *http.Request) string {
	switch r.ProtoMajor {
	case 1:
		return "1." + strconv.Itoa(r.ProtoMinor)
	case 0:
		return ""
	}
	return strconv.Itoa(r.ProtoMajor)
}

// hostPort splits a URL or host:port, defaulting the port by scheme.
func hostPort(addr string) (string, int) {
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		port, _ := strconv.Atoi(u.Port())
		if port == 0 {
			switch u.Scheme {
			case "http":
				port = 80
			case "https":
				port = 443
			}
		}
		return u.Hostname(), port
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	p, _ := strconv.Atoi(port)
	return host, p
}
