// Package session owns client session identity: unguessable IDs, binding
// each session to the principal that created it, idle expiry and the cap on
// sessions per principal. What a session holds is its owner's business.
package session

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"sync"
	"time"
)

// ErrTooMany is returned by Create when the principal already holds the
// maximum number of sessions.
var ErrTooMany = errors.New("too many sessions for this principal")

// Value is what a session holds. Close is called exactly once, without the
// store's lock held, when the session is deleted, expires or the store closes.
type Value interface {
	Close()
}

// Options configure a Store. Zero fields take the documented defaults.
type Options struct {
	IdleTimeout     time.Duration // default 30m
	MaxPerPrincipal int           // default 100
	Now             func() time.Time
}

// Store holds live sessions in memory.
type Store[V Value] struct {
	idle   time.Duration
	max    int
	now    func() time.Time
	mu     sync.Mutex // guards the fields below
	byID   map[string]*entry[V]
	counts map[string]int
	closed bool
}

type entry[V Value] struct {
	principal string
	value     V
	lastUsed  time.Time
}

// NewStore returns an empty store.
func NewStore[V Value](opts Options) *Store[V] {
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 30 * time.Minute
	}
	if opts.MaxPerPrincipal <= 0 {
		opts.MaxPerPrincipal = 100
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store[V]{
		idle:   opts.IdleTimeout,
		max:    opts.MaxPerPrincipal,
		now:    opts.Now,
		byID:   make(map[string]*entry[V]),
		counts: make(map[string]int),
	}
}

// NewID returns a fresh session ID: 192 random bits as 32 characters of
// URL-safe base64, which is visible ASCII as the MCP transport requires.
func NewID() string {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("session: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Create stores v under a new ID bound to principal.
func (s *Store[V]) Create(principal string, v V) (string, error) {
	id := NewID()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", errors.New("session store closed")
	}
	if s.counts[principal] >= s.max {
		return "", ErrTooMany
	}
	s.byID[id] = &entry[V]{principal: principal, value: v, lastUsed: s.now()}
	s.counts[principal]++
	return id, nil
}

// Get returns the session id if it exists and belongs to principal, and
// marks it used. A session of another principal is reported as absent, so
// that a leaked ID reveals nothing.
func (s *Store[V]) Get(id, principal string) (V, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byID[id]
	if !ok || e.principal != principal {
		var zero V
		return zero, false
	}
	e.lastUsed = s.now()
	return e.value, true
}

// Delete removes the session if it belongs to principal, closes it and
// reports whether it existed.
func (s *Store[V]) Delete(id, principal string) bool {
	s.mu.Lock()
	e, ok := s.byID[id]
	if !ok || e.principal != principal {
		s.mu.Unlock()
		return false
	}
	s.removeLocked(id, e)
	s.mu.Unlock()
	e.value.Close()
	return true
}

// Remove removes the session whatever its principal (for the session's own
// teardown, e.g. when its upstream is gone) and closes it.
func (s *Store[V]) Remove(id string) {
	s.mu.Lock()
	e, ok := s.byID[id]
	if ok {
		s.removeLocked(id, e)
	}
	s.mu.Unlock()
	if ok {
		e.value.Close()
	}
}

func (s *Store[V]) removeLocked(id string, e *entry[V]) {
	delete(s.byID, id)
	if s.counts[e.principal]--; s.counts[e.principal] <= 0 {
		delete(s.counts, e.principal)
	}
}

// Expire closes and removes sessions idle for longer than the idle timeout,
// returning how many it removed. Busy reports sessions that must not expire
// now (for example, one with a stream open); it may be nil.
func (s *Store[V]) Expire(busy func(V) bool) int {
	cutoff := s.now().Add(-s.idle)
	var expired []V
	s.mu.Lock()
	for id, e := range s.byID {
		if e.lastUsed.Before(cutoff) && (busy == nil || !busy(e.value)) {
			s.removeLocked(id, e)
			expired = append(expired, e.value)
		}
	}
	s.mu.Unlock()
	for _, v := range expired {
		v.Close()
	}
	return len(expired)
}

// Len returns the number of live sessions.
func (s *Store[V]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}

// All returns a snapshot of the live sessions.
func (s *Store[V]) All() []V {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]V, 0, len(s.byID))
	for _, e := range s.byID {
		out = append(out, e.value)
	}
	return out
}

// Close refuses new sessions and closes every live one.
func (s *Store[V]) Close() {
	s.mu.Lock()
	s.closed = true
	all := make([]V, 0, len(s.byID))
	for id, e := range s.byID {
		s.removeLocked(id, e)
		all = append(all, e.value)
	}
	s.mu.Unlock()
	// Closing a session can wait on its upstreams; close many at once.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, v := range all {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			v.Close()
		})
	}
	wg.Wait()
}
