package audit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// rotateLayout names a rotated file: path.<UTC time>, sortable as text.
const rotateLayout = "20060102T150405.000000000Z"

// rotateReserve is kept free below max_bytes for the rotation marker,
// which is about 250 bytes.
const rotateReserve = 512

// maxLine bounds a line read back from an audit file.
const maxLine = 64 << 20

// fileSink appends chained records to a JSONL file, fsyncs each batch
// once, and rotates the file at maxBytes without breaking the chain.
type fileSink struct {
	path     string
	maxBytes int64
	log      *slog.Logger
	now      func() time.Time
	b        *batcher
	syncs    atomic.Int64         // fsyncs of the file, for tests
	sync     func(*os.File) error // (*os.File).Sync, replaced by tests

	mu  sync.Mutex // guards err
	err error      // why the last commit failed; nil after a success

	// Owned by the batcher's goroutine once it runs.
	f      *os.File
	size   int64 // bytes of f known durable
	seq    uint64
	prev   string
	broken bool // f may hold a partial write past size
}

func openFileSink(path string, maxBytes int64, log *slog.Logger, now func() time.Time) (*fileSink, error) {
	s := &fileSink{
		path: path, maxBytes: maxBytes, log: log, now: now,
		sync: (*os.File).Sync, seq: 0, prev: zeroHash,
	}
	torn, err := s.restoreChain()
	if err != nil {
		return nil, err
	}
	if torn {
		// Keep the evidence: the damaged file is rotated aside unchanged,
		// and verification reports its incomplete last line.
		aside, err := s.rotatedName()
		if err == nil {
			err = os.Rename(path, aside)
		}
		if err != nil {
			return nil, fmt.Errorf("audit file %s ends with an incomplete record and cannot be moved aside: %w", path, err)
		}
		log.Warn("audit file ends with an incomplete record, probably from a crash; moved it aside and continued the chain in a new file",
			"path", path, "moved_to", aside, "seq", s.seq)
	}
	if err := s.open(); err != nil {
		return nil, err
	}
	s.b = newBatcher(s.commit, s.probe, s.closeFile, time.Second)
	return s, nil
}

// restoreChain continues the chain from the last complete record of the
// file, or of the newest rotated file when the file is missing or holds no
// complete record. torn reports that the file ends with an incomplete line.
func (s *fileSink) restoreChain() (torn bool, err error) {
	line, torn, err := lastCompleteLine(s.path)
	if err != nil {
		return false, err
	}
	from := s.path
	if line == nil {
		prev, err := s.newestRotated()
		if err != nil {
			return false, err
		}
		if prev != "" {
			if line, _, err = lastCompleteLine(prev); err != nil {
				return false, err
			}
			from = prev
		}
	}
	if line == nil {
		return torn, nil
	}
	f, _, err := parseLine(line)
	if err != nil {
		return false, fmt.Errorf("audit file %s: the last record cannot be read (%v), so the chain cannot continue; move the file aside to start a new chain", from, err)
	}
	s.seq, s.prev = f.Seq, f.Hash
	return torn, nil
}

// lastCompleteLine returns the last newline-terminated line of the file
// at path (without the newline), nil if there is none or no file, and
// whether bytes follow it.
func lastCompleteLine(path string) (line []byte, torn bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	end := fi.Size()
	if end == 0 {
		return nil, false, nil
	}
	start, err := lineStart(f, end)
	if err != nil {
		return nil, false, err
	}
	var last [1]byte
	if _, err := f.ReadAt(last[:], end-1); err != nil {
		return nil, false, err
	}
	if last[0] != '\n' {
		torn = true
		end = start // the complete lines end where the torn one starts
		if end == 0 {
			return nil, true, nil
		}
	}
	// The line runs from lineStart to the newline at end-1.
	if start, err = lineStart(f, end-1); err != nil {
		return nil, false, err
	}
	line = make([]byte, end-1-start)
	if _, err := f.ReadAt(line, start); err != nil {
		return nil, false, err
	}
	return line, torn, nil
}

// lineStart returns the offset just past the last newline before end, or
// 0, reading backwards.
func lineStart(f io.ReaderAt, end int64) (int64, error) {
	buf := make([]byte, 64<<10)
	for pos := end; pos > 0; {
		n := min(int64(len(buf)), pos)
		pos -= n
		if _, err := f.ReadAt(buf[:n], pos); err != nil {
			return 0, err
		}
		for i := n - 1; i >= 0; i-- {
			if buf[i] == '\n' {
				return pos + i + 1, nil
			}
		}
		if end-pos > maxLine {
			return 0, fmt.Errorf("audit file: a line longer than %d bytes", maxLine)
		}
	}
	return 0, nil
}

// rotated is the name of a rotated file split into its sort keys.
type rotated struct {
	name string
	ts   string
	n    int
}

// newestRotated returns the most recently rotated file of s.path, or "".
func (s *fileSink) newestRotated() (string, error) {
	dir, base := filepath.Split(s.path)
	entries, err := os.ReadDir(cmp.Or(dir, "."))
	if err != nil {
		return "", err
	}
	var best *rotated
	for _, e := range entries {
		suffix, ok := strings.CutPrefix(e.Name(), base+".")
		if !ok || e.IsDir() {
			continue
		}
		if len(suffix) < len(rotateLayout) {
			continue
		}
		ts, num := suffix[:len(rotateLayout)], suffix[len(rotateLayout):]
		if _, err := time.Parse(rotateLayout, ts); err != nil {
			continue
		}
		n := 0
		if num != "" {
			digits, ok := strings.CutPrefix(num, ".")
			if n, err = strconv.Atoi(digits); !ok || err != nil || n < 1 {
				continue
			}
		}
		r := rotated{name: filepath.Join(dir, e.Name()), ts: ts, n: n}
		if best == nil || cmp.Or(cmp.Compare(r.ts, best.ts), cmp.Compare(r.n, best.n)) > 0 {
			best = &r
		}
	}
	if best == nil {
		return "", nil
	}
	return best.name, nil
}

