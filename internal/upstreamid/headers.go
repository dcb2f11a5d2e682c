package upstreamid

import (
	"net/http"
	"strings"

	"github.com/mcpgate/mcpgate/internal/identity"
)

// The identity headers. They are unsigned: an upstream may trust them only
// when nothing but the gateway can reach it.
const (
	HeaderSubject = "X-Mcpgate-Subject"
	HeaderTenant  = "X-Mcpgate-Tenant"
	HeaderGroups  = "X-Mcpgate-Groups" // comma-separated
	HeaderClient  = "X-Mcpgate-Client" // the client's self-declared clientInfo.name
	HeaderSession = "X-Mcpgate-Session"
	HeaderTool    = "X-Mcpgate-Tool"
)

// Headers returns the identity headers for a call, leaving out empty ones.
// Values are percent-encoded: every byte outside visible ASCII (so every
// control character, space and non-ASCII byte), '%', and within the
// groups list ',' become %XX. Decode each value (each group) with
// url.PathUnescape.
func Headers(p identity.Principal, client, session, tool string) http.Header {
	h := make(http.Header, 6)
	set := func(name, v string) {
		if v != "" {
			h[name] = []string{escape(v, false)}
		}
	}
	set(HeaderSubject, p.Subject)
	set(HeaderTenant, p.Tenant)
	if len(p.Groups) > 0 {
		var b strings.Builder
		n := 0
		for _, g := range p.Groups {
			if g == "" {
				continue
			}
			if n > 0 {
				b.WriteByte(',')
			}
			b.WriteString(escape(g, true))
			n++
		}
		if n > 0 {
			h[HeaderGroups] = []string{b.String()}
		}
	}
	set(HeaderClient, client)
	set(HeaderSession, session)
	set(HeaderTool, tool)
	return h
}

// escape percent-encodes what a header value must not carry raw.
func escape(s string, comma bool) string {
	plain := func(c byte) bool { return c > 0x20 && c < 0x7f && c != '%' && (!comma || c != ',') }
	n := 0
	for i := range len(s) {
		if !plain(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+2*n)
	for i := range len(s) {
		c := s[i]
		if plain(c) {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hex[c>>4], hex[c&0xf])
	}
	return string(b)
}
