package authntest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const resource = "https://mcp.example.test/mcp"

func getJSON(t *testing.T, u string, into any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", u, resp.Status, body)
	}
	if err := json.Unmarshal(body, into); err != nil {
		t.Fatalf("GET %s: %v: %s", u, err, body)
	}
}

// postForm sends form to endpoint with HTTP Basic credentials and returns status and body.
func postForm(t *testing.T, endpoint, id, secret string, form url.Values) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func introspect(t *testing.T, p *Provider, token string) map[string]any {
	t.Helper()
	id, secret := p.IntrospectionClient()
	status, body := postForm(t, p.IntrospectionURL(), id, secret, url.Values{"token": {token}})
	if status != http.StatusOK {
		t.Fatalf("introspect: %d %s", status, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("introspect: %v: %s", err, body)
	}
	return m
}

// verifyJWT checks the token's signature against the provider's JWKS (fetched over HTTP) and
// returns its header and claims.
func verifyJWT(t *testing.T, p *Provider, token string) (jose.Header, map[string]any) {
	t.Helper()
	var jwks jose.JSONWebKeySet
	getJSON(t, p.JWKSURL(), &jwks)
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("parse JWT: %v", err)
	}
	hdr := tok.Headers[0]
	keys := jwks.Key(hdr.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q: %d keys in JWKS %+v", hdr.KeyID, len(keys), jwks)
	}
	var claims map[string]any
	if err := tok.Claims(keys[0].Public(), &claims); err != nil {
		t.Fatalf("signature does not verify against JWKS: %v", err)
	}
	return hdr, claims
}

func TestDiscovery(t *testing.T) {
	p := Start(t, Options{})
	if !strings.HasPrefix(p.Issuer, "http://127.0.0.1:") || strings.HasSuffix(p.Issuer, "/") {
		t.Fatalf("issuer %q is not http://127.0.0.1:PORT", p.Issuer)
	}
	var d map[string]any
	getJSON(t, p.Issuer+"/.well-known/openid-configuration", &d)
	for field, want := range map[string]string{
		"issuer":                 p.Issuer,
		"jwks_uri":               p.JWKSURL(),
		"token_endpoint":         p.TokenURL(),
		"introspection_endpoint": p.IntrospectionURL(),
		"revocation_endpoint":    p.RevocationURL(),
	} {
		if d[field] != want {
			t.Errorf("%s = %v, want %s", field, d[field], want)
		}
	}
	if grants, _ := d["grant_types_supported"].([]any); !slices.Contains(grants, any("client_credentials")) {
		t.Errorf("grant_types_supported = %v, want client_credentials", grants)
	}
	var jwks jose.JSONWebKeySet
	getJSON(t, p.JWKSURL(), &jwks)
	if len(jwks.Keys) != 1 {
		t.Fatalf("JWKS has %d keys", len(jwks.Keys))
	}
	k := jwks.Keys[0]
	if k.KeyID != p.KeyID() || k.KeyID == "" || k.Algorithm != "RS256" || k.Use != "sig" || !k.IsPublic() {
		t.Errorf("JWK kid=%q alg=%q use=%q public=%v", k.KeyID, k.Algorithm, k.Use, k.IsPublic())
	}
	if !k.Valid() {
		t.Errorf("JWK not valid")
	}
}

func TestJWTAccessToken(t *testing.T) {
	p := Start(t, Options{})
	p.AddClient("agent", "s3cret:with/odd+chars", ClientOptions{
		Audience: []string{resource},
		Scopes:   []string{"tools:read", "tools:write"},
		Subject:  "spiffe://example.test/agent",
		Tenant:   "t-42",
		Groups:   []string{"ops", "dev"},
	})
	before := time.Now().Add(-time.Second)
	token := p.Token(t, "agent", "s3cret:with/odd+chars", "tools:read")

	hdr, claims := verifyJWT(t, p, token)
	if hdr.KeyID != p.KeyID() || hdr.Algorithm != "RS256" {
		t.Errorf("header kid=%q alg=%q", hdr.KeyID, hdr.Algorithm)
	}
	want := map[string]any{
		"iss":       p.Issuer,
		"sub":       "spiffe://example.test/agent",
		"aud":       []any{resource},
		"scope":     "tools:read",
		"tid":       "t-42",
		"groups":    []any{"ops", "dev"},
		"client_id": "agent",
	}
	for k, v := range want {
		got, _ := json.Marshal(claims[k])
		exp, _ := json.Marshal(v)
		if string(got) != string(exp) {
			t.Errorf("claim %s = %s, want %s", k, got, exp)
		}
	}
	iat, _ := claims["iat"].(float64)
	exp, _ := claims["exp"].(float64)
	if time.Unix(int64(iat), 0).Before(before) || exp-iat < 290 || exp-iat > 301 {
		t.Errorf("iat=%v exp=%v: want exp = iat + 5m", iat, exp)
	}

	// Standard validation through go-jose's jwt package.
	var std jwt.Claims
	tok, _ := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	var jwks jose.JSONWebKeySet
	getJSON(t, p.JWKSURL(), &jwks)
	if err := tok.Claims(jwks.Keys[0].Public(), &std); err != nil {
		t.Fatal(err)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: p.Issuer, AnyAudience: []string{resource}, Time: time.Now()}, 0); err != nil {
		t.Errorf("validate: %v", err)
	}

	// A JWT access token is introspectable too, with the same claims.
	in := introspect(t, p, token)
	if in["active"] != true || in["sub"] != "spiffe://example.test/agent" || in["tid"] != "t-42" || in["scope"] != "tools:read" {
		t.Errorf("introspection = %v", in)
	}

	// No scope requested: all allowed scopes are granted.
	_, claims = verifyJWT(t, p, p.Token(t, "agent", "s3cret:with/odd+chars"))
	if claims["scope"] != "tools:read tools:write" {
		t.Errorf("default scope = %v", claims["scope"])
	}
}

