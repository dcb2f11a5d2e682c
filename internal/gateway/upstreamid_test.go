package gateway_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/internal/gateway"
)

// identityRecorder is an upstream MCP server that records, for every
// request, the HTTP verb, the JSON-RPC method and the headers.
type identityRecorder struct {
	mu   sync.Mutex
	reqs []upstreamRequest
	URL  string
}

type upstreamRequest struct {
	verb   string
	method string // the JSON-RPC method of a POST
	header http.Header
}

func startIdentityRecorder(t *testing.T) *identityRecorder {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "idrec", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in struct {
		Text string `json:"text"`
	}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	rec := &identityRecorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct {
			Method string `json:"method"`
		}
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			json.Unmarshal(body, &msg)
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, upstreamRequest{verb: r.Method, method: msg.Method, header: r.Header.Clone()})
		rec.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	rec.URL = srv.URL + "/mcp"
	return rec
}

func (u *identityRecorder) requests() []upstreamRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]upstreamRequest(nil), u.reqs...)
}

// last returns the most recent request matching verb and method.
func (u *identityRecorder) last(verb, method string) (upstreamRequest, bool) {
	reqs := u.requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].verb == verb && reqs[i].method == method {
			return reqs[i], true
		}
	}
	return upstreamRequest{}, false
}

