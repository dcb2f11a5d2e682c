package authn

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"
)

// TestJWKSUnknownKid checks the refresh on an unknown kid: at most once
// per 10s per issuer, one fetch for a burst, and a rotated-in key accepted
// after the refresh.
func TestJWKSUnknownKid(t *testing.T) {
	k1 := newRSA(t, 0, "k1", jose.RS256)
	k2 := newRSA(t, 1, "k2", jose.RS256) // rotated in later
	p := newIdP(t, "", k1)
	e := newEnv(t, jwtConfig(p.issuer, p.srv.URL+"/jwks", ""))
	mintAt := func(k signingKey) string { return mint(t, k, p.claims(e.clk.Now(), resource), nil) }
	unknown := func(i int) string {
		return mint(t, signingKey{kid: fmt.Sprintf("unknown-%d", i), alg: jose.RS256, key: k1.key}, p.claims(e.clk.Now(), resource), nil)
	}
	fetches := func() int { return p.count("/jwks") }

	if _, ok := e.auth(t, bearerReq(mintAt(k1))); !ok {
		t.Fatal("valid token refused")
	}
	if n := fetches(); n != 1 {
		t.Fatalf("first token: %d fetches, want 1", n)
	}
	if _, ok := e.auth(t, bearerReq(mintAt(k1))); !ok || fetches() != 1 {
		t.Fatalf("second token: ok=%v after %d fetches, want cached", ok, fetches())
	}

	// Within 10s of the last fetch an unknown kid fetches nothing.
	if _, ok := e.auth(t, bearerReq(unknown(0))); ok || fetches() != 1 {
		t.Fatalf("unknown kid within 10s: ok=%v, %d fetches, want refused after 1", ok, fetches())
	}

	// After 10s one unknown kid triggers exactly one refresh.
	e.clk.Advance(11 * time.Second)
	if _, ok := e.auth(t, bearerReq(unknown(1))); ok || fetches() != 2 {
		t.Fatalf("unknown kid after 10s: ok=%v, %d fetches, want refused after 2", ok, fetches())
	}

	// A burst of 50 unknown kids, 10s later, refreshes once.
	e.clk.Advance(11 * time.Second)
	var wg sync.WaitGroup
	for i := range 50 {
		tok := unknown(100 + i)
		wg.Go(func() {
			if _, ok, err := e.a.Authenticate(bearerReq(tok)); ok || err != nil {
				t.Errorf("unknown kid: ok=%v err=%v", ok, err)
			}
		})
	}
	wg.Wait()
	if n := fetches(); n != 3 {
		t.Fatalf("burst of 50 unknown kids: %d fetches in all, want 3", n)
	}

	// Rotation: k2 is published. Right after the burst's refresh it is
	// still unknown; 10s later the refresh finds it.
	p.setKeys(k1, k2)
	tok2 := mintAt(k2)
	if _, ok := e.auth(t, bearerReq(tok2)); ok || fetches() != 3 {
		t.Fatalf("rotated key within 10s: ok=%v, %d fetches", ok, fetches())
	}
	e.clk.Advance(11 * time.Second)
	tok2 = mintAt(k2)
	if _, ok := e.auth(t, bearerReq(tok2)); !ok || fetches() != 4 {
		t.Fatalf("rotated key after refresh: ok=%v, %d fetches, want accepted after 4", ok, fetches())
	}
	for range 5 {
		if _, ok := e.auth(t, bearerReq(tok2)); !ok {
			t.Fatal("rotated key refused from cache")
		}
		if _, ok := e.auth(t, bearerReq(mintAt(k1))); !ok {
			t.Fatal("old key refused after rotation")
		}
	}
	if n := fetches(); n != 4 {
		t.Errorf("cached keys refetched: %d fetches", n)
	}

	// k1 is retired: once refreshed, its tokens are refused.
	p.setKeys(k2)
	e.clk.Advance(11 * time.Minute)
	if _, ok := e.auth(t, bearerReq(mintAt(k1))); !ok {
		t.Fatal("stale keys are used while the refresh runs in the background")
	}
	waitFor(t, func() bool { return e.a.issuers[p.issuer].keys.set.Load().fetched.Equal(e.clk.Now()) })
	if _, ok := e.auth(t, bearerReq(mintAt(k1))); ok {
		t.Error("retired key still accepted after the refresh")
	}
}

