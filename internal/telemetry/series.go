package telemetry

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// The hot path resolves each series once and keeps it in a cache keyed by
// small integers, so that counting a request is a few map reads and atomic
// adds, with no hashing of label values and no allocation. Caches are
// copy-on-write: readers take no lock; writers hold Metrics.mu.

// cache maps a small key to a resolved series. It holds the few
// method×outcome pairs one label value actually sees, so a scan of a short
// slice beats hashing.
type cache[T any] struct {
	p atomic.Pointer[[]cacheEntry[T]]
}

type cacheEntry[T any] struct {
	key uint16
	v   T
}

func (c *cache[T]) load(k uint16) (T, bool) {
	if es := c.p.Load(); es != nil {
		for i := range *es {
			if (*es)[i].key == k {
				return (*es)[i].v, true
			}
		}
	}
	var zero T
	return zero, false
}

// store adds k; the caller holds Metrics.mu.
func (c *cache[T]) store(k uint16, v T) {
	var es []cacheEntry[T]
	if old := c.p.Load(); old != nil {
		es = make([]cacheEntry[T], len(*old), len(*old)+1)
		copy(es, *old)
	}
	es = append(es, cacheEntry[T]{k, v})
	c.p.Store(&es)
}

// serverSet is the server label's closed set: the configured servers and "".
type serverSet struct {
	byName map[string]*server
	other  *server
}

// server holds one server label value's caches.
type server struct {
	name      string
	removed   bool // set under Metrics.mu when the server leaves the configuration
	catalog   atomic.Pointer[catalog]
	noTool    *tool // tool ""
	otherTool *tool // tool Other
	duration  cache[prometheus.Observer]
	replicas  atomic.Pointer[map[string]*replica]
}

// catalog is the tool label's closed set for one server.
type catalog struct {
	tools map[string]*tool
}

// tool holds one tool label value's request counters, by method and outcome.
type tool struct {
	name     string
	removed  bool // set under Metrics.mu when the tool leaves the catalog
	requests cache[prometheus.Counter]
}

// replica holds one replica label value's series.
type replica struct {
	name     string
	requests cache[prometheus.Counter]
	duration cache[prometheus.Observer] // one entry, key 0: made on the first request
}

func newServer(name string) *server {
	return &server{name: name, noTool: &tool{name: ""}, otherTool: &tool{name: Other}}
}

// server returns the label state for name, Other's if it is not configured.
func (m *Metrics) server(name string) *server {
	set := m.servers.Load()
	if s, ok := set.byName[name]; ok {
		return s
	}
	return set.other
}

// tool returns the label state for a tool of s: "", a catalog tool, or Other.
func (s *server) tool(name string) *tool {
	if name == "" {
		return s.noTool
	}
	if c := s.catalog.Load(); c != nil {
		if t, ok := c.tools[name]; ok {
			return t
		}
	}
	return s.otherTool
}

// SetServers replaces the configured server names, as after a reload.
// Series of servers that are no longer configured are deleted.
func (m *Metrics) SetServers(names []string) {
	if m != nil {
		m.setServers(names)
	}
}

func (m *Metrics) setServers(names []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.servers.Load()
	set := &serverSet{byName: make(map[string]*server, len(names)+1)}
	if old != nil {
		set.other = old.other
	} else {
		set.other = newServer(Other)
	}
	for _, name := range append([]string{""}, names...) {
		if name == Other {
			continue
		}
		if old != nil && old.byName[name] != nil {
			set.byName[name] = old.byName[name]
		} else {
			set.byName[name] = newServer(name)
		}
	}
	m.servers.Store(set)
	if old == nil {
		return
	}
	for name, s := range old.byName {
		if set.byName[name] == nil {
			s.removed = true
			m.deleteServerSeries(name)
		}
	}
}

func (m *Metrics) deleteServerSeries(name string) {
	match := prometheus.Labels{"server": name}
	for _, v := range []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{m.requests, m.requestDuration, m.upstreamRequests, m.upstreamDuration, m.upstreamErrors,
		m.upstreamUp, m.catalogTools, m.policyDenials, m.rateLimited, m.pinChanges} {
		v.DeletePartialMatch(match)
	}
}

