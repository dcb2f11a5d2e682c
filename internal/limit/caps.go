package limit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
)

// capRetry is the retry hint of a concurrency refusal: calls in flight
// usually end within about a second, and nothing better is known.
const capRetry = time.Second

// caps counts calls and streams in flight in this process.
type caps struct {
	perPrincipal, perServer, streams int

	mu          sync.Mutex // guards the maps below; a key at zero is deleted
	byPrincipal map[string]int
	byServer    map[string]int
	streamsBy   map[string]int
}

func newCaps(c config.Concurrency, streams int) *caps {
	return &caps{
		perPrincipal: c.PerPrincipal, perServer: c.PerServer, streams: streams,
		byPrincipal: map[string]int{}, byServer: map[string]int{}, streamsBy: map[string]int{},
	}
}

func noRelease() {}

// Acquire takes a slot for one call of principal (its Principal.Key()) to
// server under limits.concurrency, or refuses without waiting. The caller
// must call release exactly once when the call ends, however it ends;
// extra calls do nothing. The caps are counted per process, not shared
// between replicas. ctx is not used today: Acquire never blocks.
func (l *Limiter) Acquire(ctx context.Context, principal, server string) (release func(), v Verdict) {
	c := l.caps
	if c.perPrincipal <= 0 && (c.perServer <= 0 || server == "") {
		return noRelease, allowed
	}
	usePrincipal := c.perPrincipal > 0
	useServer := c.perServer > 0 && server != ""
	c.mu.Lock()
	switch {
	case usePrincipal && c.byPrincipal[principal] >= c.perPrincipal:
		c.mu.Unlock()
		return noRelease, Verdict{Limit: "concurrency.per_principal", RetryAfter: capRetry,
			Message: fmt.Sprintf("too many calls in flight for this caller (limit %d); retry after %s", c.perPrincipal, formatWait(capRetry))}
	case useServer && c.byServer[server] >= c.perServer:
		c.mu.Unlock()
		return noRelease, Verdict{Limit: "concurrency.per_server", RetryAfter: capRetry,
			Message: fmt.Sprintf("too many calls in flight to server %s (limit %d); retry after %s", server, c.perServer, formatWait(capRetry))}
	}
	if usePrincipal {
		c.byPrincipal[principal]++
	}
	if useServer {
		c.byServer[server]++
	}
	c.mu.Unlock()
	var done atomic.Bool
	return func() {
		if done.Swap(true) {
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if usePrincipal {
			decrement(c.byPrincipal, principal)
		}
		if useServer {
			decrement(c.byServer, server)
		}
	}, allowed
}

// AcquireStream takes one of principal's open-stream slots
// (limits.max_streams_per_principal); ok is false when all are taken. The
// caller must call release once when the stream closes; extra calls do
// nothing. Counted per process.
func (l *Limiter) AcquireStream(principal string) (release func(), ok bool) {
	c := l.caps
	if c.streams <= 0 {
		return noRelease, true
	}
	c.mu.Lock()
	if c.streamsBy[principal] >= c.streams {
		c.mu.Unlock()
		return noRelease, false
	}
	c.streamsBy[principal]++
	c.mu.Unlock()
	var done atomic.Bool
	return func() {
		if done.Swap(true) {
			return
		}
		c.mu.Lock()
		decrement(c.streamsBy, principal)
		c.mu.Unlock()
	}, true
}

// StreamCap is limits.max_streams_per_principal, for the refusal message;
// 0 means no cap.
func (l *Limiter) StreamCap() int { return l.caps.streams }

func decrement(m map[string]int, k string) {
	if m[k] <= 1 {
		delete(m, k)
		return
	}
	m[k]--
}
