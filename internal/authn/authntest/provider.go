// Package authntest runs a real OAuth 2.1 / OpenID Connect authorization server on loopback for tests.
//
// The protocol endpoints (discovery, JWKS, token, introspection, revocation) are served by
// github.com/zitadel/oidc/v3/pkg/op, a certified OpenID Provider library; this package supplies only
// a minimal in-memory storage behind it: client-credentials clients, issued access tokens (JWT or
// opaque), and one RSA signing key per provider. Every Provider listens on 127.0.0.1 only and is
// stopped by t.Cleanup, so each test can start its own.
//
// Import this package from tests only.
package authntest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Paths served by the provider (relative to Issuer).
const (
	DiscoveryPath     = "/.well-known/openid-configuration"
	JWKSPath          = "/keys"
	TokenPath         = "/oauth/token"
	IntrospectionPath = "/oauth/introspect"
	RevocationPath    = "/revoke"
)

// Options configure a Provider.
type Options struct {
	// AccessTokenLifetime is how long issued access tokens are valid. Default 5m.
	AccessTokenLifetime time.Duration
}

// ClientOptions describe a client-credentials client and the tokens it is issued.
type ClientOptions struct {
	// Audience is the aud of issued tokens (RFC 8707 resource URIs). Empty means the client ID.
	Audience []string
	// Scopes the client may request. A token request without scope is granted all of them; a request
	// for any other scope fails with invalid_scope.
	Scopes []string
	// Opaque makes access tokens opaque (introspection only) instead of signed JWTs.
	Opaque bool
	// Subject is the sub of issued tokens. Empty means the client ID.
	Subject string
	// Tenant, when set, is emitted as the "tid" claim.
	Tenant string
	// Groups, when set, are emitted as the "groups" claim.
	Groups []string
}

// Provider is a running authorization server.
type Provider struct {
	// Issuer is exactly http://127.0.0.1:PORT (no trailing slash).
	Issuer string

	store      *storage
	introID    string
	introSec   string
	httpClient *http.Client

	mu       sync.Mutex
	requests map[string]int
}

// Start runs a provider on 127.0.0.1:0 until the test ends.
func Start(t testing.TB, opts Options) *Provider {
	t.Helper()
	if opts.AccessTokenLifetime <= 0 {
		opts.AccessTokenLifetime = 5 * time.Minute
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("authntest: listen: %v", err)
	}
	p := &Provider{
		Issuer:     "http://" + ln.Addr().String(),
		requests:   make(map[string]int),
		httpClient: &http.Client{Timeout: 10 * time.Second},
	}
	p.store = newStorage(nextKey(), opts.AccessTokenLifetime)
	p.introID, p.introSec = "introspector", randomString(24)
	p.store.addIntrospector(p.introID, p.introSec)

	// Config.CryptoKey stays unused: WithCrypto below replaces the token crypto.
	config := &op.Config{AuthMethodPost: true}
	oidcProvider, err := op.NewProvider(config, p.store, op.StaticIssuer(p.Issuer),
		op.WithAllowInsecure(),        // http issuer on loopback
		op.WithCrypto(p.store.opaque), // opaque access tokens are random handles, not encrypted IDs
	)
	if err != nil {
		ln.Close()
		t.Fatalf("authntest: op.NewProvider: %v", err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.mu.Lock()
			p.requests[r.URL.Path]++
			p.mu.Unlock()
			oidcProvider.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
		p.httpClient.CloseIdleConnections()
	})
	return p
}

// AddClient registers a confidential client allowed the client_credentials grant
// (client_secret_basic or client_secret_post).
func (p *Provider) AddClient(id, secret string, opts ClientOptions) {
	p.store.addClient(&client{id: id, secret: secret, opts: opts})
}

// IntrospectionClient returns credentials allowed to call the introspection endpoint (HTTP Basic).
// It cannot obtain tokens itself.
func (p *Provider) IntrospectionClient() (id, secret string) { return p.introID, p.introSec }

// DiscoveryURL returns the OpenID Provider configuration URL.
func (p *Provider) DiscoveryURL() string { return p.Issuer + DiscoveryPath }

// JWKSURL returns the JWKS URL (the jwks_uri of the discovery document).
func (p *Provider) JWKSURL() string { return p.Issuer + JWKSPath }

