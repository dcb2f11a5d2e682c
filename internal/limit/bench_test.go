package limit

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
)

// benchLimits has three rules that all apply to the benchmark's calls.
// Their bursts are large enough to allow every call, and their rates slow
// enough that the buckets stay live: the steady state of callers that are
// already known.
var benchLimits = config.Limits{
	Rate: []config.RateLimit{
		rate("per-user", "1/h", 1_000_000, "principal"),
		rate("per-tenant-tool", "1/h", 1_000_000, "tenant", "tool"),
		{Name: "github-writes", Key: []string{"principal", "tool"}, Rate: "1/h", Burst: 1_000_000, Servers: []string{"github"}},
	},
}

func benchCalls() []Call {
	calls := make([]Call, 1000)
	for i := range calls {
		calls[i] = alice
		calls[i].Principal = fmt.Sprint("principal-", i)
		calls[i].Tenant = fmt.Sprint("tenant-", i%100)
	}
	return calls
}

// cpuTime is the CPU time this process has used, user and system. On a
// shared machine it measures the code better than wall time does.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchCheck(b *testing.B, l *Limiter) {
	calls := benchCalls()
	ctx := context.Background()
	b.ReportAllocs()
	refused := 0
	start := cpuTime()
	for i := 0; b.Loop(); i++ {
		if !l.Check(ctx, calls[i%len(calls)]).Allowed {
			refused++
		}
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(refused)/float64(b.N), "refused/op")
}

func BenchmarkCheckLocal3Rules(b *testing.B) {
	l, err := New(benchLimits, config.State{}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	benchCheck(b, l)
}

// Every call from a new principal: two of the three buckets are created.
func BenchmarkCheckLocal3RulesNewKeys(b *testing.B) {
	l, err := New(benchLimits, config.State{}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	calls := make([]Call, 1<<16)
	for i := range calls {
		calls[i] = alice
		calls[i].Principal = fmt.Sprint("principal-", i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%len(calls) == 0 && i > 0 {
			b.StopTimer()
			l, _ = New(benchLimits, config.State{}, Options{})
			b.StartTimer()
		}
		l.Check(ctx, calls[i%len(calls)])
	}
}

func BenchmarkCheckLocal3RulesParallel(b *testing.B) {
	l, err := New(benchLimits, config.State{}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	calls := benchCalls()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for i := 0; pb.Next(); i++ {
			l.Check(ctx, calls[i%len(calls)])
		}
	})
}

func BenchmarkCheckNoMatchingRule(b *testing.B) {
	l, err := New(config.Limits{Rate: []config.RateLimit{{Name: "other", Key: []string{"principal"}, Rate: "1/s", Servers: []string{"gitlab"}}}}, config.State{}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	benchCheck(b, l)
}

func BenchmarkCheckRedis3Rules(b *testing.B) {
	url, c := testRedis(b)
	l := newShared(b, benchLimits, url, Options{KeyPrefix: testPrefix(b, c)})
	benchCheck(b, l)
	if l.Fallbacks() != 0 {
		b.Fatalf("%d checks fell back to local", l.Fallbacks())
	}
}

func BenchmarkCheckRedis3RulesParallel(b *testing.B) {
	url, c := testRedis(b)
	l := newShared(b, benchLimits, url, Options{KeyPrefix: testPrefix(b, c)})
	calls := benchCalls()
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for i := 0; pb.Next(); i++ {
			l.Check(ctx, calls[i%len(calls)])
		}
	})
}

func BenchmarkAcquire(b *testing.B) {
	l, err := New(config.Limits{Concurrency: config.Concurrency{PerPrincipal: 10, PerServer: 100}}, config.State{}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		release, _ := l.Acquire(ctx, alice.Principal, alice.Server)
		release()
	}
}

func BenchmarkCallKey(b *testing.B) {
	args := []byte(`{"owner":"mcpgate","repo":"mcpgate","title":"Rate limits","body":"GCRA per principal, tenant, server, tool and session","labels":["enhancement","limits"]}`)
	b.ReportAllocs()
	for b.Loop() {
		CallKey(alice.Principal, alice.Server, alice.Tool, args)
	}
}
