package limit

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpgate/mcpgate/internal/config"
)

// testRedis returns the URL of the test Redis (REDIS_URL, default
// redis://127.0.0.1:6379/15) and a client to it. It skips the test when
// Redis does not answer, unless MCPGATE_REQUIRE_PEERS=1.
func testRedis(t testing.TB) (string, *redis.Client) {
	t.Helper()
	u := os.Getenv("REDIS_URL")
	if u == "" {
		u = "redis://127.0.0.1:6379/15"
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		if os.Getenv("MCPGATE_REQUIRE_PEERS") == "1" {
			t.Fatalf("Redis at %s: %v (MCPGATE_REQUIRE_PEERS=1)", opt.Addr, err)
		}
		t.Skipf("Redis at %s: %v", opt.Addr, err)
	}
	return u, c
}

// testPrefix returns a key prefix of the test's own and deletes its keys
// when the test ends.
func testPrefix(t testing.TB, c *redis.Client) string {
	prefix := fmt.Sprintf("mcpgate-test:%s:%d:", strings.ReplaceAll(t.Name(), "/", "."), time.Now().UnixNano())
	t.Cleanup(func() {
		ctx := context.Background()
		keys, err := c.Keys(ctx, prefix+"*").Result()
		if err == nil && len(keys) > 0 {
			err = c.Del(ctx, keys...).Err()
		}
		if err != nil {
			t.Errorf("deleting the test's keys: %v", err)
		}
	})
	return prefix
}