// rotatedName returns a free name for the current file once rotated.
func (s *fileSink) rotatedName() (string, error) {
	base := s.path + "." + s.now().UTC().Format(rotateLayout)
	for i := 0; i < 1000; i++ {
		name := base
		if i > 0 {
			name += "." + strconv.Itoa(i)
		}
		if _, err := os.Lstat(name); errors.Is(err, os.ErrNotExist) {
			return name, nil
		}
	}
	return "", fmt.Errorf("no free name to rotate %s to", s.path)
}

// open opens (or creates) the file at s.path for appending.
func (s *fileSink) open() error {
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err == nil {
		err = syncDir(s.path)
	}
	if err != nil {
		f.Close()
		return err
	}
	s.f, s.size, s.broken = f, fi.Size(), false
	return nil
}

func syncDir(path string) error {
	d, err := os.Open(cmp.Or(filepath.Dir(path), "."))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (s *fileSink) write(ctx context.Context, rec Record) error { return s.b.submit(ctx, rec) }

// commit appends the batch, rotating as needed, with one fsync per file.
// A request fails unless the file holding its record was fsync'd.
func (s *fileSink) commit(batch []*request) {
	fail := func(reqs []*request, err error) {
		for _, r := range reqs {
			if r.err == nil {
				r.err = err
			}
		}
		s.setErr(err)
	}
	if err := s.repair(); err != nil {
		fail(batch, err)
		return
	}
	var buf []byte
	seq, prev := s.seq, s.prev
	first := 0 // batch[first:] is not durable yet
	for i, r := range batch {
		line, err := chained(&r.rec, seq, prev)
		if err != nil {
			r.err = fmt.Errorf("encoding audit record: %w", err)
			continue
		}
		if s.maxBytes > 0 && s.size+int64(len(buf)) > 0 && s.size+int64(len(buf)+len(line))+rotateReserve > s.maxBytes {
			marker := Record{Time: s.now().UTC(), Kind: KindRotate}
			m, err := chained(&marker, seq, prev)
			if err != nil {
				fail(batch[first:], err)
				return
			}
			seq, prev = seq+1, marker.Hash
			if err := s.flush(append(buf, m...), seq, prev); err != nil {
				fail(batch[first:], err)
				return
			}
			first, buf = i, buf[:0]
			if err := s.rotate(); err != nil {
				fail(batch[first:], err)
				return
			}
			if line, err = chained(&r.rec, seq, prev); err != nil {
				r.err = fmt.Errorf("encoding audit record: %w", err)
				continue
			}
		}
		buf = append(buf, line...)
		seq, prev = seq+1, r.rec.Hash
	}
	if len(buf) > 0 {
		if err := s.flush(buf, seq, prev); err != nil {
			fail(batch[first:], err)
			return
		}
	}
	s.setErr(nil)
}

// chained links rec after the record (seq, prev) and encodes it.
func chained(rec *Record, seq uint64, prev string) ([]byte, error) {
	rec.Seq, rec.PrevHash = seq+1, prev
	return encodeLine(rec)
}

// flush writes and fsyncs buf, whose last record is (seq, hash).
func (s *fileSink) flush(buf []byte, seq uint64, hash string) error {
	n, err := s.f.Write(buf)
	if err == nil {
		s.syncs.Add(1)
		err = s.sync(s.f)
	}
	if err != nil {
		s.broken = true
		return fmt.Errorf("audit file %s: %w", s.path, err)
	}
	s.size += int64(n)
	s.seq, s.prev = seq, hash
	return nil
}

// rotate renames the file to path.<time> and starts a new one.
func (s *fileSink) rotate() error {
	name, err := s.rotatedName()
	if err == nil {
		err = os.Rename(s.path, name)
	}
	if err != nil {
		return fmt.Errorf("rotating audit file %s: %w", s.path, err)
	}
	old := s.f
	s.f = nil
	old.Close()
	if err := s.open(); err != nil {
		return fmt.Errorf("rotating audit file %s: %w", s.path, err)
	}
	s.log.Info("rotated audit file", "path", s.path, "moved_to", name, "seq", s.seq)
	return nil
}

// repair undoes a failed write, so the file again ends with the last
// durable record, or reopens the file after a failed rotation.
func (s *fileSink) repair() error {
	switch {
	case s.f == nil:
		if err := s.open(); err != nil {
			return fmt.Errorf("audit file %s: %w", s.path, err)
		}
	case s.broken:
		err := s.f.Truncate(s.size)
		if err == nil {
			err = s.sync(s.f)
		}
		if err != nil {
			return fmt.Errorf("audit file %s: %w", s.path, err)
		}
		s.broken = false
	}
	return nil
}

// probe repairs a failed file between writes, so Healthy recovers without
// a write having to fail first.
func (s *fileSink) probe() {
	if s.f != nil && !s.broken {
		return
	}
	if err := s.repair(); err != nil {
		s.setErr(err)
		return
	}
	s.setErr(nil)
}

func (s *fileSink) closeFile() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}

func (s *fileSink) setErr(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

func (s *fileSink) health() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *fileSink) close(ctx context.Context) error { return s.b.close(ctx) }
