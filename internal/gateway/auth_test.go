package gateway_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/authn/authntest"
	"github.com/mcpgate/mcpgate/internal/gateway"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const testResource = "https://mcp.example.test/mcp"

// headerRecorder is an upstream MCP server that records the headers of
// every request it receives.
type headerRecorder struct {
	mu      sync.Mutex
	headers []http.Header
	URL     string
}

func startHeaderRecorder(t *testing.T) *headerRecorder {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "rec", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in struct {
		Text string `json:"text"`
	}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	rec := &headerRecorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.headers = append(rec.headers, r.Header.Clone())
		rec.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	rec.URL = srv.URL + "/mcp"
	return rec
}

// sawAnywhere reports whether any recorded header value contains s.
func (h *headerRecorder) sawAnywhere(s string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, hdr := range h.headers {
		for _, vs := range hdr {
			for _, v := range vs {
				if strings.Contains(v, s) {
					return true
				}
			}
		}
	}
	return false
}

func (h *headerRecorder) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.headers)
}

// authClient is a raw MCP client presenting fixed credentials.
type authClient struct {
	t    *testing.T
	url  string
	hdr  map[string]string
	sid  string
	last *http.Response
}

func (c *authClient) post(body string) (int, string) {
	c.t.Helper()
	req, _ := http.NewRequest("POST", c.url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if c.sid != "" {
		req.Header.Set("Mcp-Session-Id", c.sid)
	}
	for k, v := range c.hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	c.last = resp
	return resp.StatusCode, string(b)
}

const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"auth-test","version":"1"}}}`

func (c *authClient) initialize() int {
	c.t.Helper()
	status, _ := c.post(initBody)
	if status == 200 {
		c.sid = c.last.Header.Get("Mcp-Session-Id")
		c.post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	}
	return status
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

// TestAuthAgainstRealProvider runs the gateway as an OAuth resource server
// for a real OpenID Provider: client-credentials JWTs and opaque tokens,
// and the ways they must be refused.
func TestAuthAgainstRealProvider(t *testing.T) {
	op := authntest.Start(t, authntest.Options{})
	op.AddClient("alice", "alice-secret", authntest.ClientOptions{Audience: []string{testResource}, Scopes: []string{"mcp.tools"}, Subject: "alice", Tenant: "acme"})
	op.AddClient("bob", "bob-secret", authntest.ClientOptions{Audience: []string{testResource}, Scopes: []string{"mcp.tools"}, Subject: "bob"})
	op.AddClient("elsewhere", "e-secret", authntest.ClientOptions{Audience: []string{"https://other.example.test/mcp"}, Scopes: []string{"mcp.tools"}})
	op.AddClient("noscope", "n-secret", authntest.ClientOptions{Audience: []string{testResource}, Scopes: []string{"other"}})
	op.AddClient("opaque", "o-secret", authntest.ClientOptions{Audience: []string{testResource}, Scopes: []string{"mcp.tools"}, Opaque: true, Subject: "svc"})
	otherOP := authntest.Start(t, authntest.Options{})
	otherOP.AddClient("alice", "alice-secret", authntest.ClientOptions{Audience: []string{testResource}, Scopes: []string{"mcp.tools"}, Subject: "alice"})

	introID, introSecret := op.IntrospectionClient()
	t.Setenv("MCPGATE_TEST_INTROSPECT_SECRET", introSecret)
	up := startHeaderRecorder(t)
	gw := startGateway(t, fmt.Sprintf(`listen: 127.0.0.1:0
auth:
  resource: %[1]s
  authorization_servers: [%[2]s]
  scopes_supported: [mcp.tools]
  required_scopes: [mcp.tools]
  jwt:
    - issuer: %[2]s
      audiences: [%[1]s]
      leeway: 0s
      claims: {subject: sub, tenant: tid, groups: groups, scopes: scope}
  introspection:
    - url: %[3]s
      client_id: %[4]s
      client_secret: {env: MCPGATE_TEST_INTROSPECT_SECRET}
      audiences: [%[1]s]
      cache_ttl: 0s
servers:
  rec:
    url: %[5]s