// newShared returns a limiter on Redis at url. Unless opts say otherwise,
// its Redis timeout is generous: on a loaded machine a slow round trip
// must not pass for an outage.
func newShared(t testing.TB, cfg config.Limits, url string, opts Options) *Limiter {
	t.Helper()
	if opts.RedisTimeout == 0 {
		opts.RedisTimeout = 5 * time.Second
	}
	l, err := New(cfg, config.State{Redis: &config.RedisState{URL: config.Literal(url)}}, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// Two limiters, like two gateway processes, share one limit: together
// they allow the burst, not twice it.
func TestRedisSharedLimit(t *testing.T) {
	url, c := testRedis(t)
	prefix := testPrefix(t, c)
	cfg := config.Limits{Rate: []config.RateLimit{rate("shared", "10/h", 0, "principal")}}
	a := newShared(t, cfg, url, Options{KeyPrefix: prefix})
	b := newShared(t, cfg, url, Options{KeyPrefix: prefix})

	var allowedN, refusedN atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		l := a
		if i%2 == 1 {
			l = b
		}
		wg.Go(func() {
			for range 3 {
				v := l.Check(context.Background(), alice)
				switch {
				case v.Allowed:
					allowedN.Add(1)
				case v.Limit != "shared" || v.RetryAfter <= 0 || v.RetryAfter > 6*time.Minute:
					t.Errorf("refusal %+v, want shared with RetryAfter in (0, 6m]", v)
				default:
					refusedN.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if allowedN.Load() != 10 || refusedN.Load() != 50 {
		t.Errorf("allowed %d and refused %d of 60 calls, want 10 and 50", allowedN.Load(), refusedN.Load())
	}
	if a.Fallbacks()+b.Fallbacks() != 0 {
		t.Errorf("%d calls fell back to the local backend with Redis up", a.Fallbacks()+b.Fallbacks())
	}
}

func TestRedisRefusedCallConsumesNothing(t *testing.T) {
	url, c := testRedis(t)
	narrow := config.RateLimit{Name: "narrow", Key: []string{"principal"}, Rate: "1/h", Tools: []string{"create_issue"}}
	l := newShared(t, config.Limits{Rate: []config.RateLimit{narrow, rate("wide", "2/h", 0, "principal")}}, url, Options{KeyPrefix: testPrefix(t, c)})
	other := alice
	other.Tool = "list_issues"
	for i, s := range []struct {
		call  Call
		allow bool
		limit string
	}{
		{alice, true, ""},
		{alice, false, "narrow"},
		{alice, false, "narrow"},
		{other, true, ""},
		{other, false, "wide"},
	} {
		v := l.Check(context.Background(), s.call)
		if v.Allowed != s.allow || v.Limit != s.limit {
			t.Fatalf("step %d: %+v, want allowed=%v limit=%q", i, v, s.allow, s.limit)
		}
	}
}

// Every key the limiter writes expires: GCRA keys when their bucket is
// full again, counters SessionTTL after the last call.
func TestRedisKeysExpire(t *testing.T) {
	url, c := testRedis(t)
	prefix := testPrefix(t, c)
	cfg := config.Limits{
		Rate:    []config.RateLimit{rate("per-user", "10/h", 0, "principal")},
		Budgets: config.Budgets{CallsPerMinute: 60, CallsPerSession: 5},
	}
	l := newShared(t, cfg, url, Options{KeyPrefix: prefix, SessionTTL: time.Hour})
	for range 3 {
		if v := l.Check(context.Background(), alice); !v.Allowed {
			t.Fatalf("refused: %+v", v)
		}
	}
	w := l.Writes()
	w.Seen(context.Background(), "k1")
	w.Seen(context.Background(), "k2")
	w.Record(context.Background(), "k2", "ok")

	ctx := context.Background()
	for _, tc := range []struct {
		pattern  string
		min, max time.Duration
	}{
		{"rl:per-user:*", 18*time.Minute - 5*time.Second, 18 * time.Minute}, // 3 calls × 6m
		{"rl:budget.calls_per_minute:*", 3*time.Second - 5*time.Second, 3 * time.Second},
		{"rl:budget.calls_per_session:*", time.Hour - 5*time.Second, time.Hour},
		{"dw:k1", inFlightTTL - 5*time.Second, inFlightTTL},
		{"dw:k2", DefaultDuplicateWindow - 5*time.Second, DefaultDuplicateWindow},
	} {
		keys, err := c.Keys(ctx, prefix+tc.pattern).Result()
		if err != nil || len(keys) != 1 {
			t.Fatalf("keys %s: %v %v, want one", tc.pattern, keys, err)
		}
		ttl, err := c.PTTL(ctx, keys[0]).Result()
		if err != nil || ttl < tc.min || ttl > tc.max {
			t.Errorf("PTTL %s = %v %v, want between %v and %v", tc.pattern, ttl, err, tc.min, tc.max)
		}
	}
	all, _ := c.Keys(ctx, prefix+"*").Result()
	if len(all) != 5 {
		t.Errorf("%d keys written, want 5: %v", len(all), all)
	}
	// Session IDs and principals are hashed, never stored in clear.
	for _, k := range all {
		if strings.Contains(k, alice.Session) && !strings.HasSuffix(k, ":k1") || strings.Contains(k, alice.Principal) {
			t.Errorf("key %q holds a session ID or principal in clear", k)
		}
	}
}

func TestRedisBudgets(t *testing.T) {
	url, c := testRedis(t)
	prefix := testPrefix(t, c)
	cfg := config.Limits{Budgets: config.Budgets{CallsPerSession: 3}}
	a := newShared(t, cfg, url, Options{KeyPrefix: prefix})
	b := newShared(t, cfg, url, Options{KeyPrefix: prefix})
	allowedN := 0
	for i := range 6 {
		l := []*Limiter{a, b}[i%2]
		if v := l.Check(context.Background(), alice); v.Allowed {
			allowedN++
		} else if v.Limit != "budget.calls_per_session" || v.RetryAfter != 0 {
			t.Errorf("refusal %+v, want budget.calls_per_session without RetryAfter", v)
		}
	}
	if allowedN != 3 {
		t.Errorf("%d calls of one session allowed across two processes, want 3", allowedN)
	}
}

// Two limiters see each other's writes.
func TestRedisWrites(t *testing.T) {
	url, c := testRedis(t)
	prefix := testPrefix(t, c)
	cfg := config.Limits{Dampening: config.Dampening{Window: config.Duration(30 * time.Second)}}
	a := newShared(t, cfg, url, Options{KeyPrefix: prefix}).Writes()
	b := newShared(t, cfg, url, Options{KeyPrefix: prefix}).Writes()
	ctx := context.Background()
	key := CallKey("alice", "github", "create_issue", []byte(`{"title":"x"}`))

	if _, dup := a.Seen(ctx, key); dup {
		t.Fatal("first write seen as a duplicate")
	}
	if prev, dup := b.Seen(ctx, key); !dup || !prev.InFlight {
		t.Fatalf("the other process: %+v dup=%v, want in flight", prev, dup)
	}
	// The client left while its call ran: the outcome is recorded anyway.
	gone, cancel := context.WithCancel(ctx)
	cancel()
	a.Record(gone, key, "ok")
	prev, dup := b.Seen(ctx, key)
	if !dup || prev.InFlight || prev.Outcome != "ok" || prev.RetryAfter <= 25*time.Second || prev.RetryAfter > 30*time.Second || prev.Age > 5*time.Second {
		t.Fatalf("the other process after Record: %+v dup=%v, want outcome ok, recent, retry after about 30s", prev, dup)
	}
	b.Forget(ctx, key) // only drops an in-flight mark
	if _, dup := a.Seen(ctx, key); !dup {
		t.Fatal("Forget dropped a recorded outcome")
	}

	other := CallKey("alice", "github", "create_issue", []byte(`{"title":"y"}`))
	a.Seen(ctx, other)
	a.Forget(ctx, other)
	if _, dup := b.Seen(ctx, other); dup {
		t.Fatal("Forget left the in-flight mark in Redis")
	}
}

// proxy forwards TCP connections to Redis until it is set down; while
// down, it accepts connections and closes them at once.
type proxy struct {
	ln      net.Listener
	target  string
	accepts atomic.Int32
	mu      sync.Mutex // guards the fields below
	down    bool
	conns   []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.setDown(true) })
	go p.serve()
	return p
}

func (p *proxy) serve() {
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepts.Add(1)
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			conn.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			conn.Close()
			continue
		}
		p.conns = append(p.conns, conn, up)
		p.mu.Unlock()
		go func() { io.Copy(up, conn); up.Close() }()
		go func() { io.Copy(conn, up); conn.Close() }()
	}
}

func (p *proxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// While Redis is unreachable, each process limits on its own (it neither
// stops traffic nor lets everything through), logs the change once, skips
// Redis until RedisRetry has passed, and goes back to Redis when it
// answers.
func TestRedisOutageFallsBackLocally(t *testing.T) {
	url, c := testRedis(t)
	prefix := testPrefix(t, c)
	opt, _ := redis.ParseURL(url)
	p := newProxy(t, opt.Addr)
	proxied := strings.Replace(url, opt.Addr, p.ln.Addr().String(), 1)

	clock := newFakeClock()
	var logs syncBuffer
	cfg := config.Limits{Rate: []config.RateLimit{rate("per-user", "1/h", 3, "principal")}}
	a := newShared(t, cfg, proxied, Options{KeyPrefix: prefix, Clock: clock.Now, RedisRetry: time.Second,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	b := newShared(t, cfg, url, Options{KeyPrefix: prefix})
	ctx := context.Background()

	if v := a.Check(ctx, alice); !v.Allowed || a.Fallbacks() != 0 { // Redis: 2 left
		t.Fatalf("with Redis up: %+v, %d fallbacks", v, a.Fallbacks())
	}
	p.setDown(true)
	// Local bucket, fresh: 3 calls, then refused.
	n, v := takeAll(t, a, alice, 10)
	if n != 3 || v.Limit != "per-user" {
		t.Fatalf("Redis down: %d allowed then %+v; want the local limit (3) enforced", n, v)
	}
	if a.Fallbacks() != 4 {
		t.Errorf("Fallbacks = %d, want 4", a.Fallbacks())
	}
	if got := strings.Count(logs.String(), "redis unreachable"); got != 1 {
		t.Errorf("outage logged %d times, want once:\n%s", got, logs.String())
	}
	// While down, requests never wait for Redis: a ping every RedisRetry,
	// started by a request, runs in the background.
	probed := make(chan struct{}, 1)
	a.rdb.probed = func() { probed <- struct{}{} }
	accepts := p.accepts.Load()
	for range 5 {
		a.Check(ctx, alice)
	}
	if p.accepts.Load() != accepts {
		t.Error("Redis was dialled again before RedisRetry passed")
	}
	clock.Advance(time.Second)
	a.Check(ctx, alice)
	<-probed
	if p.accepts.Load() == accepts {
		t.Error("Redis was not tried again after RedisRetry")
	}
	a.Check(ctx, alice)
	if len(probed) != 0 || a.rdb.probing.Load() {
		t.Error("a second ping started within RedisRetry")
	}

	if v := b.Check(ctx, alice); !v.Allowed { // Redis: 1 left
		t.Fatalf("the other process was refused: %+v", v)
	}
	p.setDown(false)
	clock.Advance(time.Second)
	a.Check(ctx, alice) // local, starts the ping that finds Redis back
	<-probed
	fallbacks := a.Fallbacks()
	if v := a.Check(ctx, alice); !v.Allowed { // Redis: 0 left
		t.Fatalf("after recovery: %+v, want the last token in Redis", v)
	}
	if v := a.Check(ctx, alice); v.Allowed {
		t.Fatal("after recovery: the shared limit is not enforced")
	}
	if a.Fallbacks() != fallbacks {
		t.Error("calls still fall back after Redis answered")
	}
	if !strings.Contains(logs.String(), "redis reachable again") {
		t.Errorf("recovery not logged:\n%s", logs.String())
	}
}

// A Redis that is down from the start (nothing listens) also falls back.
func TestRedisClosedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	l := newShared(t, config.Limits{Rate: []config.RateLimit{rate("per-user", "1/h", 2, "principal")}}, "redis://"+addr+"/15", Options{RedisTimeout: 300 * time.Millisecond})
	n, v := takeAll(t, l, alice, 10)
	if n != 2 || v.Limit != "per-user" {
		t.Fatalf("%d allowed then %+v; want the local limit (2) enforced", n, v)
	}
	if l.Fallbacks() == 0 {
		t.Error("no fallback counted")
	}
	pingCtx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if l.Ping(pingCtx) == nil {
		t.Error("Ping succeeded with nothing listening")
	}
	if w := l.Writes(); w != nil {
		key := CallKey("alice", "github", "create_issue", nil)
		w.Seen(context.Background(), key)
		if _, dup := w.Seen(context.Background(), key); !dup {
			t.Error("the write tracker does not fall back to local memory")
		}
	}
}
