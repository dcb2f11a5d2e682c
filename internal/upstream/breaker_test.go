package upstream

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want outcome
	}{
		{nil, outcomeSuccess},
		{fmt.Errorf("%w: dial tcp: refused", ErrUnavailable), outcomeFailure},
		{&StatusError{Code: 502}, outcomeFailure},
		{&StatusError{Code: 400}, outcomeSuccess},
		{context.DeadlineExceeded, outcomeFailure},
		{fmt.Errorf("%w: bad json", ErrProtocol), outcomeFailure},
		{tooLarge(10), outcomeSuccess},
		{ErrSessionLost, outcomeSuccess},
		{context.Canceled, outcomeNeutral},
		{&BreakerOpenError{Replica: "a:1", Remaining: time.Second}, outcomeNeutral},
		{ErrBackoff, outcomeNeutral},
		{ErrClosed, outcomeNeutral},
	} {
		t.Run(fmt.Sprint(tc.err), func(t *testing.T) {
			if got := classify(tc.err); got != tc.want {
				t.Errorf("classify = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestBreakerStates drives one breaker with a fake clock.
func TestBreakerStates(t *testing.T) {
	now := time.Unix(1000, 0)
	changes := 0
	b := newBreaker(2, 10*time.Second, func() time.Time { return now }, func() { changes++ })
	defer b.stop()
	fail := errors.New("boom")
	must := func(tk ticket, err error) ticket {
		t.Helper()
		if err != nil {
			t.Fatalf("acquire: %v", err)
		}
		return tk
	}
	refused := func(want time.Duration) {
		t.Helper()
		_, err := b.acquire("r:1")
		var be *BreakerOpenError
		if !errors.As(err, &be) || be.Remaining != want {
			t.Fatalf("acquire = %v, want refusal for %v", err, want)
		}
	}

	// A success between failures resets the count.
	b.report(must(b.acquire("r:1")), outcomeFailure, fail)
	b.report(must(b.acquire("r:1")), outcomeSuccess, nil)
	b.report(must(b.acquire("r:1")), outcomeFailure, fail)
	if st, _ := b.snapshot(); st != BreakerClosed {
		t.Fatalf("state %s after non-consecutive failures", st)
	}
	// A call that started before the breaker opened reports late: ignored.
	late := must(b.acquire("r:1"))
	b.report(must(b.acquire("r:1")), outcomeFailure, fail)
	if st, last := b.snapshot(); st != BreakerOpen || last != "boom" || changes != 1 {
		t.Fatalf("state %s (%q), %d changes; want open", st, last, changes)
	}
	b.report(late, outcomeSuccess, nil)
	refused(10 * time.Second)
	now = now.Add(4 * time.Second)
	refused(6 * time.Second)

	// Cooldown over: one trial; others are refused while it runs.
	now = now.Add(6 * time.Second)
	trial := must(b.acquire("r:1"))
	if !trial.trial {
		t.Fatal("first call after the cooldown is not a trial")
	}
	refused(time.Second)
	// A trial abandoned by its caller lets the next caller try.
	b.report(trial, outcomeNeutral, nil)
	trial = must(b.acquire("r:1"))
	// A trial that outlasts a cooldown lets another start.
	now = now.Add(11 * time.Second)
	second := must(b.acquire("r:1"))
	b.report(trial, outcomeFailure, fail)
	if st, _ := b.snapshot(); st != BreakerOpen {
		t.Fatalf("state %s after a failed trial, want open", st)
	}
	b.report(second, outcomeSuccess, nil) // stale: the breaker reopened since
	if st, _ := b.snapshot(); st != BreakerOpen {
		t.Fatalf("a stale trial closed the breaker")
	}
	now = now.Add(10 * time.Second)
	b.report(must(b.acquire("r:1")), outcomeSuccess, nil)
	if st, last := b.snapshot(); st != BreakerClosed || last != "" {
		t.Fatalf("state %s (%q) after a successful trial, want closed", st, last)
	}

	// reset closes an open breaker at once.
	b.report(must(b.acquire("r:1")), outcomeFailure, fail)
	b.report(must(b.acquire("r:1")), outcomeFailure, fail)
	b.reset()
	must(b.acquire("r:1"))
}

func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want time.Duration
		ok   bool
	}{
		{&BreakerOpenError{Replica: "a:1", Remaining: 1500 * time.Millisecond}, 2 * time.Second, true},
		{fmt.Errorf("dial: %w", &BreakerOpenError{Replica: "a:1", Remaining: 10 * time.Second}), 10 * time.Second, true},
		{&BreakerOpenError{Replica: "a:1"}, time.Second, true},
		{ErrBackoff, 0, false},
	} {
		d, ok := RetryAfter(tc.err)
		if d != tc.want || ok != tc.ok {
			t.Errorf("RetryAfter(%v) = %v, %v; want %v, %v", tc.err, d, ok, tc.want, tc.ok)
		}
	}
}
