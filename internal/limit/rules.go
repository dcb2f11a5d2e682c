package limit

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
)

// Names of the session budgets, as Verdict.Limit reports them.
const (
	budgetMinute  = "budget.calls_per_minute"
	budgetSession = "budget.calls_per_session"
)

// dims is a set of the parts a limit is counted per.
type dims uint8

const (
	dimPrincipal dims = 1 << iota
	dimTenant
	dimServer
	dimTool
	dimSession
)

var dimNames = map[string]dims{
	"principal": dimPrincipal,
	"tenant":    dimTenant,
	"server":    dimServer,
	"tool":      dimTool,
	"session":   dimSession,
}

// rule is one compiled limit: a GCRA bucket per key, or (count > 0) a
// counter that never refills.
type rule struct {
	name  string
	id    int32 // index in Limiter.rules
	dims  dims
	parts []dims // the dims, in a fixed order
	// GCRA: the time between calls at the steady rate and the burst
	// tolerance (burst × interval), in nanoseconds.
	interval, tolerance int64
	// count caps the calls of a key for good; the key expires ttl after
	// its last call.
	count int64
	ttl   time.Duration
	// toolCallsOnly restricts the rule to tools/call.
	toolCallsOnly  bool
	servers, tools []string
	desc           string // "100/m per principal and tool"
	redisPrefix    string // KeyPrefix + "rl:" + name + ":"
	redisArgs      [3]any // kind and parameters for the Redis script
}

func compileRules(cfg config.Limits, opts Options) ([]*rule, error) {
	var rules []*rule
	for i, rc := range cfg.Rate {
		n, per, err := config.ParseRate(rc.Rate)
		if err != nil {
			return nil, fmt.Errorf("limit: limits.rate[%d].rate: %w", i, err)
		}
		burst := rc.Burst
		if burst == 0 {
			burst = n
		}
		if burst < 1 || burst > 1_000_000 {
			return nil, fmt.Errorf("limit: limits.rate[%d].burst: must be between 1 and 1000000, got %d", i, rc.Burst)
		}
		r := &rule{name: rc.Name, servers: rc.Servers, tools: rc.Tools}
		if r.name == "" || strings.HasPrefix(r.name, "budget.") || strings.HasPrefix(r.name, "concurrency.") {
			return nil, fmt.Errorf("limit: limits.rate[%d].name: invalid name %q", i, r.name)
		}
		if len(rc.Key) == 0 {
			return nil, fmt.Errorf("limit: limits.rate[%d].key: must not be empty", i)
		}
		for _, k := range rc.Key {
			d, ok := dimNames[k]
			if !ok {
				return nil, fmt.Errorf("limit: limits.rate[%d].key: unknown key %q", i, k)
			}
			r.dims |= d
		}
		r.setGCRA(per/time.Duration(n), burst)
		r.desc = rc.Rate + " per " + strings.Join(rc.Key, " and ")
		if rc.Burst != 0 && rc.Burst != n {
			r.desc += ", burst " + strconv.Itoa(burst)
		}
		rules = append(rules, r)
	}
	if n := cfg.Budgets.CallsPerMinute; n > 0 {
		r := &rule{name: budgetMinute, dims: dimSession, toolCallsOnly: true, desc: strconv.Itoa(n) + "/m"}
		r.setGCRA(time.Minute/time.Duration(n), n)
		rules = append(rules, r)
	}
	if n := cfg.Budgets.CallsPerSession; n > 0 {
		r := &rule{name: budgetSession, dims: dimSession, toolCallsOnly: true, count: int64(n), ttl: opts.SessionTTL}
		r.redisArgs = [3]any{"c", n, max(opts.SessionTTL.Milliseconds(), 1)}
		rules = append(rules, r)
	}
	for i, r := range rules {
		r.id = int32(i)
		for _, d := range [...]dims{dimPrincipal, dimTenant, dimServer, dimTool, dimSession} {
			if r.dims&d != 0 {
				r.parts = append(r.parts, d)
			}
		}
		r.redisPrefix = opts.KeyPrefix + "rl:" + r.name + ":"
	}
	return rules, nil
}

func (r *rule) setGCRA(interval time.Duration, burst int) {
	r.interval = int64(interval)
	r.tolerance = int64(burst) * r.interval
	// Redis counts in microseconds: Lua numbers are doubles, exact to 2^53.
	us := max((r.interval+999)/1000, 1)
	r.redisArgs = [3]any{"g", us, int64(burst) * us}
}

// applies reports whether the rule counts c: its filters match and every
// part of its key is known for c.
func (r *rule) applies(c *Call) bool {
	if (r.toolCallsOnly || len(r.tools) > 0 || r.dims&dimTool != 0) && (!c.IsToolCall || c.Tool == "") {
		return false
	}
	if len(r.servers) > 0 && !slices.Contains(r.servers, c.Server) {
		return false
	}
	if len(r.tools) > 0 && !slices.Contains(r.tools, c.Tool) {
		return false
	}
	return (r.dims&dimPrincipal == 0 || c.Principal != "") &&
		(r.dims&dimTenant == 0 || c.Tenant != "") &&
		(r.dims&dimServer == 0 || c.Server != "") &&
		(r.dims&dimSession == 0 || c.Session != "")
}

// appendKey appends the parts of c that the rule's key names, each
// length-prefixed so that no value can run into the next, in a fixed
// order.
func (r *rule) appendKey(b []byte, c *Call) []byte {
	for _, d := range r.parts {
		var v string
		switch d {
		case dimPrincipal:
			v = c.Principal
		case dimTenant:
			v = c.Tenant
		case dimServer:
			v = c.Server
		case dimTool:
			v = c.Tool
		case dimSession:
			v = c.Session
		}
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return b
}

// redisKey is the rule's prefix and a hash of its key: fixed length, and
// no session ID or principal in clear in Redis.
func (r *rule) redisKey(c *Call) string {
	var buf [256]byte
	sum := sha256.Sum256(r.appendKey(append(buf[:0], byte(r.dims)), c))
	return r.redisPrefix + base64.RawURLEncoding.EncodeToString(sum[:18])
}