func TestTokenEndpointRefusals(t *testing.T) {
	p := Start(t, Options{})
	p.AddClient("agent", "secret", ClientOptions{Scopes: []string{"a"}})
	cc := url.Values{"grant_type": {"client_credentials"}}

	if status, body := postForm(t, p.TokenURL(), "agent", "wrong", cc); status != http.StatusUnauthorized || !strings.Contains(string(body), "invalid_client") {
		t.Errorf("wrong secret: %d %s", status, body)
	}
	scoped := url.Values{"grant_type": {"client_credentials"}, "scope": {"a b"}}
	if status, body := postForm(t, p.TokenURL(), "agent", "secret", scoped); status != http.StatusBadRequest || !strings.Contains(string(body), "invalid_scope") {
		t.Errorf("disallowed scope: %d %s", status, body)
	}
	id, secret := p.IntrospectionClient()
	if status, body := postForm(t, p.TokenURL(), id, secret, cc); status == http.StatusOK {
		t.Errorf("introspection client obtained a token: %s", body)
	}
	// Audience defaults to the client ID when none is configured.
	_, claims := verifyJWT(t, p, p.Token(t, "agent", "secret"))
	if aud, _ := json.Marshal(claims["aud"]); string(aud) != `["agent"]` {
		t.Errorf("aud = %s", aud)
	}
}

func TestOpaqueTokenIntrospectionAndRevoke(t *testing.T) {
	p := Start(t, Options{})
	p.AddClient("svc", "secret", ClientOptions{
		Audience: []string{resource},
		Scopes:   []string{"tools:read"},
		Opaque:   true,
		Tenant:   "t-1",
		Groups:   []string{"ci"},
	})
	token := p.Token(t, "svc", "secret")
	if strings.Count(token, ".") == 2 {
		t.Fatalf("opaque token looks like a JWT: %s", token)
	}
	if _, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256}); err == nil {
		t.Fatalf("opaque token parses as a JWS")
	}

	in := introspect(t, p, token)
	if in["active"] != true {
		t.Fatalf("introspection = %v", in)
	}
	for k, v := range map[string]any{"scope": "tools:read", "client_id": "svc", "sub": "svc", "tid": "t-1", "iss": p.Issuer, "token_type": "Bearer"} {
		if in[k] != v {
			t.Errorf("%s = %v, want %v", k, in[k], v)
		}
	}
	if aud, _ := json.Marshal(in["aud"]); string(aud) != `["`+resource+`"]` {
		t.Errorf("aud = %s", aud)
	}
	if g, _ := json.Marshal(in["groups"]); string(g) != `["ci"]` {
		t.Errorf("groups = %s", g)
	}
	if exp, _ := in["exp"].(float64); time.Until(time.Unix(int64(exp), 0)) < 4*time.Minute {
		t.Errorf("exp = %v", in["exp"])
	}

	// Only the introspection client may introspect; another client learns nothing.
	status, body := postForm(t, p.IntrospectionURL(), "svc", "secret", url.Values{"token": {token}})
	if status != http.StatusOK || strings.TrimSpace(string(body)) != `{"active":false}` {
		t.Errorf("introspection by a plain client: %d %s", status, body)
	}
	if status, _ := postForm(t, p.IntrospectionURL(), "introspector", "wrong", url.Values{"token": {token}}); status != http.StatusUnauthorized {
		t.Errorf("introspection with a wrong secret: %d", status)
	}
	// RFC 7009: another client cannot revoke svc's token.
	p.AddClient("other", "secret", ClientOptions{})
	if status, body := postForm(t, p.RevocationURL(), "other", "secret", url.Values{"token": {token}}); status == http.StatusOK {
		t.Errorf("foreign revocation accepted: %s", body)
	}
	if introspect(t, p, token)["active"] != true {
		t.Fatalf("token inactive after a refused revocation")
	}

	p.Revoke(t, token)
	if in := introspect(t, p, token); len(in) != 1 || in["active"] != false {
		t.Errorf("after revoke: %v, want only active=false", in)
	}
	if in := introspect(t, p, "not-a-token"); in["active"] != false {
		t.Errorf("garbage token: %v", in)
	}
}

