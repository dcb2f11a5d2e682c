// Package limit owns the gateway's limits: rate limits (GCRA) per
// principal, tenant, server, tool and session, per-session tool-call
// budgets, caps on calls and streams in flight, and retry-storm dampening
// (coalescing identical reads, remembering identical writes).
//
// Rate limits and budgets are counted in Redis when state.redis is
// configured, so that every replica shares them, and in process memory
// otherwise. While Redis cannot be reached each process falls back to its
// own memory, logs the change once and counts the calls decided that way
// (see [Limiter.Fallbacks]), and tries Redis again every
// [Options.RedisRetry]. Concurrency and stream caps are always local to the
// process.
package limit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpgate/mcpgate/internal/config"
)

// Defaults of [Options].
const (
	DefaultKeyPrefix    = "mcpgate:"
	DefaultSessionTTL   = 24 * time.Hour
	DefaultRedisTimeout = 250 * time.Millisecond
	DefaultRedisRetry   = time.Second
)

// Options tune a [Limiter]; the zero value means the defaults.
type Options struct {
	// Logger receives Redis outages and recoveries; nil discards them.
	Logger *slog.Logger
	// Clock returns the current time; nil means time.Now. It drives the
	// local backend, the caps and the write tracker. The Redis backend
	// counts with the Redis server's clock, so that replicas agree.
	Clock func() time.Time
	// KeyPrefix starts every Redis key; default "mcpgate:".
	KeyPrefix string
	// SessionTTL is how long a session's call count
	// (limits.budgets.calls_per_session) is kept after its last call. Set
	// it to sessions.idle_timeout; default 24h.
	SessionTTL time.Duration
	// RedisTimeout bounds one Redis round trip; default 250ms.
	RedisTimeout time.Duration
	// RedisRetry is how long a process stays on its local backend after a
	// Redis failure before it tries Redis again; default 1s.
	RedisRetry time.Duration
}

// Call is what [Limiter.Check] counts: one client request after routing.
type Call struct {
	// Principal is the caller's identity.Principal.Key().
	Principal string
	Tenant    string
	// Server is the upstream the call goes to; "" for requests the
	// gateway answers itself.
	Server string
	// Tool is the server's own tool name; only read when IsToolCall.
	Tool string
	// Session is the gateway session ID; "" outside a session (the
	// stateless era).
	Session string
	// IsToolCall marks tools/call. Budgets, tool filters and limits keyed
	// by tool apply to tool calls only.
	IsToolCall bool
}

// Verdict is the outcome of a check. A refusal names the limit and says in
// Message, for the client, what was reached and when to retry.
type Verdict struct {
	Allowed bool
	// Limit names the limit that refused: a limits.rate name,
	// "budget.calls_per_minute", "budget.calls_per_session",
	// "concurrency.per_principal" or "concurrency.per_server".
	Limit string
	// RetryAfter is when the call would be allowed; 0 when waiting does
	// not help (the session's budget is spent).
	RetryAfter time.Duration
	// Message is the public refusal text, safe to send to the client.
	Message string
}

// RetryAfterSeconds is RetryAfter rounded up to whole seconds, at least 1,
// as Retry-After and the JSON-RPC error data carry it; 0 when RetryAfter
// is 0.
func (v Verdict) RetryAfterSeconds() int {
	if v.RetryAfter <= 0 {
		return 0
	}
	return int((v.RetryAfter + time.Second - 1) / time.Second)
}

// Data is the JSON-RPC error data of a refusal:
// {"limit":NAME,"retryAfterSeconds":N}, without retryAfterSeconds when
// waiting does not help.
func (v Verdict) Data() []byte {
	b := []byte(`{"limit":`)
	b = strconv.AppendQuote(b, v.Limit)
	if s := v.RetryAfterSeconds(); s > 0 {
		b = append(b, `,"retryAfterSeconds":`...)
		b = strconv.AppendInt(b, int64(s), 10)
	}
	return append(b, '}')
}

var allowed = Verdict{Allowed: true}

// Limiter applies the limits section of the configuration. It is safe for
// concurrent use.
type Limiter struct {
	rules []*rule
	clock func() time.Time
	epoch time.Time
	log   *slog.Logger
	local *localStore
	rdb   *redisBackend // nil without state.redis
	caps  *caps
	write *Writes
}