// TestJWKSColdStart checks that concurrent first requests share one
// fetch rather than failing on the rate limit.
func TestJWKSColdStart(t *testing.T) {
	k := newEC(t, "ec-1")
	p := newIdP(t, "", k)
	gate := make(chan struct{})
	p.mu.Lock()
	p.gate = gate
	p.mu.Unlock()
	e := newEnv(t, jwtConfig(p.issuer, p.srv.URL+"/jwks", ""))
	tok := mint(t, k, p.claims(e.clk.Now(), resource), nil)
	var wg sync.WaitGroup
	var started atomic.Int32
	for range 20 {
		wg.Go(func() {
			started.Add(1)
			if _, ok, err := e.a.Authenticate(bearerReq(tok)); !ok || err != nil {
				t.Errorf("ok=%v err=%v", ok, err)
			}
		})
	}
	waitFor(t, func() bool { return started.Load() == 20 && p.count("/jwks") == 1 })
	close(gate)
	wg.Wait()
	if n := p.count("/jwks"); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}
}

// waitFor polls cond, for state changed by a goroutine the test cannot
// join.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestJWKSDiscovery checks both discovery forms, and that metadata naming
// another issuer is not trusted.
func TestJWKSDiscovery(t *testing.T) {
	k := newEC(t, "ec-1")
	t.Run("openid-configuration", func(t *testing.T) {
		p := newIdP(t, "/realms/a", k)
		e := newEnv(t, jwtConfig(p.issuer, "", ""))
		if _, ok := e.auth(t, bearerReq(mint(t, k, p.claims(e.clk.Now(), resource), nil))); !ok {
			t.Fatalf("refused; log:\n%s", e.logs.String())
		}
		want := []string{"/realms/a/.well-known/openid-configuration", "/jwks"}
		if got := p.allPaths(); !slices.Equal(got, want) {
			t.Errorf("requests %v, want %v", got, want)
		}
	})
	t.Run("RFC 8414", func(t *testing.T) {
		p := newIdP(t, "/tenant", k)
		p.mu.Lock()
		p.oidcMeta = false
		p.mu.Unlock()
		e := newEnv(t, jwtConfig(p.issuer, "", ""))
		if _, ok := e.auth(t, bearerReq(mint(t, k, p.claims(e.clk.Now(), resource), nil))); !ok {
			t.Fatalf("refused; log:\n%s", e.logs.String())
		}
		want := []string{"/tenant/.well-known/openid-configuration", "/.well-known/oauth-authorization-server/tenant", "/jwks"}
		if got := p.allPaths(); !slices.Equal(got, want) {
			t.Errorf("requests %v, want %v", got, want)
		}
	})
	t.Run("metadata for another issuer", func(t *testing.T) {
		p := newIdP(t, "", k)
		p.mu.Lock()
		p.metaIss = "https://evil.example.com"
		p.mu.Unlock()
		e := newEnv(t, jwtConfig(p.issuer, "", ""))
		_, ok, err := e.a.Authenticate(bearerReq(mint(t, k, p.claims(e.clk.Now(), resource), nil)))
		if ok || !errors.Is(err, ErrUnavailable) {
			t.Errorf("ok=%v err=%v, want ErrUnavailable", ok, err)
		}
		if n := p.count("/jwks"); n != 0 {
			t.Errorf("fetched the JWKS %d times from untrusted metadata", n)
		}
	})
}

