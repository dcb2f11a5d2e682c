package limit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newLocal(t testing.TB, cfg config.Limits, clock *fakeClock) *Limiter {
	t.Helper()
	l, err := New(cfg, config.State{}, Options{Clock: clock.Now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l
}

func rate(name, r string, burst int, key ...string) config.RateLimit {
	return config.RateLimit{Name: name, Key: key, Rate: r, Burst: burst}
}

// takeAll calls Check until it refuses (at most max times) and returns
// how many calls were allowed and the refusal.
func takeAll(t testing.TB, l *Limiter, c Call, limit int) (int, Verdict) {
	t.Helper()
	for n := range limit {
		if v := l.Check(context.Background(), c); !v.Allowed {
			return n, v
		}
	}
	return limit, Verdict{Allowed: true}
}

var alice = Call{Principal: "alice", Tenant: "acme", Server: "github", Tool: "create_issue", Session: "s1", IsToolCall: true}

func TestBurstThenSteadyRate(t *testing.T) {
	clock := newFakeClock()
	l := newLocal(t, config.Limits{Rate: []config.RateLimit{rate("per-user", "10/s", 5, "principal")}}, clock)

	n, v := takeAll(t, l, alice, 100)
	if n != 5 {
		t.Fatalf("burst: %d calls allowed, want 5", n)
	}
	if v.RetryAfter != 100*time.Millisecond || v.Limit != "per-user" {
		t.Fatalf("refusal = %+v, want per-user with RetryAfter 100ms", v)
	}
	clock.Advance(99 * time.Millisecond)
	if v := l.Check(context.Background(), alice); v.Allowed || v.RetryAfter != time.Millisecond {
		t.Fatalf("1ms early: %+v, want refused with RetryAfter 1ms", v)
	}
	clock.Advance(time.Millisecond)
	if n, _ := takeAll(t, l, alice, 100); n != 1 {
		t.Fatalf("after one interval: %d calls allowed, want 1", n)
	}
	// Steady rate: one call per 100ms, for a while.
	for i := range 20 {
		clock.Advance(100 * time.Millisecond)
		if n, _ := takeAll(t, l, alice, 100); n != 1 {
			t.Fatalf("step %d: %d calls allowed, want 1", i, n)
		}
	}
	// A long pause refills the burst, not more.
	clock.Advance(time.Hour)
	if n, _ := takeAll(t, l, alice, 100); n != 5 {
		t.Fatalf("after an hour: %d calls allowed, want 5", n)
	}
}

func TestDefaultBurstAndMessage(t *testing.T) {
	clock := newFakeClock()
	l := newLocal(t, config.Limits{Rate: []config.RateLimit{rate("per-user", "100/m", 0, "principal")}}, clock)
	n, v := takeAll(t, l, alice, 1000)
	if n != 100 {
		t.Fatalf("%d calls allowed, want the rate's N (100)", n)
	}
	if v.RetryAfter != 600*time.Millisecond {
		t.Errorf("RetryAfter = %v, want 600ms", v.RetryAfter)
	}
	want := `rate limit "per-user" (100/m per principal) reached for tool create_issue; retry after 1s`
	if v.Message != want {
		t.Errorf("Message = %q\nwant      %q", v.Message, want)
	}
	if got, want := string(v.Data()), `{"limit":"per-user","retryAfterSeconds":1}`; got != want {
		t.Errorf("Data = %s, want %s", got, want)
	}

	// A call that is not a tool call names no tool.
	clock.Advance(time.Hour)
	list := Call{Principal: "alice", Server: "github", Session: "s1"}
	if _, v = takeAll(t, l, list, 1000); v.Allowed {
		t.Fatal("never refused")
	}
	if want := `rate limit "per-user" (100/m per principal) reached; retry after 1s`; v.Message != want {
		t.Errorf("Message = %q, want %q", v.Message, want)
	}
}

func TestRetryAfterFormatting(t *testing.T) {
	for _, tc := range []struct {
		d       time.Duration
		wait    string
		seconds int
	}{
		{time.Millisecond, "1s", 1},
		{time.Second, "1s", 1},
		{time.Second + time.Nanosecond, "2s", 2},
		{11*time.Second + 200*time.Millisecond, "12s", 12},
		{125 * time.Second, "2m5s", 125},
		{time.Hour, "1h", 3600},
	} {
		t.Run(tc.d.String(), func(t *testing.T) {
			if got := formatWait(tc.d); got != tc.wait {
				t.Errorf("formatWait = %q, want %q", got, tc.wait)
			}
			if got := (Verdict{RetryAfter: tc.d}).RetryAfterSeconds(); got != tc.seconds {
				t.Errorf("RetryAfterSeconds = %d, want %d", got, tc.seconds)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	bob := alice
	bob.Principal, bob.Session = "bob", "s2"
	aliceOtherTool := alice
	aliceOtherTool.Tool = "add_comment"
	carol := alice
	carol.Principal, carol.Tenant, carol.Session = "carol", "globex", "s3"
	aliceOtherSession := alice
	aliceOtherSession.Session = "s9"

	// Each rule allows one call per key; the calls run in order and want
	// says which are allowed.
	calls := []Call{alice, bob, aliceOtherTool, carol, aliceOtherSession}
	for _, tc := range []struct {
		key  []string
		want []bool
	}{
		{[]string{"principal"}, []bool{true, true, false, true, false}},
		{[]string{"tenant"}, []bool{true, false, false, true, false}},
		{[]string{"tool"}, []bool{true, false, true, false, false}},
		{[]string{"principal", "tool"}, []bool{true, true, true, true, false}},
		{[]string{"tenant", "tool"}, []bool{true, false, true, true, false}},
		{[]string{"session"}, []bool{true, true, false, true, true}},
		{[]string{"server"}, []bool{true, false, false, false, false}},
	} {
		t.Run(fmt.Sprint(tc.key), func(t *testing.T) {
			l := newLocal(t, config.Limits{Rate: []config.RateLimit{rate("one", "1/h", 1, tc.key...)}}, newFakeClock())
			for i, c := range calls {
				if got := l.Check(context.Background(), c).Allowed; got != tc.want[i] {
					t.Errorf("call %d (%s/%s/%s/%s): allowed = %v, want %v", i, c.Principal, c.Tenant, c.Tool, c.Session, got, tc.want[i])
				}
			}
		})
	}
}

func TestRuleApplies(t *testing.T) {
	filtered := config.RateLimit{Name: "f", Key: []string{"principal"}, Rate: "1/h", Servers: []string{"github"}, Tools: []string{"create_issue"}}
	toolCall := alice
	otherServer := alice
	otherServer.Server = "gitlab"
	otherTool := alice
	otherTool.Tool = "add_comment"
	notToolCall := Call{Principal: "alice", Tenant: "acme", Server: "github", Tool: "create_issue", Session: "s1"} // prompts/get
	noTenant := alice
	noTenant.Tenant = ""
	noSession := alice
	noSession.Session = ""
	local := Call{Principal: "alice", Session: "s1"} // answered by the gateway

	for _, tc := range []struct {
		name string
		rule config.RateLimit
		call Call
		want bool
	}{
		{"filters match", filtered, toolCall, true},
		{"other server", filtered, otherServer, false},
		{"other tool", filtered, otherTool, false},
		{"tools filter needs a tool call", filtered, notToolCall, false},
		{"tool key needs a tool call", rate("t", "1/h", 1, "tool"), notToolCall, false},
		{"principal key on a non-tool call", rate("p", "1/h", 1, "principal"), notToolCall, true},
		{"tenant key without tenant", rate("t", "1/h", 1, "tenant"), noTenant, false},
		{"session key without session", rate("s", "1/h", 1, "principal", "session"), noSession, false},
		{"server key on a local request", rate("s", "1/h", 1, "server"), local, false},
		{"principal key on a local request", rate("p", "1/h", 1, "principal"), local, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rules, err := compileRules(config.Limits{Rate: []config.RateLimit{tc.rule}}, withDefaults(Options{}))
			if err != nil {
				t.Fatal(err)
			}
			if got := rules[0].applies(&tc.call); got != tc.want {
				t.Errorf("applies = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBudgets(t *testing.T) {
	t.Run("per minute", func(t *testing.T) {
		clock := newFakeClock()
		l := newLocal(t, config.Limits{Budgets: config.Budgets{CallsPerMinute: 3}}, clock)
		n, v := takeAll(t, l, alice, 10)
		if n != 3 || v.Limit != "budget.calls_per_minute" || v.RetryAfter != 20*time.Second {
			t.Fatalf("allowed %d, refusal %+v; want 3 then budget.calls_per_minute with RetryAfter 20s", n, v)
		}
		if want := "tool-call budget of this session (3/m) reached; retry after 20s"; v.Message != want {
			t.Errorf("Message = %q, want %q", v.Message, want)
		}
		other := alice
		other.Session = "s2"
		if !l.Check(context.Background(), other).Allowed {
			t.Error("another session was refused")
		}
		notTool := alice
		notTool.IsToolCall = false
		if !l.Check(context.Background(), notTool).Allowed {
			t.Error("a request that is not a tool call was counted")
		}
		clock.Advance(20 * time.Second)
		if n, _ := takeAll(t, l, alice, 10); n != 1 {
			t.Errorf("after 20s: %d allowed, want 1", n)
		}
	})
	t.Run("per session", func(t *testing.T) {
		clock := newFakeClock()
		l := newLocal(t, config.Limits{Budgets: config.Budgets{CallsPerSession: 5}}, clock)
		n, v := takeAll(t, l, alice, 10)
		if n != 5 || v.Limit != "budget.calls_per_session" || v.RetryAfter != 0 {
			t.Fatalf("allowed %d, refusal %+v; want 5 then budget.calls_per_session without RetryAfter", n, v)
		}
		if want := "tool-call budget of this session (5 calls) is spent; no more tool calls are accepted in this session"; v.Message != want {
			t.Errorf("Message = %q, want %q", v.Message, want)
		}
		if got, want := string(v.Data()), `{"limit":"budget.calls_per_session"}`; got != want {
			t.Errorf("Data = %s, want %s", got, want)
		}
		clock.Advance(time.Hour)
		if l.Check(context.Background(), alice).Allowed {
			t.Error("a spent budget came back after an hour")
		}
		stateless := alice
		stateless.Session = ""
		if !l.Check(context.Background(), stateless).Allowed {
			t.Error("a call outside any session was counted against a session budget")
		}
	})
	t.Run("per session expires after SessionTTL", func(t *testing.T) {
		clock := newFakeClock()
		l, err := New(config.Limits{Budgets: config.Budgets{CallsPerSession: 1}}, config.State{}, Options{Clock: clock.Now, SessionTTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		takeAll(t, l, alice, 10)
		clock.Advance(time.Minute)
		if !l.Check(context.Background(), alice).Allowed {
			t.Error("the count of a session idle for SessionTTL was kept")
		}
	})
}

// A call refused by one rule takes nothing from the others.
func TestRefusedCallConsumesNothing(t *testing.T) {
	narrow := config.RateLimit{Name: "narrow", Key: []string{"principal"}, Rate: "1/h", Tools: []string{"create_issue"}}
	wide := rate("wide", "2/h", 0, "principal")
	l := newLocal(t, config.Limits{Rate: []config.RateLimit{narrow, wide}}, newFakeClock())
	other := alice
	other.Tool = "list_issues"
	steps := []struct {
		call  Call
		allow bool
		limit string
	}{
		{alice, true, ""},        // narrow 0 left, wide 1 left
		{alice, false, "narrow"}, // refused by narrow: wide keeps its 1
		{alice, false, "narrow"},
		{other, true, ""}, // wide's last token
		{other, false, "wide"},
	}
	for i, s := range steps {
		v := l.Check(context.Background(), s.call)
		if v.Allowed != s.allow || v.Limit != s.limit {
			t.Fatalf("step %d: %+v, want allowed=%v limit=%q", i, v, s.allow, s.limit)
		}
	}
}

// When several rules refuse, the verdict names the one that frees last.
func TestVerdictNamesLongestWait(t *testing.T) {
	l := newLocal(t, config.Limits{
		Rate:    []config.RateLimit{rate("fast", "1/s", 1, "principal"), rate("slow", "1/h", 1, "principal"), rate("mid", "1/m", 1, "principal")},
		Budgets: config.Budgets{CallsPerMinute: 100},
	}, newFakeClock())
	l.Check(context.Background(), alice)
	v := l.Check(context.Background(), alice)
	if v.Limit != "slow" || v.RetryAfter != time.Hour {
		t.Errorf("verdict %+v, want slow with RetryAfter 1h", v)
	}
}

func TestLocalMemoryIsBounded(t *testing.T) {
	clock := newFakeClock()
	l := newLocal(t, config.Limits{Rate: []config.RateLimit{rate("p", "10/s", 0, "principal")}}, clock)
	c := alice
	// 10240 principals, 100 of them in each 200ms: each bucket is full
	// again 100ms after its call.
	for i := range 10 * minSweep {
		if i%100 == 0 {
			clock.Advance(200 * time.Millisecond)
		}
		c.Principal = fmt.Sprint("p", i)
		l.Check(context.Background(), c)
	}
	if n := l.local.size(); n > 2*minSweep {
		t.Fatalf("%d buckets held while at most 100 were live at once", n)
	}
	clock.Advance(2 * time.Second)
	l.Check(context.Background(), alice)
	clock.Advance(sweepEvery)
	l.Check(context.Background(), alice)
	if n := l.local.size(); n != 1 {
		t.Errorf("%d buckets held after every principal but one went idle, want 1", n)
	}
}

func TestNewRejectsBadRules(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  config.Limits
	}{
		{"rate", config.Limits{Rate: []config.RateLimit{rate("r", "10/d", 0, "principal")}}},
		{"key", config.Limits{Rate: []config.RateLimit{rate("r", "10/s", 0, "user")}}},
		{"no key", config.Limits{Rate: []config.RateLimit{rate("r", "10/s", 0)}}},
		{"reserved name", config.Limits{Rate: []config.RateLimit{rate("budget.x", "10/s", 0, "principal")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg, config.State{}, Options{}); err == nil {
				t.Error("New accepted the rule")
			}
		})
	}
	t.Run("redis url", func(t *testing.T) {
		_, err := New(config.Limits{}, config.State{Redis: &config.RedisState{URL: config.Literal("redis://user:hunter2@127.0.0.1:6379/x y")}}, Options{})
		if err == nil {
			t.Fatal("New accepted an invalid URL")
		}
		if s := err.Error(); strings.Contains(s, "hunter2") {
			t.Errorf("error %q reveals the password", s)
		}
	})
}

func TestDampeningSettings(t *testing.T) {
	off, refuse := false, config.ToolOverride{Duplicates: "refuse"}
	if !CoalesceReads(config.Limits{}) || CoalesceReads(config.Limits{Dampening: config.Dampening{CoalesceReads: &off}}) {
		t.Error("CoalesceReads: want default true, false when set false")
	}
	if DuplicateWindow(config.Limits{}) != 10*time.Second ||
		DuplicateWindow(config.Limits{Dampening: config.Dampening{Window: config.Duration(time.Minute)}}) != time.Minute {
		t.Error("DuplicateWindow: want default 10s, the configured window otherwise")
	}
	global := config.Limits{Dampening: config.Dampening{DuplicateWrites: "refuse"}}
	for _, tc := range []struct {
		cfg  config.Limits
		o    *config.ToolOverride
		want string
	}{
		{config.Limits{}, nil, "flag"},
		{global, nil, "refuse"},
		{global, &config.ToolOverride{Duplicates: "flag"}, "flag"},
		{config.Limits{}, &refuse, "refuse"},
		{global, &config.ToolOverride{}, "refuse"},
	} {
		if got := DuplicateMode(tc.cfg, tc.o); got != tc.want {
			t.Errorf("DuplicateMode(%+v, %+v) = %q, want %q", tc.cfg.Dampening, tc.o, got, tc.want)
		}
	}
}
