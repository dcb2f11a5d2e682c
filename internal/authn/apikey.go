package authn

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"slices"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/identity"
)

// apiKey is a configured key: the SHA-256 to compare with and the
// principal it yields.
type apiKey struct {
	sum [sha256.Size]byte
	p   identity.Principal
}

// newAPIKey converts a validated configuration entry.
func newAPIKey(c config.APIKey) apiKey {
	k := apiKey{p: identity.Principal{
		Method:  "api_key",
		Subject: c.Name,
		Tenant:  c.Tenant,
		Groups:  slices.Clone(c.Groups),
		Scopes:  slices.Clone(c.Scopes),
	}}
	_, _ = hex.Decode(k.sum[:], []byte(c.SHA256)) // validated: 64 hex digits
	return k
}

// matchAPIKey compares sum, the SHA-256 of a presented key computed once,
// with every configured hash in constant time, visiting them all whatever
// matches, so that timing reveals neither the key nor which entry it is.
func (a *Authenticator) matchAPIKey(sum [sha256.Size]byte) (identity.Principal, bool) {
	match := -1
	for i := range a.apiKeys {
		if subtle.ConstantTimeCompare(sum[:], a.apiKeys[i].sum[:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return identity.Principal{}, false
	}
	p := a.apiKeys[match].p
	p.Groups, p.Scopes = slices.Clone(p.Groups), slices.Clone(p.Scopes)
	return p, true
}

// apiKeyHeader authenticates the value of an X-Api-Key header.
func (a *Authenticator) apiKeyHeader(ctx context.Context, key string) (identity.Principal, bool, error) {
	if len(a.apiKeys) == 0 {
		return a.refuse(ctx, "api_key", "api keys are not configured")
	}
	if !validAPIKey(key) {
		return a.refuse(ctx, "api_key", "malformed key")
	}
	if p, ok := a.matchAPIKey(tokenHash(key)); ok {
		return p, true, nil
	}
	return a.refuse(ctx, "api_key", "unknown key")
}
