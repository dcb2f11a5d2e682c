package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/json"
)

const (
	// maxJWKSKeys bounds the keys taken from one JWKS.
	maxJWKSKeys = 100
	// minRSABits refuses RSA keys too short to trust.
	minRSABits = 2048
	// fetchTimeout bounds one discovery and JWKS fetch. It runs detached
	// from the request that started it, since other requests wait on it too.
	fetchTimeout = 15 * time.Second
)

// keySet is one fetched JWKS, reduced to usable public signing keys. It is
// immutable once built.
type keySet struct {
	byKID   map[string][]jose.JSONWebKey
	all     []jose.JSONWebKey
	fetched time.Time
}

// candidates returns the keys that may verify a token with this kid and
// alg: those with the kid (all keys when the token names none), of the
// key type alg needs, and whose own "alg", if any, is alg.
func (s *keySet) candidates(kid string, alg jose.SignatureAlgorithm) []jose.JSONWebKey {
	pool := s.all
	if kid != "" {
		pool = s.byKID[kid]
	}
	var out []jose.JSONWebKey
	for _, k := range pool {
		if (k.Algorithm == "" || k.Algorithm == string(alg)) && keyFits(k.Key, alg) {
			out = append(out, k)
		}
	}
	return out
}

// keyFits reports whether a public key is of the type alg uses.
func keyFits(key any, alg jose.SignatureAlgorithm) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		switch alg {
		case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
			return true
		}
	case *ecdsa.PublicKey:
		switch alg {
		case jose.ES256:
			return k.Curve == elliptic.P256()
		case jose.ES384:
			return k.Curve == elliptic.P384()
		case jose.ES512:
			return k.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == jose.EdDSA
	}
	return false
}

// keySource holds the cached JWKS of one issuer and refreshes it: lazily
// on first use, in the background once older than maxAge, and on an
// unknown kid; never more than once per minRefreshInterval, and with one
// fetch in flight that concurrent callers share.
type keySource struct {
	issuer string
	url    string // configured jwks_url; "" means discover
	client *http.Client
	now    func() time.Time
	log    *slog.Logger
	maxAge time.Duration

	set atomic.Pointer[keySet] // read without locking on every request

	mu          sync.Mutex // guards the fields below
	discovered  string     // jwks_uri found by discovery
	lastAttempt time.Time
	lastErr     error
	inflight    *fetch
}

// fetch is one refresh in flight; err is set before done is closed.
type fetch struct {
	done chan struct{}
	err  error
}

// errRateLimited means a refresh was due but one ran too recently.
var errRateLimited = errors.New("jwks refreshed less than 10s ago")

// lookup returns the keys that may verify a token with this kid and alg,
// and the set they come from. It fetches the JWKS when none is cached
// (waiting for it), and refreshes it when the kid is unknown; an error
// means no JWKS could be had.
func (ks *keySource) lookup(ctx context.Context, kid string, alg jose.SignatureAlgorithm) (*keySet, []jose.JSONWebKey, error) {
	set := ks.set.Load()
	if set == nil {
		if err := ks.refresh(ctx, true); err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			return nil, nil, unavailable("jwks of %s: %w", ks.issuer, err)
		}
		set = ks.set.Load()
	} else if ks.now().Sub(set.fetched) >= ks.maxAge {
		_ = ks.refresh(ctx, false) // keep using the old keys meanwhile
	}
	if _, known := set.byKID[kid]; kid != "" && !known {
		err := ks.refresh(ctx, true)
		switch {
		case ctx.Err() != nil:
			return nil, nil, ctx.Err()
		case err == nil:
			set = ks.set.Load()
		case !errors.Is(err, errRateLimited):
			ks.log.Warn("jwks refresh failed", "issuer", ks.issuer, "error", err)
		}
	}
	return set, set.candidates(kid, alg), nil
}

