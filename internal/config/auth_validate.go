package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// jwtAlgorithms are the signature algorithms an issuer may list: all
// asymmetric. "none" and the HMAC algorithms are refused by name, since a
// resource server holding only public keys must never accept them.
var jwtAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

var (
	apiKeyNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	claimNameRE  = regexp.MustCompile(`^[\x21-\x7e]{1,128}$`)
)

// minClientSecret is the shortest introspection client secret accepted.
const minClientSecret = 16

// placeholderKeys are API keys seen in examples and defaults. A configured
// hash of one of them is refused like the hash of the empty key.
var placeholderKeys = []string{
	"", "changeme", "change-me", "password", "secret", "test", "admin",
	"apikey", "api-key", "api_key", "key", "token", "default", "example",
}

// weakKeyHashes maps the SHA-256 of each placeholder key to the key.
var weakKeyHashes = func() map[[sha256.Size]byte]string {
	m := make(map[[sha256.Size]byte]string, len(placeholderKeys))
	for _, k := range placeholderKeys {
		m[sha256.Sum256([]byte(k))] = k
	}
	return m
}()

// Validate reports every problem in a as [Problems], with paths under
// "auth", or nil. Like [Config.Validate] it reads no file.
func (a *Auth) Validate() error {
	var ps Problems
	a.validate(&ps)
	return ps.err()
}

func (a *Auth) validate(ps *Problems) {
	const path = "auth"
	if !a.Enabled() {
		if a.Resource != "" || len(a.AuthorizationServers) > 0 || len(a.ScopesSupported) > 0 || len(a.RequiredScopes) > 0 {
			ps.add(path, "configures no authentication method, so every caller would be anonymous; add jwt, introspection, api_keys or mtls")
		}
	} else if a.Resource == "" {
		ps.add(join(path, "resource"), "must be set to the canonical URI of this gateway's MCP endpoint, such as https://mcp.example.com/mcp")
	}
	if a.Resource != "" {
		if msg := secureURLProblem(a.Resource); msg != "" {
			ps.add(join(path, "resource"), "%s", msg)
		} else if strings.Contains(a.Resource, "#") {
			ps.add(join(path, "resource"), "must not contain a fragment")
		}
	}
	for i, s := range a.AuthorizationServers {
		if msg := issuerProblem(s); msg != "" {
			ps.add(index(join(path, "authorization_servers"), i), "%s", msg)
		}
	}
	validateScopes(ps, join(path, "scopes_supported"), a.ScopesSupported)
	validateScopes(ps, join(path, "required_scopes"), a.RequiredScopes)

	issuers := make(map[string]int, len(a.JWT))
	for i := range a.JWT {
		p := index(join(path, "jwt"), i)
		a.JWT[i].validate(ps, p)
		if first, ok := issuers[a.JWT[i].Issuer]; ok && a.JWT[i].Issuer != "" {
			ps.add(join(p, "issuer"), "repeats the issuer of auth.jwt[%d]", first)
		} else {
			issuers[a.JWT[i].Issuer] = i
		}
	}
	if len(a.Introspection) > 1 {
		ps.add(join(path, "introspection"), "at most one endpoint: an opaque token does not name its issuer, so each token would be disclosed to every endpoint")
	}
	for i := range a.Introspection {
		a.Introspection[i].validate(ps, index(join(path, "introspection"), i))
	}
	validateAPIKeys(ps, join(path, "api_keys"), a.APIKeys)
	if a.MTLS != nil {
		a.MTLS.validate(ps, join(path, "mtls"))
	}
}

