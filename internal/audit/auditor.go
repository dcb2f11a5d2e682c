package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
)

// MinKeyBytes is the shortest audit.key accepted.
const MinKeyBytes = 32

// Sink names, as passed to Options.Metrics.
const (
	SinkFile     = "file"
	SinkStdout   = "stdout"
	SinkPostgres = "postgres"
)

// Options configure an Auditor. Zero fields take the documented defaults.
type Options struct {
	// Logger receives sink failures and rotations; default: discarded.
	Logger *slog.Logger
	// Clock stamps records that have no time and names rotated files;
	// default time.Now.
	Clock func() time.Time
	// Metrics, when set, is called once per sink and record with the sink
	// name (SinkFile, SinkStdout, SinkPostgres) and "ok" or "error".
	Metrics func(sink, result string)
	// Stdout receives the stdout sink's lines; default os.Stdout.
	Stdout io.Writer
}

// sink stores records; write returns once the record is durable.
type sink interface {
	write(ctx context.Context, rec Record) error
	health() error
	close(ctx context.Context) error
}

type namedSink struct {
	name string
	sink
}

// Auditor writes audit records to every configured sink. Its methods are
// safe for concurrent use. An Auditor with no sink (audit not configured)
// accepts and drops every record.
type Auditor struct {
	key      []byte
	sinks    []namedSink
	failOpen bool
	log      *slog.Logger
	now      func() time.Time
	metrics  func(sink, result string)

	file *fileSink // nil without a file sink; tests read its counters
	pg   *pgSink

	closeOnce sync.Once
	closeErr  error
}

// New opens the sinks of cfg: it continues the hash chain of an existing
// audit file and connects to PostgreSQL. A PostgreSQL server that cannot
// be reached is not an error here: the sink reports itself through
// Healthy and keeps reconnecting. New reads the key from cfg.Key (resolved
// by config.ResolveSecrets, or read now) and refuses one shorter than
// MinKeyBytes.
func New(cfg config.Audit, opts Options) (*Auditor, error) {
	a := &Auditor{log: opts.Logger, now: opts.Clock, metrics: opts.Metrics}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	if !cfg.Enabled() {
		return a, nil
	}
	switch cfg.OnFailure {
	case "", "fail_closed":
	case "fail_open":
		a.failOpen = true
	default:
		return nil, fmt.Errorf("audit.on_failure must be fail_closed or fail_open, got %q", cfg.OnFailure)
	}
	key, err := resolve(cfg.Key, "audit.key")
	if err != nil {
		return nil, err
	}
	if len(key) < MinKeyBytes {
		return nil, fmt.Errorf("audit.key is %d bytes; it must be at least %d (generate one with: openssl rand -hex 32)", len(key), MinKeyBytes)
	}
	a.key = []byte(key)
	if err := a.openSinks(cfg, opts.Stdout); err != nil {
		a.Close(context.Background())
		return nil, err
	}
	return a, nil
}

func (a *Auditor) openSinks(cfg config.Audit, stdout io.Writer) error {
	if f := cfg.File; f != nil {
		if f.Path == "" {
			return errors.New("audit.file.path must be set")
		}
		s, err := openFileSink(f.Path, f.MaxBytes, a.log, a.now)
		if err != nil {
			return fmt.Errorf("audit.file: %w", err)
		}
		a.file = s
		a.sinks = append(a.sinks, namedSink{SinkFile, s})
	}
	if cfg.Stdout {
		if stdout == nil {
			stdout = os.Stdout
		}
		a.sinks = append(a.sinks, namedSink{SinkStdout, &stdoutSink{w: stdout}})
	}
	if p := cfg.Postgres; p != nil {
		dsn, err := resolve(&p.DSN, "audit.postgres.dsn")
		if err != nil {
			return err
		}
		s, err := openPGSink(dsn, p.Table, a.log)
		if err != nil {
			return err
		}
		if err := s.health(); err != nil {
			a.log.Error("audit postgres unreachable; writes are refused until it is back unless on_failure is fail_open", "error", err)
		}
		a.pg = s
		a.sinks = append(a.sinks, namedSink{SinkPostgres, s})
	}
	return nil
}

