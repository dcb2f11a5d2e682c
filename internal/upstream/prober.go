package upstream

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// prober checks a down server on the backoff schedule until it answers, so
// that a recovered server returns to the catalog without waiting for a
// client to try it.
type prober struct {
	h      *health
	probe  func(context.Context) error
	logger *slog.Logger

	mu      sync.Mutex // guards the fields below
	running bool
	cancel  context.CancelFunc
	stopped bool
}

func newProber(h *health, probe func(context.Context) error, logger *slog.Logger) *prober {
	return &prober{h: h, probe: probe, logger: logger}
}

// start begins probing unless a probe loop already runs.
func (p *prober) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running || p.stopped {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.running, p.cancel = true, cancel
	go p.loop(ctx)
}

func (p *prober) loop(ctx context.Context) {
	defer func() {
		p.mu.Lock()
		p.running = false
		p.mu.Unlock()
	}()
	for {
		wait := time.Until(p.h.nextAttempt())
		select {
		case <-time.After(max(wait, 50*time.Millisecond)):
		case <-ctx.Done():
			return
		}
		if p.h.get().Up {
			return
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := p.probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			p.h.success()
			return
		}
		p.h.failure(err)
	}
}

// stop ends probing for good.
func (p *prober) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	if p.cancel != nil {
		p.cancel()
	}
}