func (j *JWTIssuer) validate(ps *Problems, path string) {
	if j.Issuer == "" {
		ps.add(join(path, "issuer"), "must be set to the issuer identifier, exactly as in the tokens' iss claim")
	} else if msg := issuerProblem(j.Issuer); msg != "" {
		ps.add(join(path, "issuer"), "%s", msg)
	}
	if j.JWKSURL != "" {
		if msg := secureURLProblem(j.JWKSURL); msg != "" {
			ps.add(join(path, "jwks_url"), "%s", msg)
		}
	}
	validateAudiences(ps, join(path, "audiences"), j.Audiences, true)
	if len(j.Algorithms) == 0 {
		ps.add(join(path, "algorithms"), "must list at least one of %s", strings.Join(jwtAlgorithms, ", "))
	}
	seen := make(map[string]bool, len(j.Algorithms))
	for i, alg := range j.Algorithms {
		p := index(join(path, "algorithms"), i)
		switch {
		case strings.EqualFold(alg, "none"):
			ps.add(p, "none is never accepted: it means an unsigned token")
		case strings.HasPrefix(strings.ToUpper(alg), "HS"):
			ps.add(p, "%s is never accepted: HMAC needs a shared secret, and a resource server holds only public keys", alg)
		case !slices.Contains(jwtAlgorithms, alg):
			ps.add(p, "must be one of %s, got %q", strings.Join(jwtAlgorithms, ", "), alg)
		case seen[alg]:
			ps.add(p, "repeats %s", alg)
		}
		seen[alg] = true
	}
	if d := j.Leeway.D(); d < 0 || d > maxLeeway {
		ps.add(join(path, "leeway"), "must be between 0s and %s, got %s", Duration(maxLeeway), j.Leeway)
	}
	j.Claims.validate(ps, join(path, "claims"))
}

func (i *Introspection) validate(ps *Problems, path string) {
	if i.URL == "" {
		ps.add(join(path, "url"), "must be set to the RFC 7662 introspection endpoint")
	} else if msg := secureURLProblem(i.URL); msg != "" {
		ps.add(join(path, "url"), "%s", msg)
	}
	if i.ClientID == "" {
		ps.add(join(path, "client_id"), "must be set")
	}
	if !i.ClientSecret.IsSecret() {
		ps.add(join(path, "client_secret"), "must be a reference, {env: NAME} or {file: PATH}, never the secret itself")
	} else if err := i.ClientSecret.refProblem(); err != nil {
		ps.add(join(path, "client_secret"), "%v", err)
	}
	validateAudiences(ps, join(path, "audiences"), i.Audiences, false)
	if d := i.CacheTTL.D(); d < 0 || d > maxCacheTTL {
		ps.add(join(path, "cache_ttl"), "must be between 0s and %s, got %s", Duration(maxCacheTTL), i.CacheTTL)
	}
	i.Claims.validate(ps, join(path, "claims"))
}

func (c *Claims) validate(ps *Problems, path string) {
	if c.Subject == "" {
		ps.add(join(path, "subject"), "must name the claim identifying the caller, such as sub")
	}
	for _, f := range []struct{ key, name string }{
		{"subject", c.Subject}, {"tenant", c.Tenant}, {"groups", c.Groups}, {"scopes", c.Scopes},
	} {
		if f.name != "" && !claimNameRE.MatchString(f.name) {
			ps.add(join(path, f.key), "must be a claim name of at most 128 visible ASCII characters, got %q", f.name)
		}
	}
}

func validateAPIKeys(ps *Problems, path string, keys []APIKey) {
	names := make(map[string]int, len(keys))
	hashes := make(map[[sha256.Size]byte]int, len(keys))
	for i, k := range keys {
		p := index(path, i)
		switch first, dup := names[k.Name]; {
		case !apiKeyNameRE.MatchString(k.Name):
			ps.add(join(p, "name"), "must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-', starting with a letter or digit")
		case dup:
			ps.add(join(p, "name"), "repeats the name of %s", index(path, first))
		default:
			names[k.Name] = i
		}
		var sum [sha256.Size]byte
		if len(k.SHA256) != hex.EncodedLen(sha256.Size) {
			ps.add(join(p, "sha256"), "must be the 64 hex characters of the key's SHA-256 (such as the output of: printf %%s \"$KEY\" | sha256sum), got %d characters", len(k.SHA256))
		} else if _, err := hex.Decode(sum[:], []byte(k.SHA256)); err != nil {
			ps.add(join(p, "sha256"), "must be the 64 hex characters of the key's SHA-256, got a non-hex character")
		} else if weak, ok := weakKeyHashes[sum]; ok {
			if weak == "" {
				ps.add(join(p, "sha256"), "is the SHA-256 of the empty key; generate a random key of at least 32 bytes")
			} else {
				ps.add(join(p, "sha256"), "is the SHA-256 of the placeholder key %q; generate a random key of at least 32 bytes", weak)
			}
		} else if first, dup := hashes[sum]; dup {
			ps.add(join(p, "sha256"), "repeats the key of %s; give each client its own key", index(path, first))
		} else {
			hashes[sum] = i
		}
		validateList(ps, join(p, "groups"), k.Groups, "group")
		validateScopes(ps, join(p, "scopes"), k.Scopes)
	}
}

