package upstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Breaker defaults (servers.<name>.breaker).
const (
	DefaultBreakerFailures = 5
	DefaultBreakerCooldown = 10 * time.Second
)

// BreakerState is the state of one replica's circuit breaker.
type BreakerState string

// Breaker states.
const (
	BreakerClosed   BreakerState = "closed"    // calls flow
	BreakerOpen     BreakerState = "open"      // calls fail fast until the cooldown ends
	BreakerHalfOpen BreakerState = "half_open" // one trial call decides
)

// outcome is what one dial or call says about a replica's health.
type outcome uint8

const (
	outcomeNeutral outcome = iota // says nothing: cancelled by the caller, refused locally
	outcomeSuccess
	outcomeFailure
)

// classify sorts an error from a dial or call. Transport failures count
// against the replica: connection errors, 5xx answers, broken streams,
// timeouts and answers that are not MCP. What the upstream said in
// JSON-RPC never reaches here (a JSON-RPC error or an isError result is a
// successful exchange).
func classify(err error) outcome {
	var se *StatusError
	switch {
	case err == nil:
		return outcomeSuccess
	case errors.Is(err, ErrBreakerOpen), errors.Is(err, ErrBackoff), errors.Is(err, ErrClosed),
		errors.Is(err, context.Canceled):
		return outcomeNeutral
	case errors.Is(err, ErrTooLarge), errors.Is(err, ErrSessionLost):
		// The replica answered: the message was too big for this call, or
		// the session had ended (a restarted replica still serves).
		return outcomeSuccess
	case errors.As(err, &se):
		if se.Code >= 500 {
			return outcomeFailure
		}
		return outcomeSuccess
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, ErrUnavailable), errors.Is(err, ErrProtocol):
		return outcomeFailure
	}
	return outcomeNeutral
}

// breaker is a per-replica circuit breaker: failures consecutive transport
// failures open it for cooldown; then one trial call is let through, and
// its success closes the breaker while its failure opens it again.
type breaker struct {
	failures int
	cooldown time.Duration
	now      func() time.Time
	onChange func() // runs, outside the lock, when calls start or stop being refused

	mu       sync.Mutex // guards the fields below
	state    BreakerState
	gen      uint64 // changes with every state change; stale reports are ignored
	count    int    // consecutive failures while closed
	until    time.Time
	trialAt  time.Time // when the half-open trial in flight started; zero if none
	lastErr  string
	timer    *time.Timer
	disabled bool
}

func newBreaker(failures int, cooldown time.Duration, now func() time.Time, onChange func()) *breaker {
	if failures <= 0 {
		failures = DefaultBreakerFailures
	}
	if cooldown <= 0 {
		cooldown = DefaultBreakerCooldown
	}
	return &breaker{failures: failures, cooldown: cooldown, now: now, onChange: onChange, state: BreakerClosed}
}

// ticket is a permission to send one dial or call; it is returned with
// report.
type ticket struct {
	gen   uint64
	trial bool
}

// acquire asks to send a dial or call. It fails while the breaker is open,
// and while a half-open trial is in flight.
func (b *breaker) acquire(replica string) (ticket, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	switch b.state {
	case BreakerOpen:
		if now.Before(b.until) {
			return ticket{}, &BreakerOpenError{Replica: replica, Remaining: max(b.until.Sub(now), time.Second)}
		}
		b.state = BreakerHalfOpen
		b.gen++
		fallthrough
	case BreakerHalfOpen:
		// A trial that takes longer than a cooldown does not block the
		// replica for its whole duration: another may start.
		if !b.trialAt.IsZero() && now.Sub(b.trialAt) < b.cooldown {
			return ticket{}, &BreakerOpenError{Replica: replica, Remaining: time.Second}
		}
		b.trialAt = now
		return ticket{gen: b.gen, trial: true}, nil
	}
	return ticket{gen: b.gen}, nil
}

// report records what a dial or call sent under t found.
func (b *breaker) report(t ticket, o outcome, err error) {
	b.mu.Lock()
	if t.gen != b.gen {
		b.mu.Unlock()
		return // from before the latest state change
	}
	changed := false
	switch {
	case t.trial && o == outcomeNeutral:
		b.trialAt = time.Time{} // the next caller tries instead
	case t.trial && o == outcomeSuccess:
		b.closeLocked()
		changed = true
	case o == outcomeSuccess:
		b.count = 0
	case o == outcomeFailure:
		b.lastErr = err.Error()
		b.count++
		if t.trial || b.count >= b.failures {
			b.openLocked()
			changed = true
		}
	}
	b.mu.Unlock()
	if changed {
		b.onChange()
	}
}

func (b *breaker) openLocked() {
	b.state = BreakerOpen
	b.gen++
	b.until = b.now().Add(b.cooldown)
	b.trialAt = time.Time{}
	if b.timer != nil {
		b.timer.Stop()
	}
	if !b.disabled {
		// The end of the cooldown makes the replica usable again: tell
		// the dialer, which may bring the server back.
		b.timer = time.AfterFunc(b.cooldown, b.onChange)
	}
}

func (b *breaker) closeLocked() {
	b.state = BreakerClosed
	b.gen++
	b.count = 0
	b.trialAt = time.Time{}
	b.lastErr = ""
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
}

// reset closes the breaker: the replica was down and has come back, which
// says more than the failures that opened it.
func (b *breaker) reset() {
	b.mu.Lock()
	changed := b.state != BreakerClosed
	if changed {
		b.closeLocked()
	}
	b.count = 0
	b.mu.Unlock()
	if changed {
		b.onChange()
	}
}

// snapshot returns the state as callers would find it now, and the last
// failure that counted.
func (b *breaker) snapshot() (BreakerState, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == BreakerOpen && !b.now().Before(b.until) {
		return BreakerHalfOpen, b.lastErr
	}
	return b.state, b.lastErr
}

// remaining returns how long an open breaker still refuses calls.
func (b *breaker) remaining() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != BreakerOpen {
		return 0
	}
	return max(b.until.Sub(b.now()), 0)
}

// open reports whether calls are refused for the cooldown.
func (b *breaker) open() bool {
	st, _ := b.snapshot()
	return st == BreakerOpen
}

// stop cancels the cooldown timer for good.
func (b *breaker) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.disabled = true
	if b.timer != nil {
		b.timer.Stop()
	}
}

// describe explains an open breaker for health reports; "" otherwise.
func (b *breaker) describe() string {
	st, last := b.snapshot()
	if st != BreakerOpen {
		return ""
	}
	return fmt.Sprintf("circuit breaker open after %d failures in a row: %s", b.failures, last)
}
