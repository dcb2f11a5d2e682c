package upstream

import (
	"cmp"
	"context"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ReplicaOptions configure a replica-set dialer for one Streamable HTTP
// server.
type ReplicaOptions struct {
	// HTTPOptions apply to every replica. Its URL is used when URLs is
	// empty (a server with one url).
	HTTPOptions
	// URLs are the replicas.
	URLs []string
	// HealthCheckInterval probes every replica this often; 0 disables
	// active checks (a replica that failed is still probed until it
	// answers again, on the backoff schedule).
	HealthCheckInterval time.Duration
	// BreakerFailures transport failures in a row open a replica's
	// breaker; 0 means DefaultBreakerFailures.
	BreakerFailures int
	// BreakerCooldown is how long an open breaker refuses calls before one
	// trial; 0 means DefaultBreakerCooldown.
	BreakerCooldown time.Duration
}

// ReplicaDialer dials sessions of a server served by several replicas. A
// new session goes to the less busy of two healthy replicas picked at
// random (power of two choices on calls and dials in flight), and fails
// over to the others if that dial fails; the session then stays on its
// replica for its whole life. Each replica has a circuit breaker and, when
// configured, active health checks.
//
// The server is up while at least one replica is usable: reachable as far
// as the last dial or probe knows, with its breaker not open.
type ReplicaDialer struct {
	opts     ReplicaOptions
	replicas []*replica
	now      func() time.Time
	stop     context.CancelFunc
	wg       sync.WaitGroup

	mu        sync.Mutex // guards the fields below
	up        bool
	since     time.Time
	watchers  []func(up bool)
	dirty     bool // a recomputation is due
	notifying bool // a goroutine is recomputing and telling watchers
}

var _ Dialer = (*ReplicaDialer)(nil)

// replica is one URL of a server.
type replica struct {
	label       string
	d           *HTTPDialer
	br          *breaker
	outstanding atomic.Int64 // calls and dials in flight
}

// NewReplicaDialer returns a dialer over opts.URLs (or opts.URL). The
// replicas share one pool of connections.
func NewReplicaDialer(opts ReplicaOptions) *ReplicaDialer {
	urls := opts.URLs
	if len(urls) == 0 {
		urls = []string{opts.URL}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 5 * time.Second
	}
	if opts.Transport == nil {
		opts.Transport = newPooledTransport(opts.ConnectTimeout)
	}
	rd := &ReplicaDialer{opts: opts, now: time.Now, up: true, since: time.Now()}
	labels := replicaLabels(urls)
	for i, u := range urls {
		ho := opts.HTTPOptions
		ho.URL = u
		ho.Logger = opts.Logger.With("replica", labels[i])
		r := &replica{label: labels[i], d: NewHTTPDialer(ho)}
		r.br = newBreaker(opts.BreakerFailures, opts.BreakerCooldown, rd.now, rd.recompute)
		r.d.OnHealthChange(func(up bool) {
			if up {
				r.br.reset()
			}
			rd.recompute()
		})
		rd.replicas = append(rd.replicas, r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rd.stop = cancel
	if opts.HealthCheckInterval > 0 {
		rd.wg.Add(1)
		go rd.healthChecks(ctx)
	}
	return rd
}

// replicaLabels names each replica by its URL's host:port, never its
// credentials or path; replicas on one host:port are told apart by
// position.
func replicaLabels(urls []string) []string {
	labels := make([]string, len(urls))
	seen := map[string]int{}
	for i, raw := range urls {
		l := "replica-" + strconv.Itoa(i+1)
		if u, err := url.Parse(raw); err == nil && u.Hostname() != "" {
			port := u.Port()
			if port == "" {
				port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
			}
			l = net.JoinHostPort(u.Hostname(), port)
		}
		seen[l]++
		if seen[l] > 1 {
			l += "#" + strconv.Itoa(seen[l])
		}
		labels[i] = l
	}
	return labels
}

// Dial implements Dialer: it starts a session on the chosen replica,
// trying the other usable ones in turn if that fails. It returns the last
// dial error; ErrBackoff when every replica is backing off after failures;
// or a *BreakerOpenError when every replica's breaker is open.
func (rd *ReplicaDialer) Dial(ctx context.Context, params []byte) (Conn, error) {
	order, err := rd.candidates()
	if len(order) == 0 {
		return nil, err
	}
	var last error
	for _, r := range order {
		t, err := r.br.acquire(r.label)
		if err != nil {
			last = err
			continue
		}
		r.outstanding.Add(1)
		c, err := r.d.Dial(ctx, params)
		r.outstanding.Add(-1)
		r.br.report(t, classify(err), err)
		if err == nil {
			return &replicaConn{Conn: c, r: r}, nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
		rd.opts.Logger.Debug("upstream replica dial failed", "server", rd.opts.Name, "replica", r.label, "error", err)
	}
	return nil, last
}

// candidates orders the replicas a dial may try: first the pick of two
// random healthy ones, then the other healthy ones, least busy first, then
// those that failed but whose backoff has run out. With none, err says why.
func (rd *ReplicaDialer) candidates() (order []*replica, err error) {
	var healthy, recovering []*replica
	backoff, minOpen := false, time.Duration(0)
	var openReplica string
	for _, r := range rd.replicas {
		switch {
		case r.br.open():
			rem := r.br.remaining()
			if openReplica == "" || rem < minOpen {
				openReplica, minOpen = r.label, rem
			}
		case !r.d.health.allow():
			backoff = true
		case r.d.health.get().Up:
			healthy = append(healthy, r)
		default:
			recovering = append(recovering, r)
		}
	}
	byLoad := func(a, b *replica) int { return cmp.Compare(a.outstanding.Load(), b.outstanding.Load()) }
	if len(healthy) >= 2 {
		i := rand.IntN(len(healthy))
		j := rand.IntN(len(healthy) - 1)
		if j >= i {
			j++
		}
		if healthy[j].outstanding.Load() < healthy[i].outstanding.Load() {
			i = j
		}
		healthy[0], healthy[i] = healthy[i], healthy[0]
		slices.SortStableFunc(healthy[1:], byLoad)
	}
	slices.SortStableFunc(recovering, byLoad)
	order = append(healthy, recovering...)
	if len(order) > 0 {
		return order, nil
	}
	if backoff || openReplica == "" {
		return nil, ErrBackoff
	}
	return nil, &BreakerOpenError{Replica: openReplica, Remaining: max(minOpen, time.Second)}
}

// Health implements Dialer. With one replica it is that replica's health;
// with several, LastError is the latest failure of any replica, named.
func (rd *ReplicaDialer) Health() Health {
	rd.mu.Lock()
	h := Health{Up: rd.up, Since: rd.since}
	rd.mu.Unlock()
	var latest time.Time
	for i, r := range rd.replicas {
		rh := r.d.Health()
		if i == 0 || rh.Failures < h.Failures {
			h.Failures = rh.Failures
		}
		msg := rh.LastError
		if d := r.br.describe(); d != "" {
			msg = d
		}
		if msg == "" || (h.LastError != "" && !rh.Since.After(latest)) {
			continue
		}
		latest = rh.Since
		h.LastError = msg
		if len(rd.replicas) > 1 {
			h.LastError = "replica " + r.label + ": " + msg
		}
	}
	return h
}

// ReplicaStatus is one replica's state, for readiness reports and metrics.
type ReplicaStatus struct {
	// Replica is the label: the URL's host:port.
	Replica string
	// Health is what the replica's last dial or probe found.
	Health Health
	// Breaker is the circuit breaker's state.
	Breaker BreakerState
	// Outstanding counts calls and dials in flight.
	Outstanding int64
}

// Replicas reports every replica's state, in configuration order.
func (rd *ReplicaDialer) Replicas() []ReplicaStatus {
	out := make([]ReplicaStatus, len(rd.replicas))
	for i, r := range rd.replicas {
		st, _ := r.br.snapshot()
		out[i] = ReplicaStatus{Replica: r.label, Health: r.d.Health(), Breaker: st, Outstanding: r.outstanding.Load()}
	}
	return out
}

// OnHealthChange registers f to run when the server as a whole goes up
// (some replica is usable) or down (none is).
func (rd *ReplicaDialer) OnHealthChange(f func(up bool)) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	rd.watchers = append(rd.watchers, f)
}

// usable reports whether some replica may take new sessions.
func (rd *ReplicaDialer) usable() bool {
	for _, r := range rd.replicas {
		if r.d.health.get().Up && !r.br.open() {
			return true
		}
	}
	return false
}

// recompute updates the server's health and tells the watchers of a
// change. Changes are delivered one at a time, in order; a call made while
// watchers run (even from a watcher) is folded into the running one.
func (rd *ReplicaDialer) recompute() {
	rd.mu.Lock()
	rd.dirty = true
	if rd.notifying {
		rd.mu.Unlock()
		return
	}
	rd.notifying = true
	for rd.dirty {
		rd.dirty = false
		rd.mu.Unlock()
		up := rd.usable()
		rd.mu.Lock()
		if up == rd.up {
			continue
		}
		rd.up, rd.since = up, rd.now()
		watchers := rd.watchers
		rd.mu.Unlock()
		for _, w := range watchers {
			w(up)
		}
		rd.mu.Lock()
	}
	rd.notifying = false
	rd.mu.Unlock()
}

// healthChecks probes every replica each interval: a failed probe takes a
// replica out of new-session selection, a successful one brings it back.
func (rd *ReplicaDialer) healthChecks(ctx context.Context) {
	defer rd.wg.Done()
	interval := rd.opts.HealthCheckInterval
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		var wg sync.WaitGroup
		for _, r := range rd.replicas {
			wg.Go(func() {
				pctx, cancel := context.WithTimeout(ctx, min(interval, 10*time.Second))
				err := r.d.probe(pctx)
				cancel()
				switch {
				case ctx.Err() != nil:
				case err != nil:
					if r.d.Health().Up {
						rd.opts.Logger.Warn("upstream replica failed its health check", "server", rd.opts.Name, "replica", r.label, "error", err)
					}
					r.d.health.failure(err)
				default:
					r.d.health.success()
				}
			})
		}
		wg.Wait()
	}
}

// Close implements Dialer.
func (rd *ReplicaDialer) Close() {
	rd.stop()
	rd.wg.Wait()
	for _, r := range rd.replicas {
		r.br.stop()
		r.d.Close()
	}
}

// ReplicaOf returns the label (host:port) of the replica c is pinned to,
// or "" for a connection that is not on a replica set.
func ReplicaOf(c Conn) string {
	if rc, ok := c.(interface{ Replica() string }); ok {
		return rc.Replica()
	}
	return ""
}