`, testResource, op.Issuer, op.IntrospectionURL(), introID, up.URL), gateway.Options{})

	aliceTok := op.Token(t, "alice", "alice-secret", "mcp.tools")

	t.Run("no credentials: 401 with resource metadata", func(t *testing.T) {
		c := &authClient{t: t, url: gw.URL + "/servers/rec/mcp"}
		if status := c.initialize(); status != 401 {
			t.Fatalf("HTTP %d, want 401", status)
		}
		wa := c.last.Header.Get("WWW-Authenticate")
		want := `resource_metadata="https://mcp.example.test/.well-known/oauth-protected-resource/servers/rec/mcp"`
		if !strings.HasPrefix(wa, "Bearer ") || !strings.Contains(wa, want) || !strings.Contains(wa, `scope="mcp.tools"`) || strings.Contains(wa, "error=") {
			t.Fatalf("WWW-Authenticate = %q", wa)
		}
		resp, err := http.Get(gw.URL + "/.well-known/oauth-protected-resource/servers/rec/mcp")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var md struct {
			Resource             string   `json:"resource"`
			AuthorizationServers []string `json:"authorization_servers"`
			ScopesSupported      []string `json:"scopes_supported"`
		}
		json.NewDecoder(resp.Body).Decode(&md)
		if md.Resource != "https://mcp.example.test/servers/rec/mcp" || len(md.AuthorizationServers) != 1 || md.AuthorizationServers[0] != op.Issuer {
			t.Fatalf("metadata = %+v", md)
		}
		resp2, _ := http.Get(gw.URL + "/.well-known/oauth-protected-resource/mcp")
		json.NewDecoder(resp2.Body).Decode(&md)
		resp2.Body.Close()
		if md.Resource != testResource {
			t.Fatalf("aggregate metadata resource = %q", md.Resource)
		}
	})

	t.Run("JWT: calls work and the token never reaches the upstream", func(t *testing.T) {
		c := &authClient{t: t, url: gw.URL + "/mcp", hdr: bearer(aliceTok)}
		if status := c.initialize(); status != 200 {
			t.Fatalf("initialize: HTTP %d", status)
		}
		status, body := c.post(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"rec__echo","arguments":{"text":"hi"}}}`)
		if status != 200 || !strings.Contains(body, `"hi"`) {
			t.Fatalf("tools/call: HTTP %d %s", status, body)
		}
		if up.count() == 0 {
			t.Fatal("upstream saw nothing")
		}
		if up.sawAnywhere(aliceTok) || up.sawAnywhere("Bearer") {
			t.Fatal("the client's token reached the upstream")
		}
	})

	refused := []struct {
		name string
		hdr  map[string]string
		url  string
		code string
	}{
		{"token for another audience", bearer(op.Token(t, "elsewhere", "e-secret", "mcp.tools")), "", "invalid_token"},
		{"token from another issuer", bearer(otherOP.Token(t, "alice", "alice-secret", "mcp.tools")), "", "invalid_token"},
		{"garbage token", bearer("not-a-token"), "", "invalid_token"},
		{"nbf in the future", bearer(op.SignJWT(t, map[string]any{"iss": op.Issuer, "sub": "alice", "aud": testResource, "scope": "mcp.tools",
			"exp": time.Now().Add(time.Hour).Unix(), "nbf": time.Now().Add(10 * time.Minute).Unix()}, nil)), "", "invalid_token"},
		{"jku header", bearer(op.SignJWT(t, map[string]any{"iss": op.Issuer, "sub": "alice", "aud": testResource, "scope": "mcp.tools",
			"exp": time.Now().Add(time.Hour).Unix()}, map[string]any{"jku": "http://127.0.0.1:1/evil-jwks"})), "", "invalid_token"},
		{"token in the query", nil, "?access_token=" + url.QueryEscape(aliceTok), "invalid_token"},
	}
	for _, tc := range refused {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			c := &authClient{t: t, url: gw.URL + "/mcp" + tc.url, hdr: tc.hdr}
			if status := c.initialize(); status != 401 {
				t.Fatalf("HTTP %d, want 401", status)
			}
			if wa := c.last.Header.Get("WWW-Authenticate"); !strings.Contains(wa, `error="`+tc.code+`"`) {
				t.Fatalf("WWW-Authenticate = %q", wa)
			}
		})
	}
	if strings.Contains(gw.logs.String(), aliceTok) {
		t.Fatal("a token appears in the gateway's log")
	}

	t.Run("missing required scope: 403 insufficient_scope", func(t *testing.T) {
		c := &authClient{t: t, url: gw.URL + "/mcp", hdr: bearer(op.Token(t, "noscope", "n-secret", "other"))}
		if status := c.initialize(); status != 403 {
			t.Fatalf("HTTP %d, want 403", status)
		}
		if wa := c.last.Header.Get("WWW-Authenticate"); !strings.Contains(wa, `error="insufficient_scope"`) || !strings.Contains(wa, `scope="mcp.tools"`) {
			t.Fatalf("WWW-Authenticate = %q", wa)
		}
	})

	t.Run("session replay by another principal: 404", func(t *testing.T) {
		alice := &authClient{t: t, url: gw.URL + "/mcp", hdr: bearer(aliceTok)}
		if alice.initialize() != 200 {
			t.Fatal("alice cannot initialize")
		}
		bob := &authClient{t: t, url: gw.URL + "/mcp", hdr: bearer(op.Token(t, "bob", "bob-secret", "mcp.tools")), sid: alice.sid}
		if status, _ := bob.post(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`); status != 404 {
			t.Fatalf("bob with alice's session: HTTP %d, want 404", status)
		}
		// alice of another issuer is another principal too.
		mallory := &authClient{t: t, url: gw.URL + "/mcp", hdr: bearer(otherOP.Token(t, "alice", "alice-secret", "mcp.tools")), sid: alice.sid}
		if status, _ := mallory.post(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`); status != 401 {
			t.Fatalf("other issuer's alice: HTTP %d, want 401", status)
		}
		if status, _ := alice.post(`{"jsonrpc":"2.0","id":3,"method":"tools/list"}`); status != 200 {
			t.Fatalf("alice after the replay attempts: HTTP %d", status)
		}
	})

	t.Run("opaque token by introspection, refused once revoked", func(t *testing.T) {
		tok := op.Token(t, "opaque", "o-secret", "mcp.tools")
		if strings.Count(tok, ".") == 2 {
			t.Fatalf("token %q is not opaque", tok)
		}
		c := &authClient{t: t, url: gw.URL + "/mcp", hdr: bearer(tok)}
		if status := c.initialize(); status != 200 {
			t.Fatalf("initialize: HTTP %d", status)
		}
		op.Revoke(t, tok)
		if status, _ := c.post(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`); status != 401 {
			t.Fatalf("after revocation: HTTP %d, want 401", status)
		}
		if up.sawAnywhere(tok) {
			t.Fatal("the opaque token reached the upstream")
		}
	})
}

// TestAuthExpiredToken: a token past its exp is refused (leeway 0). Token
// times have one-second resolution, so a 2 s lifetime leaves at least 1 s
// of validity.
func TestAuthExpiredToken(t *testing.T) {
	op := authntest.Start(t, authntest.Options{AccessTokenLifetime: 2 * time.Second})
	op.AddClient("alice", "s", authntest.ClientOptions{Audience: []string{testResource}})
	up := startHeaderRecorder(t)
	gw := startGateway(t, fmt.Sprintf("listen: 127.0.0.1:0\nauth:\n  resource: %s\n  jwt:\n    - issuer: %s\n      audiences: [%s]\n      leeway: 0s\nservers:\n  rec:\n    url: %s\n",
		testResource, op.Issuer, testResource, up.URL), gateway.Options{})
	tok := op.Token(t, "alice", "s")
	c := &authClient{t: t, url: gw.URL + "/mcp", hdr: bearer(tok)}
	if status := c.initialize(); status != 200 {
		t.Fatalf("fresh token: HTTP %d", status)
	}
	time.Sleep(3100 * time.Millisecond)
	if status, _ := c.post(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`); status != 401 {
		t.Fatalf("expired token: HTTP %d, want 401", status)
	}
}

// TestConformanceWithAuth runs the conformance suite through the gateway
// with authentication on: a loopback proxy adds an API key, as a client
// configured with one would.
func TestConformanceWithAuth(t *testing.T) {
	node(t)
	up := startEverything(t)
	const key = "conformance-api-key-0123456789"
	sum := sha256.Sum256([]byte(key))
	gw := startGateway(t, fmt.Sprintf("listen: 127.0.0.1:0\nauth:\n  resource: %s\n  api_keys:\n    - {name: conformance, sha256: %q}\nservers:\n  everything:\n    url: %s\n",
		testResource, hex.EncodeToString(sum[:]), up.URL), gateway.Options{})
	target, _ := url.Parse(gw.URL)
	proxy := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // keep the client's Host: the gateway checks it
			r.Out.Header.Set("X-Api-Key", key)
		},
		FlushInterval: -1,
	})
	defer proxy.Close()

	// Without the key the gateway refuses.
	c := &authClient{t: t, url: gw.URL + "/servers/everything/mcp"}
	if status := c.initialize(); status != 401 {
		t.Fatalf("without the API key: HTTP %d, want 401", status)
	}
	res := runConformance(t, proxy.URL+"/servers/everything/mcp")
	t.Logf("with auth: %d passed, %d failed", res.Passed, res.Failed)
	if res.Failed != 0 || len(res.Failures) != 0 || res.Passed < 82 {
		for _, f := range res.Failures {
			t.Errorf("  %s", f)
		}
		t.Fatalf("conformance with auth: %d passed, %d failed\n%s", res.Passed, res.Failed, res.Output)
	}
}
