package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/mcpgate/mcpgate/internal/upstream"
	"go.opentelemetry.io/otel/trace"
)

// codeAuditDown refuses a write call while the audit trail cannot record
// it (audit.on_failure: fail_closed).
const codeAuditDown = -32051

// auditTimeout bounds how long a response waits for its audit record.
const auditTimeout = 10 * time.Second

// isWrite reports whether a call must leave an audit record: every
// tools/call of a tool not known to be read-only.
func (t *target) isWrite() bool {
	return t.method == "tools/call" && t.info != nil && !t.info.annotations.readOnly
}

// auditGate refuses a write while the audit trail is down and configured
// to fail closed. Reads go on.
func (s *clientSession) auditGate(t *target) *httpError {
	a := s.g.audit
	if a == nil || !t.isWrite() || !a.FailClosed() {
		return nil
	}
	if err := a.Healthy(); err != nil {
		return &httpError{Code: codeAuditDown, Msg: "the audit trail is unavailable, so write calls are paused; read-only tools still work; retry later",
			Outcome: outcomeTransportError, Err: err}
	}
	return nil
}

// auditRecord starts the record of a call or denial with what the session
// and the routing know.
func (s *clientSession) auditRecord(ctx context.Context, kind string, c *Call) *audit.Record {
	rec := recordFrom(ctx)
	r := &audit.Record{
		Time:          rec.start,
		Kind:          kind,
		RequestID:     rec.requestID,
		Principal:     c.Principal.String(),
		ClientName:    c.ClientName,
		ClientVersion: c.ClientVersion,
		SessionID:     c.SessionID,
		Server:        c.Server,
		Tool:          c.Tool,
		TraceID:       traceID(ctx),
	}
	if r.Tool == "" && c.URI != "" {
		r.Tool = c.URI
	}
	if c.Server != "" {
		s.mu.Lock()
		up := s.ups[c.Server]
		s.mu.Unlock()
		if up != nil {
			r.ServerVersion, _ = mcpwire.StringValue(field(field(up.conn.InitResult().Result, "serverInfo"), "version"))
		}
	}
	if len(c.Args) > 0 {
		mac, err := s.g.audit.ArgsHMAC(c.Args)
		if err != nil {
			mac = "unhashable"
		}
		r.ArgsHMAC = mac
	}
	return r
}

// auditDenial records a refused request. A failure is logged by the
// auditor; the refusal stands either way.
func (s *clientSession) auditDenial(ctx context.Context, c *Call, e *httpError, rule string) {
	if s.g.audit == nil || c == nil {
		return
	}
	r := s.auditRecord(ctx, audit.KindDenial, c)
	r.Outcome, r.Rule = e.Outcome, rule
	r.LatencyMS = sinceMS(recordFrom(ctx).start)
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	s.g.audit.Write(actx, r)
}

// auditCall records a finished write call before its response is
// released. The tool has run by now, so a failed record does not turn the
// result into an error: the auditor logs and counts it, and the gate
// pauses further writes.
func (s *clientSession) auditCall(ctx context.Context, t *target, outcome string, err error, flags []string) {
	if s.g.audit == nil || !t.isWrite() {
		return
	}
	r := s.auditRecord(ctx, audit.KindCall, t.call)
	r.Outcome, r.ErrorClass, r.Flags = outcome, errorClass(err), flags
	if err == nil {
		r.ErrorClass = outcomeClass(outcome)
	}
	r.LatencyMS = sinceMS(recordFrom(ctx).start)
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	s.g.audit.Write(actx, r)
}

// errorClass names the kind of failure, never its text.
func errorClass(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, upstream.ErrSessionLost):
		return "session_lost"
	case errors.Is(err, upstream.ErrProtocol):
		return "protocol"
	case errors.Is(err, upstream.ErrBackoff):
		return "backoff"
	}
	return "transport"
}

// outcomeClass is the error class of an outcome that carries no error.
func outcomeClass(outcome string) string {
	switch outcome {
	case outcomeToolError:
		return "tool"
	case outcomeProtocolError:
		return "jsonrpc"
	}
	return ""
}

// traceID is the trace of ctx's span, or "".
func traceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	return ""
}

func sinceMS(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }
