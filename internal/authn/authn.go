// Package authn turns request credentials into a Principal.
//
// It accepts, in this order of precedence:
//
//   - an Authorization: Bearer token. A JWT-shaped token whose unverified
//     "iss" names a configured issuer is verified against that issuer's
//     JWKS and nothing else; any other token is compared with the API keys
//     and then, if configured, sent to the introspection endpoint (RFC 7662);
//   - an X-Api-Key header;
//   - a client certificate that the TLS handshake verified (see
//     [Authenticator.TLSConfig]), when no header credential is present.
//
// A request carrying more than one header credential, or an access_token
// query parameter (RFC 6750 section 2.3, which leaks tokens into logs), is
// refused. A refused credential is logged at debug level with a short reason
// and the issuer or key name, never the credential itself.
//
// Verification material and outcomes are cached: JWKS per issuer
// (refreshed when older than a maximum age, and on an unknown kid at most
// once per 10 seconds with one fetch in flight); verified JWTs until their
// exp or the next JWKS refresh; introspection results by cache_ttl, never
// past exp. Caches are keyed by the SHA-256 of the token and bounded. No
// request derives a key or fetches a JWKS that another request already
// fetched.
package authn

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/identity"
)

// ErrUnavailable wraps the technical failures of Authenticate: a JWKS,
// discovery document or introspection endpoint that cannot be reached or
// answers wrongly. The gateway answers such a request with 503, not 401.
var ErrUnavailable = errors.New("authn: verifier unavailable")

// Options are the dependencies of an Authenticator. The zero value means
// defaults.
type Options struct {
	// Logger receives refusals at debug level and verifier failures at
	// warn level; nil discards them.
	Logger *slog.Logger
	// HTTPClient fetches discovery documents and JWKS and calls the
	// introspection endpoint. The default has timeouts and follows
	// redirects only within the same origin.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// JWKSMaxAge is how long a fetched JWKS is used before it is
	// refreshed in the background; 0 means 10 minutes.
	JWKSMaxAge time.Duration
}

const (
	defaultJWKSMaxAge = 10 * time.Minute
	// minRefreshInterval bounds JWKS fetches per issuer, so that tokens
	// with made-up kids cannot turn the gateway against the issuer.
	minRefreshInterval = 10 * time.Second
)

// Authenticator establishes the principal of a request. It is safe for
// concurrent use and holds no goroutine between calls; a JWKS fetch or
// introspection call in flight ends by itself within the HTTP client's
// timeout.
type Authenticator struct {
	log     *slog.Logger
	now     func() time.Time
	issuers map[string]*jwtIssuer // by exact issuer identifier
	intro   *introspector         // nil when not configured
	apiKeys []apiKey
	mtls    *mtlsAuth // nil when not configured
	// verified remembers verified JWTs until their exp, so that a token
	// used for many requests is verified once per JWKS refresh.
	verified verdictCache
}

