package authn

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
)

// FuzzBearerToken checks the Authorization header parser: what it returns
// is a bounded token of b64token characters taken from the header.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{
		"Bearer abc", "bearer a.b.c", "Bearer  x==", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz",
		"Bearer a b", "Bearer =", "Bearer a=b", "Bearer \x00", "BEARER eyJhbGciOiJub25lIn0.e30.",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, ok := bearerToken(h)
		if !ok {
			if tok != "" {
				t.Fatalf("refused header %q returned token %q", h, tok)
			}
			return
		}
		if tok == "" || len(tok) > maxTokenBytes || !strings.HasSuffix(h, tok) || !strings.EqualFold(h[:6], "bearer") {
			t.Fatalf("bearerToken(%q) = %q", h, tok)
		}
		if strings.ContainsAny(tok, " \t\r\n,;\"\x00") || strings.Contains(strings.TrimRight(tok, "="), "=") {
			t.Fatalf("token %q holds characters outside b64token", tok)
		}
	})
}

// FuzzParseCompactJWT checks the token shape detector: a token it accepts
// has exactly three parts, a header with a string alg, and the payload it
// returns is the second part decoded.
func FuzzParseCompactJWT(f *testing.F) {
	for _, s := range []string{
		"eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcCJ9.c2ln",
		"eyJhbGciOiJub25lIn0.e30.",
		"eyJhbGciOjF9.e30.",
		"eyJhbGciOiJSUzI1NiIsImFsZyI6IkhTMjU2In0.e30.",
		"e30.e30.e30", "a.b.c.d.e", "...", "opaque-token", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		hdr, payload, ok := parseCompactJWT(tok)
		if !ok {
			return
		}
		if strings.Count(tok, ".") != 2 {
			t.Fatalf("accepted %q with %d dots", tok, strings.Count(tok, "."))
		}
		if alg, _ := hdr["alg"].(string); alg == "" {
			t.Fatalf("accepted header without alg: %v", hdr)
		}
		// Decoding is as lenient as go-jose's (non-zero trailing bits
		// pass), so compare lengths rather than text.
		if part := strings.Split(tok, ".")[1]; len(b64(payload)) != len(part) {
			t.Fatalf("payload %q is not the decoding of %q", payload, part)
		}
		_ = peekIssuer(payload)
	})
}

// FuzzQueryHasAccessToken checks that no spelling of an access_token
// parameter that net/url would decode slips through.
func FuzzQueryHasAccessToken(f *testing.F) {
	for _, s := range []string{
		"access_token=x", "a=1&access_token=x", "a=1;access_token=x", "access%5Ftoken=x",
		"access_token", "x=access_token", "access_tokens=x", "%zz&access_token=1", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got := queryHasAccessToken(raw)
		if q, _ := parseQueryLoose(raw); q && !got {
			t.Fatalf("queryHasAccessToken(%q) = false, but net/url finds access_token", raw)
		}
	})
}

// FuzzIntrospectionResponse checks that any response body yields a
// verdict that is either a refusal or a principal with a subject, and
// never outlives the exp it carries.
func FuzzIntrospectionResponse(f *testing.F) {
	for _, s := range []string{
		`{"active":true,"sub":"a","exp":1e10,"scope":"x y","groups":["g"]}`,
		`{"active":true,"sub":"a","exp":-1}`,
		`{"active":true,"sub":"a","exp":1e300}`,
		`{"active":true,"sub":"a","groups":"g","org":5}`,
		`{"active":false}`, `[]`, `null`, `{"active":true,"sub":"\u0000"}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Unix(1_800_000_000, 0)
	in := &introspector{ttl: time.Minute, claims: config.Claims{Subject: "sub", Tenant: "org", Groups: "groups", Scopes: "scope"}}
	f.Fuzz(func(t *testing.T, body []byte) {
		var resp map[string]any
		if json.Unmarshal(body, &resp) != nil {
			return
		}
		v := in.decide(resp, now)
		if v.reason == "" {
			if v.p.Subject == "" || v.p.Method != "introspection" {
				t.Fatalf("principal without subject: %+v", v.p)
			}
			if exp, present, _ := numericDate(resp, "exp"); present && v.until.After(exp) {
				t.Fatalf("cached until %v, past exp %v", v.until, exp)
			}
		}
		if v.until.After(now.Add(time.Minute)) {
			t.Fatalf("cached until %v, past cache_ttl", v.until)
		}
	})
}

// parseQueryLoose reports whether net/url's parser sees an access_token
// key in raw, under any case.
func parseQueryLoose(raw string) (bool, error) {
	q, err := url.ParseQuery(raw)
	for k := range q {
		if strings.EqualFold(strings.TrimSpace(k), "access_token") {
			return true, err
		}
	}
	return false, err
}
