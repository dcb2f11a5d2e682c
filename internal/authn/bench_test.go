package authn

import (
	"net/http"
	"net/http/httptest"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// BenchmarkAuthenticate measures the per-request cost once keys are
// cached: no fetch happens inside the loop.
func BenchmarkAuthenticate(b *testing.B) {
	rs := newRSA(b, 0, "rsa-1", jose.RS256)
	ec := newEC(b, "ec-1")
	p := newIdP(b, "", rs, ec)
	e := newEnv(b, jwtConfig(p.issuer, p.srv.URL+"/jwks", `
  api_keys:
    - {name: ci-bot, sha256: 840bd5f539f1d4fc7f18b521fb2b66e14c4ace79ee3093b654b48b721e6abb11}
`))
	keyReq := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/mcp", nil)
	keyReq.Header.Set("X-Api-Key", "k1-random-test-key-aaaaaaaaaaaaaaaaaaaaaaaa")
	for _, bc := range []struct {
		name string
		r    *http.Request
	}{
		{"RS256", bearerReq(mint(b, rs, p.claims(e.clk.Now(), resource), nil))},
		{"ES256", bearerReq(mint(b, ec, p.claims(e.clk.Now(), resource), nil))},
		{"api_key", keyReq},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if _, ok := e.auth(b, bc.r); !ok {
				b.Fatal("refused")
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, ok, _ := e.a.Authenticate(bc.r); !ok {
					b.Fatal("refused")
				}
			}
		})
	}
	if n := p.count("/jwks"); n != 1 {
		b.Errorf("%d JWKS fetches, want 1", n)
	}
}
