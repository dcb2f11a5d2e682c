package limit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpgate/mcpgate/internal/config"
)

// DefaultDuplicateWindow is limits.dampening.window when unset.
const DefaultDuplicateWindow = 10 * time.Second

// Bounds of the write tracker.
const (
	// inFlightTTL is how long a write that was never recorded (the
	// gateway lost track of it) blocks identical writes.
	inFlightTTL = 15 * time.Minute
	// maxWrites caps the writes one process remembers; past it, new
	// writes are not tracked (dampening is best effort; rate limits still
	// hold).
	maxWrites = 100_000
)

// DuplicateWindow is limits.dampening.window, or its default.
func DuplicateWindow(cfg config.Limits) time.Duration {
	if w := cfg.Dampening.Window.D(); w > 0 {
		return w
	}
	return DefaultDuplicateWindow
}

// CoalesceReads is limits.dampening.coalesce_reads, default true.
func CoalesceReads(cfg config.Limits) bool {
	return cfg.Dampening.CoalesceReads == nil || *cfg.Dampening.CoalesceReads
}

// DuplicateMode says what to do with a repeated write of a tool:
// config.DuplicatesRefuse or config.DuplicatesFlag, from the tool's
// override (servers.<name>.tools.<tool>.duplicates, o may be nil), else
// limits.dampening.duplicate_writes, else flag.
func DuplicateMode(cfg config.Limits, o *config.ToolOverride) string {
	switch {
	case o != nil && o.Duplicates != "":
		return o.Duplicates
	case cfg.Dampening.DuplicateWrites != "":
		return cfg.Dampening.DuplicateWrites
	}
	return config.DuplicatesFlag
}

// PriorCall is what is known of an earlier identical write.
type PriorCall struct {
	// InFlight is true while the earlier call has not ended.
	InFlight bool
	// Outcome is the earlier call's outcome as recorded ("ok",
	// "tool_error", ...); empty while in flight.
	Outcome string
	// Age is the time since the earlier call ended, or started while in
	// flight.
	Age time.Duration
	// RetryAfter is when the window of the earlier call ends; while it is
	// in flight, the whole window (it starts when the call ends).
	RetryAfter time.Duration
}

// Message is the public text refusing a repeat of p, a call to tool.
func (p PriorCall) Message(tool string) string {
	if p.InFlight {
		return fmt.Sprintf("identical call to %s is still in progress (started %s); not repeated. Change the arguments or wait until it has finished to repeat it.", tool, ago(p.Age))
	}
	return fmt.Sprintf("identical call to %s already made %s (outcome: %s); not repeated. Change the arguments or wait %s to repeat it.", tool, ago(p.Age), p.Outcome, formatWait(p.RetryAfter))
}

func ago(d time.Duration) string {
	if d < time.Second {
		return "just now"
	}
	return config.Duration(d.Truncate(time.Second)).String() + " ago"
}

// Writes remembers recent writes by [CallKey], so that an identical write
// repeated within the window can be flagged or refused. With Redis the
// writes of every replica are seen; while Redis is unreachable, those of
// this process only. It is safe for concurrent use.
//
// The gateway calls Seen before forwarding a write; when it was not a
// duplicate, Seen has marked the key in flight, and the gateway must end
// with Record (the call reached the upstream, with this outcome) or Forget
// (it never did). A flagged duplicate that is forwarded is recorded too,
// which starts its window anew.
type Writes struct {
	window time.Duration
	clock  func() time.Time
	rdb    *redisBackend
	log    *slog.Logger

	mu        sync.Mutex // guards the fields below
	m         map[string]*writeEntry
	sweepAt   int
	lastSweep time.Time
	full      bool // maxWrites was reached and logged
}

type writeEntry struct {
	inFlight bool
	outcome  string
	at, exp  time.Time
}

func newWrites(window time.Duration, rdb *redisBackend, clock func() time.Time, log *slog.Logger) *Writes {
	return &Writes{window: window, clock: clock, rdb: rdb, log: log, m: make(map[string]*writeEntry), sweepAt: minSweep}
}

// Window is how long an identical write counts as a repeat.
func (w *Writes) Window() time.Duration { return w.window }

// Seen reports whether an identical write (same key) is in flight or ended
// within the window, and what is known of it. When it is not, Seen marks
// key in flight, atomically, so that of two identical writes at once only
// one is not a duplicate.
func (w *Writes) Seen(ctx context.Context, key string) (prev PriorCall, dup bool) {
	if b := w.rdb; b != nil {
		if b.usable() {
			p, d, err := w.seenRedis(ctx, key, w.clock())
			if err == nil {
				return p, d
			}
			b.failed(ctx, err)
		}
		b.fallbacks.Add(1)
	}
	now := w.clock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if e := w.m[key]; e != nil && now.Before(e.exp) {
		return e.prior(now, w.window), true
	}
	w.put(key, &writeEntry{inFlight: true, at: now, exp: now.Add(inFlightTTL)}, now)
	return PriorCall{}, false
}

