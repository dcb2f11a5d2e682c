package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultTable is the PostgreSQL table used when none is configured.
const DefaultTable = "mcpgate_audit"

// tableRE is the table name accepted: an unquoted lowercase identifier,
// optionally schema-qualified, short enough to derive an index name.
var tableRE = regexp.MustCompile(`^([a-z_][a-z0-9_]{0,49}\.)?[a-z_][a-z0-9_]{0,49}$`)

const (
	pgConnectTimeout = 5 * time.Second
	pgWriteTimeout   = 10 * time.Second
	pgPingEvery      = 5 * time.Second
	pgMaxBackoff     = 30 * time.Second
)

// pgColumns are the columns a batch fills; the whole record is in record.
var pgColumns = []string{"time", "kind", "request_id", "principal", "session_id", "server", "tool", "outcome", "args_hmac", "trace_id", "record"}

// pgSink inserts records into one PostgreSQL table, a batch per COPY.
type pgSink struct {
	cfg     *pgx.ConnConfig
	table   pgx.Identifier
	index   string
	log     *slog.Logger
	b       *batcher
	batches atomic.Int64 // committed COPY statements, for tests

	mu  sync.Mutex // guards err
	err error

	// Owned by the batcher's goroutine once it runs.
	conn     *pgx.Conn
	lastUsed time.Time
	retryAt  time.Time
	backoff  time.Duration
}

func openPGSink(dsn, table string, log *slog.Logger) (*pgSink, error) {
	if table == "" {
		table = DefaultTable
	}
	if !tableRE.MatchString(table) {
		return nil, fmt.Errorf("audit.postgres.table %q is not a lowercase identifier (optionally schema.table)", table)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the DSN, password included.
		return nil, fmt.Errorf("audit.postgres.dsn cannot be parsed")
	}
	ident := pgx.Identifier(strings.Split(table, "."))
	s := &pgSink{cfg: cfg, table: ident, index: ident[len(ident)-1] + "_time_idx", log: log}
	// A server that is down now is not a startup failure: the sink reports
	// itself unhealthy (failing writes closed) and keeps reconnecting.
	s.reconnect(context.Background())
	s.b = newBatcher(s.commit, s.probe, s.closeConn, time.Second)
	return s, nil
}

// reconnect opens a connection and creates the table if needed.
func (s *pgSink) reconnect(ctx context.Context) error {
	s.closeConn()
	ctx, cancel := context.WithTimeout(ctx, pgConnectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, s.cfg)
	if err == nil {
		if err = s.createTable(ctx, conn); err != nil {
			conn.Close(ctx)
		}
	}
	if err != nil {
		s.backoff = min(max(2*s.backoff, time.Second), pgMaxBackoff)
		s.retryAt = time.Now().Add(s.backoff)
		err = fmt.Errorf("audit postgres: %w", err)
		s.setErr(err)
		return err
	}
	s.conn, s.lastUsed, s.backoff = conn, time.Now(), 0
	s.setErr(nil)
	return nil
}

func (s *pgSink) createTable(ctx context.Context, conn *pgx.Conn) error {
	table := s.table.Sanitize()
	ddl := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	time timestamptz NOT NULL,
	kind text NOT NULL,
	request_id text,
	principal text,
	session_id text,
	server text,
	tool text,
	outcome text,
	args_hmac text,
	trace_id text,
	record jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS %s ON %s (time)`, table, pgx.Identifier{s.index}.Sanitize(), table)
	_, err := conn.Exec(ctx, ddl)
	if err != nil {
		// Replicas starting together race on IF NOT EXISTS; the loser
		// sees a unique violation for a table that now exists.
		_, err = conn.Exec(ctx, ddl)
	}
	return err
}

func (s *pgSink) write(ctx context.Context, rec Record) error { return s.b.submit(ctx, rec) }

// commit inserts the batch with one COPY, which commits atomically.
func (s *pgSink) commit(batch []*request) {
	ctx, cancel := context.WithTimeout(context.Background(), pgWriteTimeout)
	defer cancel()
	rows := make([][]any, 0, len(batch))
	for _, r := range batch {
		row, err := pgRow(r.rec)
		if err != nil {
			r.err = fmt.Errorf("encoding audit record: %w", err)
			continue
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return
	}
	err := s.insert(ctx, rows)
	if err != nil {
		for _, r := range batch {
			if r.err == nil {
				r.err = err
			}
		}
	}
}

func (s *pgSink) insert(ctx context.Context, rows [][]any) error {
	if s.conn == nil {
		if err := s.reconnect(ctx); err != nil {
			return err
		}
	}
	_, err := s.conn.CopyFrom(ctx, s.table, pgColumns, pgx.CopyFromRows(rows))
	if err != nil {
		// The connection may be half-broken; start afresh next time.
		s.closeConn()
		err = fmt.Errorf("audit postgres: inserting records: %w", err)
		s.setErr(err)
		return err
	}
	s.batches.Add(1)
	s.lastUsed = time.Now()
	s.setErr(nil)
	return nil
}

// pgRow returns the column values of rec; NUL characters, which
// PostgreSQL cannot store, become U+FFFD.
func pgRow(rec Record) ([]any, error) {
	rec = rec.unchained().withoutNUL()
	body, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	null := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	return []any{rec.Time, rec.Kind, null(rec.RequestID), null(rec.Principal), null(rec.SessionID),
		null(rec.Server), null(rec.Tool), null(rec.Outcome), null(rec.ArgsHMAC), null(rec.TraceID),
		json.RawMessage(body)}, nil
}

// probe reconnects after a failure (with backoff) and pings an idle
// connection, so Healthy notices a lost server before the next write.
func (s *pgSink) probe() {
	now := time.Now()
	switch {
	case s.conn == nil && !now.Before(s.retryAt):
		s.reconnect(context.Background())
	case s.conn != nil && now.Sub(s.lastUsed) >= pgPingEvery:
		ctx, cancel := context.WithTimeout(context.Background(), pgConnectTimeout)
		defer cancel()
		if err := s.conn.Ping(ctx); err != nil {
			s.closeConn()
			s.setErr(fmt.Errorf("audit postgres: %w", err))
			return
		}
		s.lastUsed = now
	}
}

func (s *pgSink) closeConn() {
	if s.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		s.conn.Close(ctx)
		cancel()
		s.conn = nil
	}
}

func (s *pgSink) setErr(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

func (s *pgSink) health() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *pgSink) close(ctx context.Context) error { return s.b.close(ctx) }
