package audit

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("audit trail is closed")

// request is one record waiting for a sink.
type request struct {
	rec  Record
	err  error
	done chan struct{}
}

// batcher runs a sink's work in one goroutine. Each commit receives every
// request that queued while the previous commit ran, so concurrent writers
// share one fsync or one INSERT (group commit).
type batcher struct {
	reqs   chan *request
	quit   chan struct{}
	exited chan struct{}

	commit     func(batch []*request) // sets each request's err
	probe      func()                 // runs every probeEvery between commits
	onExit     func()                 // runs once, after the last commit
	probeEvery time.Duration
	enqueued   func() // test hook: a request was queued

	mu     sync.RWMutex // guards closed; held for reading while queuing
	closed bool
}

const maxBatch = 512

func newBatcher(commit func([]*request), probe, onExit func(), probeEvery time.Duration) *batcher {
	b := &batcher{
		reqs:       make(chan *request, maxBatch),
		quit:       make(chan struct{}),
		exited:     make(chan struct{}),
		commit:     commit,
		probe:      probe,
		onExit:     onExit,
		probeEvery: probeEvery,
	}
	go b.loop()
	return b
}

// submit queues rec and waits until it is committed. When ctx ends first
// the record may still be committed later.
func (b *batcher) submit(ctx context.Context, rec Record) error {
	r := &request{rec: rec, done: make(chan struct{})}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return ErrClosed
	}
	select {
	case b.reqs <- r:
	case <-ctx.Done():
		b.mu.RUnlock()
		return ctx.Err()
	}
	b.mu.RUnlock()
	if b.enqueued != nil {
		b.enqueued()
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *batcher) loop() {
	defer close(b.exited)
	defer b.onExit()
	tick := time.NewTicker(b.probeEvery)
	defer tick.Stop()
	batch := make([]*request, 0, maxBatch)
	for {
		select {
		case r := <-b.reqs:
			b.run(append(batch[:0], r))
		case <-tick.C:
			b.probe()
		case <-b.quit:
			// Nothing can be queued any more: commit what is.
			for {
				select {
				case r := <-b.reqs:
					b.run(append(batch[:0], r))
				default:
					return
				}
			}
		}
	}
}

// run adds every queued request to batch and commits it.
func (b *batcher) run(batch []*request) {
fill:
	for len(batch) < maxBatch {
		select {
		case r := <-b.reqs:
			batch = append(batch, r)
		default:
			break fill
		}
	}
	b.commit(batch)
	for _, r := range batch {
		close(r.done)
	}
}

// close refuses new requests, commits the queued ones and stops the loop.
func (b *batcher) close(ctx context.Context) error {
	b.mu.Lock()
	already := b.closed
	b.closed = true
	b.mu.Unlock()
	if !already {
		close(b.quit)
	}
	select {
	case <-b.exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