// put stores e under key, unless the tracker is full. w.mu must be held.
func (w *Writes) put(key string, e *writeEntry, now time.Time) {
	if len(w.m) >= w.sweepAt || now.Sub(w.lastSweep) >= sweepEvery {
		w.sweep(now)
	}
	if _, ok := w.m[key]; !ok && len(w.m) >= maxWrites {
		if !w.full {
			w.full = true
			w.log.Warn("too many recent writes to remember; new writes are not checked for duplicates until older ones expire", "max", maxWrites)
		}
		return
	}
	w.m[key] = e
}

func (e *writeEntry) prior(now time.Time, window time.Duration) PriorCall {
	if e.inFlight {
		return PriorCall{InFlight: true, Age: now.Sub(e.at), RetryAfter: window}
	}
	return PriorCall{Outcome: e.outcome, Age: now.Sub(e.at), RetryAfter: e.exp.Sub(now)}
}

func (w *Writes) sweep(now time.Time) {
	for k, e := range w.m {
		if !now.Before(e.exp) {
			delete(w.m, k)
		}
	}
	w.sweepAt = max(2*len(w.m), minSweep)
	w.lastSweep = now
	if len(w.m) < maxWrites {
		w.full = false
	}
}

// Record notes that the write of key ended with outcome; identical writes
// are repeats for the window from now. It records even when ctx has ended
// (the client left while its call ran), within its own Redis timeout.
func (w *Writes) Record(ctx context.Context, key, outcome string) {
	ctx = context.WithoutCancel(ctx)
	now := w.clock()
	if b := w.rdb; b != nil && b.usable() {
		rctx, cancel := context.WithTimeout(ctx, b.timeout)
		err := b.client.Set(rctx, w.redisKey(key), "d:"+strconv.FormatInt(now.UnixMilli(), 10)+":"+outcome, w.window).Err()
		cancel()
		if err == nil {
			b.succeeded()
		} else {
			b.failed(ctx, err)
		}
	}
	// Kept locally as well, for when Redis fails.
	w.mu.Lock()
	w.put(key, &writeEntry{outcome: outcome, at: now, exp: now.Add(w.window)}, now)
	w.mu.Unlock()
}

// Forget drops the in-flight mark Seen put on key, for a write that never
// reached the upstream. A recorded outcome is kept. Like Record, it works
// after ctx has ended.
func (w *Writes) Forget(ctx context.Context, key string) {
	ctx = context.WithoutCancel(ctx)
	if b := w.rdb; b != nil && b.usable() {
		rctx, cancel := context.WithTimeout(ctx, b.timeout)
		err := forgetScript.Run(rctx, b.client, []string{w.redisKey(key)}).Err()
		cancel()
		if err != nil {
			b.failed(ctx, err)
		}
	}
	w.mu.Lock()
	if e := w.m[key]; e != nil && e.inFlight {
		delete(w.m, key)
	}
	w.mu.Unlock()
}

// seenScript returns the value and remaining time of a tracked write, or
// marks the key in flight and returns nothing.
var seenScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then return {v, redis.call('PTTL', KEYS[1])} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {}
`)

var forgetScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 2) == 'p:' then redis.call('DEL', KEYS[1]) end
return 0
`)

// Redis values: "p:<unix ms>" in flight since then, "d:<unix ms>:<outcome>"
// ended then.
func (w *Writes) seenRedis(ctx context.Context, key string, now time.Time) (PriorCall, bool, error) {
	rctx, cancel := context.WithTimeout(ctx, w.rdb.timeout)
	defer cancel()
	res, err := seenScript.Run(rctx, w.rdb.client, []string{w.redisKey(key)},
		"p:"+strconv.FormatInt(now.UnixMilli(), 10), inFlightTTL.Milliseconds()).Slice()
	if err != nil {
		return PriorCall{}, false, err
	}
	w.rdb.succeeded()
	if len(res) == 0 {
		return PriorCall{}, false, nil
	}
	v, _ := res[0].(string)
	pttl, _ := res[1].(int64)
	kind, rest, _ := strings.Cut(v, ":")
	msStr, outcome, _ := strings.Cut(rest, ":")
	ms, perr := strconv.ParseInt(msStr, 10, 64)
	if perr != nil || (kind != "p" && kind != "d") {
		return PriorCall{}, false, errors.New("limit: unexpected write record in Redis")
	}
	age := max(now.Sub(time.UnixMilli(ms)), 0)
	if kind == "p" {
		return PriorCall{InFlight: true, Age: age, RetryAfter: w.window}, true, nil
	}
	return PriorCall{Outcome: outcome, Age: age, RetryAfter: time.Duration(max(pttl, 0)) * time.Millisecond}, true, nil
}

func (w *Writes) redisKey(key string) string { return w.rdb.prefix + "dw:" + key }
