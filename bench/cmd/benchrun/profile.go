package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// fetch saves the body of a GET of url to path.
func fetch(ctx context.Context, url, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// pprofTop runs `go tool pprof -top` with args and saves the report next to
// the last argument (the profile) with the given suffix.
func (r *runner) pprofTop(suffix string, args ...string) (string, error) {
	full := append([]string{"tool", "pprof", "-top"}, args...)
	out, err := exec.Command("go", full...).Output()
	if err != nil {
		return "", fmt.Errorf("go tool pprof: %w", err)
	}
	prof := args[len(args)-1]
	if err := os.WriteFile(strings.TrimSuffix(prof, ".pprof")+suffix+".txt", out, 0o644); err != nil {
		return "", err
	}
	return string(out), nil
}

// topLines keeps the header and the first n entries of a pprof -top report.
func topLines(report string, n int) string {
	lines := strings.Split(strings.TrimSpace(report), "\n")
	var out []string
	entries := 0
	inTable := false
	for _, l := range lines {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Type:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		if strings.Contains(l, "flat%") {
			inTable = true
			out = append(out, l)
			continue
		}
		if inTable {
			if entries >= n {
				break
			}
			entries++
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// profileGateway takes a CPU profile of a gateway target during an extra
// c=8 run (outside the measured table, so that profiling does not skew
// it), and appends its report to o.profileReport.
func (r *runner) profileGateway(ctx context.Context, o *options, t target) error {
	secs := max(int(o.duration.Seconds()), 3)
	dir := filepath.Join(r.out, "profiles")
	prefix := filepath.Join(dir, "gateway-c8-"+t.Key)
	path := prefix + "-cpu.pprof"
	l, err := r.startLoad(slices.Concat([]string{"-url", t.url, "-tool", t.tool, "-c", "8", "-d", strconv.Itoa(secs+1) + "s", "-warmup", o.warmup.String()}, t.args)...)
	if err != nil {
		return err
	}
	defer l.p.stop(5 * time.Second)
	errc := make(chan error, 1)
	allocsBefore := prefix + "-allocs-before.pprof"
	allocsAfter := prefix + "-allocs.pprof"
	var calls uint64
	for done := false; !done; {
		ev, err := l.next(ctx, 5*time.Minute)
		if err != nil {
			return err
		}
		switch ev.Event {
		case "measure_start":
			go func() {
				errc <- fetch(ctx, "http://"+t.hop.admin+"/debug/pprof/profile?seconds="+strconv.Itoa(secs), path)
			}()
			if err := fetch(ctx, "http://"+t.hop.admin+"/debug/pprof/allocs", allocsBefore); err != nil {
				return err
			}
		case "measure_end":
			if err := fetch(ctx, "http://"+t.hop.admin+"/debug/pprof/allocs", allocsAfter); err != nil {
				return err
			}
		case "result":
			var res struct{ Calls uint64 }
			json.Unmarshal(ev.Result, &res)
			calls = res.Calls
			done = true
		}
	}
	if err := <-errc; err != nil {
		return err
	}
	bin := filepath.Join(r.bin, "mcpgate")
	var allocReport string
	space, err1 := r.pprofTop("-top", "-sample_index=alloc_space", "-nodecount=30", "-base", allocsBefore, bin, allocsAfter)
	objects, err2 := r.pprofTop("-objects", "-sample_index=alloc_objects", "-nodecount=30", "-base", allocsBefore, bin, allocsAfter)
	if err1 == nil && err2 == nil && calls > 0 {
		b, ok1 := pprofTotal(space)
		n, ok2 := pprofTotal(objects)
		if ok1 && ok2 {
			allocReport = fmt.Sprintf("Allocations (sampled heap profile, %d calls): ≈ %.0f objects and %.1f KiB per call. By bytes:\n\n```\n%s\n```\n\nBy objects:\n\n```\n%s\n```\n",
				calls, n/float64(calls), b/float64(calls)/1024, topLines(space, 15), topLines(objects, 15))
		}
	}
	flat, err := r.pprofTop("-top", "-nodecount=40", bin, path)
	if err != nil {
		return err
	}
	cum, err := r.pprofTop("-cum", "-cum", "-nodecount=60", bin, path)
	if err != nil {
		return err
	}
	o.profileReport += fmt.Sprintf("#### %s\n\nCPU profile (c=8, %ds, %d calls): %s\n\nBy flat time:\n\n```\n%s\n```\n\nBy cumulative time:\n\n```\n%s\n```\n\n%s\n",
		t.Label, secs, calls, rel(path), topLines(flat, 25), topLines(cum, 40), allocReport)
	return nil
}

// pprofTotal reads the sample total of a pprof -top report ("... of 1.5GB
// total"), in bytes or counts.
func pprofTotal(report string) (float64, bool) {
	for _, l := range strings.Split(report, "\n") {
		i := strings.Index(l, "% of ")
		if !strings.HasPrefix(l, "Showing nodes accounting for") || i < 0 {
			continue
		}
		v, _, ok := strings.Cut(l[i+len("% of "):], " total")
		if !ok {
			return 0, false
		}
		mult := 1.0
		for _, u := range []struct {
			suffix string
			m      float64
		}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"kB", 1 << 10}, {"B", 1}, {"G", 1e9}, {"M", 1e6}, {"k", 1e3}} {
			if rest, found := strings.CutSuffix(v, u.suffix); found {
				v, mult = rest, u.m
				break
			}
		}
		f, err := strconv.ParseFloat(v, 64)
		return f * mult, err == nil
	}
	return 0, false
}

// rel shortens a path for reports.
func rel(path string) string {
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, path); err == nil {
			return r
		}
	}
	return path
}
