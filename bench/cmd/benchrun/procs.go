package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// process is one child the runner started: a target, an upstream or a
// load generator.
type process struct {
	name  string
	cmd   *exec.Cmd
	addr  string // the data address it bound
	admin string // mcpgate's admin address
	log   *os.File
	done  chan struct{}
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// url returns the process's MCP URL for path.
func (p *process) url(path string) string { return "http://" + p.addr + path }

// stop sends SIGTERM, waits up to grace, then kills.
func (p *process) stop(grace time.Duration) {
	if p == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.cmd.Process.Kill()
		<-p.done
	}
	if p.log != nil {
		p.log.Close()
	}
}

// runner owns the children of one benchmark run, so that every one of them
// is stopped whatever happens.
type runner struct {
	bin   string // directory of the built binaries
	out   string // directory for logs, profiles and results
	procs []*process
}

func (r *runner) stopAll() {
	for i := len(r.procs) - 1; i >= 0; i-- {
		select {
		case <-r.procs[i].done:
		default:
			r.procs[i].stop(5 * time.Second)
		}
	}
	r.procs = nil
}

func (r *runner) logFile(name string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Join(r.out, "logs"), 0o755); err != nil {
		return nil, err
	}
	return os.Create(filepath.Join(r.out, "logs", name+".log"))
}

// startAddr starts a bench binary that prints its bound address as the
// first line of stdout (echo, proxy).
func (r *runner) startAddr(ctx context.Context, name, bin string, args ...string) (*process, error) {
	lf, err := r.logFile(name)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(r.bin, bin), args...)
	cmd.Stderr = lf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		lf.Close()
		return nil, err
	}
	p := &process{name: name, cmd: cmd, log: lf, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	r.procs = append(r.procs, p)
	br := bufio.NewReader(stdout)
	line := make(chan string, 1)
	go func() {
		l, _ := br.ReadString('\n')
		line <- strings.TrimSpace(l)
		io.Copy(lf, br)
	}()
	select {
	case p.addr = <-line:
	case <-time.After(10 * time.Second):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if _, _, err := net.SplitHostPort(p.addr); err != nil {
		return nil, fmt.Errorf("%s did not print its address (see %s)", name, lf.Name())
	}
	return p, nil
}

// startEcho starts a benchmark upstream.
func (r *runner) startEcho(ctx context.Context, name string, args ...string) (*process, error) {
	return r.startAddr(ctx, name, "echo", append([]string{"-addr", "127.0.0.1:0"}, args...)...)
}

// startProxy starts the trivial reverse proxy in front of upstream.
func (r *runner) startProxy(ctx context.Context, name string, upstream *process) (*process, error) {
	return r.startAddr(ctx, name, "proxy", "-addr", "127.0.0.1:0", "-upstream", "http://"+upstream.addr)
}

// gatewayConfig is the YAML of a minimal gateway config: loopback
// listeners on ephemeral ports, sessions bounded only by the run, the
// given servers (name → MCP URL), and the store (tool pins) in memory, so
// that a run never leaves an mcpgate.db in the working directory.
func gatewayConfig(logLevel string, servers map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\nlog: {level: %s, format: json}\n", logLevel)
	b.WriteString("store: {path: \":memory:\"}\n")
	b.WriteString("sessions: {max_per_principal: 1000000, idle_timeout: 1h}\nservers:\n")
	for _, name := range sortedKeys(servers) {
		fmt.Fprintf(&b, "  %s:\n    url: %s\n", name, servers[name])
	}
	return b.String()
}

// withAPIKey adds API key authentication with key to a gateway config.
func withAPIKey(cfg, key string) string {
	sum := sha256.Sum256([]byte(key))
	return cfg + "auth:\n  resource: http://127.0.0.1/mcp\n  api_keys:\n    - {name: bench, sha256: \"" + hex.EncodeToString(sum[:]) + "\"}\n"
}

// newAPIKey returns a random key for one run.
func newAPIKey() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// startGateway starts `mcpgate serve` with cfg and waits until /readyz
// answers 200. It learns the bound addresses from the "mcpgate started" log
// record. env ("NAME=value") is added to the child's environment, for
// secrets the config references.
func (r *runner) startGateway(ctx context.Context, name, cfg string, env ...string) (*process, error) {
	path := filepath.Join(r.out, name+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	lf, err := r.logFile(name)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(r.bin, "mcpgate"), "serve", "--config", path)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		lf.Close()
		return nil, err
	}
	cmd.Stdout = lf
	p := &process{name: name, cmd: cmd, log: lf, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	r.procs = append(r.procs, p)
	type started struct{ Msg, Listen, Admin string }
	ready := make(chan started, 1)
	go func() {
		br := bufio.NewReader(stderr)
		for {
			line, err := br.ReadBytes('\n')
			lf.Write(line)
			var s started
			if json.Unmarshal(line, &s) == nil && s.Msg == "mcpgate started" {
				ready <- s
				break
			}
			if err != nil {
				close(ready)
				return
			}
		}
		io.Copy(lf, br)
	}()
	select {
	case s, ok := <-ready:
		if !ok {
			return nil, fmt.Errorf("%s exited before starting (see %s)", name, lf.Name())
		}
		p.addr, p.admin = s.Listen, s.Admin
	case <-time.After(15 * time.Second):
		return nil, fmt.Errorf("%s did not start in 15s (see %s)", name, lf.Name())
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := waitReady(ctx, "http://"+p.admin+"/readyz", 15*time.Second, 5*time.Millisecond); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return p, nil
}

var pollClient = &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

// waitReady polls url until it answers 200.
func waitReady(ctx context.Context, url string, limit, every time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := pollClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return errors.New("not ready in time: " + url)
		}
		time.Sleep(every)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