// SetCatalog replaces the tools of a configured server, as listed by the
// server's tools/list: the tool label of that server takes only these
// names (the first 2000 of them). mcpgate_catalog_tools reports the full
// count. Series of tools that left the catalog are deleted. Unknown
// servers are ignored.
func (m *Metrics) SetCatalog(serverName string, tools []string) {
	if m == nil || serverName == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.servers.Load().byName[serverName]
	if !ok {
		return
	}
	old := s.catalog.Load()
	c := &catalog{tools: make(map[string]*tool, min(len(tools), maxCatalogTools))}
	for _, name := range tools {
		if len(c.tools) == maxCatalogTools {
			break
		}
		if name == "" || name == Other {
			continue
		}
		if old != nil && old.tools[name] != nil {
			c.tools[name] = old.tools[name]
		} else if c.tools[name] == nil {
			c.tools[name] = &tool{name: name}
		}
	}
	s.catalog.Store(c)
	m.catalogTools.WithLabelValues(serverName).Set(float64(len(tools)))
	if old == nil {
		return
	}
	for name, t := range old.tools {
		if c.tools[name] == nil {
			t.removed = true
			match := prometheus.Labels{"server": serverName, "tool": name}
			m.requests.DeletePartialMatch(match)
			m.policyDenials.DeletePartialMatch(match)
		}
	}
}

// requestCounter resolves and caches the requests_total series of s, t.
func (m *Metrics) requestCounter(s *server, t *tool, mi, oi int) prometheus.Counter {
	key := uint16(mi*len(outcomes) + oi)
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.removed {
		s = m.servers.Load().other
		t = s.tool(t.name)
	}
	if t.removed {
		t = s.otherTool
	}
	if c, ok := t.requests.load(key); ok {
		return c
	}
	c := m.requests.WithLabelValues(methods[mi], s.name, t.name, outcomes[oi])
	t.requests.store(key, c)
	return c
}

// requestObserver resolves and caches the request_duration_seconds series.
func (m *Metrics) requestObserver(s *server, mi, oi int) prometheus.Observer {
	key := uint16(mi*len(outcomes) + oi)
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.removed {
		s = m.servers.Load().other
	}
	if h, ok := s.duration.load(key); ok {
		return h
	}
	h := m.requestDuration.WithLabelValues(methods[mi], s.name, outcomes[oi])
	s.duration.store(key, h)
	return h
}

// replica returns the label state of a replica of s, admitting a new name
// while s has fewer than maxReplicas.
func (m *Metrics) replica(s *server, name string) *replica {
	if rs := s.replicas.Load(); rs != nil {
		if r, ok := (*rs)[name]; ok {
			return r
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.replicaLocked(s, name)
}

func (m *Metrics) replicaLocked(s *server, name string) *replica {
	if s.removed {
		s = m.servers.Load().other
	}
	old := s.replicas.Load()
	n := make(map[string]*replica)
	if old != nil {
		if r, ok := (*old)[name]; ok {
			return r
		}
		if len(*old) >= maxReplicas {
			if r, ok := (*old)[Other]; ok {
				return r
			}
			name = Other
		}
		for k, v := range *old {
			n[k] = v
		}
	}
	r := &replica{name: name}
	n[name] = r
	s.replicas.Store(&n)
	return r
}

// upstreamCounter resolves and caches the upstream_requests_total series.
func (m *Metrics) upstreamCounter(s *server, r *replica, mi, oi int) prometheus.Counter {
	key := uint16(mi*len(outcomes) + oi)
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.removed {
		s = m.servers.Load().other
		r = m.replicaLocked(s, r.name)
	}
	if c, ok := r.requests.load(key); ok {
		return c
	}
	c := m.upstreamRequests.WithLabelValues(s.name, r.name, methods[mi], outcomes[oi])
	r.requests.store(key, c)
	return c
}

// upstreamObserver resolves and caches the upstream_request_duration_seconds
// series of r.
func (m *Metrics) upstreamObserver(s *server, r *replica) prometheus.Observer {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.removed {
		s = m.servers.Load().other
		r = m.replicaLocked(s, r.name)
	}
	if h, ok := r.duration.load(0); ok {
		return h
	}
	h := m.upstreamDuration.WithLabelValues(s.name, r.name)
	r.duration.store(0, h)
	return h
}
