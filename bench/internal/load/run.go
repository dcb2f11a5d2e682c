package load

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Config is one load run.
type Config struct {
	URL         string
	Concurrency int           // sessions calling in parallel
	Warmup      time.Duration // calls before the measured window, not recorded
	Duration    time.Duration // the measured window
	Request     Request
	Header      http.Header // extra request headers (credentials)
	// Mark, if set, is called as the measured window starts ("measure_start")
	// and ends ("measure_end"), so that an observer can sample the target.
	Mark func(event string)
	// Logf, if set, receives the first few errors of each session.
	Logf func(format string, args ...any)
}

// Result is what a run measured. Durations are in nanoseconds.
type Result struct {
	Concurrency int               `json:"concurrency"`
	Calls       uint64            `json:"calls"` // successful calls completed in the window
	Errors      map[string]uint64 `json:"errors,omitempty"`
	Seconds     float64           `json:"seconds"`
	CallsPerSec float64           `json:"calls_per_sec"`
	Mean        time.Duration     `json:"mean_ns"`
	P50         time.Duration     `json:"p50_ns"`
	P95         time.Duration     `json:"p95_ns"`
	P99         time.Duration     `json:"p99_ns"`
	Max         time.Duration     `json:"max_ns"`
	// First is the latency of each session's first request (list runs:
	// the uncached catalog).
	First time.Duration `json:"first_ns,omitempty"`
	// Items counts "inputSchema" members in the last answer (list runs).
	Items int `json:"items,omitempty"`
}

const (
	phaseWarm = iota
	phaseMeasure
	phaseDone
)

// Run opens cfg.Concurrency sessions, loops cfg.Request on each for the
// warm-up and the measured window, then closes the sessions. Calls that
// start and end inside the window are recorded; failed calls are counted
// by kind.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	c := NewClient(cfg.URL, cfg.Concurrency)
	c.Header = cfg.Header
	defer c.CloseIdle()
	sessions, err := OpenSessions(ctx, c, cfg.Concurrency, min(cfg.Concurrency, 16))
	if err != nil {
		CloseSessions(c, sessions, 16)
		return nil, err
	}
	mark := cfg.Mark
	if mark == nil {
		mark = func(string) {}
	}
	var phase atomic.Int32
	type worker struct {
		h      Histogram
		errs   map[string]uint64
		first  time.Duration
		items  int
		listed bool
		logged int
	}
	workers := make([]worker, len(sessions))
	var wg sync.WaitGroup
	for i, s := range sessions {
		w := &workers[i]
		w.errs = map[string]uint64{}
		wg.Go(func() {
			for n := 0; phase.Load() != phaseDone; n++ {
				p := phase.Load()
				start := time.Now()
				err := s.Do(ctx, cfg.Request)
				d := time.Since(start)
				if n == 0 {
					w.first = d
				}
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					var ce *CallError
					kind := ErrKindTransport
					if errors.As(err, &ce) {
						kind = ce.Kind
					}
					if p == phaseMeasure {
						w.errs[kind]++
					}
					if w.logged < 3 && cfg.Logf != nil {
						w.logged++
						cfg.Logf("session %d call %d: %v", i, n, err)
					}
					if kind == ErrKindLost {
						// The target dropped the session: start a new one.
						if ns, err := c.Open(ctx); err == nil {
							s = ns
							sessions[i] = ns
						}
					}
					continue
				}
				if p == phaseMeasure && phase.Load() == phaseMeasure {
					w.h.Record(d)
				}
				if !w.listed {
					w.listed = true
					w.items = bytes.Count(s.Body(), []byte(`"inputSchema"`))
				}
			}
		})
	}
	sleep(ctx, cfg.Warmup)
	phase.Store(phaseMeasure)
	mark("measure_start")
	start := time.Now()
	sleep(ctx, cfg.Duration)
	phase.Store(phaseDone)
	elapsed := time.Since(start)
	mark("measure_end")
	wg.Wait()
	CloseSessions(c, sessions, 16)
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	res := &Result{Concurrency: cfg.Concurrency, Seconds: elapsed.Seconds(), Errors: map[string]uint64{}}
	var h Histogram
	for i := range workers {
		w := &workers[i]
		h.Merge(&w.h)
		for k, v := range w.errs {
			res.Errors[k] += v
		}
		res.First = max(res.First, w.first)
		res.Items = max(res.Items, w.items)
	}
	if len(res.Errors) == 0 {
		res.Errors = nil
	}
	res.Calls = h.Count()
	res.CallsPerSec = float64(res.Calls) / elapsed.Seconds()
	res.Mean, res.Max = h.Mean(), h.Max()
	res.P50, res.P95, res.P99 = h.Quantile(0.50), h.Quantile(0.95), h.Quantile(0.99)
	return res, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// OpenSessions opens n sessions, at most parallel at a time. On error it
// returns the sessions opened so far with the first error.
func OpenSessions(ctx context.Context, c *Client, n, parallel int) ([]*Session, error) {
	sessions := make([]*Session, n)
	errs := make([]error, n)
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			sessions[i], errs[i] = c.Open(ctx)
		})
	}
	wg.Wait()
	var opened []*Session
	var first error
	for i, s := range sessions {
		if s != nil {
			opened = append(opened, s)
		} else if first == nil {
			first = errs[i]
		}
	}
	return opened, first
}

// CloseSessions ends sessions with DELETE, at most parallel at a time.
func CloseSessions(c *Client, sessions []*Session, parallel int) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	for _, s := range sessions {
		if s == nil {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s.Close(ctx)
		})
	}
	wg.Wait()
}