// New builds an Authenticator from cfg, which must be valid and have its
// secrets resolved ([config.Config.ResolveSecrets]). It reads the mTLS
// client CA file but makes no network call: keys are fetched when first
// needed.
func New(cfg config.Auth, opts Options) (*Authenticator, error) {
	if !cfg.Enabled() {
		return nil, errors.New("authn: no authentication method configured")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("authn: invalid configuration:\n%w", err)
	}
	a := &Authenticator{
		log:     opts.Logger,
		now:     opts.Now,
		issuers: make(map[string]*jwtIssuer, len(cfg.JWT)),
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	client := opts.HTTPClient
	if client == nil {
		client = defaultHTTPClient()
	}
	maxAge := opts.JWKSMaxAge
	if maxAge <= 0 {
		maxAge = defaultJWKSMaxAge
	}
	for _, ic := range cfg.JWT {
		a.issuers[ic.Issuer] = newJWTIssuer(ic, &keySource{
			issuer: ic.Issuer,
			url:    ic.JWKSURL,
			client: client,
			now:    a.now,
			log:    a.log,
			maxAge: maxAge,
		})
	}
	if len(cfg.Introspection) > 0 {
		in, err := newIntrospector(cfg.Introspection[0], client, a.now, a.log)
		if err != nil {
			return nil, err
		}
		a.intro = in
	}
	for _, k := range cfg.APIKeys {
		a.apiKeys = append(a.apiKeys, newAPIKey(k))
	}
	if cfg.MTLS != nil {
		m, err := newMTLS(*cfg.MTLS)
		if err != nil {
			return nil, err
		}
		a.mtls = m
	}
	return a, nil
}

// Authenticate returns the principal of r. ok is false when r carries no
// credential or an invalid one; the gateway answers 401. err is non-nil only
// when a verifier could not be consulted (it wraps [ErrUnavailable]) or the
// request's context ended.
func (a *Authenticator) Authenticate(r *http.Request) (identity.Principal, bool, error) {
	ctx := r.Context()
	if queryHasAccessToken(r.URL.RawQuery) {
		return a.refuse(ctx, "bearer", "token in query string")
	}
	authz := r.Header.Values("Authorization")
	keys := r.Header.Values("X-Api-Key")
	switch {
	case len(authz)+len(keys) > 1:
		return a.refuse(ctx, "", "more than one credential")
	case len(authz) == 1:
		return a.bearer(ctx, authz[0])
	case len(keys) == 1:
		return a.apiKeyHeader(ctx, keys[0])
	case a.mtls != nil:
		return a.clientCert(ctx, r)
	}
	return identity.Principal{}, false, nil
}

// bearer authenticates the value of an Authorization header.
func (a *Authenticator) bearer(ctx context.Context, header string) (identity.Principal, bool, error) {
	tok, ok := bearerToken(header)
	if !ok {
		return a.refuse(ctx, "bearer", "not a well-formed Bearer credential")
	}
	sum := tokenHash(tok)
	if v, ok := a.verified.get(sum, a.now()); ok && v.current() {
		return v.principal(), true, nil
	}
	var iss string
	if hdr, payload, ok := parseCompactJWT(tok); ok {
		iss = peekIssuer(payload)
		if is := a.issuers[iss]; is != nil {
			return is.authenticate(ctx, a, tok, sum, hdr)
		}
	}
	if p, ok := a.matchAPIKey(sum); ok {
		return p, true, nil
	}
	if a.intro != nil {
		return a.intro.authenticate(ctx, a, tok, sum)
	}
	if iss != "" {
		// Unverified, but the usual cause of this refusal is an issuer
		// configured with a different spelling (a trailing slash).
		return a.refuse(ctx, "bearer", "token matches no issuer or key", slog.String("unverified_iss", truncate(iss, 128)))
	}
	return a.refuse(ctx, "bearer", "token matches no issuer or key")
}

// refuse logs why a credential was refused and returns ok=false. attrs
// may name the issuer or key, never the credential.
func (a *Authenticator) refuse(ctx context.Context, method, reason string, attrs ...slog.Attr) (identity.Principal, bool, error) {
	if a.log.Enabled(ctx, slog.LevelDebug) {
		attrs = append([]slog.Attr{slog.String("method", method), slog.String("reason", reason)}, attrs...)
		a.log.LogAttrs(ctx, slog.LevelDebug, "credential refused", attrs...)
	}
	return identity.Principal{}, false, nil
}

// HasCredentials reports whether r presents a header or query credential,
// valid or not. A 401 for such a request carries error="invalid_token"
// (RFC 6750, section 3.1); one for a request without any carries no error
// code.
func HasCredentials(r *http.Request) bool {
	return r.Header.Get("Authorization") != "" || r.Header.Get("X-Api-Key") != "" || queryHasAccessToken(r.URL.RawQuery)
}

// truncate bounds an untrusted string for a log record.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// tokenHash is the SHA-256 of a token or key: the cache key, so that no
// cache holds a token, and what API keys are compared by.
func tokenHash(tok string) [sha256.Size]byte { return sha256.Sum256([]byte(tok)) }

// unavailable wraps a technical failure in ErrUnavailable; format may
// itself wrap the cause with %w.
func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnavailable}, args...)...)
}