// resolve returns the value config.ResolveSecrets kept, or reads it now.
func resolve(v *config.Value, path string) (string, error) {
	if v == nil {
		return "", fmt.Errorf("%s must be set", path)
	}
	if s := v.Resolved(); s != "" {
		return s, nil
	}
	s, err := v.Resolve()
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Enabled reports whether any sink is configured.
func (a *Auditor) Enabled() bool { return len(a.sinks) > 0 }

// FailClosed reports whether write calls must be refused while a sink
// fails (on_failure: fail_closed, the default). Reads, denials and admin
// actions are never refused for the audit trail's sake.
func (a *Auditor) FailClosed() bool { return !a.failOpen }

// ArgsHMAC is [ArgsHMAC] under the configured key; "" when audit is not
// configured.
func (a *Auditor) ArgsHMAC(rawArgs []byte) (string, error) {
	if a.key == nil {
		return "", nil
	}
	return ArgsHMAC(a.key, rawArgs)
}

// Write stores rec in every sink and returns once each has made it
// durable: the file sink has fsync'd it, PostgreSQL has committed it,
// stdout has taken it. Concurrent calls share fsyncs and INSERTs. A nil
// error means the record is stored everywhere; an error means it may be
// missing from some sink, and the caller applies FailClosed. Write sets
// Time from the clock when it is zero, stores it in UTC, and ignores the
// chain fields. rec is not modified. When ctx ends first, Write returns
// its error and the record may still be stored.
func (a *Auditor) Write(ctx context.Context, rec *Record) error {
	if len(a.sinks) == 0 {
		return nil
	}
	if rec.Kind == "" {
		return errors.New("audit record without kind")
	}
	r := rec.unchained()
	if r.Time.IsZero() {
		r.Time = a.now()
	}
	r.Time = r.Time.UTC()
	if math.IsNaN(r.LatencyMS) || math.IsInf(r.LatencyMS, 0) {
		r.LatencyMS = 0
	}
	if len(a.sinks) == 1 {
		return a.writeSink(ctx, a.sinks[0], r)
	}
	errs := make([]error, len(a.sinks))
	var wg sync.WaitGroup
	for i, s := range a.sinks {
		wg.Go(func() { errs[i] = a.writeSink(ctx, s, r) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (a *Auditor) writeSink(ctx context.Context, s namedSink, r Record) error {
	err := s.write(ctx, r)
	result := "ok"
	if err != nil {
		result = "error"
		a.log.Error("audit record not stored", "sink", s.name, "kind", r.Kind, "request_id", r.RequestID, "error", err)
	}
	if a.metrics != nil {
		a.metrics(s.name, result)
	}
	return err
}

// Healthy returns nil when every sink accepted its last record and, for
// PostgreSQL, the server is reachable; otherwise the sinks' errors. The
// gateway checks it before forwarding a write call when FailClosed.
func (a *Auditor) Healthy() error {
	var errs []error
	for _, s := range a.sinks {
		errs = append(errs, s.health())
	}
	return errors.Join(errs...)
}

// SinkHealth reports each configured sink by name (SinkFile, SinkStdout,
// SinkPostgres) and whether it is healthy, as Healthy judges it.
func (a *Auditor) SinkHealth() map[string]bool {
	out := make(map[string]bool, len(a.sinks))
	for _, s := range a.sinks {
		out[s.name] = s.health() == nil
	}
	return out
}

// Close stores the records already submitted and closes every sink.
// Write after Close returns ErrClosed.
func (a *Auditor) Close(ctx context.Context) error {
	a.closeOnce.Do(func() {
		var errs []error
		for _, s := range a.sinks {
			errs = append(errs, s.close(ctx))
		}
		a.closeErr = errors.Join(errs...)
	})
	return a.closeErr
}
