package limit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
)

func TestCoalescerRunsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Coalescer[[]byte]
		var runs atomic.Int32
		release := make(chan struct{})
		fn := func(context.Context) ([]byte, error) {
			runs.Add(1)
			<-release
			return []byte(`{"content":[]}`), nil
		}
		const n = 10
		var wg sync.WaitGroup
		results := make([]string, n)
		shared := make([]bool, n)
		for i := range n {
			wg.Go(func() {
				v, s, err := g.Do(context.Background(), "k", fn)
				if err != nil {
					t.Errorf("waiter %d: %v", i, err)
				}
				results[i], shared[i] = string(v), s
			})
		}
		synctest.Wait() // every waiter is blocked on the one call
		close(release)
		wg.Wait()
		if got := runs.Load(); got != 1 {
			t.Fatalf("fn ran %d times, want 1", got)
		}
		starters := 0
		for i := range n {
			if results[i] != `{"content":[]}` {
				t.Errorf("waiter %d got %q", i, results[i])
			}
			if !shared[i] {
				starters++
			}
		}
		if starters != 1 {
			t.Errorf("%d waiters report an unshared call, want 1", starters)
		}
		if g.inFlight() != 0 {
			t.Error("a finished call is still in flight")
		}

		// A call that has ended is not remembered.
		v, sh, _ := g.Do(context.Background(), "k", func(context.Context) ([]byte, error) { return []byte("again"), nil })
		if string(v) != "again" || sh {
			t.Errorf("a later call got %q (shared %v), want a call of its own", v, sh)
		}
	})
}

func TestCoalescerDistinctKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Coalescer[int]
		var runs atomic.Int32
		release := make(chan struct{})
		fn := func(context.Context) (int, error) { runs.Add(1); <-release; return 1, nil }
		go g.Do(context.Background(), "a", fn)
		go g.Do(context.Background(), "b", fn)
		synctest.Wait()
		if runs.Load() != 2 {
			t.Errorf("fn ran %d times for two keys, want 2", runs.Load())
		}
		close(release)
	})
}

// A waiter that leaves does not cancel the call for the others; the call
// is cancelled when all have left.
func TestCoalescerWaiterLeaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Coalescer[string]
		release := make(chan struct{})
		var callCtx context.Context
		fn := func(ctx context.Context) (string, error) {
			callCtx = ctx
			select {
			case <-release:
				return "result", nil
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
		ctxA, cancelA := context.WithCancel(context.Background())
		var errA error
		var wg sync.WaitGroup
		wg.Go(func() { _, _, errA = g.Do(ctxA, "k", fn) }) // starts the call
		synctest.Wait()
		var gotB string
		wg.Go(func() { gotB, _, _ = g.Do(context.Background(), "k", fn) })
		synctest.Wait()

		cancelA()
		synctest.Wait()
		if !errors.Is(errA, context.Canceled) {
			t.Errorf("the leaving waiter got %v, want context.Canceled", errA)
		}
		if callCtx.Err() != nil {
			t.Fatal("the shared call was cancelled when one of two waiters left")
		}
		close(release)
		wg.Wait()
		if gotB != "result" {
			t.Errorf("the remaining waiter got %q, want the result", gotB)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		var g Coalescer[string]
		var callCtx context.Context
		fn := func(ctx context.Context) (string, error) {
			callCtx = ctx
			<-ctx.Done()
			return "", ctx.Err()
		}
		ctxA, cancelA := context.WithCancel(context.Background())
		ctxB, cancelB := context.WithCancel(context.Background())
		go g.Do(ctxA, "k", fn)
		synctest.Wait()
		go g.Do(ctxB, "k", fn)
		synctest.Wait()
		cancelA()
		cancelB()
		synctest.Wait()
		if callCtx.Err() == nil {
			t.Error("the shared call went on after every waiter left")
		}
		if g.inFlight() != 0 {
			t.Error("an abandoned call is still joinable")
		}
	})
}

func TestCoalescerPanic(t *testing.T) {
	var g Coalescer[int]
	_, _, err := g.Do(context.Background(), "k", func(context.Context) (int, error) { panic("boom") })
	if err == nil {
		t.Fatal("a panicking call returned no error")
	}
}
