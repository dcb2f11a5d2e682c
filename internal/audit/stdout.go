package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
)

// stdoutSink writes each record as one JSON line, without chain fields:
// a stream that a collector may split, interleave or drop cannot be
// verified, so it does not pretend to be chained. Use the file sink for
// a verifiable trail.
type stdoutSink struct {
	mu     sync.Mutex // serializes writes; guards err
	w      io.Writer
	err    error
	closed bool
}

func (s *stdoutSink) write(_ context.Context, rec Record) error {
	line, err := json.Marshal(rec.unchained())
	if err != nil {
		return fmt.Errorf("encoding audit record: %w", err)
	}
	line = append(line, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if _, err := s.w.Write(line); err != nil {
		s.err = fmt.Errorf("audit stdout: %w", err)
		return s.err
	}
	s.err = nil
	return nil
}

func (s *stdoutSink) health() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *stdoutSink) close(context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}
