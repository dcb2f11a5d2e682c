package limit

import (
	"context"
	"fmt"
	"sync"
)

// Coalescer joins identical calls in flight into one: the first caller of
// a key starts the call, later callers of the same key wait for its result
// instead of making their own. Only calls in flight are joined; a call
// that has ended is not remembered. The zero value is ready to use.
//
// Use it for read-only tools/call, keyed by [CallKey]: identical reads of
// one principal reach the upstream once.
type Coalescer[T any] struct {
	mu    sync.Mutex // guards calls
	calls map[string]*flight[T]
}

// flight is one shared call.
type flight[T any] struct {
	done    chan struct{} // closed when val and err are set
	val     T
	err     error
	waiters int // guarded by Coalescer.mu
	cancel  context.CancelFunc
}

// NewCoalescer returns an empty Coalescer.
func NewCoalescer[T any]() *Coalescer[T] { return &Coalescer[T]{} }

// Do runs fn once for all the callers of key whose calls overlap, and
// returns its result to each; shared is true for the callers that joined a
// call another caller started. The result is the same value for every
// caller: treat it as read-only.
//
// fn runs on its own goroutine with a context that keeps the values of the
// starting caller's ctx but not its cancellation. A caller whose ctx ends
// stops waiting and gets ctx.Err(), without cancelling the call for the
// others; the call's context is cancelled when every caller has left, and
// the next caller of key then starts a new call. A panic in fn reaches
// every caller as an error.
func (g *Coalescer[T]) Do(ctx context.Context, key string, fn func(ctx context.Context) (T, error)) (v T, shared bool, err error) {
	g.mu.Lock()
	f, shared := g.calls[key]
	if shared {
		f.waiters++
		g.mu.Unlock()
	} else {
		if g.calls == nil {
			g.calls = make(map[string]*flight[T])
		}
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &flight[T]{done: make(chan struct{}), waiters: 1, cancel: cancel}
		g.calls[key] = f
		g.mu.Unlock()
		go g.run(fctx, key, f, fn)
	}
	select {
	case <-f.done:
		return f.val, shared, f.err
	case <-ctx.Done():
	}
	g.mu.Lock()
	f.waiters--
	if f.waiters == 0 {
		f.cancel()
		if g.calls[key] == f {
			delete(g.calls, key)
		}
	}
	g.mu.Unlock()
	var zero T
	return zero, shared, ctx.Err()
}

func (g *Coalescer[T]) run(ctx context.Context, key string, f *flight[T], fn func(context.Context) (T, error)) {
	defer func() {
		if r := recover(); r != nil {
			f.err = fmt.Errorf("limit: coalesced call panicked: %v", r)
		}
		g.mu.Lock()
		if g.calls[key] == f {
			delete(g.calls, key)
		}
		g.mu.Unlock()
		f.cancel()
		close(f.done)
	}()
	f.val, f.err = fn(ctx)
}

// inFlight is the number of keys with a call in flight, for tests.
func (g *Coalescer[T]) inFlight() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.calls)
}
