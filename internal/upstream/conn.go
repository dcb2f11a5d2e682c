// Package upstream owns the gateway's side of each MCP server: sessions over
// Streamable HTTP (pooled connections, Host rewritten, timeouts) and over
// stdio (a supervised child process), dial health and backoff. It speaks raw
// JSON-RPC bytes so that what the gateway did not change is never re-encoded.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// Errors a Conn or Dialer reports. They are matched with errors.Is.
var (
	// ErrSessionLost means the upstream no longer knows the session (HTTP
	// 404) or its process exited.
	ErrSessionLost = errors.New("upstream session lost")
	// ErrUnavailable means the upstream could not be reached.
	ErrUnavailable = errors.New("upstream unavailable")
	// ErrBackoff means a recent dial failed and the next attempt is not due.
	ErrBackoff = errors.New("upstream in backoff after a failure")
	// ErrProtocol means the upstream answered something that is not MCP.
	ErrProtocol = errors.New("upstream protocol violation")
	// ErrClosed means the Conn was closed by the gateway.
	ErrClosed = errors.New("upstream connection closed")
	// ErrBreakerOpen means the replica's circuit breaker is open after
	// repeated transport failures: the call was not sent. The error also
	// carries the remaining pause; see [RetryAfter].
	ErrBreakerOpen = errors.New("upstream circuit breaker open")
	// ErrTooLarge means one upstream message exceeded the server's
	// max_response_bytes. Errors wrapping it also wrap ErrProtocol.
	ErrTooLarge = errors.New("upstream message too large")
)

// BreakerOpenError is returned while a replica's breaker is open. It wraps
// [ErrBreakerOpen].
type BreakerOpenError struct {
	// Replica is the replica's label (host:port).
	Replica string
	// Remaining is how long calls stay paused; at least one second.
	Remaining time.Duration
}

func (e *BreakerOpenError) Error() string {
	return fmt.Sprintf("%v for replica %s; calls paused for %s", ErrBreakerOpen, e.Replica, e.Remaining)
}

// Unwrap makes errors.Is(err, ErrBreakerOpen) hold.
func (e *BreakerOpenError) Unwrap() error { return ErrBreakerOpen }

// RetryAfter reports how long the failure behind err is expected to last:
// the remaining pause of an open circuit breaker, rounded up to whole
// seconds. ok is false when err says nothing about it.
func RetryAfter(err error) (d time.Duration, ok bool) {
	var be *BreakerOpenError
	if !errors.As(err, &be) {
		return 0, false
	}
	return max((be.Remaining + time.Second - 1).Truncate(time.Second), time.Second), true
}

// tooLarge is the error for a message over limit bytes.
func tooLarge(limit int) error {
	return fmt.Errorf("%w: %w: larger than %d bytes", ErrTooLarge, ErrProtocol, limit)
}

// StatusError is an unexpected HTTP status from an upstream. Its body is
// never kept: upstream bodies are not echoed to clients.
type StatusError struct {
	Code int
}

func (e *StatusError) Error() string { return fmt.Sprintf("upstream answered HTTP %d", e.Code) }

// Conn is one upstream MCP session, owned by one gateway session.
type Conn interface {
	// NewID returns a fresh upstream-scoped request ID (raw JSON), so a
	// caller can map a request before it is sent (cancellation may arrive
	// before the upstream answers anything).
	NewID() []byte
	// Call sends a request with id (from NewID) and returns the messages
	// the upstream sends in answer to it: related notifications and
	// requests, then the response. ctx bounds the whole exchange.
	Call(ctx context.Context, id []byte, method string, params []byte) (Stream, error)
	// Send delivers a notification, or a response to an upstream request.
	Send(ctx context.Context, msg []byte) error
	// Incoming delivers messages not related to any call (the standalone
	// stream). It is closed when the Conn is done.
	Incoming() <-chan *mcpwire.Message
	// InitResult is the upstream's answer to initialize.
	InitResult() *mcpwire.Message
	// ProtocolVersion is the version the upstream negotiated.
	ProtocolVersion() string
	// Done is closed when the session ends; Err then says why.
	Done() <-chan struct{}
	Err() error
	// Close ends the session (HTTP DELETE, or stdin closed and the process
	// reaped) and releases everything it holds.
	Close()
}

// Stream is the answer to one Call.
type Stream interface {
	// Next returns the next message. The response is the last one; after
	// it Next returns io.EOF.
	Next() (*mcpwire.Message, error)
	// ID is the raw JSON-RPC ID the request was sent with.
	ID() []byte
	// Streaming reports whether the upstream chose to answer with an event
	// stream rather than a single JSON body.
	Streaming() bool
	// Close abandons the stream; it does not cancel the upstream request.
	Close()
}

// Dialer creates upstream sessions for one configured server.
type Dialer interface {
	// Dial starts a session, sending initialize with params (the client's,
	// forwarded faithfully) and then notifications/initialized.
	Dial(ctx context.Context, params []byte) (Conn, error)
	// Health reports what the latest dial or probe found.
	Health() Health
	// Close releases pooled resources.
	Close()
}

// messageLimits bounds what the gateway accepts from upstreams.
var messageLimits = mcpwire.Limits{MaxDepth: 128}

// DefaultMaxResponseBytes caps one upstream message when the server sets no
// max_response_bytes.
const DefaultMaxResponseBytes = 16 << 20

// maxBytes returns the message cap for a configured value (0: the default).
func maxBytes(configured int64) int {
	if configured <= 0 {
		return DefaultMaxResponseBytes
	}
	return int(min(configured, 1<<40))
}

// decodeUpstream decodes an upstream message strictly.
func decodeUpstream(b []byte) (*mcpwire.Message, error) {
	m, err := mcpwire.Decode(b, messageLimits)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return m, nil
}
