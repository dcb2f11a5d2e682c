// Command loadgen drives MCP load at one Streamable HTTP endpoint over
// legacy sessions:
//
//	call  N sessions loop tools/call for a fixed time; calls/s and latency
//	list  N sessions loop tools/list; latency, first (uncached) list, item count
//	idle  open K sessions, report, and hold them until stdin closes
//	big   call a tool with a large result a few times, reading it as a stream
//
// With -json it writes one JSON object per line on stdout: events
// ("measure_start", "measure_end", "ready") as they happen, then the result.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mcpgate/mcpgate/bench/internal/load"
)

func main() {
	url := flag.String("url", "", "MCP endpoint, e.g. http://127.0.0.1:8080/mcp")
	mode := flag.String("mode", "call", "call, list, idle or big")
	conc := flag.Int("c", 8, "concurrent sessions (call, list)")
	dur := flag.Duration("d", 5*time.Second, "measured window (call, list)")
	warm := flag.Duration("warmup", time.Second, "unrecorded warm-up before the window (call, list)")
	tool := flag.String("tool", "echo", "tool to call (call, big)")
	textBytes := flag.Int("text-bytes", 64, "length of the echo text argument (call)")
	sessions := flag.Int("sessions", 1000, "sessions to open (idle)")
	parallel := flag.Int("open-parallel", 32, "sessions opened at a time (idle)")
	calls := flag.Int("calls", 3, "calls to make (big)")
	asJSON := flag.Bool("json", false, "write events and the result as JSON lines")
	header := http.Header{}
	flag.Func("header", `extra request header "Name: value" (repeatable), e.g. credentials`, func(v string) error {
		k, val, ok := strings.Cut(v, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return fmt.Errorf("want \"Name: value\", got %q", v)
		}
		header.Add(strings.TrimSpace(k), strings.TrimSpace(val))
		return nil
	})
	flag.Parse()
	if *url == "" {
		fmt.Fprintln(os.Stderr, "loadgen: -url is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := json.NewEncoder(os.Stdout)
	emit := func(event string, fields map[string]any) {
		if !*asJSON {
			if event == "ready" {
				fmt.Fprintf(os.Stderr, "loadgen: %s %v\n", event, fields)
			}
			return
		}
		m := map[string]any{"event": event}
		for k, v := range fields {
			m[k] = v
		}
		out.Encode(m)
	}
	mark := func(e string) { emit(e, nil) }

	var res any
	var err error
	switch *mode {
	case "call", "list":
		req := load.ToolCall(*tool, *textBytes)
		if *mode == "list" {
			req = load.NewRequest("tools/list", `{}`)
		}
		var r *load.Result
		r, err = load.Run(ctx, load.Config{URL: *url, Concurrency: *conc, Warmup: *warm, Duration: *dur, Request: req, Mark: mark, Header: header,
			Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, "loadgen: "+f+"\n", a...) }})
		if err == nil && !*asJSON {
			fmt.Printf("%d sessions, %d calls in %.2fs: %.0f calls/s  p50 %v  p95 %v  p99 %v  max %v  errors %v\n",
				r.Concurrency, r.Calls, r.Seconds, r.CallsPerSec, r.P50, r.P95, r.P99, r.Max, r.Errors)
			if *mode == "list" {
				fmt.Printf("first list %v, %d tools\n", r.First, r.Items)
			}
		}
		res = r
	case "idle":
		res, err = idle(ctx, *url, header, *sessions, *parallel, emit)
	case "big":
		res, err = big(ctx, *url, header, *tool, *calls)
		if err == nil && !*asJSON {
			fmt.Printf("%+v\n", res)
		}
	default:
		err = fmt.Errorf("unknown -mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	if *asJSON {
		out.Encode(map[string]any{"event": "result", "result": res})
	}
}

// IdleResult is what an idle run reports.
type IdleResult struct {
	Sessions int     `json:"sessions"`
	Failed   int     `json:"failed"`
	Seconds  float64 `json:"open_seconds"`
	Error    string  `json:"error,omitempty"`
}

// idle opens n sessions, reports "ready", and holds them until stdin
// reaches EOF or the process is signalled.
func idle(ctx context.Context, url string, header http.Header, n, parallel int, emit func(string, map[string]any)) (*IdleResult, error) {
	c := load.NewClient(url, parallel)
	c.Header = header
	start := time.Now()
	ss, err := load.OpenSessions(ctx, c, n, parallel)
	r := &IdleResult{Sessions: len(ss), Failed: n - len(ss), Seconds: time.Since(start).Seconds()}
	if err != nil {
		r.Error = err.Error()
	}
	// The sessions are idle: no connection to the target needs to stay open.
	c.CloseIdle()
	emit("ready", map[string]any{"sessions": r.Sessions, "failed": r.Failed, "open_seconds": r.Seconds, "error": r.Error})
	held := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(held)
	}()
	select {
	case <-held:
	case <-ctx.Done():
	}
	return r, nil
}

// BigResult is what a big run reports. Durations are in nanoseconds.
type BigResult struct {
	Calls     int           `json:"calls"`
	Bytes     int64         `json:"bytes"`         // of the last answer
	FirstByte time.Duration `json:"first_byte_ns"` // median over the calls
	Total     time.Duration `json:"total_ns"`      // median over the calls
}

func big(ctx context.Context, url string, header http.Header, tool string, calls int) (*BigResult, error) {
	c := load.NewClient(url, 1)
	c.Header = header
	defer c.CloseIdle()
	s, err := c.Open(ctx)
	if err != nil {
		return nil, err
	}
	defer s.Close(context.Background())
	req := load.NewRequest("tools/call", `{"name":"`+tool+`","arguments":{}}`)
	r := &BigResult{}
	var firsts, totals []time.Duration
	for range calls {
		n, first, total, err := s.Stream(ctx, req)
		if err != nil {
			return nil, err
		}
		r.Calls++
		r.Bytes = n
		firsts, totals = append(firsts, first), append(totals, total)
	}
	if len(totals) > 0 {
		slices.Sort(firsts)
		slices.Sort(totals)
		r.FirstByte, r.Total = firsts[len(firsts)/2], totals[len(totals)/2]
	}
	return r, nil
}