// TokenURL returns the token endpoint.
func (p *Provider) TokenURL() string { return p.Issuer + TokenPath }

// IntrospectionURL returns the RFC 7662 introspection endpoint.
func (p *Provider) IntrospectionURL() string { return p.Issuer + IntrospectionPath }

// RevocationURL returns the RFC 7009 revocation endpoint.
func (p *Provider) RevocationURL() string { return p.Issuer + RevocationPath }

// KeyID returns the kid of the provider's signing key.
func (p *Provider) KeyID() string { return p.store.key.id }

// Requests reports how many requests have reached path (e.g. JWKSPath) so far.
func (p *Provider) Requests(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests[path]
}

// Token obtains an access token with the client_credentials grant over HTTP. With no scopes, the
// client's allowed scopes are granted. It fails the test on any error, so call it from the test's
// goroutine.
func (p *Provider) Token(t testing.TB, clientID, secret string, scopes ...string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	body := p.post(t, p.TokenURL(), clientID, secret, form)
	var resp struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal(body, &resp); err != nil || resp.AccessToken == "" {
		t.Fatalf("authntest: token response %s: %v", body, err)
	}
	return resp.AccessToken
}

// Revoke revokes an access token through the RFC 7009 revocation endpoint, authenticating as the
// client the token was issued to. Afterwards introspection answers active=false.
func (p *Provider) Revoke(t testing.TB, token string) {
	t.Helper()
	c, ok := p.store.clientOfToken(token)
	if !ok {
		t.Fatalf("authntest: revoke: token was not issued by this provider")
	}
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	p.post(t, p.RevocationURL(), c.id, c.secret, form)
}

// SignJWT signs arbitrary claims with the provider's own RS256 key and kid, adding any extra
// protected headers (e.g. "jku"). It is for hostile-token tests that need a genuine signature on
// claims the token endpoint would never issue (nbf in the future, foreign headers).
func (p *Provider) SignJWT(t testing.TB, claims map[string]any, headers map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatalf("authntest: marshal claims: %v", err)
	}
	so := (&jose.SignerOptions{}).WithType("JWT")
	for k, v := range headers {
		so = so.WithHeader(jose.HeaderKey(k), v)
	}
	signer, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.RS256,
		Key:       jose.JSONWebKey{Key: p.store.key.priv, KeyID: p.store.key.id},
	}, so)
	if err != nil {
		t.Fatalf("authntest: signer: %v", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatalf("authntest: sign: %v", err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatalf("authntest: serialize: %v", err)
	}
	return s
}

func (p *Provider) post(t testing.TB, endpoint, id, secret string, form url.Values) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("authntest: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// RFC 6749 §2.3.1: credentials are form-encoded before Basic encoding.
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := p.httpClient.Do(req)
	if err != nil {
		t.Fatalf("authntest: POST %s: %v", endpoint, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("authntest: POST %s: %v", endpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("authntest: POST %s: %s: %s", endpoint, resp.Status, body)
	}
	return body
}

// signingKey is an RS256 key; it serves as op.SigningKey (private) and, via publicKey, as op.Key.
type signingKey struct {
	id   string
	priv *rsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.priv }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct{ k *signingKey }

func (k publicKey) ID() string                         { return k.k.id }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.k.priv.PublicKey }

// RSA-2048 generation takes 10–170 ms here; a background generator keeps one key ready so that
// providers after the first start without waiting. Every provider still gets its own key.
var (
	keyOnce sync.Once
	keyCh   = make(chan *signingKey, 1)
)

func nextKey() *signingKey {
	keyOnce.Do(func() {
		go func() {
			for {
				keyCh <- generateKey()
			}
		}()
	})
	return <-keyCh
}

func generateKey() *signingKey {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic("authntest: rsa.GenerateKey: " + err.Error())
	}
	tp, err := (&jose.JSONWebKey{Key: &priv.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		panic("authntest: thumbprint: " + err.Error())
	}
	// kid = RFC 7638 thumbprint, so distinct keys never share a kid.
	return &signingKey{id: base64.RawURLEncoding.EncodeToString(tp), priv: priv}
}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

var errNotSupported = errors.New("authntest: only the client_credentials grant is supported")
