package config

import (
	"time"

	"go.yaml.in/yaml/v3"
)

// Auth configures how callers of the data listener authenticate. mcpgate
// is an OAuth 2.1 resource server: it accepts bearer tokens (JWTs checked
// against the issuer's JWKS, or opaque tokens checked by RFC 7662
// introspection), API keys, and verified client certificates. With no
// method configured every caller is anonymous.
type Auth struct {
	// Resource is the canonical URI of the protected resource (RFC 8707,
	// RFC 9728), advertised in the protected resource metadata. It is
	// required when any method is configured.
	Resource string `yaml:"resource,omitempty" json:"resource,omitempty"`
	// AuthorizationServers are the issuer identifiers advertised in the
	// protected resource metadata.
	AuthorizationServers []string `yaml:"authorization_servers,omitempty" json:"authorization_servers,omitempty"`
	// ScopesSupported are advertised in the protected resource metadata.
	ScopesSupported []string `yaml:"scopes_supported,omitempty" json:"scopes_supported,omitempty"`
	// RequiredScopes must all be carried by every token or key; a caller
	// missing one is refused with insufficient_scope.
	RequiredScopes []string `yaml:"required_scopes,omitempty" json:"required_scopes,omitempty"`
	// JWT lists the issuers whose JWT access tokens are accepted.
	JWT []JWTIssuer `yaml:"jwt,omitempty" json:"jwt,omitempty"`
	// Introspection lists RFC 7662 endpoints that check opaque tokens; at
	// most one, since an opaque token does not say which server issued it.
	Introspection []Introspection `yaml:"introspection,omitempty" json:"introspection,omitempty"`
	// APIKeys are static keys, stored as their SHA-256.
	APIKeys []APIKey `yaml:"api_keys,omitempty" json:"api_keys,omitempty"`
	// MTLS accepts clients by a certificate verified against ClientCA.
	MTLS *MTLS `yaml:"mtls,omitempty" json:"mtls,omitempty"`
}

// Enabled reports whether any authentication method is configured.
func (a *Auth) Enabled() bool {
	return len(a.JWT) > 0 || len(a.Introspection) > 0 || len(a.APIKeys) > 0 || a.MTLS != nil
}

// JWTIssuer accepts JWT access tokens from one issuer.
type JWTIssuer struct {
	// Issuer must equal the token's "iss" claim exactly.
	Issuer string `yaml:"issuer" json:"issuer"`
	// JWKSURL is where the issuer's signing keys are published. When
	// empty it is discovered from <issuer>/.well-known/openid-configuration
	// or, failing that, the RFC 8414 authorization server metadata.
	JWKSURL string `yaml:"jwks_url,omitempty" json:"jwks_url,omitempty"`
	// Audiences must contain at least one value of the token's "aud".
	Audiences []string `yaml:"audiences" json:"audiences"`
	// Algorithms are the accepted signature algorithms (JWS "alg"), all
	// asymmetric.
	Algorithms []string `yaml:"algorithms" json:"algorithms"`
	// Leeway is the clock skew allowed on exp, nbf and iat; at most 60s.
	Leeway Duration `yaml:"leeway" json:"leeway"`
	// Claims names the claims the principal is built from.
	Claims Claims `yaml:"claims" json:"claims"`
}

// UnmarshalYAML decodes an issuer on top of the per-issuer defaults.
func (j *JWTIssuer) UnmarshalYAML(n *yaml.Node) error {
	type plain JWTIssuer // drops this method, avoiding recursion
	*j = defaultJWTIssuer()
	return n.Decode((*plain)(j))
}

// Claims names the token claims (or introspection response members) that
// make up a principal. An empty name leaves that part of the principal
// empty.
type Claims struct {
	// Subject names the claim identifying the caller; it is required.
	Subject string `yaml:"subject" json:"subject"`
	// Tenant names a string claim holding the caller's tenant.
	Tenant string `yaml:"tenant,omitempty" json:"tenant,omitempty"`
	// Groups names a claim holding a list of groups, or a single group.
	Groups string `yaml:"groups" json:"groups"`
	// Scopes names a claim holding a space-separated string or a list.
	Scopes string `yaml:"scopes" json:"scopes"`
}

