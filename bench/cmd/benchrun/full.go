package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// auditKeyEnv is the environment variable that carries the audit key to
// a full-pipeline gateway (audit.key must be a reference).
const auditKeyEnv = "MCPGATE_BENCH_AUDIT_KEY"

// fullOptions is what a full-pipeline config needs from the run.
type fullOptions struct {
	apiKey    string // the key the loadgen presents
	auditPath string // the JSONL audit file
	// traces is the OTLP/HTTP endpoint spans are exported to; empty
	// leaves tracing off (exporter none, the default).
	traces string
}

// withFullPipeline adds every request-path stage to a minimal gateway
// config: API key authentication, a policy of three rules evaluated on
// every call, a rate limit, session budgets and concurrency caps that the
// run never reaches, and an audit file. The echo server stays untrusted,
// so every echo call is a write: audited, with an fsync, and tracked for
// duplicates (dampening defaults: identical writes are flagged, not
// refused). Metrics are always on; tracing only with o.traces.
func withFullPipeline(cfg string, o fullOptions) string {
	var b strings.Builder
	b.WriteString(withAPIKey(cfg, o.apiKey))
	// The allow rule reads the principal and the tool; the deny rule and
	// the dry-run rule read an argument the calls have, so the arguments
	// are parsed and both are evaluated on every (allowed) call, without
	// matching: a dry-run match would add a log record per call.
	b.WriteString(`policy:
  default: deny
  rules:
    - name: bench-may-echo
      allow: 'principal.subject == "bench" && tool.name == "echo"'
    - name: no-sql-in-echo
      deny: 'has(args.text) && args.text.contains("DROP TABLE")'
      reason: "echo does not take SQL"
    - name: try-size-cap
      deny: 'has(args.text) && size(args.text) > 4096'
      mode: dry_run
limits:
  rate:
    - {name: per-principal, key: [principal], rate: 1000000/s}
  concurrency: {per_principal: 100000, per_server: 100000}
  budgets: {calls_per_minute: 1000000, calls_per_session: 1000000000}
`)
	fmt.Fprintf(&b, "audit:\n  key: {env: %s}\n  file: {path: %q}\n", auditKeyEnv, o.auditPath)
	if o.traces != "" {
		fmt.Fprintf(&b, "telemetry:\n  tracing: {exporter: otlp_http, endpoint: %q}\n", o.traces)
	}
	return b.String()
}

// startFullGateway starts a full-pipeline gateway in front of echo, with
// a fresh audit file under the run's output directory and a random audit
// key in its environment.
func (r *runner) startFullGateway(ctx context.Context, name string, o *options, echo *process, f fullOptions) (*process, error) {
	dir := filepath.Join(r.out, "audit")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f.auditPath = filepath.Join(dir, name+".jsonl")
	// A new chain per run: the sink would otherwise continue the last one.
	olds, _ := filepath.Glob(f.auditPath + "*")
	for _, p := range olds {
		os.Remove(p)
	}
	cfg := withFullPipeline(gatewayConfig(o.logLevel, map[string]string{"echo": echo.url("/mcp")}), f)
	return r.startGateway(ctx, name, cfg, auditKeyEnv+"="+newAPIKey())
}

// traceSink is an OTLP/HTTP trace receiver that accepts every export and
// discards it, so that the gateway's span export costs what it would
// against a collector that keeps up.
type traceSink struct {
	srv      *http.Server
	addr     string
	requests atomic.Int64
	bytes    atomic.Int64
}

// startTraceSink listens on a loopback port.
func startTraceSink() (*traceSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &traceSink{addr: ln.Addr().String()}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// ServeHTTP answers an export with an empty ExportTraceServiceResponse
// (zero bytes in protobuf: no partial success).
func (s *traceSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n, _ := io.Copy(io.Discard, r.Body)
	s.requests.Add(1)
	s.bytes.Add(n)
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

func (s *traceSink) url() string { return "http://" + s.addr + "/v1/traces" }

func (s *traceSink) close() { s.srv.Close() }

// auditCheck is what a full-pipeline gateway's audit file held after the
// run.
type auditCheck struct {
	Target     string         `json:"target"`
	Path       string         `json:"path"`
	Bytes      int64          `json:"bytes"`
	Records    int            `json:"records"`
	Duplicates int            `json:"duplicates"` // records flagged "duplicate"
	Outcomes   map[string]int `json:"outcomes"`
	Verify     string         `json:"verify"` // mcpgate audit verify's verdict
	Intact     bool           `json:"intact"`
}

// checkAudit reads a gateway's audit file and verifies its chain with
// `mcpgate audit verify`.
func (r *runner) checkAudit(ctx context.Context, key, path string) (*auditCheck, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c := &auditCheck{Target: key, Path: rel(path), Outcomes: map[string]int{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		c.Bytes += int64(len(sc.Bytes())) + 1
		var rec struct {
			Kind    string   `json:"kind"`
			Outcome string   `json:"outcome"`
			Flags   []string `json:"flags"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		c.Records++
		c.Outcomes[rec.Kind+"/"+rec.Outcome]++
		if slices.Contains(rec.Flags, "duplicate") {
			c.Duplicates++
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	vctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(vctx, filepath.Join(r.bin, "mcpgate"), "audit", "verify", path).CombinedOutput()
	c.Verify = strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(c.Verify, '\n'); i >= 0 {
		c.Verify = c.Verify[i+1:] // the summary line
	}
	c.Intact = err == nil
	return c, nil
}

// auditSummary renders the audit checks as one footnote sentence each.
func auditSummary(t *tableResult) string {
	var b strings.Builder
	for _, c := range t.Audit {
		var outs []string
		for _, k := range sortedKeys(c.Outcomes) {
			outs = append(outs, fmt.Sprintf("%s %d", k, c.Outcomes[k]))
		}
		avg := 0.0
		if c.Records > 0 {
			avg = float64(c.Bytes) / float64(c.Records)
		}
		fmt.Fprintf(&b, "Audit of %s: %d records (%.0f bytes each on average; %s), %d flagged duplicate; `mcpgate audit verify`: %s.\n",
			label(t, c.Target), c.Records, avg, strings.Join(outs, ", "), c.Duplicates, c.Verify)
	}
	return b.String()
}
