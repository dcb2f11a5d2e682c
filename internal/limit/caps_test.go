package limit

import (
	"context"
	"testing"

	"github.com/mcpgate/mcpgate/internal/config"
)

func TestAcquire(t *testing.T) {
	l := newLocal(t, config.Limits{Concurrency: config.Concurrency{PerPrincipal: 2, PerServer: 3}}, newFakeClock())
	ctx := context.Background()
	acquire := func(principal, server string) (func(), Verdict) {
		t.Helper()
		return l.Acquire(ctx, principal, server)
	}
	a1, v := acquire("alice", "github")
	a2, _ := acquire("alice", "github")
	if !v.Allowed {
		t.Fatalf("first call refused: %+v", v)
	}
	_, v = acquire("alice", "gitlab")
	if v.Allowed || v.Limit != "concurrency.per_principal" {
		t.Fatalf("third call of alice: %+v, want refused by concurrency.per_principal", v)
	}
	if want := "too many calls in flight for this caller (limit 2); retry after 1s"; v.Message != want {
		t.Errorf("Message = %q, want %q", v.Message, want)
	}
	b1, _ := acquire("bob", "github")
	_, v = acquire("carol", "github")
	if v.Allowed || v.Limit != "concurrency.per_server" {
		t.Fatalf("fourth call to github: %+v, want refused by concurrency.per_server", v)
	}
	if want := "too many calls in flight to server github (limit 3); retry after 1s"; v.Message != want {
		t.Errorf("Message = %q, want %q", v.Message, want)
	}
	// A refusal by the server cap took no principal slot from carol.
	c1, v := acquire("carol", "gitlab")
	c2, v2 := acquire("carol", "gitlab")
	if !v.Allowed || !v2.Allowed {
		t.Fatalf("carol on gitlab: %+v %+v, want both allowed", v, v2)
	}
	c1()
	c2()

	a1()
	a1() // a second release must not free another slot
	if _, v := acquire("dave", "github"); !v.Allowed {
		t.Fatalf("after a release: %+v, want allowed", v)
	}
	if _, v := acquire("erin", "github"); v.Allowed {
		t.Fatal("a double release freed two slots")
	}
	a2()
	b1()
	if n := len(l.caps.byPrincipal) + len(l.caps.byServer); n != 2 {
		t.Errorf("%d counters held, want 2 (dave and github)", n)
	}
}

func TestAcquireWithoutCaps(t *testing.T) {
	l := newLocal(t, config.Limits{}, newFakeClock())
	for range 100 {
		if _, v := l.Acquire(context.Background(), "alice", "github"); !v.Allowed {
			t.Fatal("refused without caps")
		}
	}
}

func TestAcquireStream(t *testing.T) {
	l := newLocal(t, config.Limits{MaxStreamsPerPrincipal: 2}, newFakeClock())
	r1, ok1 := l.AcquireStream("alice")
	_, ok2 := l.AcquireStream("alice")
	_, ok3 := l.AcquireStream("alice")
	_, okBob := l.AcquireStream("bob")
	if !ok1 || !ok2 || ok3 || !okBob {
		t.Fatalf("got %v %v %v %v, want alice twice, not a third time, and bob", ok1, ok2, ok3, okBob)
	}
	r1()
	r1()
	if _, ok := l.AcquireStream("alice"); !ok {
		t.Fatal("a released stream slot was not freed")
	}
	if _, ok := l.AcquireStream("alice"); ok {
		t.Fatal("a double release freed two slots")
	}
	if l.StreamCap() != 2 {
		t.Errorf("StreamCap = %d, want 2", l.StreamCap())
	}

	unlimited := newLocal(t, config.Limits{}, newFakeClock())
	for range 100 {
		if _, ok := unlimited.AcquireStream("alice"); !ok {
			t.Fatal("refused without a cap")
		}
	}
}
