package config

import (
	"encoding/pem"
	"net/url"
	"strings"
)

// identityHeaderPrefix marks the identity headers the gateway sets itself
// (identity.headers); a server's configured headers must not use it.
const identityHeaderPrefix = "x-mcpgate-"

func (c *Config) validateIdentity(ps *Problems) {
	if !c.Identity.IsZero() {
		c.Identity.validate(ps, c.Auth.Resource)
	}
	for name, s := range c.Servers {
		if s != nil {
			s.validateIdentity(ps, join("servers", name), &c.Identity)
		}
	}
}

func (i *IdentitySigning) validate(ps *Problems, resource string) {
	const path = "identity"
	var k Value
	if i.SigningKey != nil {
		k = *i.SigningKey
	}
	switch {
	case !k.IsSecret() && k.literal != "":
		ps.add(join(path, "signing_key"), "must be a reference, {file: PATH}, never the key itself")
	case !k.IsSecret():
		ps.add(join(path, "signing_key"), "must be set to {file: PATH}, a PEM private key (EC P-256, RSA of at least 2048 bits, or Ed25519), to sign the tokens of identity.jwt")
	case k.refProblem() != nil:
		ps.add(join(path, "signing_key"), "%v", k.refProblem())
	case !k.hasFile:
		ps.add(join(path, "signing_key"), "must be {file: PATH}: the key is re-read from its file when it is replaced, which an environment variable cannot do")
	}
	switch {
	case i.Issuer != "":
		if msg := issuerProblem(i.Issuer); msg != "" {
			ps.add(join(path, "issuer"), "%s", msg)
		}
	case resource == "":
		ps.add(join(path, "issuer"), "must be set when auth.resource is not, since it defaults to the origin of auth.resource")
	}
}

func (s *Server) validateIdentity(ps *Problems, srvPath string, signing *IdentitySigning) {
	for name := range s.Headers {
		if strings.HasPrefix(strings.ToLower(name), identityHeaderPrefix) {
			ps.add(join(join(srvPath, "headers"), name), "X-Mcpgate-* headers are reserved for the identity the gateway asserts (identity.headers) and cannot be configured")
		}
	}
	id := s.Identity
	if id == nil {
		return
	}
	path := join(srvPath, "identity")
	if s.IsStdio() {
		ps.add(path, "applies only to an HTTP server (url): a stdio server receives no HTTP request, so neither a token (jwt) nor identity headers (headers) can reach it; remove identity from this server")
		return
	}
	if id.JWT == nil && !id.Headers {
		ps.add(path, "sets neither jwt nor headers; add jwt: {} (a signed token) or headers: true (trusted networks only), or remove identity")
	}
	if id.JWT == nil {
		return
	}
	if signing.SigningKey == nil { // a faulty key is reported at identity.signing_key
		ps.add(join(path, "jwt"), "needs identity.signing_key at the top level, {file: PATH}, to sign the tokens")
	}
	if d := id.JWT.TTL.D(); d < minIdentityTTL || d > maxIdentityTTL {
		ps.add(join(join(path, "jwt"), "ttl"), "must be between %s and %s, got %s", Duration(minIdentityTTL), Duration(maxIdentityTTL), id.JWT.TTL)
	}
	if a := id.JWT.Audience; a != "" {
		if msg := audienceProblem(a); msg != "" {
			ps.add(join(join(path, "jwt"), "audience"), "%s", msg)
		}
	}
	for name := range s.Headers {
		if strings.EqualFold(name, "Authorization") {
			ps.add(join(join(srvPath, "headers"), name), "conflicts with identity.jwt, which sends the minted token as Authorization; remove one of them")
		}
	}
}

// audienceProblem checks a token audience: an absolute URI, such as
// https://tools.example.com or urn:example:tools.
func audienceProblem(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque == "") || !validScope(s) {
		return "must be an absolute URI without spaces, such as https://tools.example.com or urn:example:tools"
	}
	if u.Fragment != "" || strings.HasSuffix(s, "#") {
		return "must not contain a fragment"
	}
	return ""
}

// resolveSecrets checks that the signing key file is readable and holds a
// PEM private key. It keeps nothing: the gateway reads the key itself, and
// again whenever the file is replaced.
func (i *IdentitySigning) resolveSecrets(ps *Problems) {
	if !i.Enabled() {
		return
	}
	const path = "identity.signing_key"
	s, err := i.SigningKey.Resolve()
	if err != nil {
		ps.add(path, "%v", err)
		return
	}
	rest := []byte(s)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			ps.add(path, "file %s holds no PEM private key; write one with, for example: openssl genpkey -algorithm ed25519", i.SigningKey.file)
			return
		}
		if b.Type == "ENCRYPTED PRIVATE KEY" || b.Headers["Proc-Type"] != "" {
			ps.add(path, "file %s holds an encrypted private key; the gateway needs it unencrypted, readable only by its own user", i.SigningKey.file)
			return
		}
		if strings.HasSuffix(b.Type, "PRIVATE KEY") {
			return
		}
	}
}
