package telemetry

import "sync"

// Other is the label value that every value outside a label's known set
// folds into, so that no caller can create series at will.
const Other = "_other"

// Label caps. A catalog past maxCatalogTools keeps its first tools as
// labels; the rest count as Other.
const (
	maxCatalogTools = 2000
	maxReplicas     = 32  // per server
	maxNamedValues  = 256 // rules, limits, sinks, pin states: per label
)

// methods are the MCP methods that get their own label value; "" is a
// request that is not JSON-RPC (a GET stream, a DELETE). Every other method
// counts as Other.
var methods = []string{
	"",
	"initialize",
	"ping",
	"tools/list",
	"tools/call",
	"prompts/list",
	"prompts/get",
	"resources/list",
	"resources/read",
	"resources/templates/list",
	"resources/subscribe",
	"resources/unsubscribe",
	"completion/complete",
	"logging/setLevel",
	"server/discover",
	"subscriptions/listen",
	"tasks/get",
	"tasks/result",
	"tasks/list",
	"tasks/cancel",
	"sampling/createMessage",
	"elicitation/create",
	"roots/list",
	"notifications/initialized",
	"notifications/cancelled",
	"notifications/progress",
	"notifications/message",
	"notifications/roots/list_changed",
	"notifications/tools/list_changed",
	"notifications/prompts/list_changed",
	"notifications/resources/list_changed",
	"notifications/resources/updated",
	"notifications/elicitation/complete",
	"notifications/tasks/status",
	Other,
}

// Outcomes, one per request (ARCHITECTURE.md: outcome taxonomy).
const (
	OutcomeOK              = "ok"
	OutcomeToolError       = "tool_error"
	OutcomeProtocolError   = "protocol_error"
	OutcomeTransportError  = "transport_error"
	OutcomeUnauthenticated = "unauthenticated"
	OutcomeDenied          = "denied"
	OutcomeRateLimited     = "rate_limited"
	OutcomeKilled          = "killed"
	OutcomeInvalid         = "invalid"
)

var outcomes = []string{
	OutcomeOK, OutcomeToolError, OutcomeProtocolError, OutcomeTransportError,
	OutcomeUnauthenticated, OutcomeDenied, OutcomeRateLimited, OutcomeKilled,
	OutcomeInvalid, Other,
}

// Kinds of upstream error, the kind label of mcpgate_upstream_errors_total.
const (
	UpstreamErrConnect  = "connect"     // dial, DNS or TLS handshake failed
	UpstreamErrTimeout  = "timeout"     // connect or response timeout
	UpstreamErrStatus   = "http_status" // an HTTP status the gateway cannot use (5xx, unexpected 4xx)
	UpstreamErrStream   = "stream"      // an SSE stream or stdio pipe broke mid-response
	UpstreamErrDecode   = "decode"      // the upstream sent something that is not a valid message
	UpstreamErrProcess  = "process"     // a stdio server exited or could not start
	UpstreamErrBreaker  = "breaker"     // the breaker refused the call
	UpstreamErrTooLarge = "too_large"   // a message over the response size cap
)

var upstreamErrKinds = []string{
	UpstreamErrConnect, UpstreamErrTimeout, UpstreamErrStatus, UpstreamErrStream,
	UpstreamErrDecode, UpstreamErrProcess, UpstreamErrBreaker, UpstreamErrTooLarge, Other,
}

// Stream kinds, the kind label of mcpgate_streams_active.
const (
	StreamGet  = "get"  // a standalone GET stream
	StreamPost = "post" // an SSE response to a POST
)

// methodIdx returns the position of method in methods, Other's if absent.
// A switch, not a map: it is on the hot path and compiles to a few
// comparisons; TestLabelIndexes keeps it in step with methods.
func methodIdx(method string) int {
	switch method {
	case "":
		return 0
	case "initialize":
		return 1
	case "ping":
		return 2
	case "tools/list":
		return 3
	case "tools/call":
		return 4
	case "prompts/list":
		return 5
	case "prompts/get":
		return 6
	case "resources/list":
		return 7
	case "resources/read":
		return 8
	case "resources/templates/list":
		return 9
	case "resources/subscribe":
		return 10
	case "resources/unsubscribe":
		return 11
	case "completion/complete":
		return 12
	case "logging/setLevel":
		return 13
	case "server/discover":
		return 14
	case "subscriptions/listen":
		return 15
	case "tasks/get":
		return 16
	case "tasks/result":
		return 17
	case "tasks/list":
		return 18
	case "tasks/cancel":
		return 19
	case "sampling/createMessage":
		return 20
	case "elicitation/create":
		return 21
	case "roots/list":
		return 22
	case "notifications/initialized":
		return 23
	case "notifications/cancelled":
		return 24
	case "notifications/progress":
		return 25
	case "notifications/message":
		return 26
	case "notifications/roots/list_changed":
		return 27
	case "notifications/tools/list_changed":
		return 28
	case "notifications/prompts/list_changed":
		return 29
	case "notifications/resources/list_changed":
		return 30
	case "notifications/resources/updated":
		return 31
	case "notifications/elicitation/complete":
		return 32
	case "notifications/tasks/status":
		return 33
	}
	return len(methods) - 1
}

// outcomeIdx returns the position of outcome in outcomes, Other's if
// absent.
func outcomeIdx(outcome string) int {
	switch outcome {
	case OutcomeOK:
		return 0
	case OutcomeToolError:
		return 1
	case OutcomeProtocolError:
		return 2
	case OutcomeTransportError:
		return 3
	case OutcomeUnauthenticated:
		return 4
	case OutcomeDenied:
		return 5
	case OutcomeRateLimited:
		return 6
	case OutcomeKilled:
		return 7
	case OutcomeInvalid:
		return 8
	}
	return len(outcomes) - 1
}

// fold returns v if it is one of values, and Other if not.
func fold(v string, values []string) string {
	for _, known := range values {
		if v == known {
			return v
		}
	}
	return Other
}

// namedValues admits label values that come from configuration (rule,
// limit and sink names), first come first served up to a cap, so that a
// mistake upstream of the metrics cannot grow series without bound.
type namedValues struct {
	mu   sync.Mutex // guards seen
	seen map[string]struct{}
}

func (n *namedValues) admit(v string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.seen[v]; ok {
		return v
	}
	if n.seen == nil {
		n.seen = make(map[string]struct{})
	}
	if len(n.seen) >= maxNamedValues {
		return Other
	}
	n.seen[v] = struct{}{}
	return v
}
