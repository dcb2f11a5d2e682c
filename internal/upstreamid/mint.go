package upstreamid

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Claims are what a minted token asserts. In the token they are iss, aud,
// sub, tenant, groups, mcp_client, mcp_session and mcp_tool; empty ones
// are left out.
type Claims struct {
	Issuer   string
	Audience string // the one upstream the token is for
	Subject  string
	Tenant   string
	Groups   []string
	Client   string // the MCP client's self-declared clientInfo.name
	Session  string // the gateway's session ID
	Tool     string // the tool called, on tools/call
	// TTL is the token's lifetime; zero or more than MaxTTL means MaxTTL.
	TTL time.Duration
}

// payload is the JSON claims set of a minted token.
type payload struct {
	Issuer    string   `json:"iss"`
	Audience  string   `json:"aud"`
	Subject   string   `json:"sub,omitempty"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf"`
	Expiry    int64    `json:"exp"`
	ID        string   `json:"jti"`
	Tenant    string   `json:"tenant,omitempty"`
	Groups    []string `json:"groups,omitempty"`
	Client    string   `json:"mcp_client,omitempty"`
	Session   string   `json:"mcp_session,omitempty"`
	Tool      string   `json:"mcp_tool,omitempty"`
}

// Mint returns a signed JWT asserting c, and its expiry. The same claims
// asked for again within the first half of a token's lifetime get the same
// token, so that a busy session does not sign on every call.
func (s *Signer) Mint(c Claims) (string, time.Time, error) {
	if c.Issuer == "" || c.Audience == "" {
		return "", time.Time{}, errors.New("upstreamid: a token needs an issuer and an audience")
	}
	ttl := c.TTL
	if ttl <= 0 || ttl > MaxTTL {
		ttl = MaxTTL
	}
	ttl = max(ttl.Truncate(time.Second), time.Second)
	s.maybeReload()
	k := s.state.Load().current
	key := cacheKey(k.kid, &c, ttl)
	now := time.Now()
	if tok, exp, ok := s.cache.get(key, now); ok {
		return tok, exp, nil
	}
	iat := now.Truncate(time.Second)
	exp := iat.Add(ttl)
	body, err := json.Marshal(payload{
		Issuer: c.Issuer, Audience: c.Audience, Subject: c.Subject,
		IssuedAt: iat.Unix(), NotBefore: iat.Unix(), Expiry: exp.Unix(), ID: rand.Text(),
		Tenant: c.Tenant, Groups: c.Groups, Client: c.Client, Session: c.Session, Tool: c.Tool,
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("upstreamid: encoding claims: %w", err)
	}
	jws, err := k.signer.Sign(body)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("upstreamid: signing: %w", err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("upstreamid: serializing: %w", err)
	}
	s.cache.put(key, tok, exp, iat.Add(ttl/2))
	return tok, exp, nil
}

// cacheKey identifies a token by everything it asserts and the key that
// signs it. Parts are length-prefixed, so no value can forge a separator.
func cacheKey(kid string, c *Claims, ttl time.Duration) string {
	var b strings.Builder
	add := func(s string) {
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	add(kid)
	add(c.Issuer)
	add(c.Audience)
	add(c.Subject)
	add(c.Tenant)
	add(c.Client)
	add(c.Session)
	add(c.Tool)
	add(strconv.FormatInt(int64(ttl), 10))
	b.WriteString(strconv.Itoa(len(c.Groups)))
	for _, g := range c.Groups {
		add(g)
	}
	return b.String()
}

// maxCachedTokens bounds the token cache.
const maxCachedTokens = 4096

// tokenCache holds recently minted tokens for reuse.
type tokenCache struct {
	mu sync.Mutex // guards m
	m  map[string]cachedToken
}

type cachedToken struct {
	token      string
	exp        time.Time
	reuseUntil time.Time
}

func (c *tokenCache) get(key string, now time.Time) (string, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.m[key]
	if !ok || !now.Before(t.reuseUntil) {
		return "", time.Time{}, false
	}
	return t.token, t.exp, true
}

func (c *tokenCache) put(key, token string, exp, reuseUntil time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]cachedToken)
	}
	if len(c.m) >= maxCachedTokens {
		now := time.Now()
		for k, t := range c.m {
			if !now.Before(t.reuseUntil) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxCachedTokens {
			clear(c.m)
		}
	}
	c.m[key] = cachedToken{token: token, exp: exp, reuseUntil: reuseUntil}
}

// clear forgets every token, after a key rotation.
func (c *tokenCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
}
