package audit

import (
	"strings"
	"time"
)

// Record kinds.
const (
	KindCall   = "call"   // a write call forwarded (or attempted) upstream
	KindDenial = "denial" // a request refused by the gateway
	KindAdmin  = "admin"  // an action on the admin surface
	// KindRotate ends a rotated file; the file sink writes it, so that
	// verification can tell that a later file exists.
	KindRotate = "rotate"
)

// Record is one audit record. The gateway fills what it knows; empty
// fields are left out of the JSON. The chain fields (Seq, PrevHash, Hash)
// belong to the file sink: Write ignores what a caller sets there.
type Record struct {
	// Time is when the request arrived; Write sets it from the clock when
	// it is zero and always stores it in UTC.
	Time time.Time `json:"time"`
	// Kind is KindCall, KindDenial or KindAdmin.
	Kind          string `json:"kind"`
	RequestID     string `json:"request_id,omitempty"`
	Principal     string `json:"principal,omitempty"`
	ClientName    string `json:"client_name,omitempty"`
	ClientVersion string `json:"client_version,omitempty"`
	SessionID     string `json:"session_id,omitempty"`
	Server        string `json:"server,omitempty"`
	// ServerVersion is the version from the server's serverInfo.
	ServerVersion string `json:"server_version,omitempty"`
	Tool          string `json:"tool,omitempty"`
	ToolVersion   string `json:"tool_version,omitempty"`
	// ArgsHMAC is "hmac-sha256:<hex>" from [ArgsHMAC]; empty when the call
	// had no arguments. The arguments themselves are never recorded.
	ArgsHMAC string `json:"args_hmac,omitempty"`
	// Outcome is one of the gateway's outcomes (ok, tool_error, denied, ...).
	Outcome    string `json:"outcome,omitempty"`
	ErrorClass string `json:"error_class,omitempty"`
	// LatencyMS is the time from request to response in milliseconds,
	// with a fractional part.
	LatencyMS float64 `json:"latency_ms,omitempty"`
	// Rule names the policy rule that decided.
	Rule    string   `json:"rule,omitempty"`
	TraceID string   `json:"trace_id,omitempty"`
	Flags   []string `json:"flags,omitempty"`
	// Action and Detail describe an admin action, such as "kill" with
	// {"server": "github", "tool": "create_issue"}.
	Action string            `json:"action,omitempty"`
	Detail map[string]string `json:"detail,omitempty"`

	// Seq numbers the records of a chain from 1.
	Seq uint64 `json:"seq,omitempty"`
	// PrevHash is the Hash of the previous record, or 64 zeros for the
	// first record of a chain.
	PrevHash string `json:"prev_hash,omitempty"`
	// Hash is the hex SHA-256 of the record's line without its hash
	// member (the last one): see encodeLine.
	Hash string `json:"hash,omitempty"`
}

// unchained returns a copy of r without the chain fields.
func (r Record) unchained() Record {
	r.Seq, r.PrevHash, r.Hash = 0, "", ""
	return r
}

// withoutNUL returns a copy of r in which every NUL character is replaced
// by U+FFFD: PostgreSQL text and jsonb cannot hold NUL, and one client-sent
// NUL must not make a whole batch fail.
func (r Record) withoutNUL() Record {
	fix := func(s *string) {
		if strings.IndexByte(*s, 0) >= 0 {
			*s = strings.ReplaceAll(*s, "\x00", "\uFFFD")
		}
	}
	for _, s := range []*string{
		&r.Kind, &r.RequestID, &r.Principal, &r.ClientName, &r.ClientVersion,
		&r.SessionID, &r.Server, &r.ServerVersion, &r.Tool, &r.ToolVersion,
		&r.ArgsHMAC, &r.Outcome, &r.ErrorClass, &r.Rule, &r.TraceID, &r.Action,
	} {
		fix(s)
	}
	if len(r.Flags) > 0 {
		flags := make([]string, len(r.Flags))
		for i, f := range r.Flags {
			fix(&f)
			flags[i] = f
		}
		r.Flags = flags
	}
	if len(r.Detail) > 0 {
		d := make(map[string]string, len(r.Detail))
		for k, v := range r.Detail {
			fix(&k)
			fix(&v)
			d[k] = v
		}
		r.Detail = d
	}
	return r
}
