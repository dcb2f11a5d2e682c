package authntest

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// storage is the minimal op.Storage behind a Provider: client-credentials clients and the access
// tokens issued to them, in memory. Interactive flows (authorization code, refresh, device, JWT
// profile) are refused.
type storage struct {
	key      *signingKey
	lifetime time.Duration
	opaque   *opaqueTokens

	mu      sync.Mutex
	clients map[string]*client
	tokens  map[string]*token // by token ID (the JWT's jti)
}

type client struct {
	id, secret   string
	opts         ClientOptions
	introspector bool // may call the introspection endpoint; cannot obtain tokens
}

type token struct {
	id       string
	client   *client
	subject  string
	audience []string
	scopes   []string
	issued   time.Time
	expires  time.Time
	revoked  bool
}

func newStorage(key *signingKey, lifetime time.Duration) *storage {
	return &storage{
		key:      key,
		lifetime: lifetime,
		opaque:   &opaqueTokens{ids: make(map[string]string)},
		clients:  make(map[string]*client),
		tokens:   make(map[string]*token),
	}
}

func (s *storage) addClient(c *client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[c.id] = c
}

func (s *storage) addIntrospector(id, secret string) {
	s.addClient(&client{id: id, secret: secret, introspector: true})
}

func (s *storage) lookupClient(id string) (*client, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	return c, ok
}

func (s *storage) lookupToken(id string) (*token, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[id]
	return t, ok
}

// clientOfToken finds the client a token (opaque or JWT) was issued to.
func (s *storage) clientOfToken(raw string) (*client, bool) {
	id, ok := s.opaque.id(raw)
	if !ok {
		// Our own JWT: the signature is not the question here, only which record it names.
		jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
		if err != nil {
			return nil, false
		}
		var claims struct {
			JTI string `json:"jti"`
		}
		if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims); err != nil {
			return nil, false
		}
		id = claims.JTI
	}
	t, ok := s.lookupToken(id)
	if !ok {
		return nil, false
	}
	return t.client, true
}

func (s *storage) authenticate(id, secret string) (*client, error) {
	c, ok := s.lookupClient(id)
	if !ok || subtle.ConstantTimeCompare([]byte(c.secret), []byte(secret)) != 1 {
		return nil, errors.New("unknown client or wrong secret")
	}
	return c, nil
}

// --- client credentials ---

func (s *storage) ClientCredentials(_ context.Context, clientID, clientSecret string) (op.Client, error) {
	c, err := s.authenticate(clientID, clientSecret)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (s *storage) ClientCredentialsTokenRequest(_ context.Context, clientID string, scopes []string) (op.TokenRequest, error) {
	c, ok := s.lookupClient(clientID)
	if !ok {
		return nil, errors.New("unknown client")
	}
	if len(scopes) == 0 {
		scopes = slices.Clone(c.opts.Scopes)
	}
	for _, sc := range scopes {
		if !slices.Contains(c.opts.Scopes, sc) {
			return nil, oidc.ErrInvalidScope().WithDescription("scope %q not allowed for client %q", sc, clientID)
		}
	}
	return &tokenRequest{client: c, scopes: scopes}, nil
}

// tokenRequest is what ClientCredentialsTokenRequest hands back to op, and op hands to
// CreateAccessToken and GetPrivateClaimsFromRequest.
type tokenRequest struct {
	client *client
	scopes []string
}

func (r *tokenRequest) GetSubject() string {
	if r.client.opts.Subject != "" {
		return r.client.opts.Subject
	}
	return r.client.id
}

func (r *tokenRequest) GetAudience() []string {
	if len(r.client.opts.Audience) > 0 {
		return slices.Clone(r.client.opts.Audience)
	}
	return []string{r.client.id}
}

func (r *tokenRequest) GetScopes() []string { return r.scopes }

func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	r, ok := req.(*tokenRequest)
	if !ok {
		return "", time.Time{}, errNotSupported
	}
	now := time.Now()
	t := &token{
		id:       randomString(22),
		client:   r.client,
		subject:  r.GetSubject(),
		audience: r.GetAudience(),
		scopes:   slices.Clone(r.scopes),
		issued:   now,
		expires:  now.Add(s.lifetime),
	}
	s.mu.Lock()
	s.tokens[t.id] = t
	s.mu.Unlock()
	return t.id, t.expires, nil
}

// GetPrivateClaimsFromRequest adds scope, tid and groups to JWT access tokens.
func (s *storage) GetPrivateClaimsFromRequest(_ context.Context, req op.TokenRequest, _ []string) (map[string]any, error) {
	r, ok := req.(*tokenRequest)
	if !ok {
		return nil, errNotSupported
	}
	return customClaims(r.client, r.scopes), nil
}

func customClaims(c *client, scopes []string) map[string]any {
	claims := map[string]any{}
	if len(scopes) > 0 {
		claims["scope"] = strings.Join(scopes, " ")
	}
	if c.opts.Tenant != "" {
		claims["tid"] = c.opts.Tenant
	}
	if len(c.opts.Groups) > 0 {
		claims["groups"] = slices.Clone(c.opts.Groups)
	}
	return claims
}

// --- introspection and revocation ---

