package upstream

import (
	"sync"
	"time"
)

// Health is what the gateway knows of a server's reachability.
type Health struct {
	Up        bool
	Since     time.Time // when Up last changed
	LastError string    // the latest failure, safe to show operators
	Failures  int       // consecutive failures
}

// health tracks dial outcomes and the backoff between attempts.
type health struct {
	minBackoff, maxBackoff time.Duration
	now                    func() time.Time

	mu        sync.Mutex // guards the fields below
	h         Health
	notBefore time.Time
	watchers  []func(up bool)
}

func newHealth(maxBackoff time.Duration) *health {
	if maxBackoff <= 0 {
		maxBackoff = 30 * time.Second
	}
	return &health{
		minBackoff: 500 * time.Millisecond,
		maxBackoff: maxBackoff,
		now:        time.Now,
		h:          Health{Up: true, Since: time.Now()},
	}
}

// allow reports whether an attempt may be made now.
func (h *health) allow() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.now().Before(h.notBefore)
}

func (h *health) success() {
	h.mu.Lock()
	changed := !h.h.Up
	h.h.Failures = 0
	h.h.LastError = ""
	h.notBefore = time.Time{}
	if changed {
		h.h.Up = true
		h.h.Since = h.now()
	}
	watchers := h.watchers
	h.mu.Unlock()
	if changed {
		for _, w := range watchers {
			w(true)
		}
	}
}

func (h *health) failure(err error) {
	h.mu.Lock()
	changed := h.h.Up
	h.h.Failures++
	h.h.LastError = err.Error()
	backoff := h.minBackoff << min(h.h.Failures-1, 16)
	if backoff > h.maxBackoff || backoff <= 0 {
		backoff = h.maxBackoff
	}
	h.notBefore = h.now().Add(backoff)
	if changed {
		h.h.Up = false
		h.h.Since = h.now()
	}
	watchers := h.watchers
	h.mu.Unlock()
	if changed {
		for _, w := range watchers {
			w(false)
		}
	}
}

func (h *health) get() Health {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.h
}

// nextAttempt returns when the next attempt is due.
func (h *health) nextAttempt() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.notBefore
}

func (h *health) watch(f func(up bool)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.watchers = append(h.watchers, f)
}
