package authn

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/mcpgate/mcpgate/internal/identity"
)

// attacker is a server no token may make the gateway contact; it counts
// what it receives.
type attacker struct {
	srv  *httptest.Server
	hits atomic.Int32
}

func newAttacker(t *testing.T, keys ...signingKey) *attacker {
	t.Helper()
	a := &attacker{}
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.public())
	}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func TestJWT(t *testing.T) {
	rs := newRSA(t, 0, "rsa-1", jose.RS256)
	ps := newRSA(t, 0, "rsa-ps", jose.PS256) // same key, published again for PS256
	ec := newEC(t, "ec-1")
	ed := newEd(t, "ed-1")
	p := newIdP(t, "", rs, ps, ec, ed)
	evil := newRSA(t, 1, "rsa-1", jose.RS256) // attacker's key, honest kid
	evilEC := newEC(t, "evil-ec")
	att := newAttacker(t, evil, evilEC)

	e := newEnv(t, jwtConfig(p.issuer, p.srv.URL+"/jwks", ""))
	now := e.clk.Now()
	valid := func() map[string]any { return p.claims(now, resource) }
	with := func(kv ...any) map[string]any {
		c := valid()
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return c
	}
	alice := identity.Principal{Method: "jwt", Issuer: p.issuer, Subject: "alice", Tenant: "acme", Groups: []string{"eng", "oncall"}, Scopes: []string{"mcp.read", "mcp.write"}}
	rsaPub := rsaKey(t, 0).Public()
	der, err := x509.MarshalPKIXPublicKey(rsaPub)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	hs256 := func(key []byte) func([]byte) []byte {
		return func(in []byte) []byte {
			m := hmac.New(sha256.New, key)
			m.Write(in)
			return m.Sum(nil)
		}
	}
	// tamper replaces the payload of a validly signed token.
	tamper := func(tok string, claims map[string]any) string {
		parts := strings.Split(tok, ".")
		forged := rawJWT(t, map[string]any{"alg": "RS256"}, claims, func([]byte) []byte { return nil })
		return parts[0] + "." + strings.Split(forged, ".")[1] + "." + parts[2]
	}

	tests := []struct {
		name   string
		tok    string
		want   *identity.Principal // nil: refused
		reason string              // logged reason of a refusal
	}{
		{name: "RS256", tok: mint(t, rs, valid(), nil), want: &alice},
		{name: "PS256", tok: mint(t, ps, valid(), nil), want: &alice},
		{name: "ES256", tok: mint(t, ec, valid(), nil), want: &alice},
		{name: "EdDSA", tok: mint(t, ed, valid(), nil), want: &alice},
		{name: "audience among several", tok: mint(t, rs, with("aud", []string{"other", resource}), nil), want: &alice},
		{name: "no kid tries matching keys", tok: mint(t, signingKey{alg: jose.ES256, key: ec.key}, valid(), nil), want: &alice},
		{name: "expired", tok: mint(t, rs, with("exp", now.Add(-31*time.Second).Unix()), nil), reason: "expired"},
		{name: "expired within leeway", tok: mint(t, rs, with("exp", now.Add(-29*time.Second).Unix()), nil), want: &alice},
		{name: "nbf in the future", tok: mint(t, rs, with("nbf", now.Add(2*time.Minute).Unix()), nil), reason: "not valid yet (nbf)"},
		{name: "nbf within leeway", tok: mint(t, rs, with("nbf", now.Add(20*time.Second).Unix()), nil), want: &alice},
		{name: "iat in the future", tok: mint(t, rs, with("iat", now.Add(2*time.Minute).Unix()), nil), reason: "issued in the future (iat)"},
		{name: "missing exp", tok: mint(t, rs, with("exp", nil), nil), reason: "no exp claim"},
		{name: "wrong audience", tok: mint(t, rs, with("aud", "https://other.example.com/mcp"), nil), reason: "wrong audience"},
		{name: "missing audience", tok: mint(t, rs, with("aud", nil), nil), reason: "wrong audience"},
		{name: "wrong issuer", tok: mint(t, rs, with("iss", "https://evil.example.com"), nil), reason: "token matches no issuer or key"},
		{name: "issuer differs by a slash", tok: mint(t, rs, with("iss", p.issuer+"/"), nil), reason: "token matches no issuer or key"},
		{name: "missing subject", tok: mint(t, rs, with("sub", nil), nil), reason: "no sub claim"},
		{name: "tenant not a string", tok: mint(t, rs, with("tid", 7), nil), reason: "tid claim is not a string"},
		{name: "groups as one string, scopes as list", tok: mint(t, rs, with("groups", "eng", "scope", []string{"mcp.read"}), nil),
			want: &identity.Principal{Method: "jwt", Issuer: p.issuer, Subject: "alice", Tenant: "acme", Groups: []string{"eng"}, Scopes: []string{"mcp.read"}}},
		{name: "control character in subject", tok: mint(t, rs, with("sub", "alice\r\nX-Admin: 1"), nil), reason: "claim value holds control characters"},
		{name: "alg none", tok: rawJWT(t, map[string]any{"alg": "none", "kid": "rsa-1"}, valid(), func([]byte) []byte { return nil }), reason: "algorithm not allowed"},
		{name: "alg None", tok: rawJWT(t, map[string]any{"alg": "None"}, valid(), func([]byte) []byte { return nil }), reason: "algorithm not allowed"},
		{name: "HS256 keyed with the RSA public key PEM", tok: rawJWT(t, map[string]any{"alg": "HS256", "kid": "rsa-1"}, valid(), hs256(pubPEM)), reason: "algorithm not allowed"},
		{name: "HS256 keyed with the RSA public key DER", tok: rawJWT(t, map[string]any{"alg": "HS256", "kid": "rsa-1"}, valid(), hs256(der)), reason: "algorithm not allowed"},
		{name: "RS384 not configured", tok: mint(t, newRSA(t, 0, "rsa-1", jose.RS384), valid(), nil), reason: "algorithm not allowed"},
		{name: "signed by another key with the same kid", tok: mint(t, evil, valid(), nil), reason: "bad signature"},
		{name: "PS256 with the kid of an RS256-only key", tok: mint(t, newRSA(t, 0, "rsa-1", jose.PS256), valid(), nil), reason: "no key for kid and alg"},
		{name: "ES256 alg with the kid of an RSA key", tok: mint(t, signingKey{kid: "rsa-1", alg: jose.ES256, key: evilEC.key}, valid(), nil), reason: "no key for kid and alg"},
		{name: "payload swapped after signing", tok: tamper(mint(t, rs, valid(), nil), with("sub", "admin")), reason: "bad signature"},
		{name: "embedded jwk", tok: mint(t, signingKey{alg: jose.RS256, key: evil.key}, valid(), map[string]any{"jwk": evil.public()}), reason: "header jwk is not accepted"},
		{name: "embedded jwk with honest kid", tok: mint(t, evil, valid(), map[string]any{"jwk": evil.public()}), reason: "header jwk is not accepted"},
		{name: "jku to another host", tok: mint(t, evilEC, valid(), map[string]any{"jku": att.srv.URL + "/jwks"}), reason: "header jku is not accepted"},
		{name: "x5u to another host", tok: mint(t, evilEC, valid(), map[string]any{"x5u": att.srv.URL + "/cert.pem"}), reason: "header x5u is not accepted"},
		{name: "x5c header", tok: mint(t, rs, valid(), map[string]any{"x5c": []string{"MIIB"}}), reason: "header x5c is not accepted"},
		{name: "b64 header", tok: mint(t, rs, valid(), map[string]any{"b64": true}), reason: "header b64 is not accepted"},
		{name: "crit header", tok: mint(t, rs, valid(), map[string]any{"crit": []string{"exp"}}), reason: "header crit is not accepted"},
		{name: "kid path traversal", tok: mint(t, signingKey{kid: "../../etc/passwd", alg: jose.RS256, key: rs.key}, valid(), nil), reason: "no key for kid and alg"},
		{name: "kid URL", tok: mint(t, signingKey{kid: att.srv.URL + "/jwks", alg: jose.ES256, key: evilEC.key}, valid(), nil), reason: "no key for kid and alg"},
		{name: "JWE-shaped", tok: "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", reason: "token matches no issuer or key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.logs.String())
			got, ok := e.auth(t, bearerReq(tt.tok))
			logs := e.logs.String()[before:]
			if tt.want != nil {
				if !ok {
					t.Fatalf("refused a valid token; log:\n%s", logs)
				}
				if diff := cmp.Diff(*tt.want, got); diff != "" {
					t.Errorf("principal (-want +got):\n%s", diff)
				}
				return
			}
			if ok {
				t.Fatalf("accepted: %+v", got)
			}
			if !strings.Contains(logs, "reason="+tt.reason+" ") && !strings.Contains(logs, "reason="+strconv.Quote(tt.reason)) {
				t.Errorf("log does not give reason %q:\n%s", tt.reason, logs)
			}
			if sig := tt.tok[strings.LastIndex(tt.tok, ".")+1:]; len(sig) > 8 && strings.Contains(logs, sig) {
				t.Errorf("token logged:\n%s", logs)
			}
		})
	}

	// Keys came from the configured JWKS URL only: no kid, jku or x5u
	// made the gateway fetch anything else, and the attacker's host heard
	// nothing.
	for _, path := range p.allPaths() {
		if path != "/jwks" {
			t.Errorf("identity provider was asked for %q", path)
		}
	}
	if n := att.hits.Load(); n != 0 {
		t.Errorf("attacker's host received %d requests", n)
	}
}

