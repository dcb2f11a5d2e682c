package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Pin modes, as in servers.<name>.pin.
const (
	ModeEnforce    = "enforce"
	ModeAutoAccept = "auto_accept"
	ModeOff        = "off"
)

// Who recorded an approved definition when no person did.
const (
	ByFirstUse   = "first use"
	ByAutoAccept = "auto_accept"
)

// ErrNotFound means the store has no pin for the tool.
var ErrNotFound = errors.New("no such tool in the store")

// ErrNothingPending means the tool has no changed definition to approve.
var ErrNothingPending = errors.New("nothing to approve: the tool's definition has not changed")

// State is what a check found for a tool's definition.
type State int

const (
	// Pinned: the definition is the approved one (or pinning is off).
	Pinned State = iota + 1
	// Quarantined: the definition differs from the approved one and waits
	// for approval; hide the tool and refuse its calls.
	Quarantined
	// Accepted: the definition differed and, under auto_accept, became the
	// approved one.
	Accepted
	// New: the tool was seen for the first time and its definition
	// recorded as approved.
	New
)

// String returns the state's lower-case name, for logs and metrics.
func (s State) String() string {
	switch s {
	case Pinned:
		return "pinned"
	case Quarantined:
		return "quarantined"
	case Accepted:
		return "accepted"
	case New:
		return "new"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Result is the outcome of [Store.Check] or [Store.Approve].
type Result struct {
	State State
	// Diff describes, member by member, how the checked definition differs
	// from the previously approved one; empty when it does not. It is
	// bounded in size and its control characters are escaped, so it can be
	// logged as it is.
	Diff string
}

// Pin is the stored state of one tool.
type Pin struct {
	Server, Tool string
	ApprovedHash string
	ApprovedAt   time.Time
	ApprovedBy   string
	// PendingHash is the changed definition waiting for approval; empty
	// when there is none.
	PendingHash  string
	PendingSince time.Time
	// Diff is from the approved to the pending definition.
	Diff string
}

// Check compares a tool's fingerprint (from [Fingerprint]) with the pinned
// one and records what mode asks for: a tool seen for the first time is
// recorded as approved (New); a changed one, under enforce, is recorded as
// pending and Quarantined (a newer change replaces an older pending one),
// under auto_accept becomes the approved one (Accepted), and under off is
// reported Pinned with its Diff but not stored. A tool that returns to its
// approved definition is Pinned again and its pending change dropped. An
// empty mode means enforce.
//
// A definition known to be approved, with no change pending, is answered
// from memory, without SQL and without allocating. The cache follows
// approvals made by other processes once [Store.Generation] (or
// [Store.Watch]) has seen them; until then (one poll interval) a tool that
// another process's approval made stale may still be answered Pinned.
func (s *Store) Check(ctx context.Context, server, tool, hash string, canonical []byte, mode string) (Result, error) {
	k := pinKey{server, tool}
	s.mu.RLock()
	approved, ok := s.approved[k]
	s.mu.RUnlock()
	if ok && approved == hash {
		return Result{State: Pinned}, nil
	}
	switch mode {
	case "", ModeEnforce, ModeAutoAccept, ModeOff:
	default:
		return Result{}, fmt.Errorf("store: unknown pin mode %q", mode)
	}
	var res Result
	err := s.write(ctx, k, func(tx *sql.Tx, row *pinRow, now string) (string, bool, error) {
		switch {
		case row == nil:
			_, err := tx.ExecContext(ctx, `INSERT INTO tool_pins (server, tool, approved_hash, approved_def, approved_at, approved_by) VALUES (?, ?, ?, ?, ?, ?)`,
				server, tool, hash, string(canonical), now, ByFirstUse)
			res = Result{State: New}
			return hash, true, err
		case row.approvedHash == hash:
			res = Result{State: Pinned}
			if row.pendingHash.Valid {
				_, err := tx.ExecContext(ctx, `UPDATE tool_pins SET pending_hash = NULL, pending_def = NULL, pending_since = NULL WHERE server = ? AND tool = ?`, server, tool)
				return hash, false, err
			}
			return hash, false, nil
		}
		res.Diff = describeChange(row.approvedDef, canonical)
		switch mode {
		case ModeAutoAccept:
			_, err := tx.ExecContext(ctx, `UPDATE tool_pins SET approved_hash = ?, approved_def = ?, approved_at = ?, approved_by = ?, pending_hash = NULL, pending_def = NULL, pending_since = NULL WHERE server = ? AND tool = ?`,
				hash, string(canonical), now, ByAutoAccept, server, tool)
			res.State = Accepted
			return hash, true, err
		case ModeOff:
			res.State = Pinned
			return "", false, nil
		}
		res.State = Quarantined
		if row.pendingHash.String == hash {
			return "", false, nil
		}
		_, err := tx.ExecContext(ctx, `UPDATE tool_pins SET pending_hash = ?, pending_def = ?, pending_since = ? WHERE server = ? AND tool = ?`,
			hash, string(canonical), now, server, tool)
		return "", false, err
	})
	if err != nil {
		return Result{}, fmt.Errorf("store %s: checking %s/%s: %w", s.path, server, tool, err)
	}
	return res, nil
}

// Approve makes the tool's pending definition the approved one, recording
// by (who approved) and the time, and returns the Diff it approved with
// State Pinned. It returns ErrNotFound for a tool the store has never seen
// and ErrNothingPending for one with no pending change.
func (s *Store) Approve(ctx context.Context, server, tool, by string) (Result, error) {
	var res Result
	err := s.write(ctx, pinKey{server, tool}, func(tx *sql.Tx, row *pinRow, now string) (string, bool, error) {
		if row == nil {
			return "", false, ErrNotFound
		}
		if !row.pendingHash.Valid {
			return "", false, ErrNothingPending
		}
		res = Result{State: Pinned, Diff: describeChange(row.approvedDef, []byte(row.pendingDef.String))}
		_, err := tx.ExecContext(ctx, `UPDATE tool_pins SET approved_hash = pending_hash, approved_def = pending_def, approved_at = ?, approved_by = ?, pending_hash = NULL, pending_def = NULL, pending_since = NULL WHERE server = ? AND tool = ?`,
			now, by, server, tool)
		return row.pendingHash.String, true, err
	})
	if err != nil {
		return Result{}, fmt.Errorf("store %s: approving %s/%s: %w", s.path, server, tool, err)
	}
	return res, nil
}

type pinRow struct {
	approvedHash string
	approvedDef  []byte
	pendingHash  sql.NullString
	pendingDef   sql.NullString
}

// write runs fn in a transaction on the tool's row (nil when there is
// none) and then updates the cache. fn returns the approved hash to cache,
// or "" to take the tool out of the cache (while a change is pending, a
// revert to the approved definition must reach the database to drop it),
// and whether it changed approved state, which bumps the generation.
func (s *Store) write(ctx context.Context, k pinKey, fn func(tx *sql.Tx, row *pinRow, now string) (approved string, bump bool, err error)) error {
	s.miss.Lock()
	defer s.miss.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var gen int64
	if err := tx.QueryRowContext(ctx, `SELECT value FROM counters WHERE name = 'generation'`).Scan(&gen); err != nil {
		return err
	}
	var r pinRow
	row := &r
	err = tx.QueryRowContext(ctx, `SELECT approved_hash, approved_def, pending_hash, pending_def FROM tool_pins WHERE server = ? AND tool = ?`, k.server, k.tool).
		Scan(&r.approvedHash, &r.approvedDef, &r.pendingHash, &r.pendingDef)
	if errors.Is(err, sql.ErrNoRows) {
		row = nil
	} else if err != nil {
		return err
	}
	approved, bump, err := fn(tx, row, s.now().UTC().Format(time.RFC3339Nano))
	if err != nil {
		return err
	}
	if bump {
		if _, err := tx.ExecContext(ctx, `UPDATE counters SET value = value + 1 WHERE name = 'generation'`); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.sync(gen) // another process may have changed approved state since our last look
	if bump {
		s.gen = gen + 1
	}
	s.mu.Lock()
	if approved != "" {
		s.approved[k] = approved
	} else {
		delete(s.approved, k)
	}
	s.mu.Unlock()
	return nil
}

// List returns every pinned tool, sorted by server and tool.
func (s *Store) List(ctx context.Context) ([]Pin, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT server, tool, approved_hash, approved_def, approved_at, approved_by, pending_hash, pending_def, pending_since FROM tool_pins ORDER BY server, tool`)
	if err != nil {
		return nil, fmt.Errorf("store %s: listing pins: %w", s.path, err)
	}
	defer rows.Close()
	var pins []Pin
	for rows.Next() {
		var p Pin
		var approvedDef []byte
		var approvedAt string
		var pendingHash, pendingDef, pendingSince sql.NullString
		if err := rows.Scan(&p.Server, &p.Tool, &p.ApprovedHash, &approvedDef, &approvedAt, &p.ApprovedBy, &pendingHash, &pendingDef, &pendingSince); err != nil {
			return nil, fmt.Errorf("store %s: listing pins: %w", s.path, err)
		}
		p.ApprovedAt, _ = time.Parse(time.RFC3339Nano, approvedAt)
		if pendingHash.Valid {
			p.PendingHash = pendingHash.String
			p.PendingSince, _ = time.Parse(time.RFC3339Nano, pendingSince.String)
			p.Diff = describeChange(approvedDef, []byte(pendingDef.String))
		}
		pins = append(pins, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store %s: listing pins: %w", s.path, err)
	}
	return pins, nil
}