// refresh starts a fetch unless one is in flight or one started less than
// minRefreshInterval ago, and if wait is set waits for the fetch in flight.
// A caller arriving while a fetch is in flight joins it whatever the rate
// limit. A fetch that fails leaves the cached keys in place.
func (ks *keySource) refresh(ctx context.Context, wait bool) error {
	ks.mu.Lock()
	f := ks.inflight
	if f == nil {
		now := ks.now()
		if !ks.lastAttempt.IsZero() && now.Sub(ks.lastAttempt) < minRefreshInterval {
			err := ks.lastErr
			ks.mu.Unlock()
			if err != nil {
				return fmt.Errorf("%w; last fetch failed: %w", errRateLimited, err)
			}
			return errRateLimited
		}
		ks.lastAttempt = now
		f = &fetch{done: make(chan struct{})}
		ks.inflight = f
		go ks.run(f)
	}
	ks.mu.Unlock()
	if !wait {
		return nil
	}
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run performs one fetch and publishes its result.
func (ks *keySource) run(f *fetch) {
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	set, err := ks.load(ctx)
	ks.mu.Lock()
	if err == nil {
		ks.set.Store(set)
	}
	ks.lastErr = err
	ks.inflight = nil
	ks.mu.Unlock()
	if err != nil {
		ks.log.Warn("jwks fetch failed", "issuer", ks.issuer, "error", err)
	} else {
		ks.log.Debug("jwks fetched", "issuer", ks.issuer, "keys", len(set.all))
	}
	f.err = err
	close(f.done)
}

// load discovers the JWKS URL if needed and fetches the key set.
func (ks *keySource) load(ctx context.Context) (*keySet, error) {
	u := ks.url
	if u == "" {
		ks.mu.Lock()
		u = ks.discovered
		ks.mu.Unlock()
		if u == "" {
			var err error
			if u, err = discoverJWKSURL(ctx, ks.client, ks.issuer); err != nil {
				return nil, err
			}
		}
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := getJSON(ctx, ks.client, u, &doc); err != nil {
		if ks.url == "" {
			ks.mu.Lock()
			ks.discovered = "" // discover again next time: the URL may have moved
			ks.mu.Unlock()
		}
		return nil, err
	}
	if ks.url == "" {
		ks.mu.Lock()
		ks.discovered = u
		ks.mu.Unlock()
	}
	set, skipped := parseKeySet(doc.Keys, ks.now())
	if skipped > 0 {
		ks.log.Warn("jwks keys skipped", "issuer", ks.issuer, "skipped", skipped)
	}
	if len(set.all) == 0 {
		return nil, fmt.Errorf("jwks at %s holds no usable public signing key", u)
	}
	return set, nil
}

// parseKeySet keeps the public signing keys of a JWKS: private, symmetric,
// encryption-only, short RSA and unparsable keys are skipped and counted
// (RFC 7517, section 5, says to ignore keys one does not understand).
func parseKeySet(raw []json.RawMessage, now time.Time) (*keySet, int) {
	set := &keySet{byKID: make(map[string][]jose.JSONWebKey), fetched: now}
	skipped := 0
	for _, r := range raw {
		var k jose.JSONWebKey
		if len(set.all) == maxJWKSKeys || k.UnmarshalJSON(r) != nil || !usableKey(&k) {
			skipped++
			continue
		}
		set.all = append(set.all, k)
		if k.KeyID != "" {
			set.byKID[k.KeyID] = append(set.byKID[k.KeyID], k)
		}
	}
	return set, skipped
}

// usableKey reports whether k is a public signing key of a type the
// allowed algorithms use, and long enough.
func usableKey(k *jose.JSONWebKey) bool {
	if !k.Valid() || !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
		return false
	}
	switch key := k.Key.(type) {
	case *rsa.PublicKey:
		return key.N.BitLen() >= minRSABits
	case *ecdsa.PublicKey, ed25519.PublicKey:
		return true
	}
	return false
}

// discoverJWKSURL reads the issuer's OpenID Provider metadata, or failing
// that its RFC 8414 authorization server metadata, and returns jwks_uri.
// The metadata must name the same issuer (OpenID Connect Discovery,
// section 4.3; RFC 8414, section 3.3), so a document copied from elsewhere
// cannot redirect key fetches.
func discoverJWKSURL(ctx context.Context, client *http.Client, issuer string) (string, error) {
	var errs []error
	for _, u := range discoveryURLs(issuer) {
		var meta struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := getJSON(ctx, client, u, &meta); err != nil {
			errs = append(errs, err)
			continue
		}
		switch {
		case meta.Issuer != issuer:
			errs = append(errs, fmt.Errorf("metadata at %s names issuer %q, want %q", u, meta.Issuer, issuer))
		case meta.JWKSURI == "":
			errs = append(errs, fmt.Errorf("metadata at %s has no jwks_uri", u))
		case !secureURL(meta.JWKSURI):
			errs = append(errs, fmt.Errorf("metadata at %s has jwks_uri %q, which is not https", u, meta.JWKSURI))
		default:
			return meta.JWKSURI, nil
		}
	}
	return "", fmt.Errorf("discovery: %w", errors.Join(errs...))
}

// discoveryURLs returns where an issuer's metadata may be: the OpenID
// Connect form (the issuer with /.well-known/openid-configuration
// appended) and the RFC 8414 form (the well-known segment inserted between
// host and path).
func discoveryURLs(issuer string) []string {
	oidc := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	u, err := url.Parse(issuer)
	if err != nil {
		return []string{oidc}
	}
	rfc8414 := u.Scheme + "://" + u.Host + "/.well-known/oauth-authorization-server" + strings.TrimSuffix(u.EscapedPath(), "/")
	return []string{oidc, rfc8414}
}
