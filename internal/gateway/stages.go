package gateway

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/mcpgate/mcpgate/internal/identity"
)

// The request path's stages (ARCHITECTURE.md): Observe → Authenticate →
// Decode → Authorize → Limit → Route → Upstream. Observe, Decode, Route and
// Upstream live in this package; the others are seams declared here and
// filled by their own packages as they land.

// Authenticator establishes who is calling. ok is false when the request
// carries no valid credentials (the client gets 401); err means
// authentication itself broke.
type Authenticator interface {
	Authenticate(r *http.Request) (p identity.Principal, ok bool, err error)
}

// Call is what authorization and limits decide on: one client request after
// routing, with the server and tool it resolves to.
type Call struct {
	Principal     identity.Principal
	ClientName    string // the client's self-declared clientInfo
	ClientVersion string
	SessionID     string
	Method        string
	Server        string // "" for requests the gateway answers itself
	Tool          string // the server's own tool or prompt name
	URI           string // the resource of resources/read
	Params        []byte // raw params as the upstream will receive them
	Args          []byte // tools/call arguments, nil when absent

	// The tool's effective annotations (tools/call only).
	ReadOnly, Destructive, Idempotent, OpenWorld bool
}

// Decision is an authorization outcome.
type Decision struct {
	Allow  bool
	Rule   string   // the rule that decided, for logs and audit
	Reason string   // short public reason for a denial
	DryRun []string // dry-run rules that would have changed the outcome
	Err    error    // an evaluation problem, for the log only
}

// Authorizer decides whether a call may proceed, and whether a catalog
// item is shown at all: Visible sees a Call without arguments and must be
// false only when every call of the item would be refused.
type Authorizer interface {
	Authorize(ctx context.Context, c *Call) Decision
	Visible(ctx context.Context, c *Call) bool
}

// Limiter decides whether a call fits its rate limits and budgets.
type Limiter interface {
	Limit(ctx context.Context, c *Call) LimitVerdict
}

// LimitVerdict is a Limiter's outcome. A refusal carries the public
// message that names the limit and when to retry.
type LimitVerdict struct {
	Allowed    bool
	Limit      string        // the limit that refused
	RetryAfter time.Duration // 0 when waiting does not help
	Message    string
	Data       []byte // the JSON-RPC error's data
}

// anonymous is the authenticator used while no authentication is
// configured: every caller is the one anonymous principal. serve refuses a
// non-loopback listener in that state unless told otherwise.
type anonymous struct{}

func (anonymous) Authenticate(*http.Request) (identity.Principal, bool, error) {
	return identity.Anonymous(), true, nil
}

// allowAll is the authorizer while no policy is configured.
type allowAll struct{}

func (allowAll) Authorize(context.Context, *Call) Decision { return Decision{Allow: true} }
func (allowAll) Visible(context.Context, *Call) bool       { return true }

// unlimited is the limiter while no limits are configured.
type unlimited struct{}

func (unlimited) Limit(context.Context, *Call) LimitVerdict { return LimitVerdict{Allowed: true} }

// IsLoopback reports whether a listen address binds only loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