// TestJWKSUnavailable checks that an unreachable JWKS is a technical error,
// retried at most once per 10s, and that the gateway recovers.
func TestJWKSUnavailable(t *testing.T) {
	k := newRSA(t, 0, "k1", jose.RS256)
	p := newIdP(t, "", k)
	p.setFail(true)
	e := newEnv(t, jwtConfig(p.issuer, p.srv.URL+"/jwks", ""))
	tok := func() string { return mint(t, k, p.claims(e.clk.Now(), resource), nil) }
	for i := range 3 {
		_, ok, err := e.a.Authenticate(bearerReq(tok()))
		if ok || !errors.Is(err, ErrUnavailable) {
			t.Fatalf("call %d: ok=%v err=%v, want ErrUnavailable", i, ok, err)
		}
	}
	if n := p.count("/jwks"); n != 1 {
		t.Errorf("%d fetches while down within 10s, want 1", n)
	}
	p.setFail(false)
	e.clk.Advance(11 * time.Second)
	if _, ok := e.auth(t, bearerReq(tok())); !ok {
		t.Fatal("not recovered")
	}

	// Once keys are cached, a failing refresh keeps them.
	p.setFail(true)
	e.clk.Advance(11 * time.Minute)
	if _, ok := e.auth(t, bearerReq(tok())); !ok {
		t.Fatal("cached keys dropped when the refresh fails")
	}
	ks := e.a.issuers[p.issuer].keys
	waitFor(t, func() bool {
		ks.mu.Lock()
		defer ks.mu.Unlock()
		return ks.inflight == nil && ks.lastErr != nil
	})
	if _, ok := e.auth(t, bearerReq(tok())); !ok {
		t.Fatal("cached keys dropped after the refresh failed")
	}
}

// TestJWKSRedirect checks that the default client refuses to follow a
// JWKS redirect to another host.
func TestJWKSRedirect(t *testing.T) {
	k := newRSA(t, 0, "k1", jose.RS256)
	att := newAttacker(t, k)
	p := newIdP(t, "", k)
	redirect := httptest.NewServer(http.RedirectHandler(att.srv.URL+"/jwks", http.StatusFound))
	t.Cleanup(redirect.Close)
	e := newEnv(t, jwtConfig(p.issuer, redirect.URL+"/jwks", ""))
	_, ok, err := e.a.Authenticate(bearerReq(mint(t, k, p.claims(e.clk.Now(), resource), nil)))
	if ok || !errors.Is(err, ErrUnavailable) {
		t.Errorf("ok=%v err=%v, want ErrUnavailable", ok, err)
	}
	if n := att.hits.Load(); n != 0 {
		t.Errorf("redirect followed to another host (%d requests)", n)
	}
}

// TestParseKeySet checks that only usable public signing keys are kept.
func TestParseKeySet(t *testing.T) {
	good := newRSA(t, 0, "good", jose.RS256)
	ec := newEC(t, "ec")
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	keys := []jose.JSONWebKey{
		good.public(),
		ec.public(),
		{Key: weak.Public(), KeyID: "weak", Algorithm: "RS256"},
		{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "oct", Algorithm: "HS256"},
		{Key: ec.key, KeyID: "private", Algorithm: "ES256"},
		{Key: ec.key.Public(), KeyID: "enc", Use: "enc"},
	}
	var raw []josejson.RawMessage
	for _, k := range keys {
		b, err := json.Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, b)
	}
	raw = append(raw, josejson.RawMessage(`{"kty":"XYZ","kid":"unknown-type"}`), josejson.RawMessage(`"not a key"`))
	set, skipped := parseKeySet(raw, time.Now())
	var kids []string
	for _, k := range set.all {
		kids = append(kids, k.KeyID)
	}
	if !slices.Equal(kids, []string{"good", "ec"}) || skipped != 6 {
		t.Errorf("kept %v, skipped %d; want [good ec], 6", kids, skipped)
	}
	if got := set.candidates("good", jose.ES256); len(got) != 0 {
		t.Errorf("an RSA key is a candidate for ES256")
	}
	if got := set.candidates("", jose.ES256); len(got) != 1 || got[0].KeyID != "ec" {
		t.Errorf("candidates without kid for ES256 = %v", got)
	}
}

func TestDiscoveryURLs(t *testing.T) {
	tests := []struct{ issuer, oidc, rfc8414 string }{
		{"https://idp.example.com", "https://idp.example.com/.well-known/openid-configuration", "https://idp.example.com/.well-known/oauth-authorization-server"},
		{"https://idp.example.com/", "https://idp.example.com/.well-known/openid-configuration", "https://idp.example.com/.well-known/oauth-authorization-server"},
		{"https://idp.example.com/realms/a", "https://idp.example.com/realms/a/.well-known/openid-configuration", "https://idp.example.com/.well-known/oauth-authorization-server/realms/a"},
	}
	for _, tt := range tests {
		got := discoveryURLs(tt.issuer)
		if !slices.Equal(got, []string{tt.oidc, tt.rfc8414}) {
			t.Errorf("discoveryURLs(%q) = %v", tt.issuer, got)
		}
	}
}
