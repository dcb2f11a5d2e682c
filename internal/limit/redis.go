package limit

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// checkScript checks a call against several buckets and, when every
// bucket allows it, takes it from all of them: one round trip, atomic.
// Time is the Redis server's, in microseconds, so that replicas agree.
//
// KEYS[i] is a bucket; ARGV[3i-2..3i] its kind and parameters:
// "g", interval, tolerance for GCRA (the key holds the theoretical arrival
// time, and expires when the bucket is full again); "c", limit, ttl in ms
// for a counter that never refills (the key expires ttl after its last
// call). It returns {0, 0} when allowed, or {i, wait} for the refusing
// bucket that frees last, wait in microseconds or -1 for never.
var checkScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local vals, ttls = {}, {}
local worst, worstWait = 0, 0
for i = 1, #KEYS do
  local kind, a, b = ARGV[3*i-2], tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])
  local cur = tonumber(redis.call('GET', KEYS[i]))
  if kind == 'g' then
    local tat = now
    if cur and cur > now then tat = cur end
    local nxt = tat + a
    local wait = nxt - b - now
    if wait > 0 then
      if worstWait >= 0 and wait > worstWait then worst, worstWait = i, wait end
    else
      vals[i], ttls[i] = nxt, math.ceil((nxt - now) / 1000)
    end
  else
    local n = (cur or 0) + 1
    if n > a then
      worst, worstWait = i, -1
    else
      vals[i], ttls[i] = n, b
    end
  end
end
if worst > 0 then return {worst, worstWait} end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], string.format('%d', vals[i]), 'PX', string.format('%d', ttls[i]))
end
return {0, 0}
`)

// redisBackend shares buckets between replicas. After a failure it is
// marked down and the limiter decides locally, so that an outage costs
// requests no Redis timeouts; while down, a background ping every retry
// interval, started by a request, finds out when Redis is back.
type redisBackend struct {
	client    *redis.Client
	clock     func() time.Time
	epoch     time.Time
	prefix    string
	timeout   time.Duration
	retry     time.Duration
	log       *slog.Logger
	down      atomic.Bool
	nextProbe atomic.Int64 // limiter clock, ns: when down, ping Redis after it
	probing   atomic.Bool  // a ping is under way
	fallbacks atomic.Uint64
	probed    func() // called after each ping, for tests
}

func newRedisBackend(client *redis.Client, opts Options, epoch time.Time) *redisBackend {
	return &redisBackend{client: client, clock: opts.Clock, epoch: epoch, prefix: opts.KeyPrefix,
		timeout: opts.RedisTimeout, retry: opts.RedisRetry, log: opts.Logger}
}

func (b *redisBackend) now() int64 { return int64(b.clock().Sub(b.epoch)) }

// usable reports whether Redis should be tried now; while it is down, it
// starts a ping when one is due.
func (b *redisBackend) usable() bool {
	if !b.down.Load() {
		return true
	}
	if now := b.now(); now >= b.nextProbe.Load() && b.probing.CompareAndSwap(false, true) {
		b.nextProbe.Store(now + int64(b.retry))
		go b.probe()
	}
	return false
}

func (b *redisBackend) probe() {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	err := b.client.Ping(ctx).Err()
	cancel()
	if err == nil {
		b.succeeded()
	}
	b.probing.Store(false)
	if b.probed != nil {
		b.probed()
	}
}

// failed records a Redis failure of a round trip made for ctx. A failure
// because the caller gave up (ctx ended) says nothing about Redis and is
// not recorded.
func (b *redisBackend) failed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	b.nextProbe.Store(b.now() + int64(b.retry))
	if !b.down.Swap(true) {
		b.log.Warn("redis unreachable; limits are counted by each process alone until it answers again", "error", err)
	}
}

// succeeded records a Redis answer.
func (b *redisBackend) succeeded() {
	if b.down.Load() && b.down.Swap(false) {
		b.log.Info("redis reachable again; limits are shared between replicas again")
	}
}

func (b *redisBackend) check(ctx context.Context, rules []*rule, c *Call) (refused int, wait time.Duration, err error) {
	keys := make([]string, len(rules))
	args := make([]any, 0, 3*len(rules))
	for i, r := range rules {
		keys[i] = r.redisKey(c)
		args = append(args, r.redisArgs[:]...)
	}
	rctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	res, err := checkScript.Run(rctx, b.client, keys, args...).Int64Slice()
	if err != nil {
		return 0, 0, err
	}
	if len(res) != 2 || res[0] < 0 || res[0] > int64(len(rules)) {
		return 0, 0, fmt.Errorf("limit: unexpected reply from the check script: %v", res)
	}
	b.succeeded()
	if res[0] == 0 {
		return -1, 0, nil
	}
	if res[1] < 0 {
		return int(res[0] - 1), -1, nil
	}
	return int(res[0] - 1), time.Duration(res[1]) * time.Microsecond, nil
}
