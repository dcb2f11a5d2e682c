package authn

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/json"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/identity"
)

// refusedHeaders are JOSE header parameters that would let a token choose
// its own verification key (jwk, jku, x5u, x5c) or change how it is
// processed (crit, and b64 from RFC 7797, which is not for JWTs). Keys come
// only from the issuer's JWKS, so a token carrying any of them is refused
// outright rather than having them ignored.
var refusedHeaders = []string{"jwk", "jku", "x5u", "x5c", "crit", "b64"}

// jwtIssuer verifies the JWTs of one issuer.
type jwtIssuer struct {
	issuer    string
	audiences jwt.Audience
	algs      []jose.SignatureAlgorithm
	leeway    time.Duration
	claims    config.Claims
	keys      *keySource
}

func newJWTIssuer(c config.JWTIssuer, keys *keySource) *jwtIssuer {
	is := &jwtIssuer{
		issuer:    c.Issuer,
		audiences: jwt.Audience(c.Audiences),
		leeway:    c.Leeway.D(),
		claims:    c.Claims,
		keys:      keys,
	}
	for _, alg := range c.Algorithms {
		is.algs = append(is.algs, jose.SignatureAlgorithm(alg))
	}
	return is
}

// authenticate verifies tok, whose SHA-256 is sum, whose unverified header
// is hdr and whose unverified iss named this issuer. A verified token is
// remembered in a.verified.
func (is *jwtIssuer) authenticate(ctx context.Context, a *Authenticator, tok string, sum [sha256.Size]byte, hdr map[string]any) (identity.Principal, bool, error) {
	refuse := func(reason string) (identity.Principal, bool, error) {
		return a.refuse(ctx, "jwt", reason, slog.String("issuer", is.issuer))
	}
	for _, name := range refusedHeaders {
		if _, ok := hdr[name]; ok {
			return refuse("header " + name + " is not accepted")
		}
	}
	// The allowlist goes to the parser: a token whose alg is not listed
	// (none, any HMAC, anything unconfigured) fails here, before any key
	// is looked up.
	sig, err := jose.ParseSignedCompact(tok, is.algs)
	if err != nil {
		if _, ok := errors.AsType[*jose.ErrUnexpectedSignatureAlgorithm](err); ok {
			return refuse("algorithm not allowed")
		}
		return refuse("malformed token")
	}
	h := sig.Signatures[0].Header
	set, keys, err := is.keys.lookup(ctx, h.KeyID, jose.SignatureAlgorithm(h.Algorithm))
	if err != nil {
		return identity.Principal{}, false, err
	}
	if len(keys) == 0 {
		return refuse("no key for kid and alg")
	}
	var payload []byte
	for _, k := range keys {
		if payload, err = sig.Verify(k.Key); err == nil {
			break
		}
	}
	if err != nil {
		return refuse("bad signature")
	}

	var std jwt.Claims
	var raw map[string]any
	if json.Unmarshal(payload, &std) != nil || json.Unmarshal(payload, &raw) != nil {
		return refuse("malformed claims")
	}
	if std.Expiry == nil {
		return refuse("no exp claim")
	}
	now := a.now()
	// RFC 7519: now must be before exp; go-jose also accepts the instant
	// exp+leeway itself.
	if !now.Before(std.Expiry.Time().Add(is.leeway)) {
		return refuse("expired")
	}
	err = std.ValidateWithLeeway(jwt.Expected{
		Issuer:      is.issuer,
		AnyAudience: is.audiences,
		Time:        now,
	}, is.leeway)
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return refuse("expired")
	case errors.Is(err, jwt.ErrNotValidYet):
		return refuse("not valid yet (nbf)")
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return refuse("issued in the future (iat)")
	case errors.Is(err, jwt.ErrInvalidAudience):
		return refuse("wrong audience")
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return refuse("wrong issuer")
	case err != nil:
		return refuse("invalid claims")
	}
	p, reason := principalFromClaims("jwt", raw, is.claims)
	if reason != "" {
		return refuse(reason)
	}
	// nbf and iat have passed and stay passed; exp bounds the verdict.
	v := verdict{p: p, until: std.Expiry.Time().Add(is.leeway), keys: set, src: is.keys}
	a.verified.put(sum, v, now)
	return v.principal(), true, nil
}
