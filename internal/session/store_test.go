package session

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type val struct{ closed *atomic.Int32 }

func (v val) Close() { v.closed.Add(1) }

func newVal() val { return val{closed: new(atomic.Int32)} }

func TestIDsAreVisibleASCIIAndUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewID()
		if len(id) != 32 {
			t.Fatalf("len(%q) = %d", id, len(id))
		}
		for _, c := range id {
			if c < 0x21 || c > 0x7e {
				t.Fatalf("id %q has non-visible character %q", id, c)
			}
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
}

func TestBindingToPrincipal(t *testing.T) {
	s := NewStore[val](Options{})
	v := newVal()
	id, err := s.Create("alice", v)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Get(id, "alice"); !ok {
		t.Fatal("owner cannot get its session")
	}
	if _, ok := s.Get(id, "mallory"); ok {
		t.Fatal("another principal got the session")
	}
	if s.Delete(id, "mallory") {
		t.Fatal("another principal deleted the session")
	}
	if !s.Delete(id, "alice") || v.closed.Load() != 1 {
		t.Fatal("owner could not delete, or value not closed once")
	}
	if _, ok := s.Get(id, "alice"); ok {
		t.Fatal("deleted session still found")
	}
	if s.Delete(id, "alice") {
		t.Fatal("second delete reported success")
	}
}

func TestCapPerPrincipal(t *testing.T) {
	s := NewStore[val](Options{MaxPerPrincipal: 2})
	var ids []string
	for range 2 {
		id, err := s.Create("alice", newVal())
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if _, err := s.Create("alice", newVal()); !errors.Is(err, ErrTooMany) {
		t.Fatalf("third session: err = %v, want ErrTooMany", err)
	}
	if _, err := s.Create("bob", newVal()); err != nil {
		t.Fatalf("other principal limited by alice's sessions: %v", err)
	}
	s.Delete(ids[0], "alice")
	if _, err := s.Create("alice", newVal()); err != nil {
		t.Fatalf("after delete: %v", err)
	}
}

func TestIdleExpiry(t *testing.T) {
	now := time.Unix(1000, 0)
	s := NewStore[val](Options{IdleTimeout: time.Minute, Now: func() time.Time { return now }})
	idle, busy, fresh := newVal(), newVal(), newVal()
	idleID, _ := s.Create("a", idle)
	busyID, _ := s.Create("a", busy)
	now = now.Add(50 * time.Second)
	freshID, _ := s.Create("a", fresh)
	now = now.Add(20 * time.Second)
	n := s.Expire(func(v val) bool { return v.closed == busy.closed })
	if n != 1 || idle.closed.Load() != 1 || busy.closed.Load() != 0 || fresh.closed.Load() != 0 {
		t.Fatalf("expired %d; closed idle=%d busy=%d fresh=%d", n, idle.closed.Load(), busy.closed.Load(), fresh.closed.Load())
	}
	if _, ok := s.Get(idleID, "a"); ok {
		t.Fatal("expired session still present")
	}
	for _, id := range []string{busyID, freshID} {
		if _, ok := s.Get(id, "a"); !ok {
			t.Fatalf("session %s expired early", id)
		}
	}
}

func TestCloseClosesAllAndRefusesNew(t *testing.T) {
	s := NewStore[val](Options{})
	v := newVal()
	s.Create("a", v)
	s.Close()
	if v.closed.Load() != 1 || s.Len() != 0 {
		t.Fatal("close did not close the session")
	}
	if _, err := s.Create("a", newVal()); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("create after close: %v", err)
	}
}
