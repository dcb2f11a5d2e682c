package limit

import (
	"sync"
	"time"
)

// Sweeping of idle buckets: when the map has grown to twice its size after
// the last sweep (at least minSweep entries), or sweepEvery after it.
const (
	minSweep   = 1024
	sweepEvery = time.Minute
)

// entry is one bucket. For a GCRA rule v is the theoretical arrival time
// of the next call; for a counter it is the count. exp is when the bucket
// is no different from an absent one and may be dropped.
type entry struct {
	v, exp int64
}

// localStore keeps the buckets of one process, a map per rule keyed by
// the rule's appendKey. One mutex guards every bucket so that the rules of
// a call are checked and taken together.
type localStore struct {
	mu        sync.Mutex // guards the fields below
	maps      []map[string]*entry
	n         int // buckets in all maps
	sweepAt   int
	lastSweep int64
}

func newLocalStore(rules int) *localStore {
	s := &localStore{maps: make([]map[string]*entry, rules), sweepAt: minSweep}
	for i := range s.maps {
		s.maps[i] = make(map[string]*entry)
	}
	return s
}

// check counts a call against rules at now (nanoseconds on the limiter's
// clock). It returns the index of the refusing rule that frees last and
// its wait (negative for a counter that never frees), or -1 when every
// rule allows the call, in which case the call is taken from all of them.
func (s *localStore) check(now int64, rules []*rule, c *Call) (refused int, wait time.Duration) {
	var (
		keyBuf [512]byte
		ends   [maxRules]int
		entBuf [maxRules]*entry
		newBuf [maxRules]int64
	)
	kb, ents, news := keyBuf[:0], entBuf[:0], newBuf[:0]
	endOf := ends[:0]
	refused = -1
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range rules {
		start := len(kb)
		kb = r.appendKey(kb, c)
		endOf = append(endOf, len(kb))
		e := s.maps[r.id][string(kb[start:])]
		ents = append(ents, e)
		if r.count > 0 {
			n := int64(1)
			if e != nil && e.exp > now {
				n = e.v + 1
			}
			news = append(news, n)
			if n > r.count {
				refused, wait = i, -1
			}
			continue
		}
		tat := now
		if e != nil && e.v > now {
			tat = e.v
		}
		next := tat + r.interval
		news = append(news, next)
		if w := time.Duration(next - r.tolerance - now); w > 0 && wait >= 0 && (refused < 0 || w > wait) {
			refused, wait = i, w
		}
	}
	if refused >= 0 {
		return refused, wait
	}
	start := 0
	for i, r := range rules {
		exp := news[i]
		if r.count > 0 {
			exp = now + int64(r.ttl)
		}
		if ents[i] != nil {
			*ents[i] = entry{v: news[i], exp: exp}
		} else {
			s.maps[r.id][string(kb[start:endOf[i]])] = &entry{v: news[i], exp: exp}
			s.n++
		}
		start = endOf[i]
	}
	if s.n >= s.sweepAt || now-s.lastSweep >= int64(sweepEvery) {
		s.sweep(now)
	}
	return -1, 0
}

// sweep drops the buckets that are back to full, so that memory follows
// the callers active within their limits' windows.
func (s *localStore) sweep(now int64) {
	for _, m := range s.maps {
		for k, e := range m {
			if e.exp <= now {
				delete(m, k)
				s.n--
			}
		}
	}
	s.sweepAt = max(2*s.n, minSweep)
	s.lastSweep = now
}

// size is the number of buckets held, for tests.
func (s *localStore) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}
