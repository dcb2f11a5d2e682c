package authn

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/mcpgate/mcpgate/internal/identity"
)

const (
	introClientID = "mcpgate gw" // a space, to check form-encoding in Basic
	introSecret   = "s3cret:with/special&chars"
)

// introServer is an RFC 7662 endpoint over httptest: it answers for the
// tokens it knows, and counts the calls for each.
type introServer struct {
	srv *httptest.Server

	mu     sync.Mutex // guards the fields below
	tokens map[string]map[string]any
	hits   map[string]int
	status int           // answer with this status when non-zero
	gate   chan struct{} // when set, answers wait for it to close
}

func newIntroServer(t *testing.T) *introServer {
	t.Helper()
	s := &introServer{tokens: map[string]map[string]any{}, hits: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *introServer) serve(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	id, _ = url.QueryUnescape(id)
	secret, _ = url.QueryUnescape(secret)
	if r.Method != http.MethodPost || !ok || id != introClientID || secret != introSecret ||
		r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	tok := r.PostFormValue("token")
	s.mu.Lock()
	s.hits[tok]++
	resp, known := s.tokens[tok]
	status, gate := s.status, s.gate
	s.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if status != 0 {
		http.Error(w, "broken", status)
		return
	}
	if !known {
		resp = map[string]any{"active": false}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

func (s *introServer) set(tok string, resp map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[tok] = resp
}

func (s *introServer) revoke(tok string) { s.set(tok, map[string]any{"active": false}) }

func (s *introServer) count(tok string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[tok]
}

func (s *introServer) setStatus(code int) {
	s.mu.Lock()
	s.status = code
	s.mu.Unlock()
}

func introEnv(t *testing.T, s *introServer, extra string) *env {
	t.Helper()
	return newEnv(t, fmt.Sprintf(`
auth:
  resource: https://mcp.example.com/mcp
  introspection:
    - url: %s/introspect
      client_id: %q
      client_secret: {file: %q}
      cache_ttl: 30s
      claims: {subject: sub, tenant: org, groups: groups, scopes: scope}
%s`, s.srv.URL, introClientID, writeTemp(t, introSecret+"\n"), extra))
}

// active is an active introspection response expiring at exp.
func active(exp time.Time) map[string]any {
	return map[string]any{
		"active": true, "sub": "svc-1", "org": "acme", "groups": []string{"ops"},
		"scope": "mcp.read", "exp": exp.Unix(), "token_type": "Bearer",
	}
}

func TestIntrospection(t *testing.T) {
	s := newIntroServer(t)
	e := introEnv(t, s, "")
	now := e.clk.Now()
	svc := identity.Principal{Method: "introspection", Issuer: s.srv.URL + "/introspect", Subject: "svc-1", Tenant: "acme", Groups: []string{"ops"}, Scopes: []string{"mcp.read"}}

	t.Run("active, then cached", func(t *testing.T) {
		s.set("opaque-active", active(now.Add(time.Hour)))
		for i := range 3 {
			p, ok := e.auth(t, bearerReq("opaque-active"))
			if !ok {
				t.Fatalf("call %d refused; log:\n%s", i, e.logs.String())
			}
			if diff := cmp.Diff(svc, p); diff != "" {
				t.Errorf("principal (-want +got):\n%s", diff)
			}
		}
		if n := s.count("opaque-active"); n != 1 {
			t.Errorf("%d introspection calls, want 1", n)
		}
	})

	t.Run("inactive, cached briefly", func(t *testing.T) {
		for range 3 {
			if _, ok := e.auth(t, bearerReq("opaque-unknown")); ok {
				t.Fatal("inactive token accepted")
			}
		}
		if n := s.count("opaque-unknown"); n != 1 {
			t.Errorf("%d calls within the negative TTL, want 1", n)
		}
		e.clk.Advance(negativeTTL)
		if _, ok := e.auth(t, bearerReq("opaque-unknown")); ok || s.count("opaque-unknown") != 2 {
			t.Errorf("after the negative TTL: ok=%v, %d calls, want refused after 2", ok, s.count("opaque-unknown"))
		}
	})

	t.Run("revoked stays refused", func(t *testing.T) {
		start := e.clk.Now()
		s.set("opaque-revoked", active(start.Add(time.Hour)))
		if _, ok := e.auth(t, bearerReq("opaque-revoked")); !ok {
			t.Fatal("refused before revocation")
		}
		s.revoke("opaque-revoked")
		// Accepted from the cache until cache_ttl: the documented cost
		// of caching, bounded by cache_ttl.
		e.clk.Advance(29 * time.Second)
		if _, ok := e.auth(t, bearerReq("opaque-revoked")); !ok {
			t.Fatal("cached result not used")
		}
		e.clk.Advance(time.Second)
		for i := range 4 {
			if _, ok := e.auth(t, bearerReq("opaque-revoked")); ok {
				t.Fatalf("revoked token accepted (call %d)", i)
			}
			e.clk.Advance(3 * time.Second)
		}
		if n := s.count("opaque-revoked"); n != 3 {
			t.Errorf("%d calls, want 3 (the first, at cache expiry, and after the negative TTL)", n)
		}
	})

	t.Run("cache never outlives exp", func(t *testing.T) {
		exp := e.clk.Now().Add(10 * time.Second)
		s.set("opaque-short", active(exp))
		if _, ok := e.auth(t, bearerReq("opaque-short")); !ok {
			t.Fatal("refused")
		}
		e.clk.Advance(9 * time.Second)
		if _, ok := e.auth(t, bearerReq("opaque-short")); !ok || s.count("opaque-short") != 1 {
			t.Fatalf("before exp: ok=%v, %d calls", ok, s.count("opaque-short"))
		}
		e.clk.Advance(time.Second)
		// The server still says active, with the exp now passed.
		if _, ok := e.auth(t, bearerReq("opaque-short")); ok {
			t.Error("accepted at exp")
		}
		if n := s.count("opaque-short"); n != 2 {
			t.Errorf("%d calls, want 2: the cache entry must end at exp", n)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		in := e.clk.Now()
		cases := map[string]map[string]any{
			"expired":          {"active": true, "sub": "x", "exp": in.Add(-time.Second).Unix()},
			"not valid yet":    {"active": true, "sub": "x", "nbf": in.Add(time.Minute).Unix()},
			"active as string": {"active": "true", "sub": "x"},
			"no subject":       {"active": true, "exp": in.Add(time.Hour).Unix()},
			"refresh token":    {"active": true, "sub": "x", "token_use": "refresh_token"},
			"exp not a number": {"active": true, "sub": "x", "exp": "tomorrow"},
			"groups malformed": {"active": true, "sub": "x", "groups": map[string]any{"a": 1}},
		}
		for name, resp := range cases {
			tok := "opaque-" + strings.ReplaceAll(name, " ", "-")
			s.set(tok, resp)
			if p, ok := e.auth(t, bearerReq(tok)); ok {
				t.Errorf("%s: accepted as %v", name, p)
			}
		}
	})

	if logs := e.logs.String(); strings.Contains(logs, "opaque-") {
		t.Errorf("token logged:\n%s", logs)
	}
}

func TestIntrospectionAudience(t *testing.T) {
	s := newIntroServer(t)
	e := introEnv(t, s, "      audiences: [https://mcp.example.com/mcp]\n")
	exp := e.clk.Now().Add(time.Hour)
	for i, tt := range []struct {
		aud  any
		want bool
	}{
		{"https://mcp.example.com/mcp", true},
		{[]string{"other", "https://mcp.example.com/mcp"}, true},
		{"https://other.example.com", false},
		{nil, false},
		{[]any{1, 2}, false},
	} {
		resp := active(exp)
		if tt.aud != nil {
			resp["aud"] = tt.aud
		}
		tok := fmt.Sprintf("opaque-aud-%d", i)
		s.set(tok, resp)
		if _, ok := e.auth(t, bearerReq(tok)); ok != tt.want {
			t.Errorf("aud %v: ok=%v, want %v", tt.aud, ok, tt.want)
		}
		if n := s.count(tok); n != 1 {
			t.Errorf("aud %v: %d calls, want 1", tt.aud, n)
		}
	}
}

// TestIntrospectionFailure checks that an endpoint failure is a technical
// error, never cached, and that bad client credentials are one too.
func TestIntrospectionFailure(t *testing.T) {
	s := newIntroServer(t)
	e := introEnv(t, s, "")
	s.set("opaque-1", active(e.clk.Now().Add(time.Hour)))
	s.setStatus(http.StatusInternalServerError)
	for range 2 {
		if _, ok, err := e.a.Authenticate(bearerReq("opaque-1")); ok || !errors.Is(err, ErrUnavailable) {
			t.Fatalf("ok=%v err=%v, want ErrUnavailable", ok, err)
		}
	}
	if n := s.count("opaque-1"); n != 2 {
		t.Errorf("%d calls, want 2: failures are not cached", n)
	}
	s.setStatus(0)
	if _, ok := e.auth(t, bearerReq("opaque-1")); !ok {
		t.Fatal("not recovered")
	}

	wrong := newEnv(t, fmt.Sprintf(`
auth:
  resource: https://mcp.example.com/mcp
  introspection:
    - {url: %s/introspect, client_id: mcpgate, client_secret: {file: %q}}
`, s.srv.URL, writeTemp(t, "a-wrong-client-secret-of-length")))
	if _, ok, err := wrong.a.Authenticate(bearerReq("opaque-1")); ok || !errors.Is(err, ErrUnavailable) {
		t.Errorf("wrong client secret: ok=%v err=%v, want ErrUnavailable", ok, err)
	}
}

// TestIntrospectionSingleFlight checks that concurrent requests with the
// same new token make one call.
func TestIntrospectionSingleFlight(t *testing.T) {
	s := newIntroServer(t)
	e := introEnv(t, s, "")
	s.set("opaque-burst", active(e.clk.Now().Add(time.Hour)))
	gate := make(chan struct{})
	s.mu.Lock()
	s.gate = gate
	s.mu.Unlock()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, ok, err := e.a.Authenticate(bearerReq("opaque-burst")); !ok || err != nil {
				t.Errorf("ok=%v err=%v", ok, err)
			}
		})
	}
	waitFor(t, func() bool { return s.count("opaque-burst") == 1 })
	close(gate)
	wg.Wait()
	if n := s.count("opaque-burst"); n != 1 {
		t.Errorf("%d calls for a burst, want 1", n)
	}
}

// TestBearerRouting checks which verifier sees a bearer token: a JWT of a
// configured issuer never reaches introspection, an API key never leaves
// the gateway, and other tokens go to introspection.
func TestBearerRouting(t *testing.T) {
	rs := newRSA(t, 0, "rsa-1", jose.RS256)
	p := newIdP(t, "", rs)
	s := newIntroServer(t)
	e := newEnv(t, jwtConfig(p.issuer, p.srv.URL+"/jwks", fmt.Sprintf(`
  introspection:
    - {url: %s/introspect, client_id: %q, client_secret: {file: %q}}
  api_keys:
    - {name: ci-bot, sha256: 840bd5f539f1d4fc7f18b521fb2b66e14c4ace79ee3093b654b48b721e6abb11}
`, s.srv.URL, introClientID, writeTemp(t, introSecret))))
	now := e.clk.Now()

	jwtTok := mint(t, rs, p.claims(now, resource), nil)
	if got, ok := e.auth(t, bearerReq(jwtTok)); !ok || got.Method != "jwt" {
		t.Errorf("JWT: %v, %v", got, ok)
	}
	expired := p.claims(now, resource)
	expired["exp"] = now.Add(-time.Hour).Unix()
	badJWT := mint(t, rs, expired, nil)
	if _, ok := e.auth(t, bearerReq(badJWT)); ok {
		t.Error("expired JWT accepted")
	}
	if n := s.count(jwtTok) + s.count(badJWT); n != 0 {
		t.Errorf("JWTs of a configured issuer sent to introspection %d times", n)
	}

	const key = "k1-random-test-key-aaaaaaaaaaaaaaaaaaaaaaaa"
	if got, ok := e.auth(t, bearerReq(key)); !ok || got.Method != "api_key" {
		t.Errorf("API key: %v, %v", got, ok)
	}
	if n := s.count(key); n != 0 {
		t.Errorf("API key sent to introspection %d times", n)
	}

	foreign := p.claims(now, resource)
	foreign["iss"] = "https://other-idp.example.com"
	foreignJWT := mint(t, rs, foreign, nil)
	s.set(foreignJWT, active(now.Add(time.Hour)))
	if got, ok := e.auth(t, bearerReq(foreignJWT)); !ok || got.Method != "introspection" || s.count(foreignJWT) != 1 {
		t.Errorf("JWT of another issuer: %v, %v after %d calls; want introspected", got, ok, s.count(foreignJWT))
	}
}

// TestVerdictCacheBound checks that a cache stays bounded.
func TestVerdictCacheBound(t *testing.T) {
	var c verdictCache
	now := time.Now()
	for i := range maxCacheEntries + 50 {
		c.put(tokenHash(fmt.Sprint(i)), verdict{reason: "x", until: now.Add(time.Hour)}, now)
	}
	if n := len(c.m); n > maxCacheEntries {
		t.Errorf("cache holds %d entries, want at most %d", n, maxCacheEntries)
	}
}
