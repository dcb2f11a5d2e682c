package limit

import (
	"context"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
)

func TestWrites(t *testing.T) {
	clock := newFakeClock()
	l := newLocal(t, config.Limits{}, clock)
	w := l.Writes()
	ctx := context.Background()
	key := CallKey("alice", "github", "create_issue", []byte(`{"title":"x"}`))

	if _, dup := w.Seen(ctx, key); dup {
		t.Fatal("first write seen as a duplicate")
	}
	clock.Advance(2 * time.Second)
	prev, dup := w.Seen(ctx, key)
	if !dup || !prev.InFlight || prev.Age != 2*time.Second {
		t.Fatalf("write while the first is in flight: %+v dup=%v, want in flight for 2s", prev, dup)
	}
	if want := "identical call to create_issue is still in progress (started 2s ago); not repeated. Change the arguments or wait until it has finished to repeat it."; prev.Message("create_issue") != want {
		t.Errorf("Message = %q\nwant      %q", prev.Message("create_issue"), want)
	}

	w.Record(ctx, key, "ok")
	clock.Advance(3 * time.Second)
	prev, dup = w.Seen(ctx, key)
	if !dup || prev.InFlight || prev.Outcome != "ok" || prev.Age != 3*time.Second || prev.RetryAfter != 7*time.Second {
		t.Fatalf("repeat 3s after: %+v dup=%v, want outcome ok, 3s ago, retry after 7s", prev, dup)
	}
	if want := "identical call to create_issue already made 3s ago (outcome: ok); not repeated. Change the arguments or wait 7s to repeat it."; prev.Message("create_issue") != want {
		t.Errorf("Message = %q\nwant      %q", prev.Message("create_issue"), want)
	}
	other := CallKey("alice", "github", "create_issue", []byte(`{"title":"y"}`))
	if _, dup := w.Seen(ctx, other); dup {
		t.Error("a write with other arguments seen as a duplicate")
	}

	clock.Advance(7 * time.Second)
	if _, dup := w.Seen(ctx, key); dup {
		t.Fatal("repeat after the window seen as a duplicate")
	}
	w.Forget(ctx, key)
	if _, dup := w.Seen(ctx, key); dup {
		t.Fatal("Forget left the in-flight mark")
	}
	w.Record(ctx, key, "tool_error")
	w.Forget(ctx, key)
	if prev, dup := w.Seen(ctx, key); !dup || prev.Outcome != "tool_error" {
		t.Fatalf("Forget dropped a recorded outcome: %+v dup=%v", prev, dup)
	}
}

func TestWritesMessageJustNow(t *testing.T) {
	p := PriorCall{Outcome: "transport_error", Age: 300 * time.Millisecond, RetryAfter: 9700 * time.Millisecond}
	want := "identical call to send_mail already made just now (outcome: transport_error); not repeated. Change the arguments or wait 10s to repeat it."
	if got := p.Message("send_mail"); got != want {
		t.Errorf("Message = %q\nwant      %q", got, want)
	}
}

func TestWritesMemoryIsBounded(t *testing.T) {
	clock := newFakeClock()
	l := newLocal(t, config.Limits{Dampening: config.Dampening{Window: config.Duration(time.Second)}}, clock)
	w := l.Writes()
	for i := range 10 * minSweep {
		if i%100 == 0 {
			clock.Advance(2 * time.Second)
		}
		key := CallKey("alice", "github", "create_issue", []byte{byte(i), byte(i >> 8)})
		w.Seen(context.Background(), key)
		w.Record(context.Background(), key, "ok")
	}
	w.mu.Lock()
	n := len(w.m)
	w.mu.Unlock()
	if n > 2*minSweep {
		t.Errorf("%d writes held while at most 100 were within the window", n)
	}
}

func TestCallKey(t *testing.T) {
	base := CallKey("alice", "github", "create_issue", []byte(`{"title":"x","labels":["a","b"],"n":1}`))
	for _, tc := range []struct {
		name                    string
		principal, server, tool string
		args                    string
		same                    bool
	}{
		{"key order and spacing", "alice", "github", "create_issue", `{ "n": 1.0, "labels": ["a","b"], "title": "x" }`, true},
		{"other arguments", "alice", "github", "create_issue", `{"title":"y","labels":["a","b"],"n":1}`, false},
		{"array order matters", "alice", "github", "create_issue", `{"title":"x","labels":["b","a"],"n":1}`, false},
		{"other principal", "bob", "github", "create_issue", `{"title":"x","labels":["a","b"],"n":1}`, false},
		{"other server", "alice", "gitlab", "create_issue", `{"title":"x","labels":["a","b"],"n":1}`, false},
		{"other tool", "alice", "github", "add_comment", `{"title":"x","labels":["a","b"],"n":1}`, false},
		{"fields do not run together", "alicegithub", "", "create_issue", `{"title":"x","labels":["a","b"],"n":1}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := CallKey(tc.principal, tc.server, tc.tool, []byte(tc.args))
			if (got == base) != tc.same {
				t.Errorf("same key = %v, want %v", got == base, tc.same)
			}
		})
	}
	raw := RawCallKey("alice", "github", "create_issue", []byte(`{"title":"x","labels":["a","b"],"n":1}`))
	if raw == base || raw != RawCallKey("alice", "github", "create_issue", []byte(`{"title":"x","labels":["a","b"],"n":1}`)) ||
		raw == RawCallKey("alice", "github", "create_issue", []byte(`{"labels":["a","b"],"title":"x","n":1}`)) {
		t.Error("RawCallKey must be stable, differ from CallKey and see key order")
	}
	if CallKey("a", "s", "t", nil) != CallKey("a", "s", "t", []byte(`{}`)) {
		t.Error("absent arguments differ from {}")
	}
	if CallKey("a", "s", "t", []byte(`{"x":`)) == CallKey("a", "s", "t", []byte(`{"x":}`)) {
		t.Error("two different malformed arguments share a key")
	}
}
