// Package identity owns the Principal: who is calling, as established by
// authentication, and how it travels through a request's context.
package identity

import (
	"context"
	"strconv"
	"strings"
)

// Principal is an authenticated caller. The zero value is not a valid
// principal; use Anonymous for unauthenticated loopback callers.
type Principal struct {
	// Method names how the principal was established: "anonymous", "jwt",
	// "introspection", "api_key" or "mtls".
	Method string
	// Issuer is who vouched for the subject (a token issuer, the
	// introspection endpoint); empty for API keys, mTLS and anonymous.
	Issuer  string
	Subject string
	Tenant  string
	Groups  []string
	Scopes  []string
}

// Anonymous is the single principal shared by every unauthenticated caller
// when no authentication is configured.
func Anonymous() Principal {
	return Principal{Method: "anonymous", Subject: "anonymous"}
}

// Key identifies the principal for binding sessions and keying limits. Two
// principals with the same key are the same caller.
func (p Principal) Key() string {
	var b strings.Builder
	// Length-prefixed parts: no value can forge a separator.
	for _, part := range []string{p.Method, p.Issuer, p.Tenant, p.Subject} {
		b.WriteString(strconv.Itoa(len(part)))
		b.WriteByte(':')
		b.WriteString(part)
	}
	return b.String()
}

// String is the principal as logged: method and subject, never credentials.
func (p Principal) String() string {
	if p.Method == "" {
		return ""
	}
	return p.Method + ":" + p.Subject
}

type contextKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, contextKey{}, p)
}

// FromContext returns the principal in ctx, if any.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(contextKey{}).(Principal)
	return p, ok
}