func (s *storage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, _, clientID string) error {
	caller, ok := s.lookupClient(clientID)
	if !ok || !caller.introspector {
		return errors.New("client may not introspect")
	}
	s.mu.Lock()
	t, ok := s.tokens[tokenID]
	active := ok && !t.revoked && time.Now().Before(t.expires)
	s.mu.Unlock()
	if !active {
		// op answers {"active":false} with whatever was set on resp, so set nothing.
		return errors.New("token unknown, revoked or expired")
	}
	resp.Scope = slices.Clone(t.scopes)
	resp.ClientID = t.client.id
	resp.TokenType = oidc.BearerToken
	resp.Expiration = oidc.FromTime(t.expires)
	resp.IssuedAt = oidc.FromTime(t.issued)
	resp.NotBefore = oidc.FromTime(t.issued)
	resp.Subject = t.subject
	resp.Audience = slices.Clone(t.audience)
	resp.Issuer = op.IssuerFromContext(ctx)
	resp.JWTID = t.id
	resp.Claims = customClaims(t.client, nil)
	return nil
}

func (s *storage) RevokeToken(_ context.Context, tokenOrTokenID, _, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[tokenOrTokenID]
	if !ok {
		return nil // RFC 7009 §2.2: an unknown or invalid token is not an error
	}
	if t.client.id != clientID {
		return oidc.ErrUnauthorizedClient().WithDescription("token was not issued to this client")
	}
	t.revoked = true
	return nil
}

func (s *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

// --- clients and keys ---

func (s *storage) GetClientByClientID(_ context.Context, clientID string) (op.Client, error) {
	c, ok := s.lookupClient(clientID)
	if !ok {
		return nil, errors.New("unknown client")
	}
	return c, nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, clientID, clientSecret string) error {
	_, err := s.authenticate(clientID, clientSecret)
	return err
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return s.key, nil }

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{s.key}}, nil
}

func (s *storage) Health(context.Context) error { return nil }

// --- everything else op.Storage requires: unsupported ---

func (s *storage) CreateAuthRequest(context.Context, *oidc.AuthRequest, string) (op.AuthRequest, error) {
	return nil, errNotSupported
}
func (s *storage) AuthRequestByID(context.Context, string) (op.AuthRequest, error) {
	return nil, errNotSupported
}
func (s *storage) AuthRequestByCode(context.Context, string) (op.AuthRequest, error) {
	return nil, errNotSupported
}
func (s *storage) SaveAuthCode(context.Context, string, string) error { return errNotSupported }
func (s *storage) DeleteAuthRequest(context.Context, string) error    { return errNotSupported }
func (s *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errNotSupported
}
func (s *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, errNotSupported
}
func (s *storage) TerminateSession(context.Context, string, string) error { return errNotSupported }
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil // deprecated in op; must be empty
}
func (s *storage) SetUserinfoFromToken(context.Context, *oidc.UserInfo, string, string, string) error {
	return errNotSupported
}
func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errNotSupported
}
func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errNotSupported
}

// --- op.Client ---

func (c *client) GetID() string                        { return c.id }
func (c *client) RedirectURIs() []string               { return nil }
func (c *client) PostLogoutRedirectURIs() []string     { return nil }
func (c *client) ApplicationType() op.ApplicationType  { return op.ApplicationTypeWeb }
func (c *client) AuthMethod() oidc.AuthMethod          { return oidc.AuthMethodBasic }
func (c *client) ResponseTypes() []oidc.ResponseType   { return nil }
func (c *client) LoginURL(string) string               { return "" }
func (c *client) IDTokenLifetime() time.Duration       { return 0 }
func (c *client) DevMode() bool                        { return false }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) IsScopeAllowed(scope string) bool     { return slices.Contains(c.opts.Scopes, scope) }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c *client) GrantTypes() []oidc.GrantType {
	if c.introspector {
		return nil
	}
	return []oidc.GrantType{oidc.GrantTypeClientCredentials}
}

func (c *client) AccessTokenType() op.AccessTokenType {
	if c.opts.Opaque {
		return op.AccessTokenTypeBearer
	}
	return op.AccessTokenTypeJWT
}

// opaqueTokens is the op.Crypto for opaque access tokens. op "encrypts" "tokenID:subject" into the
// bearer token and later "decrypts" it back; here the token is a random handle that maps to the
// token ID, so a subject containing ':' (e.g. a SPIFFE ID) cannot confuse op's split. Anything not
// issued here (including every JWT) fails to decrypt, and op then tries JWT verification.
type opaqueTokens struct {
	mu  sync.Mutex
	ids map[string]string // handle -> token ID
}

func (o *opaqueTokens) Encrypt(idAndSubject string) (string, error) {
	id, _, ok := strings.Cut(idAndSubject, ":")
	if !ok || id == "" {
		return "", errors.New("authntest: unexpected token payload")
	}
	handle := randomString(43)
	o.mu.Lock()
	o.ids[handle] = id
	o.mu.Unlock()
	return handle, nil
}

func (o *opaqueTokens) Decrypt(handle string) (string, error) {
	id, ok := o.id(handle)
	if !ok {
		return "", errors.New("not an opaque token issued here")
	}
	// op splits on ':' and passes the subject on; storage looks everything up by ID instead.
	return id + ":-", nil
}

func (o *opaqueTokens) id(handle string) (string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	id, ok := o.ids[handle]
	return id, ok
}