func TestJWTRevoke(t *testing.T) {
	p := Start(t, Options{})
	p.AddClient("agent", "secret", ClientOptions{Audience: []string{resource}})
	token := p.Token(t, "agent", "secret")
	if introspect(t, p, token)["active"] != true {
		t.Fatal("fresh JWT inactive")
	}
	p.Revoke(t, token)
	if in := introspect(t, p, token); in["active"] != false {
		t.Errorf("revoked JWT: %v", in)
	}
}

func TestExpiredTokens(t *testing.T) {
	p := Start(t, Options{AccessTokenLifetime: time.Second})
	p.AddClient("jwt", "secret", ClientOptions{Audience: []string{resource}})
	p.AddClient("opaque", "secret", ClientOptions{Audience: []string{resource}, Opaque: true})
	jwtToken := p.Token(t, "jwt", "secret")
	opaqueToken := p.Token(t, "opaque", "secret")
	_, claims := verifyJWT(t, p, jwtToken) // fetch the JWKS while it is still fresh

	time.Sleep(2100 * time.Millisecond)

	for name, tok := range map[string]string{"jwt": jwtToken, "opaque": opaqueToken} {
		if in := introspect(t, p, tok); len(in) != 1 || in["active"] != false {
			t.Errorf("%s: expired token introspects as %v", name, in)
		}
	}
	var std jwt.Claims
	raw, _ := json.Marshal(claims)
	_ = json.Unmarshal(raw, &std)
	err := std.ValidateWithLeeway(jwt.Expected{Issuer: p.Issuer, AnyAudience: []string{resource}, Time: time.Now()}, 0)
	if err != jwt.ErrExpired {
		t.Errorf("expired JWT validates with %v, want ErrExpired", err)
	}
}

func TestRequestCounting(t *testing.T) {
	p := Start(t, Options{})
	if n := p.Requests(JWKSPath); n != 0 {
		t.Fatalf("JWKS requests before any fetch: %d", n)
	}
	var jwks jose.JSONWebKeySet
	getJSON(t, p.JWKSURL(), &jwks)
	getJSON(t, p.JWKSURL(), &jwks)
	p.AddClient("c", "s", ClientOptions{})
	p.Token(t, "c", "s")
	if n := p.Requests(JWKSPath); n != 2 {
		t.Errorf("JWKS requests = %d, want 2", n)
	}
	if n := p.Requests(TokenPath); n != 1 {
		t.Errorf("token requests = %d, want 1", n)
	}
	if n := p.Requests(DiscoveryPath); n != 0 {
		t.Errorf("discovery requests = %d, want 0", n)
	}
}

func TestSignJWT(t *testing.T) {
	p := Start(t, Options{})
	nbf := time.Now().Add(time.Hour).Unix()
	token := p.SignJWT(t, map[string]any{"iss": p.Issuer, "sub": "x", "aud": resource, "nbf": nbf, "exp": nbf + 60},
		map[string]any{"jku": "http://198.51.100.7/keys"})
	hdr, claims := verifyJWT(t, p, token)
	if hdr.ExtraHeaders["jku"] != "http://198.51.100.7/keys" || claims["nbf"] != float64(nbf) {
		t.Errorf("header %+v claims %v", hdr, claims)
	}
}

func TestProvidersAreIndependent(t *testing.T) {
	a, b := Start(t, Options{}), Start(t, Options{})
	if a.Issuer == b.Issuer || a.KeyID() == b.KeyID() {
		t.Fatalf("issuers %s %s, kids %s %s", a.Issuer, b.Issuer, a.KeyID(), b.KeyID())
	}
	b.AddClient("c", "s", ClientOptions{})
	token := b.Token(t, "c", "s")
	if in := introspect(t, a, token); in["active"] != false {
		t.Errorf("provider a accepts b's token: %v", in)
	}
}

func TestStartTime(t *testing.T) {
	Start(t, Options{}) // the first Start in a process waits for one key generation
	for deadline := time.Now().Add(10 * time.Second); len(keyCh) == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // let the background generator have the next key ready
	}
	begin := time.Now()
	Start(t, Options{})
	d := time.Since(begin)
	t.Logf("Start took %v", d)
	if d > 100*time.Millisecond {
		t.Errorf("Start took %v, want < 100ms with a pre-generated key", d)
	}
}
