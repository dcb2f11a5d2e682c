package gateway

import (
	"fmt"
	"net/http"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// httpError is every client-facing failure: a status, a JSON-RPC code and a
// short public message for the client (read by a model: factual, never
// echoing upstream bodies or secrets), and the cause for the log.
type httpError struct {
	Status  int
	Code    int64
	Msg     string
	Data    []byte // optional JSON for the error's data member
	Outcome string
	Err     error
}

func (e *httpError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Msg, e.Err)
	}
	return e.Msg
}

func (e *httpError) Unwrap() error { return e.Err }

// invalid returns a 400 for a request the gateway refuses to read.
func invalid(code int64, format string, args ...any) *httpError {
	return &httpError{Status: http.StatusBadRequest, Code: code, Msg: fmt.Sprintf(format, args...), Outcome: outcomeInvalid}
}

// render writes e as a JSON-RPC error response carrying id (null if nil).
func (e *httpError) render(w http.ResponseWriter, id []byte) {
	status := e.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(mcpwire.NewError(id, e.Code, e.Msg, e.Data))
}

// Outcomes, one per request (ARCHITECTURE.md: outcome taxonomy).
const (
	outcomeOK              = "ok"
	outcomeToolError       = "tool_error"
	outcomeProtocolError   = "protocol_error"
	outcomeTransportError  = "transport_error"
	outcomeUnauthenticated = "unauthenticated"
	outcomeDenied          = "denied"
	outcomeRateLimited     = "rate_limited"
	outcomeKilled          = "killed"
	outcomeInvalid         = "invalid"
)