// New compiles cfg into a Limiter. With state.redis set, rate limits and
// budgets are shared through Redis; New does not contact Redis (the first
// call does, see [Limiter.Ping]). The URL is read from the resolved value
// of state.redis.url, or resolved now if it was not.
func New(cfg config.Limits, state config.State, opts Options) (*Limiter, error) {
	opts = withDefaults(opts)
	l := &Limiter{
		clock: opts.Clock,
		epoch: opts.Clock(),
		log:   opts.Logger,
		caps:  newCaps(cfg.Concurrency, cfg.MaxStreamsPerPrincipal),
	}
	rules, err := compileRules(cfg, opts)
	if err != nil {
		return nil, err
	}
	l.rules = rules
	l.local = newLocalStore(len(rules))
	if state.Redis != nil {
		client, err := redisClient(state.Redis.URL)
		if err != nil {
			return nil, err
		}
		l.rdb = newRedisBackend(client, opts, l.epoch)
	}
	l.write = newWrites(DuplicateWindow(cfg), l.rdb, l.clock, l.log)
	return l, nil
}

func withDefaults(o Options) Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = DefaultKeyPrefix
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = DefaultSessionTTL
	}
	if o.RedisTimeout <= 0 {
		o.RedisTimeout = DefaultRedisTimeout
	}
	if o.RedisRetry <= 0 {
		o.RedisRetry = DefaultRedisRetry
	}
	return o
}

func redisClient(v config.Value) (*redis.Client, error) {
	u := v.Resolved()
	if u == "" {
		var err error
		if u, err = v.Resolve(); err != nil {
			return nil, fmt.Errorf("limit: state.redis.url: %w", err)
		}
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		// A url.Error quotes the whole URL, password included.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return nil, fmt.Errorf("limit: state.redis.url: %w", err)
	}
	return redis.NewClient(opt), nil
}

// Close releases the Redis connections, if any.
func (l *Limiter) Close() error {
	if l.rdb == nil {
		return nil
	}
	return l.rdb.client.Close()
}

// Ping reports whether Redis answers; nil without Redis.
func (l *Limiter) Ping(ctx context.Context) error {
	if l.rdb == nil {
		return nil
	}
	return l.rdb.client.Ping(ctx).Err()
}

// Fallbacks counts the checks and write lookups decided locally because
// Redis could not be reached (0 without Redis), for a metric.
func (l *Limiter) Fallbacks() uint64 {
	if l.rdb == nil {
		return 0
	}
	return l.rdb.fallbacks.Load()
}

// Writes returns the tracker of recent writes, with the window of
// limits.dampening.window.
func (l *Limiter) Writes() *Writes { return l.write }

// now is the time since the limiter started, from the monotonic clock
// where the clock has one.
func (l *Limiter) now() int64 { return int64(l.clock().Sub(l.epoch)) }

// maxRules is how many rules one call may match before the scratch space
// of Check moves to the heap.
const maxRules = 8

// Check counts c against every rate limit and budget that applies to it
// and reports whether it may proceed. The rules are checked together and
// atomically: a call refused by one rule takes nothing from the others.
// When several rules refuse, the verdict names the one that frees last.
func (l *Limiter) Check(ctx context.Context, c Call) Verdict {
	var buf [maxRules]*rule
	matched := buf[:0]
	for _, r := range l.rules {
		if r.applies(&c) {
			matched = append(matched, r)
		}
	}
	if len(matched) == 0 {
		return allowed
	}
	var (
		refused int
		wait    time.Duration
	)
	if l.rdb != nil && l.rdb.usable() {
		var err error
		refused, wait, err = l.rdb.check(ctx, matched, &c)
		if err == nil {
			return l.verdict(matched, refused, wait, &c)
		}
		l.rdb.failed(ctx, err)
	}
	if l.rdb != nil {
		l.rdb.fallbacks.Add(1)
	}
	refused, wait = l.local.check(l.now(), matched, &c)
	return l.verdict(matched, refused, wait, &c)
}

// verdict turns the index of the refusing rule (-1: none) and its wait
// (negative: waiting does not help) into a Verdict.
func (l *Limiter) verdict(matched []*rule, refused int, wait time.Duration, c *Call) Verdict {
	if refused < 0 {
		return allowed
	}
	r := matched[refused]
	v := Verdict{Limit: r.name, RetryAfter: max(wait, 0)}
	switch {
	case r.name == budgetSession:
		v.Message = fmt.Sprintf("tool-call budget of this session (%d calls) is spent; no more tool calls are accepted in this session", r.count)
	case r.name == budgetMinute:
		v.Message = fmt.Sprintf("tool-call budget of this session (%s) reached; retry after %s", r.desc, formatWait(wait))
	case c.IsToolCall && c.Tool != "":
		v.Message = fmt.Sprintf("rate limit %q (%s) reached for tool %s; retry after %s", r.name, r.desc, c.Tool, formatWait(wait))
	default:
		v.Message = fmt.Sprintf("rate limit %q (%s) reached; retry after %s", r.name, r.desc, formatWait(wait))
	}
	return v
}

// formatWait rounds d up to whole seconds, at least 1s, as in "12s" or
// "2m5s".
func formatWait(d time.Duration) string {
	d = max((d + time.Second - 1).Truncate(time.Second), time.Second)
	return config.Duration(d).String()
}
