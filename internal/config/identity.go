package config

import (
	"net/url"
	"time"

	"go.yaml.in/yaml/v3"
)

// IdentitySigning configures the key with which the gateway signs the
// identity it asserts to upstream servers (servers.<name>.identity.jwt).
// The public half is published at /.well-known/jwks.json.
type IdentitySigning struct {
	// SigningKey is a PEM private key: EC P-256 (ES256), RSA of at least
	// 2048 bits (RS256) or Ed25519 (EdDSA), in PKCS#8, SEC1 or PKCS#1
	// form. It must be {file: PATH}: the file is re-read when it is
	// replaced, so that keys rotate without a restart.
	// It is a pointer so that an absent section holds no Value, whose
	// fields are unexported.
	SigningKey *Value `yaml:"signing_key,omitempty" json:"signing_key,omitempty"`
	// Issuer is the "iss" of minted tokens. Empty means the origin of
	// auth.resource, such as https://mcp.example.com.
	Issuer string `yaml:"issuer,omitempty" json:"issuer,omitempty"`
}

// IsZero reports whether the section is absent, so that a configuration
// without it prints as it did before it existed.
func (i IdentitySigning) IsZero() bool { return i.SigningKey == nil && i.Issuer == "" }

// Enabled reports whether a signing key file is configured.
func (i *IdentitySigning) Enabled() bool {
	return i.SigningKey != nil && i.SigningKey.IsSecret() && i.SigningKey.hasFile
}

// KeyFile returns the path of the signing key, or "" when none is
// configured.
func (i *IdentitySigning) KeyFile() string {
	if !i.Enabled() {
		return ""
	}
	return i.SigningKey.file
}

// IdentityIssuer returns the "iss" of the tokens the gateway mints:
// identity.issuer, or the origin of auth.resource.
func (c *Config) IdentityIssuer() string {
	if c.Identity.Issuer != "" {
		return c.Identity.Issuer
	}
	u, err := url.Parse(c.Auth.Resource)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// ServerIdentity says how the gateway tells an HTTP upstream who is
// calling. The caller's own credentials are never forwarded.
type ServerIdentity struct {
	// JWT sends "Authorization: Bearer <token>" with a short-lived JWT the
	// gateway mints and signs with identity.signing_key.
	JWT *IdentityJWT `yaml:"jwt,omitempty" json:"jwt,omitempty"`
	// Headers sends X-Mcpgate-Subject, -Tenant, -Groups, -Client, -Session
	// and -Tool. They are unsigned: use them only where nothing but the
	// gateway can reach the upstream.
	Headers bool `yaml:"headers,omitempty" json:"headers,omitempty"`
}

// IdentityJWT configures the tokens minted for one upstream.
type IdentityJWT struct {
	// Audience is the token's "aud"; empty means the server's url.
	Audience string `yaml:"audience,omitempty" json:"audience,omitempty"`
	// TTL is the token's lifetime, from 30s to 5m.
	TTL Duration `yaml:"ttl" json:"ttl"`
}

// UnmarshalYAML decodes the settings on top of their defaults.
func (j *IdentityJWT) UnmarshalYAML(n *yaml.Node) error {
	type plain IdentityJWT // drops this method, avoiding recursion
	*j = IdentityJWT{TTL: Duration(defaultIdentityTTL)}
	return n.Decode((*plain)(j))
}

// IdentityAudience returns the "aud" of the tokens minted for s:
// identity.jwt.audience, or the server's url.
func (s *Server) IdentityAudience() string {
	if s.Identity != nil && s.Identity.JWT != nil && s.Identity.JWT.Audience != "" {
		return s.Identity.JWT.Audience
	}
	if s.URL == "" && len(s.URLs) > 0 {
		return s.URLs[0] // replicas are one server: one audience
	}
	return s.URL
}

// Identity defaults, and the limits Validate enforces.
const (
	defaultIdentityTTL = 5 * time.Minute
	minIdentityTTL     = 30 * time.Second
	maxIdentityTTL     = 5 * time.Minute
)
