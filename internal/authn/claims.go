package authn

import (
	"strings"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/identity"
)

// principalFromClaims builds a principal from verified claims (a JWT
// payload or an introspection response) as c maps them. It returns a
// short reason instead when a mapped claim is missing or has the wrong
// type, or when a value holds control characters, which have no place in
// an identity that ends up in logs and headers.
func principalFromClaims(method string, m map[string]any, c config.Claims) (identity.Principal, string) {
	p := identity.Principal{Method: method}
	sub, _ := m[c.Subject].(string)
	if sub == "" {
		return identity.Principal{}, "no " + c.Subject + " claim"
	}
	p.Subject = sub
	p.Issuer, _ = m["iss"].(string)
	if c.Tenant != "" {
		if v, ok := m[c.Tenant]; ok {
			s, isString := v.(string)
			if !isString {
				return identity.Principal{}, c.Tenant + " claim is not a string"
			}
			p.Tenant = s
		}
	}
	var ok bool
	if c.Groups != "" {
		if p.Groups, ok = stringList(m[c.Groups], false); !ok {
			return identity.Principal{}, c.Groups + " claim is not a string or a list of strings"
		}
	}
	if c.Scopes != "" {
		if p.Scopes, ok = stringList(m[c.Scopes], true); !ok {
			return identity.Principal{}, c.Scopes + " claim is not a string or a list of strings"
		}
	}
	if hasControl(p.Subject) || hasControl(p.Issuer) || hasControl(p.Tenant) || anyControl(p.Groups) || anyControl(p.Scopes) {
		return identity.Principal{}, "claim value holds control characters"
	}
	return p, ""
}

// stringList reads a claim holding a list of strings or a single string;
// a string is split on spaces when split is set (the scope claim, RFC
// 8693 section 4.2), and is one element otherwise. Absent means empty.
func stringList(v any, split bool) ([]string, bool) {
	switch v := v.(type) {
	case nil:
		return nil, true
	case string:
		if split {
			return strings.Fields(v), true
		}
		if v == "" {
			return nil, true
		}
		return []string{v}, true
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			if s != "" {
				out = append(out, s)
			}
		}
		return out, true
	}
	return nil, false
}

func hasControl(s string) bool {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}

func anyControl(list []string) bool {
	for _, s := range list {
		if hasControl(s) {
			return true
		}
	}
	return false
}