// TestJWTQueryToken checks that a token in the query string is refused
// even alongside a valid header, and is not logged.
func TestJWTQueryToken(t *testing.T) {
	rs := newRSA(t, 0, "rsa-1", jose.RS256)
	p := newIdP(t, "", rs)
	e := newEnv(t, jwtConfig(p.issuer, p.srv.URL+"/jwks", ""))
	tok := mint(t, rs, p.claims(e.clk.Now(), resource), nil)
	for _, target := range []string{
		"/mcp?access_token=" + tok,
		"/mcp?x=1&access_token=" + tok,
		"/mcp?access%5Ftoken=" + tok,
		"/mcp?x=1;access_token=" + tok,
		"/mcp?ACCESS_TOKEN=" + tok,
	} {
		for _, withHeader := range []bool{false, true} {
			r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1"+target, nil)
			if withHeader {
				r.Header.Set("Authorization", "Bearer "+tok)
			}
			if p, ok := e.auth(t, r); ok {
				t.Errorf("%s (header %v): accepted as %v", target, withHeader, p)
			}
			if !HasCredentials(r) {
				t.Errorf("%s: HasCredentials = false", target)
			}
		}
	}
	if logs := e.logs.String(); strings.Contains(logs, tok[strings.LastIndex(tok, ".")+1:]) || !strings.Contains(logs, "token in query string") {
		t.Errorf("log leaks the token or lacks the reason:\n%s", logs)
	}
	if n := p.count("/jwks"); n != 0 {
		t.Errorf("query tokens caused %d JWKS fetches", n)
	}
}