// Introspection checks opaque tokens at an RFC 7662 endpoint.
type Introspection struct {
	// URL is the introspection endpoint.
	URL string `yaml:"url" json:"url"`
	// ClientID authenticates mcpgate to the endpoint (HTTP Basic).
	ClientID string `yaml:"client_id" json:"client_id"`
	// ClientSecret must be a reference, {env: NAME} or {file: PATH}.
	ClientSecret Value `yaml:"client_secret" json:"client_secret"`
	// Audiences, when set, must contain a value of the response's "aud".
	Audiences []string `yaml:"audiences,omitempty" json:"audiences,omitempty"`
	// CacheTTL bounds how long an active result is reused; never past the
	// token's expiry. At most 5m; 0 disables caching.
	CacheTTL Duration `yaml:"cache_ttl" json:"cache_ttl"`
	// Claims names the response members the principal is built from.
	Claims Claims `yaml:"claims" json:"claims"`
}

// UnmarshalYAML decodes an endpoint on top of the per-endpoint defaults.
func (i *Introspection) UnmarshalYAML(n *yaml.Node) error {
	type plain Introspection // drops this method, avoiding recursion
	*i = defaultIntrospection()
	return n.Decode((*plain)(i))
}

// APIKey is one static key. Only its SHA-256 is configured; the principal
// it yields has the key's name as subject.
type APIKey struct {
	// Name identifies the key in logs and is the principal's subject.
	Name string `yaml:"name" json:"name"`
	// SHA256 is the hex SHA-256 of the key.
	SHA256 string `yaml:"sha256" json:"sha256"`
	// Tenant, Groups and Scopes are given to the principal.
	Tenant string   `yaml:"tenant,omitempty" json:"tenant,omitempty"`
	Groups []string `yaml:"groups,omitempty" json:"groups,omitempty"`
	Scopes []string `yaml:"scopes,omitempty" json:"scopes,omitempty"`
}

// MTLS accepts clients presenting a certificate that chains to ClientCA.
// The TLS handshake does the verification; the principal's subject comes
// from the verified leaf certificate.
type MTLS struct {
	// ClientCA is a PEM file of the CA certificates trusted for clients.
	ClientCA string `yaml:"client_ca" json:"client_ca"`
	// Identity selects the subject: san_uri (such as a SPIFFE ID),
	// san_dns or cn.
	Identity string `yaml:"identity" json:"identity"`
}

// UnmarshalYAML decodes the mTLS settings on top of their defaults.
func (m *MTLS) UnmarshalYAML(n *yaml.Node) error {
	type plain MTLS // drops this method, avoiding recursion
	*m = MTLS{Identity: defaultMTLSIdentity}
	return n.Decode((*plain)(m))
}

// Auth defaults, and the limits Validate enforces.
const (
	defaultLeeway       = 30 * time.Second
	maxLeeway           = 60 * time.Second
	defaultCacheTTL     = 30 * time.Second
	maxCacheTTL         = 5 * time.Minute
	defaultMTLSIdentity = "san_uri"
)

// defaultAlgorithms are accepted when an issuer lists none.
var defaultAlgorithms = []string{"RS256", "PS256", "ES256", "EdDSA"}

func defaultClaims() Claims {
	return Claims{Subject: "sub", Groups: "groups", Scopes: "scope"}
}

func defaultJWTIssuer() JWTIssuer {
	return JWTIssuer{
		Algorithms: append([]string(nil), defaultAlgorithms...),
		Leeway:     Duration(defaultLeeway),
		Claims:     defaultClaims(),
	}
}

func defaultIntrospection() Introspection {
	return Introspection{CacheTTL: Duration(defaultCacheTTL), Claims: defaultClaims()}
}
