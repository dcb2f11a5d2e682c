package argcheck

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"sync"
	"sync/atomic"
)

// DefaultCacheSize is the number of schemas a Cache keeps when asked for
// none.
const DefaultCacheSize = 4096

// Cache compiles each distinct schema once, keyed by the SHA-256 of its
// bytes, and keeps the most recently used ones. A schema that does not
// compile is remembered too, so that it is neither recompiled nor logged
// on every call. It is safe for concurrent use.
type Cache struct {
	size   int
	logger *slog.Logger

	hits, misses atomic.Uint64

	mu      sync.Mutex // guards the fields below
	entries map[[sha256.Size]byte]*list.Element
	lru     list.List // of *cacheEntry, most recent first
}

type cacheEntry struct {
	key    [sha256.Size]byte
	schema *Schema
	err    error
}

// NewCache returns a cache of at most size schemas (DefaultCacheSize when
// size <= 0). logger receives one warning per schema that does not
// compile; nil discards them.
func NewCache(size int, logger *slog.Logger) *Cache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Cache{size: size, logger: logger, entries: make(map[[sha256.Size]byte]*list.Element)}
}

// Get returns the compiled form of inputSchema, compiling it on first use.
// For a schema that does not compile it returns a nil *Schema (which
// accepts every argument) and the compile error, wrapping
// ErrInvalidSchema, every time: the caller forwards such calls
// unvalidated, and need not log the error, which the cache logged once.
func (c *Cache) Get(inputSchema []byte) (*Schema, error) {
	key := sha256.Sum256(inputSchema)
	c.mu.Lock()
	if el, ok := c.entries[key]; ok {
		c.lru.MoveToFront(el)
		e := el.Value.(*cacheEntry)
		c.mu.Unlock()
		c.hits.Add(1)
		return e.schema, e.err
	}
	c.mu.Unlock()
	c.misses.Add(1)
	// Compiling outside the lock keeps other tools' calls moving; two
	// first calls of one schema may both compile it.
	s, err := Compile(inputSchema)
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		e := el.Value.(*cacheEntry)
		return e.schema, e.err
	}
	c.entries[key] = c.lru.PushFront(&cacheEntry{key: key, schema: s, err: err})
	for c.lru.Len() > c.size {
		old := c.lru.Remove(c.lru.Back()).(*cacheEntry)
		delete(c.entries, old.key)
	}
	if err != nil {
		c.logger.Warn("tool input schema does not compile; its calls are forwarded without argument validation",
			"schema_sha256", hex.EncodeToString(key[:8]), "error", err)
	}
	return s, err
}

// Len returns the number of schemas held.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// Stats returns how many Gets found their schema compiled, and how many
// compiled it.
func (c *Cache) Stats() (hits, misses uint64) { return c.hits.Load(), c.misses.Load() }
