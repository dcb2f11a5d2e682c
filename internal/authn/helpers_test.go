package authn

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/identity"
)

// Interface guard: the gateway's Authenticator seam.
var _ interface {
	Authenticate(*http.Request) (identity.Principal, bool, error)
} = (*Authenticator)(nil)

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// logBuffer collects log output from any goroutine.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// signingKey is a private key with its kid and algorithm.
type signingKey struct {
	kid string
	alg jose.SignatureAlgorithm
	key crypto.Signer
}

func (k signingKey) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.key.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

// RSA key generation is slow; the tests share a few keys.
var (
	rsaOnce sync.Once
	rsaKeys [3]*rsa.PrivateKey
)

func rsaKey(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	rsaOnce.Do(func() {
		for j := range rsaKeys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys[j] = k
		}
	})
	return rsaKeys[i]
}

func newRSA(t testing.TB, i int, kid string, alg jose.SignatureAlgorithm) signingKey {
	return signingKey{kid: kid, alg: alg, key: rsaKey(t, i)}
}

func newEC(t testing.TB, kid string) signingKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, alg: jose.ES256, key: k}
}

func newEd(t testing.TB, kid string) signingKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, alg: jose.EdDSA, key: k}
}

// mint signs claims with k, adding extra protected headers. An empty kid
// leaves the kid header out.
func mint(t testing.TB, k signingKey, claims map[string]any, headers map[string]any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	opts.WithType("JWT")
	for name, v := range headers {
		opts.WithHeader(jose.HeaderKey(name), v)
	}
	sk := jose.SigningKey{Algorithm: k.alg, Key: k.key}
	if k.kid != "" {
		sk.Key = jose.JSONWebKey{Key: k.key, KeyID: k.kid}
	}
	signer, err := jose.NewSigner(sk, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// rawJWT assembles a compact JWS from a header, claims and signature as
// given, for tokens no honest signer makes.
func rawJWT(t testing.TB, header, claims map[string]any, sign func(input []byte) []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := b64(h) + "." + b64(c)
	return input + "." + b64(sign([]byte(input)))
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// idp is an identity provider over httptest on 127.0.0.1: discovery
// documents and a JWKS whose keys a test can change. It records every
// request path.
type idp struct {
	srv    *httptest.Server
	issuer string

	mu       sync.Mutex // guards the fields below
	keys     []jose.JSONWebKey
	paths    []string
	fail     bool          // answer 500 to JWKS requests
	metaIss  string        // issuer in the metadata; the real one when empty
	oidcMeta bool          // serve /.well-known/openid-configuration
	gate     chan struct{} // when set, JWKS answers wait for it to close
}

// newIdP starts an identity provider whose issuer is its URL plus path.
func newIdP(t testing.TB, path string, keys ...signingKey) *idp {
	t.Helper()
	p := &idp{oidcMeta: true}
	for _, k := range keys {
		p.keys = append(p.keys, k.public())
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	p.issuer = p.srv.URL + path
	return p
}

func (p *idp) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.paths = append(p.paths, r.URL.Path)
	keys := jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey(nil), p.keys...)}
	fail, metaIss, oidc, gate := p.fail, p.metaIss, p.oidcMeta, p.gate
	p.mu.Unlock()
	if metaIss == "" {
		metaIss = p.issuer
	}
	u, _ := strings.CutPrefix(p.issuer, p.srv.URL)
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case u + "/.well-known/openid-configuration":
		if !oidc {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"issuer": metaIss, "jwks_uri": p.srv.URL + "/jwks"})
	case "/.well-known/oauth-authorization-server" + u:
		json.NewEncoder(w).Encode(map[string]string{"issuer": metaIss, "jwks_uri": p.srv.URL + "/jwks"})
	case "/jwks":
		if gate != nil {
			<-gate
		}
		if fail {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(keys)
	default:
		http.NotFound(w, r)
	}
}

func (p *idp) setKeys(keys ...signingKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = nil
	for _, k := range keys {
		p.keys = append(p.keys, k.public())
	}
}

func (p *idp) setFail(fail bool) {
	p.mu.Lock()
	p.fail = fail
	p.mu.Unlock()
}

// count returns how many requests asked for path.
func (p *idp) count(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, q := range p.paths {
		if q == path {
			n++
		}
	}
	return n
}

func (p *idp) allPaths() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.paths...)
}

// claims returns valid claims for the issuer at time now.
func (p *idp) claims(now time.Time, aud string) map[string]any {
	return map[string]any{
		"iss":    p.issuer,
		"sub":    "alice",
		"aud":    aud,
		"iat":    now.Unix(),
		"nbf":    now.Unix(),
		"exp":    now.Add(5 * time.Minute).Unix(),
		"tid":    "acme",
		"groups": []string{"eng", "oncall"},
		"scope":  "mcp.read mcp.write",
	}
}

// parseAuth parses an auth section through the real config loader and
// resolves its secrets.
func parseAuth(t testing.TB, yaml string) config.Auth {
	t.Helper()
	c, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, yaml)
	}
	if err := c.ResolveSecrets(); err != nil {
		t.Fatal(err)
	}
	return c.Auth
}

// env is an Authenticator under test with its clock and logs.
type env struct {
	a    *Authenticator
	clk  *clock
	logs *logBuffer
}

func newEnv(t testing.TB, yaml string) *env {
	t.Helper()
	e := &env{clk: newClock(), logs: &logBuffer{}}
	a, err := New(parseAuth(t, yaml), Options{Logger: e.logs.logger(), Now: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.a = a
	return e
}

// bearerReq returns a request carrying tok as a Bearer token.
func bearerReq(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/mcp", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

func (e *env) auth(t testing.TB, r *http.Request) (identity.Principal, bool) {
	t.Helper()
	p, ok, err := e.a.Authenticate(r)
	if err != nil {
		t.Fatalf("Authenticate: unexpected error %v", err)
	}
	return p, ok
}

const resource = "https://mcp.example.com/mcp"

// jwtConfig is an auth section accepting one issuer's JWTs.
func jwtConfig(issuer, jwksURL string, extra string) string {
	s := fmt.Sprintf(`
auth:
  resource: %s
  jwt:
    - issuer: %s
      audiences: [%s]
      algorithms: [RS256, PS256, ES256, EdDSA]
      claims: {subject: sub, tenant: tid, groups: groups, scopes: scope}
`, resource, issuer, resource)
	if jwksURL != "" {
		s += "      jwks_url: " + jwksURL + "\n"
	}
	return s + extra
}
