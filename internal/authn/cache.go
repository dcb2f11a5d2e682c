package authn

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/internal/identity"
)

// maxCacheEntries bounds each verdict cache.
const maxCacheEntries = 10_000

// verdict is a remembered outcome for one token: a principal, or the
// reason for a refusal.
type verdict struct {
	p      identity.Principal
	reason string // "" when p is valid
	until  time.Time
	// keys, for a JWT, is the key set of src that verified it: the verdict
	// holds only while that set is current, so a key dropped from the JWKS
	// stops vouching for its tokens at the next refresh.
	keys *keySet
	src  *keySource
}

// current reports whether the keys that verified a JWT verdict are still
// the issuer's.
func (v verdict) current() bool { return v.src == nil || v.src.set.Load() == v.keys }

// principal returns a copy of the verdict's principal that the caller may
// change freely.
func (v verdict) principal() identity.Principal {
	p := v.p
	p.Groups = append([]string(nil), p.Groups...)
	p.Scopes = append([]string(nil), p.Scopes...)
	return p
}

// verdictCache holds verdicts by the SHA-256 of the token, so that it never
// holds a token, and stays bounded: when full it drops expired entries,
// then arbitrary ones.
type verdictCache struct {
	mu sync.Mutex // guards m
	m  map[[sha256.Size]byte]verdict
}

func (c *verdictCache) get(key [sha256.Size]byte, now time.Time) (verdict, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	if !ok {
		return verdict{}, false
	}
	if !now.Before(v.until) {
		delete(c.m, key)
		return verdict{}, false
	}
	return v, true
}

func (c *verdictCache) put(key [sha256.Size]byte, v verdict, now time.Time) {
	if !now.Before(v.until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[[sha256.Size]byte]verdict)
	}
	if len(c.m) >= maxCacheEntries {
		for k, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < maxCacheEntries {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[key] = v
}