// waitFor polls until the upstream has seen a request of verb.
func (u *identityRecorder) waitFor(t *testing.T, verb string) upstreamRequest {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if r, ok := u.last(verb, ""); ok {
			return r
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the upstream saw no %s request", verb)
	return upstreamRequest{}
}

// writePEMKey writes key as PKCS#8 PEM, replacing path atomically.
func writePEMKey(t *testing.T, path string, key any) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// fetchJWKS gets the gateway's JWKS over HTTP.
func fetchJWKS(t *testing.T, gwURL string) (jose.JSONWebKeySet, []byte) {
	t.Helper()
	resp, err := http.Get(gwURL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("JWKS: HTTP %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatalf("JWKS %s: %v", raw, err)
	}
	return set, raw
}

// upstreamToken is a minted token as an upstream verifies it.
type upstreamToken struct {
	kid    string
	std    jwt.Claims
	claims map[string]any
}

// verifyUpstreamToken checks the Bearer token of an upstream request
// against set, as an upstream would: signature by the kid's key, issuer,
// audience and time.
func verifyUpstreamToken(t *testing.T, set jose.JSONWebKeySet, r upstreamRequest, iss, aud string) upstreamToken {
	t.Helper()
	authz := r.header.Values("Authorization")
	if len(authz) != 1 || !strings.HasPrefix(authz[0], "Bearer ") {
		t.Fatalf("%s %s: Authorization = %q, want one minted Bearer token", r.verb, r.method, authz)
	}
	tok, err := jwt.ParseSigned(strings.TrimPrefix(authz[0], "Bearer "), []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA})
	if err != nil {
		t.Fatalf("%s %s: token does not parse: %v", r.verb, r.method, err)
	}
	if typ := tok.Headers[0].ExtraHeaders["typ"]; typ != "JWT" {
		t.Errorf("typ = %v, want JWT", typ)
	}
	kid := tok.Headers[0].KeyID
	keys := set.Key(kid)
	if len(keys) != 1 {
		t.Fatalf("%s %s: kid %q is not in the gateway's JWKS", r.verb, r.method, kid)
	}
	v := upstreamToken{kid: kid}
	if err := tok.Claims(keys[0].Key, &v.std, &v.claims); err != nil {
		t.Fatalf("%s %s: signature does not verify against the JWKS: %v", r.verb, r.method, err)
	}
	if err := v.std.ValidateWithLeeway(jwt.Expected{Issuer: iss, AnyAudience: jwt.Audience{aud}, Time: time.Now()}, 0); err != nil {
		t.Fatalf("%s %s: claims: %v (%v)", r.verb, r.method, err, v.claims)
	}
	if life := v.std.Expiry.Time().Sub(v.std.IssuedAt.Time()); life > 300*time.Second || life <= 0 {
		t.Errorf("exp - iat = %v, want at most 300s", life)
	}
	return v
}

// TestUpstreamIdentity: an upstream configured for identity receives a
// token minted by the gateway, which verifies against the gateway's JWKS,
// and identity headers, for every request of the session; never the
// client's own credential or spoofed identity headers. A replaced key file
// takes over without a restart while earlier tokens keep verifying.
func TestUpstreamIdentity(t *testing.T) {
	const (
		apiKey   = "upstream-identity-api-key-0123456789"
		audience = "https://rec.example.test"
		issuer   = "https://mcp.example.test" // the origin of testResource
	)
	up := startIdentityRecorder(t)
	keyPath := filepath.Join(t.TempDir(), "signing.pem")
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	writePEMKey(t, keyPath, ecKey)
	sum := sha256.Sum256([]byte(apiKey))
	gw := startGateway(t, fmt.Sprintf(`listen: 127.0.0.1:0
auth:
  resource: %s
  api_keys:
    - {name: ci-bot, sha256: %q, tenant: acme, groups: [ci, "dev ops"]}
identity:
  signing_key: {file: %s}
servers:
  rec:
    url: %s
    identity:
      jwt: {audience: %s, ttl: 2m}
      headers: true
`, testResource, hex.EncodeToString(sum[:]), keyPath, up.URL, audience), gateway.Options{})

	spoof := map[string]string{
		"X-Api-Key":         apiKey,
		"X-Mcpgate-Subject": "root",
		"X-Mcpgate-Tenant":  "evil",
		"X-Mcpgate-Groups":  "admins",
		"X-Mcpgate-Tool":    "rm",
	}
	c := &authClient{t: t, url: gw.URL + "/mcp", hdr: spoof}
	if status := c.initialize(); status != 200 {
		t.Fatalf("initialize: HTTP %d", status)
	}
	status, body := c.post(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"rec__echo","arguments":{"text":"hi"}}}`)
	if status != 200 || !strings.Contains(body, `"hi"`) {
		t.Fatalf("tools/call: HTTP %d %s", status, body)
	}
	up.waitFor(t, http.MethodGet) // the session's standalone stream

	set, raw := fetchJWKS(t, gw.URL)
	for _, private := range []string{`"d"`, `"p"`, `"q"`} {
		if bytes.Contains(raw, []byte(private)) {
			t.Fatalf("the JWKS publishes a private parameter %s: %s", private, raw)
		}
	}

	var firstKID string
	var oldCall upstreamRequest
	t.Run("every upstream request carries a verifiable token and identity headers", func(t *testing.T) {
		reqs := up.requests()
		if len(reqs) < 4 {
			t.Fatalf("the upstream saw %d requests", len(reqs))
		}
		sawCall := false
		for _, r := range reqs {
			tok := verifyUpstreamToken(t, set, r, issuer, audience)
			if firstKID == "" {
				firstKID = tok.kid
			}
			wantTool := ""
			if r.method == "tools/call" {
				wantTool, sawCall, oldCall = "echo", true, r
			}
			for claim, want := range map[string]any{
				"sub": "ci-bot", "tenant": "acme", "mcp_client": "auth-test", "mcp_session": c.sid,
			} {
				if got := tok.claims[claim]; got != want {
					t.Errorf("%s %s: claim %s = %v, want %v", r.verb, r.method, claim, got, want)
				}
			}
			if got, _ := tok.claims["mcp_tool"].(string); got != wantTool {
				t.Errorf("%s %s: claim mcp_tool = %q, want %q", r.verb, r.method, got, wantTool)
			}
			if g, _ := json.Marshal(tok.claims["groups"]); string(g) != `["ci","dev ops"]` {
				t.Errorf("%s %s: claim groups = %s", r.verb, r.method, g)
			}
			for name, want := range map[string]string{
				"X-Mcpgate-Subject": "ci-bot", "X-Mcpgate-Tenant": "acme", "X-Mcpgate-Groups": "ci,dev%20ops",
				"X-Mcpgate-Client": "auth-test", "X-Mcpgate-Session": c.sid, "X-Mcpgate-Tool": wantTool,
			} {
				if got := r.header.Values(name); want == "" && len(got) != 0 || want != "" && (len(got) != 1 || got[0] != want) {
					t.Errorf("%s %s: %s = %q, want %q", r.verb, r.method, name, got, want)
				}
			}
		}
		if !sawCall {
			t.Error("the upstream saw no tools/call")
		}
	})

	t.Run("the client's credential and spoofed identity never reach the upstream", func(t *testing.T) {
		bearerClient := &authClient{t: t, url: gw.URL + "/servers/rec/mcp", hdr: map[string]string{"Authorization": "Bearer " + apiKey, "X-Mcpgate-Subject": "root"}}
		if status := bearerClient.initialize(); status != 200 {
			t.Fatalf("initialize with Bearer: HTTP %d", status)
		}
		if status, _ := bearerClient.post(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}`); status != 200 {
			t.Fatalf("tools/call with Bearer: HTTP %d", status)
		}
		for _, r := range up.requests() {
			for name, vs := range r.header {
				for _, v := range vs {
					if strings.Contains(v, apiKey) {
						t.Errorf("%s %s: the client's API key reached the upstream in %s", r.verb, r.method, name)
					}
					for _, bad := range []string{"root", "evil", "admins", "rm"} {
						if strings.HasPrefix(name, "X-Mcpgate-") && v == bad {
							t.Errorf("%s %s: spoofed %s: %s reached the upstream", r.verb, r.method, name, v)
						}
					}
				}
			}
			verifyUpstreamToken(t, set, r, issuer, audience)
		}
	})

	t.Run("rotating the key file changes the kid; earlier tokens still verify", func(t *testing.T) {
		_, edKey, _ := ed25519.GenerateKey(rand.Reader)
		writePEMKey(t, keyPath, edKey)
		// The gateway looks at the file at most every 5s, when it mints.
		var newCall upstreamRequest
		var newKID string
		deadline := time.Now().Add(15 * time.Second)
		for i := 3; newKID == "" || newKID == firstKID; i++ {
			if time.Now().After(deadline) {
				t.Fatalf("the kid did not change within 15s of replacing the key file (still %s)", firstKID)
			}
			time.Sleep(250 * time.Millisecond)
			if status, _ := c.post(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"rec__echo","arguments":{"text":"r"}}}`, i)); status != 200 {
				t.Fatalf("tools/call: HTTP %d", status)
			}
			newCall, _ = up.last(http.MethodPost, "tools/call")
			tok, _ := jwt.ParseSigned(strings.TrimPrefix(newCall.header.Get("Authorization"), "Bearer "), []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
			if tok != nil {
				newKID = tok.Headers[0].KeyID
			}
		}
		set, _ := fetchJWKS(t, gw.URL)
		if len(set.Key(firstKID)) != 1 || len(set.Key(newKID)) != 1 {
			t.Fatalf("JWKS after rotation lacks the old (%s) or the new (%s) key", firstKID, newKID)
		}
		if tok := verifyUpstreamToken(t, set, newCall, issuer, audience); tok.kid != newKID {
			t.Errorf("new token kid = %s", tok.kid)
		}
		if tok := verifyUpstreamToken(t, set, oldCall, issuer, audience); tok.kid != firstKID {
			t.Errorf("old token kid = %s", tok.kid)
		}
	})

	t.Run("ending the session: the upstream DELETE carries the identity too", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodDelete, c.url, nil)
		req.Header.Set("Mcp-Session-Id", c.sid)
		req.Header.Set("X-Api-Key", apiKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE: HTTP %d", resp.StatusCode)
		}
		set, _ := fetchJWKS(t, gw.URL)
		del := up.waitFor(t, http.MethodDelete)
		if tok := verifyUpstreamToken(t, set, del, issuer, audience); tok.claims["mcp_session"] != c.sid {
			t.Errorf("DELETE token claims = %v", tok.claims)
		}
	})
}

// TestJWKSWithoutSigningKey: no key, no JWKS.
func TestJWKSWithoutSigningKey(t *testing.T) {
	up := startIdentityRecorder(t)
	gw := startGateway(t, fmt.Sprintf("listen: 127.0.0.1:0\nservers:\n  rec:\n    url: %s\n", up.URL), gateway.Options{})
	resp, err := http.Get(gw.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("HTTP %d, want 404", resp.StatusCode)
	}
	c := &authClient{t: t, url: gw.URL + "/mcp"}
	if status := c.initialize(); status != 200 {
		t.Fatalf("initialize: HTTP %d", status)
	}
	for _, r := range up.requests() {
		for name := range r.header {
			if name == "Authorization" || strings.HasPrefix(name, "X-Mcpgate-") {
				t.Errorf("%s %s: an upstream without identity got %s", r.verb, r.method, name)
			}
		}
	}
}