func (m *MTLS) validate(ps *Problems, path string) {
	if m.ClientCA == "" {
		ps.add(join(path, "client_ca"), "must be the path of a PEM file of the CA certificates trusted for clients")
	} else if strings.ContainsRune(m.ClientCA, 0) {
		ps.add(join(path, "client_ca"), "must not contain NUL")
	}
	oneOf(ps, join(path, "identity"), m.Identity, "san_uri", "san_dns", "cn")
}

func validateAudiences(ps *Problems, path string, auds []string, required bool) {
	if required && len(auds) == 0 {
		ps.add(path, "must list at least one audience, such as the value of auth.resource; a token for another service must not be accepted here")
	}
	validateList(ps, path, auds, "audience")
}

// validateList reports empty and repeated entries.
func validateList(ps *Problems, path string, list []string, what string) {
	seen := make(map[string]bool, len(list))
	for i, s := range list {
		switch {
		case s == "":
			ps.add(index(path, i), "must not be an empty %s", what)
		case seen[s]:
			ps.add(index(path, i), "repeats %s %q", what, s)
		}
		seen[s] = true
	}
}

// validateScopes checks scope tokens (RFC 6749, section 3.3).
func validateScopes(ps *Problems, path string, scopes []string) {
	validateList(ps, path, scopes, "scope")
	for i, s := range scopes {
		if s != "" && !validScope(s) {
			ps.add(index(path, i), "invalid scope %q: use visible ASCII characters other than \" and \\, with no spaces", s)
		}
	}
}

func validScope(s string) bool {
	for i := range len(s) {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// secureURLProblem checks an absolute URL that must use https, or http to
// a loopback host (for development and tests).
func secureURLProblem(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Opaque != "":
		return fmt.Sprintf("must be an absolute https URL, got %q", s)
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Sprintf("must be an https URL, got scheme %q", u.Scheme)
	case u.Hostname() == "":
		return "must include a host"
	case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
		return fmt.Sprintf("must use https (http is allowed only for a loopback host), got %q", s)
	case u.User != nil:
		return "must not contain credentials"
	}
	if port := u.Port(); port != "" {
		return portProblem(port)
	}
	return ""
}

// issuerProblem checks an issuer identifier (RFC 8414, section 2): a
// secure URL without query or fragment.
func issuerProblem(s string) string {
	if msg := secureURLProblem(s); msg != "" {
		return msg
	}
	if strings.ContainsAny(s, "?#") {
		return fmt.Sprintf("an issuer must not contain a query or fragment, got %q", s)
	}
	return ""
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// resolveSecrets reads the introspection client secrets.
func (a *Auth) resolveSecrets(ps *Problems) {
	for i := range a.Introspection {
		v := &a.Introspection[i].ClientSecret
		if !v.IsSecret() {
			continue
		}
		s, err := v.Resolve()
		if err != nil {
			ps.add(join(index("auth.introspection", i), "client_secret"), "%v", err)
			continue
		}
		if isPlaceholder(s) || len(s) < minClientSecret {
			ps.add(join(index("auth.introspection", i), "client_secret"), "is too weak: use the secret your identity provider issued (at least %d characters)", minClientSecret)
			continue
		}
		v.resolved = &s
	}
}
