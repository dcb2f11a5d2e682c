// Package store owns the gateway's persistent state: an embedded SQLite
// database (modernc.org/sqlite, no cgo) that outlives the process. Today it
// holds tool pins: the approved fingerprint of every tool the gateway has
// seen, and the changed definitions waiting for approval.
//
// The gateway and `mcpgate ctl` may open the same file at the same time:
// the database runs in WAL mode with a busy timeout, and every change to
// approved state bumps a generation counter that a running gateway polls
// (see [Store.Watch]) to pick up approvals made by another process.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// MemoryPath is the path that keeps the store in memory only.
const MemoryPath = ":memory:"

// busyTimeout is how long a statement waits for another process's write
// lock (the CLI approving while the gateway records a pin) before failing.
const busyTimeout = 5 * time.Second

// Store is an open gateway store. It is safe for concurrent use.
type Store struct {
	db   *sql.DB
	path string
	now  func() time.Time

	// miss serializes every statement that reads or writes pins together
	// with the cache updates that follow it, so that the cache and gen
	// move in the order the database did.
	miss sync.Mutex
	gen  int64 // guarded by miss: the generation the cache reflects

	mu       sync.RWMutex      // guards approved
	approved map[pinKey]string // (server, tool) → hash known to be approved
}

type pinKey struct{ server, tool string }

// Open opens the store at path, creating the file (mode 0600) and its schema
// if needed. The file's directory must exist. ":memory:" keeps everything in
// memory, private to this Store.
func Open(ctx context.Context, path string) (*Store, error) {
	dsn, err := dataSource(path)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	// One connection: an in-memory database exists only on the connection
	// that created it, and for a file it serializes this process's writers
	// so they never contend with each other for SQLite's lock.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	s := &Store{db: db, path: path, now: time.Now, approved: map[pinKey]string{}}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	return s, nil
}

// dataSource checks path and returns the driver's data source name for it.
func dataSource(path string) (string, error) {
	const params = "_txlock=immediate" // take the write lock at BEGIN: a deferred transaction cannot wait for it later
	if path == "" {
		return "", errors.New("store: empty path")
	}
	if path == MemoryPath {
		return MemoryPath + "?" + params, nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("store %s: %w", path, err)
	}
	dir := filepath.Dir(abs)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("store %s: directory %s does not exist; create it or change store.path", path, dir)
	}
	// Create the file ourselves so that it is private from the start;
	// SQLite gives its -wal and -shm files the same mode.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", fmt.Errorf("store %s: %w", path, err)
	}
	f.Close()
	// A file: URI, so that a path holding '?' or '#' stays one path.
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	return fmt.Sprintf("file:%s?%s&_busy_timeout=%d&_journal_mode=WAL", r.Replace(abs), params, busyTimeout.Milliseconds()), nil
}

// Path returns the path the store was opened with.
func (s *Store) Path() string { return s.path }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// migrations[i] brings the schema from version i to version i+1. Append to
// it; never edit an entry that has shipped.
var migrations = []string{
	`CREATE TABLE counters (
		name  TEXT PRIMARY KEY,
		value INTEGER NOT NULL
	) WITHOUT ROWID;
	INSERT INTO counters (name, value) VALUES ('generation', 0);
	CREATE TABLE tool_pins (
		server        TEXT NOT NULL,
		tool          TEXT NOT NULL,
		approved_hash TEXT NOT NULL,
		approved_def  TEXT NOT NULL,
		approved_at   TEXT NOT NULL,
		approved_by   TEXT NOT NULL,
		pending_hash  TEXT,
		pending_def   TEXT,
		pending_since TEXT,
		PRIMARY KEY (server, tool)
	) WITHOUT ROWID;`,
}

// migrate creates or upgrades the schema in one transaction, so two
// processes opening a new file at once do not both create it.
func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return err
	}
	var version int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&version); err != nil {
		return err
	}
	if version > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this mcpgate knows (%d); upgrade mcpgate", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrating schema to version %d: %w", i+1, err)
		}
	}
	if version < len(migrations) {
		if _, err := tx.ExecContext(ctx, `DELETE FROM schema_version`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (?)`, len(migrations)); err != nil {
			return err
		}
	}
	if err := tx.QueryRowContext(ctx, `SELECT value FROM counters WHERE name = 'generation'`).Scan(&s.gen); err != nil {
		return err
	}
	return tx.Commit()
}

// Generation returns a counter that grows with every change to approved
// state (a tool first seen, auto-accepted or approved), by any process
// using the file. When it differs from the last value this Store saw, the
// in-memory cache of approved fingerprints is dropped, so that Check sees
// approvals made elsewhere.
func (s *Store) Generation(ctx context.Context) (int64, error) {
	s.miss.Lock()
	defer s.miss.Unlock()
	var g int64
	if err := s.db.QueryRowContext(ctx, `SELECT value FROM counters WHERE name = 'generation'`).Scan(&g); err != nil {
		return 0, fmt.Errorf("store %s: reading generation: %w", s.path, err)
	}
	s.sync(g)
	return g, nil
}

// sync drops the cache if the database moved past what it reflects. The
// caller holds s.miss.
func (s *Store) sync(g int64) {
	if g == s.gen {
		return
	}
	s.mu.Lock()
	clear(s.approved)
	s.mu.Unlock()
	s.gen = g
}

// Watch polls the generation every interval until ctx is done and calls
// onChange after it changed, whichever process changed it (including this
// one: re-checking is cheap). A running gateway re-checks its quarantined
// tools in onChange. onError, if not nil, is told when a poll fails; polling
// goes on. A poll is one indexed read. Watch returns when ctx is done.
func (s *Store) Watch(ctx context.Context, every time.Duration, onChange func(), onError func(error)) {
	last, err := s.Generation(ctx)
	if err != nil && onError != nil && ctx.Err() == nil {
		onError(err)
	}
	s.WatchFrom(ctx, last, every, onChange, onError)
}

// WatchFrom is Watch counting changes from generation from, read by the
// caller beforehand: a change made between that read and the first poll
// is reported, which Watch, reading its own start, could miss.
func (s *Store) WatchFrom(ctx context.Context, from int64, every time.Duration, onChange func(), onError func(error)) {
	if every <= 0 {
		every = time.Second
	}
	last := from
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		g, err := s.Generation(ctx)
		switch {
		case err != nil:
			if onError != nil && ctx.Err() == nil {
				onError(err)
			}
		case g != last:
			last = g
			onChange()
		}
	}
}
