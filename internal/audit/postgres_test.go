package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/mcpgate/mcpgate/internal/config"
)

// postgresDSN returns the DSN of the test server (MCPGATE_TEST_POSTGRES, by
// default postgres@127.0.0.1:5432/test), or false when it cannot be
// reached; with MCPGATE_REQUIRE_PEERS=1 (scripts/test) that fails the test.
func postgresDSN(t *testing.T) (string, bool) {
	t.Helper()
	dsn := os.Getenv("MCPGATE_TEST_POSTGRES")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		if os.Getenv("MCPGATE_REQUIRE_PEERS") == "1" {
			t.Fatalf("PostgreSQL required but unreachable: %v", err)
		}
		t.Logf("PostgreSQL unreachable, its part skipped: %v", err)
		return "", false
	}
	conn.Close(ctx)
	return dsn, true
}

func requirePostgres(t *testing.T) string {
	t.Helper()
	dsn, ok := postgresDSN(t)
	if !ok {
		t.Skip("PostgreSQL at 127.0.0.1:5432 unreachable (set MCPGATE_REQUIRE_PEERS=1 to fail instead)")
	}
	return dsn
}

// testTable returns a fresh table name, dropped when the test ends.
func testTable(t *testing.T, dsn string) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	table := "audit_test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("dropping %s: %v", table, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP TABLE IF EXISTS "+table); err != nil {
			t.Errorf("dropping %s: %v", table, err)
		}
	})
	return table
}

// dumpTable returns every row of table as text.
func dumpTable(t *testing.T, dsn, table string) []byte {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var dump string
	err = conn.QueryRow(ctx, "SELECT coalesce(string_agg(t::text, E'\\n'), '') FROM "+table+" t").Scan(&dump)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(dump)
}

func newPGAuditor(t *testing.T, dsn, table string) *Auditor {
	t.Helper()
	a, err := New(config.Audit{Key: keyValue(), Postgres: &config.AuditPostgres{DSN: config.Literal(dsn), Table: table}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(context.Background()) })
	return a
}

func TestPostgresRecordsArrive(t *testing.T) {
	dsn := requirePostgres(t)
	table := testTable(t, dsn)
	a := newPGAuditor(t, dsn, table)
	if err := a.Healthy(); err != nil {
		t.Fatal(err)
	}
	rec := sampleRecord(1)
	rec.Principal = "nul\x00inside"
	if err := a.Write(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	writeRecords(t, a, 2, 3)

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT kind, principal, tool, outcome, time, record FROM "+table+" ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for rows.Next() {
		n++
		var kind, principal, tool, outcome string
		var at time.Time
		var body map[string]any
		if err := rows.Scan(&kind, &principal, &tool, &outcome, &at, &body); err != nil {
			t.Fatal(err)
		}
		if kind != "call" || tool != "create_issue" || outcome != "ok" || at.IsZero() {
			t.Errorf("row %d: %s %s %s %v", n, kind, tool, outcome, at)
		}
		if n == 1 && principal != "nul\uFFFDinside" {
			t.Errorf("principal %q; want the NUL replaced", principal)
		}
		if body["request_id"] != fmt.Sprint(n) || body["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736" {
			t.Errorf("row %d: record %v", n, body)
		}
		if _, ok := body["hash"]; ok {
			t.Errorf("record carries chain fields: %v", body)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("%d rows; want 3", n)
	}
}

// TestPostgresBatchesConcurrentWrites holds the first insert until all
// writers have queued: the rest must go in one COPY.
func TestPostgresBatchesConcurrentWrites(t *testing.T) {
	dsn := requirePostgres(t)
	table := testTable(t, dsn)
	a := newPGAuditor(t, dsn, table)
	const writers = 40
	var queued atomic.Int32
	allQueued := make(chan struct{})
	a.pg.b.enqueued = func() {
		if queued.Add(1) == writers {
			close(allQueued)
		}
	}
	commit := a.pg.b.commit
	var once sync.Once
	a.pg.b.commit = func(batch []*request) {
		once.Do(func() { <-allQueued })
		commit(batch)
	}
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			if err := a.Write(context.Background(), sampleRecord(i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := a.pg.batches.Load(); n > 2 {
		t.Errorf("%d inserts for %d concurrent records; want at most 2", n, writers)
	}
	if got := strings.Count(string(dumpTable(t, dsn, table)), "\n") + 1; got != writers {
		t.Errorf("%d rows; want %d", got, writers)
	}
}

func TestPostgresUnreachableFailsClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	a := newPGAuditor(t, "postgres://postgres@"+addr+"/test?sslmode=disable&connect_timeout=2", "")
	if err := a.Healthy(); err == nil {
		t.Fatal("Healthy is nil with PostgreSQL unreachable")
	}
	if !a.FailClosed() {
		t.Error("FailClosed is false by default")
	}
	if err := a.Write(context.Background(), sampleRecord(1)); err == nil {
		t.Fatal("Write succeeded with PostgreSQL unreachable")
	}
}

// TestPostgresReconnects cuts the connection with a proxy in between: the
// write fails and Healthy says so; once the server is back, the next write
// reconnects.
func TestPostgresReconnects(t *testing.T) {
	dsn := requirePostgres(t)
	table := testTable(t, dsn)
	p := startProxy(t, "127.0.0.1:0", "127.0.0.1:5432")
	a := newPGAuditor(t, "postgres://postgres@"+p.addr+"/test?sslmode=disable", table)
	writeRecords(t, a, 1, 1)

	p.stop()
	if err := a.Write(context.Background(), sampleRecord(2)); err == nil {
		t.Fatal("Write succeeded with the connection cut")
	}
	if err := a.Healthy(); err == nil {
		t.Fatal("Healthy is nil after a failed insert")
	}
	startProxy(t, p.addr, "127.0.0.1:5432")
	writeRecords(t, a, 3, 3)
	if err := a.Healthy(); err != nil {
		t.Fatalf("Healthy after reconnecting: %v", err)
	}
	if got := strings.Count(string(dumpTable(t, dsn, table)), "\n") + 1; got != 2 {
		t.Errorf("%d rows; want 2", got)
	}
}

// proxy forwards TCP connections, so a test can cut them.
type proxy struct {
	addr  string
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startProxy(t *testing.T, addr, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String(), ln: ln}
	t.Cleanup(p.stop)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) stop() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
