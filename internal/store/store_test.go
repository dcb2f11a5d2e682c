package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func openFile(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustCheck(t *testing.T, s *Store, server, tool, def string, want State) {
	t.Helper()
	h, c := fingerprint(t, def)
	res, err := s.Check(context.Background(), server, tool, h, c, ModeEnforce)
	if err != nil {
		t.Fatal(err)
	}
	if res.State != want {
		t.Fatalf("Check(%s/%s) = %s, want %s", server, tool, res.State, want)
	}
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	for _, name := range []string{"mcpgate.db", "odd?name#with%chars.db"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), name)
			openFile(t, path)
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatalf("the store did not create %s: %v", path, err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", fi.Mode().Perm())
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no", "such", "dir", "mcpgate.db")
	if _, err := Open(context.Background(), missing); err == nil || !strings.Contains(err.Error(), "directory "+filepath.Join(dir, "no", "such", "dir")+" does not exist") {
		t.Errorf("missing directory: %v", err)
	}
	if _, err := Open(context.Background(), ""); err == nil {
		t.Error("empty path opened")
	}
	notDB := filepath.Join(dir, "not.db")
	os.WriteFile(notDB, []byte(strings.Repeat("this is not a database\n", 100)), 0o600)
	if _, err := Open(context.Background(), notDB); err == nil {
		t.Error("opened a file that is not a database")
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mcpgate.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(`UPDATE schema_version SET version = 99`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(context.Background(), path); err == nil || !strings.Contains(err.Error(), "schema version 99 is newer") {
		t.Fatalf("err = %v", err)
	}
}

func TestPersistence(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mcpgate.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	mustCheck(t, s, "notes", "read", v1, New)
	mustCheck(t, s, "notes", "read", v2, Quarantined)
	gen, _ := s.Generation(ctx)
	s.Close()

	s = openFile(t, path)
	if g, _ := s.Generation(ctx); g != gen {
		t.Errorf("generation %d after reopening, want %d", g, gen)
	}
	mustCheck(t, s, "notes", "read", v2, Quarantined)
	if _, err := s.Approve(ctx, "notes", "read", "alice"); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, s, "notes", "read", v2, Pinned)
}

func TestMemoryStoresAreSeparate(t *testing.T) {
	a, b := openMemory(t), openMemory(t)
	mustCheck(t, a, "notes", "read", v1, New)
	mustCheck(t, b, "notes", "read", v2, New)
	mustCheck(t, a, "notes", "read", v1, Pinned)
}

// TestConcurrentUse runs many checks at once from two Stores on one file
// (as the gateway and the CLI would), and from goroutines sharing one.
func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	for _, path := range []string{filepath.Join(t.TempDir(), "mcpgate.db"), MemoryPath} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			a := openFile(t, path)
			b := a
			if path != MemoryPath {
				b = openFile(t, path)
			}
			h1, c1 := fingerprint(t, v1)
			h2, c2 := fingerprint(t, v2)
			var wg sync.WaitGroup
			errs := make(chan error, 400)
			for i := range 8 {
				s := []*Store{a, b}[i%2]
				wg.Go(func() {
					for j := range 25 {
						tool := fmt.Sprintf("t%d", j)
						if _, err := s.Check(ctx, "s", tool, h1, c1, ModeEnforce); err != nil {
							errs <- err
						}
						if _, err := s.Check(ctx, "s", tool, h2, c2, ModeEnforce); err != nil {
							errs <- err
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			pins, err := a.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(pins) != 25 {
				t.Fatalf("%d pins, want 25", len(pins))
			}
			for _, p := range pins {
				if p.ApprovedHash != h1 || p.PendingHash != h2 {
					t.Errorf("%s: approved %s pending %s", p.Tool, p.ApprovedHash, p.PendingHash)
				}
			}
		})
	}
}

// TestApprovalFromAnotherProcess approves with a second Store on the same
// file, as `mcpgate ctl tools approve` does, and checks that the first one
// (the running gateway) sees it through Generation and Watch.
func TestApprovalFromAnotherProcess(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mcpgate.db")
	gw, cli := openFile(t, path), openFile(t, path)
	mustCheck(t, gw, "notes", "read", v1, New)
	mustCheck(t, gw, "notes", "read", v2, Quarantined)

	before, err := gw.Generation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	changed := make(chan struct{}, 10)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		gw.WatchFrom(wctx, before, 5*time.Millisecond, func() { changed <- struct{}{} }, func(err error) { t.Error(err) })
		close(done)
	}()
	defer func() { cancel(); <-done }()
	if _, err := cli.Approve(ctx, "notes", "read", "alice"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not report the approval")
	}
	if after, _ := gw.Generation(ctx); after <= before {
		t.Errorf("generation %d after approval, was %d", after, before)
	}
	// The gateway's cache knew v1 as approved; after the approval it must
	// not any more.
	mustCheck(t, gw, "notes", "read", v2, Pinned)
	mustCheck(t, gw, "notes", "read", v1, Quarantined)
}

// TestCacheFollowsForeignChangeOnWrite: a write by this Store notices that
// another process changed approved state, without waiting for a poll.
func TestCacheFollowsForeignChangeOnWrite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mcpgate.db")
	gw, cli := openFile(t, path), openFile(t, path)
	mustCheck(t, gw, "notes", "read", v1, New)
	mustCheck(t, gw, "notes", "read", v2, Quarantined)
	if _, err := cli.Approve(ctx, "notes", "read", "alice"); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, gw, "notes", "other", v1, New) // a write: sees the foreign generation
	mustCheck(t, gw, "notes", "read", v1, Quarantined)
}
