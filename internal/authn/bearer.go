package authn

import (
	"encoding/base64"
	"net/url"
	"strings"

	"github.com/go-jose/go-jose/v4/json"
)

const (
	// maxTokenBytes bounds a bearer token before any parsing. JWTs with
	// many groups reach a few KiB; nothing legitimate comes near this.
	maxTokenBytes = 16 << 10
	// maxAPIKeyBytes bounds an API key.
	maxAPIKeyBytes = 1 << 10
)

// bearerToken returns the token of an Authorization header value of the
// form "Bearer <b64token>" (RFC 6750, section 2.1; the scheme is
// case-insensitive).
func bearerToken(h string) (string, bool) {
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok := strings.TrimLeft(rest, " ")
	if tok == "" || len(tok) > maxTokenBytes {
		return "", false
	}
	// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
	body := strings.TrimRight(tok, "=")
	if body == "" {
		return "", false
	}
	for i := range len(body) {
		c := body[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			return "", false
		}
	}
	return tok, true
}

// queryHasAccessToken reports whether a raw query string carries an
// access_token parameter. It splits on & and ; itself, because
// url.ParseQuery drops pairs it cannot parse, and a token hidden in one
// must still be refused.
func queryHasAccessToken(raw string) bool {
	if raw == "" {
		return false
	}
	for part := range strings.FieldsFuncSeq(raw, func(r rune) bool { return r == '&' || r == ';' }) {
		key, _, _ := strings.Cut(part, "=")
		if k, err := url.QueryUnescape(key); err == nil {
			key = k
		}
		if strings.EqualFold(strings.TrimSpace(key), "access_token") {
			return true
		}
	}
	return false
}

// parseCompactJWT reports whether tok has the shape of a JWT in compact
// JWS serialization: three base64url parts (the signature may be empty, so
// that an alg=none token is recognized and then refused), the first a JSON
// object with a string "alg". It returns the decoded header and payload;
// neither is verified.
func parseCompactJWT(tok string) (header map[string]any, payload []byte, ok bool) {
	// The decoder skips newlines; the base64url alphabet has none.
	for i := range len(tok) {
		if c := tok[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return nil, nil, false
		}
	}
	h, rest, ok1 := strings.Cut(tok, ".")
	p, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || h == "" || p == "" || strings.Contains(sig, ".") {
		return nil, nil, false
	}
	hb, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return nil, nil, false
	}
	// go-jose's JSON rejects duplicate keys and matches names exactly, as
	// go-jose itself does when it parses the header again.
	if err := json.Unmarshal(hb, &header); err != nil || header == nil {
		return nil, nil, false
	}
	if alg, _ := header["alg"].(string); alg == "" {
		return nil, nil, false
	}
	if payload, err = base64.RawURLEncoding.DecodeString(p); err != nil {
		return nil, nil, false
	}
	return header, payload, true
}

// peekIssuer returns the unverified "iss" of a JWT payload, only to choose
// which issuer's keys verify it; "" if there is none.
func peekIssuer(payload []byte) string {
	var c struct {
		Issuer string `json:"iss"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return ""
	}
	return c.Issuer
}

// validAPIKey reports whether s can be an API key: visible ASCII without
// spaces, of bounded length.
func validAPIKey(s string) bool {
	if s == "" || len(s) > maxAPIKeyBytes {
		return false
	}
	for i := range len(s) {
		if c := s[i]; c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}