func TestAuthorizationHeaderForms(t *testing.T) {
	rs := newRSA(t, 0, "rsa-1", jose.RS256)
	p := newIdP(t, "", rs)
	const key = "k1-random-test-key-aaaaaaaaaaaaaaaaaaaaaaaa"
	e := newEnv(t, jwtConfig(p.issuer, p.srv.URL+"/jwks", `
  api_keys:
    - {name: ci-bot, sha256: 840bd5f539f1d4fc7f18b521fb2b66e14c4ace79ee3093b654b48b721e6abb11}
`))
	tok := mint(t, rs, p.claims(e.clk.Now(), resource), nil)
	tests := []struct {
		name    string
		headers map[string][]string
		ok      bool
	}{
		{"Bearer", map[string][]string{"Authorization": {"Bearer " + tok}}, true},
		{"lower-case scheme", map[string][]string{"Authorization": {"bearer " + tok}}, true},
		{"two spaces", map[string][]string{"Authorization": {"Bearer  " + tok}}, true},
		{"none", nil, false},
		{"Basic", map[string][]string{"Authorization": {"Basic " + tok}}, false},
		{"DPoP", map[string][]string{"Authorization": {"DPoP " + tok}}, false},
		{"scheme only", map[string][]string{"Authorization": {"Bearer"}}, false},
		{"trailing garbage", map[string][]string{"Authorization": {"Bearer " + tok + " x"}}, false},
		{"comma list", map[string][]string{"Authorization": {"Bearer " + tok + ", Bearer " + tok}}, false},
		{"two Authorization headers", map[string][]string{"Authorization": {"Bearer " + tok, "Bearer " + tok}}, false},
		{"Authorization and X-Api-Key", map[string][]string{"Authorization": {"Bearer " + tok}, "X-Api-Key": {key}}, false},
		{"oversized", map[string][]string{"Authorization": {"Bearer " + strings.Repeat("a", maxTokenBytes+1)}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/mcp", nil)
			maps.Copy(r.Header, tt.headers)
			if _, ok := e.auth(t, r); ok != tt.ok {
				t.Errorf("ok = %v, want %v; log:\n%s", ok, tt.ok, e.logs.String())
			}
			if got := HasCredentials(r); got != (tt.headers != nil) {
				t.Errorf("HasCredentials = %v", got)
			}
		})
	}
}

// TestJWTVerifiedCache checks the cache of verified JWTs: a cached
// verdict ends at exp (plus leeway), and callers get their own copy.
func TestJWTVerifiedCache(t *testing.T) {
	rs := newRSA(t, 0, "rsa-1", jose.RS256)
	p := newIdP(t, "", rs)
	e := newEnv(t, jwtConfig(p.issuer, p.srv.URL+"/jwks", ""))
	c := p.claims(e.clk.Now(), resource)
	c["exp"] = e.clk.Now().Add(time.Minute).Unix()
	tok := mint(t, rs, c, nil)
	first, ok := e.auth(t, bearerReq(tok))
	if !ok {
		t.Fatal("refused")
	}
	first.Groups[0] = "admin"
	e.clk.Advance(time.Minute + 29*time.Second) // within leeway
	if again, ok := e.auth(t, bearerReq(tok)); !ok || again.Groups[0] != "eng" {
		t.Fatalf("cached: %v, %v", again, ok)
	}
	e.clk.Advance(time.Second)
	if _, ok := e.auth(t, bearerReq(tok)); ok {
		t.Fatal("accepted past exp plus leeway")
	}
	if !strings.Contains(e.logs.String(), "reason=expired") {
		t.Errorf("not refused as expired:\n%s", e.logs.String())
	}
}
