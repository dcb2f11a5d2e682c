package authn

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/identity"
)

// negativeTTL is how long a refusal is remembered, so that a burst of a
// revoked or made-up token costs the endpoint one call.
const negativeTTL = 5 * time.Second

// introspector checks opaque tokens at an RFC 7662 endpoint and caches
// the outcome by the token's SHA-256.
type introspector struct {
	url      string
	clientID string
	secret   string
	auds     []string
	ttl      time.Duration
	claims   config.Claims
	client   *http.Client
	now      func() time.Time
	log      *slog.Logger
	calls    singleflight.Group // one call per token in flight
	cache    verdictCache
}

func newIntrospector(c config.Introspection, client *http.Client, now func() time.Time, log *slog.Logger) (*introspector, error) {
	secret := c.ClientSecret.Resolved()
	if secret == "" {
		return nil, errors.New("authn: introspection client_secret is not resolved; call ResolveSecrets first")
	}
	return &introspector{
		url:      c.URL,
		clientID: c.ClientID,
		secret:   secret,
		auds:     slices.Clone(c.Audiences),
		ttl:      c.CacheTTL.D(),
		claims:   c.Claims,
		client:   client,
		now:      now,
		log:      log,
	}, nil
}

// authenticate checks tok, whose SHA-256 is key.
func (in *introspector) authenticate(ctx context.Context, a *Authenticator, tok string, key [sha256.Size]byte) (identity.Principal, bool, error) {
	v, ok := in.cache.get(key, in.now())
	if !ok {
		ch := in.calls.DoChan(string(key[:]), func() (any, error) {
			// Detached from ctx: other requests may wait on this call.
			cctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
			defer cancel()
			v, err := in.introspect(cctx, tok)
			if err != nil {
				in.log.Warn("introspection failed", "url", in.url, "error", err)
				return verdict{}, unavailable("introspection: %w", err)
			}
			in.cache.put(key, v, in.now())
			return v, nil
		})
		select {
		case res := <-ch:
			if res.Err != nil {
				return identity.Principal{}, false, res.Err
			}
			v = res.Val.(verdict)
		case <-ctx.Done():
			return identity.Principal{}, false, ctx.Err()
		}
	}
	if v.reason != "" {
		return a.refuse(ctx, "introspection", v.reason, slog.String("url", in.url))
	}
	return v.principal(), true, nil
}

// introspect asks the endpoint about tok. An error means the endpoint
// could not answer; a refusal is a verdict.
func (in *introspector) introspect(ctx context.Context, tok string) (verdict, error) {
	form := url.Values{"token": {tok}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.url, strings.NewReader(form.Encode()))
	if err != nil {
		return verdict{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749, section 2.3.1: both parts form-encoded, then Basic.
	req.SetBasicAuth(url.QueryEscape(in.clientID), url.QueryEscape(in.secret))
	body, err := do(in.client, req)
	if err != nil {
		return verdict{}, err
	}
	var resp map[string]any
	if err := json.Unmarshal(body, &resp); err != nil {
		return verdict{}, errors.New("response is not a JSON object")
	}
	return in.decide(resp, in.now()), nil
}

// decide turns an introspection response into a verdict, cached until the
// earlier of cache_ttl and the token's exp for a principal, and for
// negativeTTL (at most cache_ttl) for a refusal.
func (in *introspector) decide(resp map[string]any, now time.Time) verdict {
	refuse := func(reason string) verdict {
		return verdict{reason: reason, until: now.Add(min(negativeTTL, in.ttl))}
	}
	if active, _ := resp["active"].(bool); !active {
		return refuse("inactive token")
	}
	if use, ok := resp["token_use"]; ok && use != "access_token" {
		return refuse("not an access token")
	}
	exp, hasExp, ok := numericDate(resp, "exp")
	if !ok {
		return refuse("malformed exp")
	}
	if hasExp && !now.Before(exp) {
		return refuse("expired")
	}
	nbf, hasNbf, ok := numericDate(resp, "nbf")
	switch {
	case !ok:
		return refuse("malformed nbf")
	case hasNbf && now.Before(nbf):
		return refuse("not valid yet (nbf)")
	}
	if len(in.auds) > 0 && !audienceMatches(resp["aud"], in.auds) {
		return refuse("wrong audience")
	}
	p, reason := principalFromClaims("introspection", resp, in.claims)
	if reason != "" {
		return refuse(reason)
	}
	if p.Issuer == "" {
		p.Issuer = in.url // who vouched for the token, to keep subjects of different issuers apart
	}
	until := now.Add(in.ttl)
	if hasExp && exp.Before(until) {
		until = exp
	}
	return verdict{p: p, until: until}
}

// numericDate reads an optional NumericDate member: a JSON number of
// seconds since the epoch.
func numericDate(m map[string]any, name string) (t time.Time, present, ok bool) {
	v, present := m[name]
	if !present {
		return time.Time{}, false, true
	}
	f, isNum := v.(float64)
	if !isNum || math.IsNaN(f) || f < 0 || f > 1<<40 {
		return time.Time{}, true, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, true
}

// audienceMatches reports whether aud, a string or a list of strings,
// holds one of want.
func audienceMatches(aud any, want []string) bool {
	switch v := aud.(type) {
	case string:
		return slices.Contains(want, v)
	case []any:
		for _, a := range v {
			if s, ok := a.(string); ok && slices.Contains(want, s) {
				return true
			}
		}
	}
	return false
}
