package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// loadEvent is one JSON line of `loadgen -json`.
type loadEvent struct {
	Event       string          `json:"event"`
	Result      json.RawMessage `json:"result"`
	Sessions    int             `json:"sessions"`
	Failed      int             `json:"failed"`
	OpenSeconds float64         `json:"open_seconds"`
	Error       string          `json:"error"`
}

// loadRun is a running loadgen process.
type loadRun struct {
	p      *process
	stdin  io.WriteCloser
	events chan loadEvent
}

// startLoad starts loadgen -json with args. Its stderr goes to the
// loadgen log; its stdin stays open until release (idle runs hold their
// sessions until then).
func (r *runner) startLoad(args ...string) (*loadRun, error) {
	lf, err := os.OpenFile(filepath.Join(r.out, "logs", "loadgen.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(r.bin, "loadgen"), append([]string{"-json"}, args...)...)
	cmd.Stderr = lf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		lf.Close()
		return nil, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		lf.Close()
		return nil, err
	}
	p := &process{name: "loadgen", cmd: cmd, log: lf, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start loadgen: %w", err)
	}
	l := &loadRun{p: p, stdin: stdin, events: make(chan loadEvent, 16)}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var ev loadEvent
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				l.events <- ev
			}
		}
		close(l.events)
		// Wait only after stdout was read to the end, as exec requires.
		cmd.Wait()
		close(p.done)
	}()
	r.procs = append(r.procs, p)
	return l, nil
}

// next returns the next event, or an error when loadgen ends first or
// the timeout passes.
func (l *loadRun) next(ctx context.Context, timeout time.Duration) (loadEvent, error) {
	select {
	case ev, ok := <-l.events:
		if !ok {
			return loadEvent{}, fmt.Errorf("loadgen ended without a result (see %s)", l.p.log.Name())
		}
		return ev, nil
	case <-time.After(timeout):
		return loadEvent{}, fmt.Errorf("loadgen: no event in %v", timeout)
	case <-ctx.Done():
		return loadEvent{}, ctx.Err()
	}
}

// release closes loadgen's stdin: an idle run lets its sessions go.
func (l *loadRun) release() { l.stdin.Close() }
