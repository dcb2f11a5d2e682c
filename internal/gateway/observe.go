package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/mcpgate/mcpgate/internal/telemetry"
	"go.opentelemetry.io/otel/trace"
)

// record is the access record of one HTTP request, filled in by each stage
// and written once, when both the response and any upstream work it started
// have finished.
type record struct {
	start   time.Time
	logger  *slog.Logger
	metrics *telemetry.Metrics
	pending atomic.Int32 // parties that must finish before the record is written

	mu        sync.Mutex // guards the fields below
	requestID string
	httpVerb  string
	path      string
	status    int
	sessionID string
	principal string
	client    string // the client's self-declared name
	server    string
	replica   string // the upstream replica that served the call
	tool      string
	method    string
	outcome   string
	rule      string // the policy rule that denied
	err       error
	span      trace.Span // the server span, ended with the record; nil if none
	shared    bool       // the answer came from an identical call in flight
	flags     []string   // such as duplicate
}

type recordKey struct{}

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func recordFrom(ctx context.Context) *record {
	r, _ := ctx.Value(recordKey{}).(*record)
	if r == nil {
		return &record{} // a detached record: writes are harmless and never logged
	}
	return r
}

func (r *record) set(f func(r *record)) {
	r.mu.Lock()
	f(r)
	r.mu.Unlock()
}

func (r *record) setOutcome(outcome string, err error) {
	r.mu.Lock()
	r.outcome, r.err = outcome, err
	r.mu.Unlock()
}

// hold registers a party (a stream pump) that outlives the handler; the
// record is written when it calls done.
func (r *record) hold() { r.pending.Add(1) }

func (r *record) done() {
	if r.pending.Add(-1) == 0 && r.logger != nil {
		r.write()
	}
}

func (r *record) write() {
	r.mu.Lock()
	defer r.mu.Unlock()
	outcome := r.outcome
	if outcome == "" {
		outcome = outcomeOK
	}
	// Client-chosen strings are escaped: a name must not be able to forge
	// a record or a terminal sequence in whatever shows the log.
	attrs := []slog.Attr{
		slog.String("request_id", r.requestID),
		slog.String("http_method", telemetry.SafeString(r.httpVerb)),
		slog.String("path", telemetry.SafeString(r.path)),
		slog.Int("status", r.status),
		slog.String("session_id", r.sessionID),
		slog.String("principal", telemetry.SafeString(r.principal)),
		slog.String("client", telemetry.SafeString(r.client)),
		slog.String("server", r.server),
		slog.String("tool", telemetry.SafeString(r.tool)),
		slog.String("method", telemetry.SafeString(r.method)),
		slog.String("outcome", outcome),
		slog.Float64("duration_ms", float64(time.Since(r.start).Microseconds())/1000),
	}
	if r.replica != "" {
		attrs = append(attrs, slog.String("replica", r.replica))
	}
	if r.rule != "" {
		attrs = append(attrs, slog.String("rule", r.rule))
	}
	if r.shared {
		attrs = append(attrs, slog.Bool("shared", true))
	}
	if len(r.flags) > 0 {
		attrs = append(attrs, slog.Any("flags", r.flags))
	}
	if r.span != nil {
		if sc := r.span.SpanContext(); sc.IsValid() {
			attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
		}
		msg := ""
		if r.err != nil {
			msg = outcome
		}
		telemetry.EndSpan(r.span, outcome, 0, msg)
	}
	if r.err != nil {
		attrs = append(attrs, slog.String("error", r.err.Error()))
	}
	level := slog.LevelInfo
	if outcome == outcomeTransportError {
		level = slog.LevelWarn
	}
	r.logger.LogAttrs(context.Background(), level, "request", attrs...)
	tool := ""
	if r.method == "tools/call" {
		tool = r.tool
	}
	r.metrics.Request(r.method, r.server, tool, outcome, time.Since(r.start))
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe is the outermost stage: it gives every request an ID and writes
// exactly one access record for it.
func observe(logger *slog.Logger, metrics *telemetry.Metrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &record{start: time.Now(), logger: logger, metrics: metrics, requestID: newRequestID(), httpVerb: r.Method, path: r.URL.Path}
		rec.pending.Store(1)
		sw := &statusWriter{ResponseWriter: w}
		sw.Header().Set("X-Request-Id", rec.requestID)
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), recordKey{}, rec)))
		rec.set(func(rec *record) { rec.status = sw.status })
		rec.done()
	})
}

// startSpan starts the server span of a client message and returns the
// request carrying it. Without an exporter, a span is only made to carry
// a client's own trace context through to the upstream.
func (g *Gateway) startSpan(r *http.Request, msg *mcpwire.Message) *http.Request {
	if !g.traceAll && r.Header.Get("Traceparent") == "" {
		if tp, _ := telemetry.MetaTraceContext(msg.Params); tp == "" {
			return r
		}
	}
	ctx, span := g.tracing.StartServer(r.Context(), r, telemetry.RPCInfo{
		Method:          msg.Method,
		ID:              msg.ID,
		SessionID:       r.Header.Get("Mcp-Session-Id"),
		ProtocolVersion: r.Header.Get("Mcp-Protocol-Version"),
		Params:          msg.Params,
	})
	recordFrom(ctx).set(func(rec *record) { rec.span = span })
	return r.WithContext(ctx)
}
