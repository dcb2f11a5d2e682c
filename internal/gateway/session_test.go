package gateway_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/gateway"
	"github.com/mcpgate/mcpgate/internal/identity"
)

// Client sessions: bound to their principal, unguessable, capped, ended by
// DELETE or idleness, and each backed by one upstream session reused for
// every call.

// testUserAuth authenticates the caller named in X-Test-User.
type testUserAuth struct{}

var _ gateway.Authenticator = testUserAuth{}

func (testUserAuth) Authenticate(r *http.Request) (identity.Principal, bool, error) {
	u := r.Header.Get("X-Test-User")
	if u == "" {
		return identity.Principal{}, false, nil
	}
	return identity.Principal{Method: "test", Subject: u}, true, nil
}

func asUser(name string) http.Header {
	return http.Header{"X-Test-User": {name}}
}

const listTools = `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`

// expectStatus asserts the HTTP status of a refusal and that its body is a
// JSON-RPC error.
func expectStatus(t *testing.T, what string, resp rawResponse, status int) {
	t.Helper()
	if resp.Status != status {
		t.Errorf("%s: HTTP %d, want %d; body %s", what, resp.Status, status, resp.Body)
		return
	}
	rpcError(t, resp)
}

// getStream opens a GET stream and reports its status; a stream that opens
// is closed at once.
func getStream(t *testing.T, c *rawMCP, sid string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.extra {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	req.Header.Set("Mcp-Session-Id", sid)
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestSessionIsolation(t *testing.T) {
	up := startRecordingMCP(t)
	gw := startGateway(t, recGatewayConfig(up, ""), gateway.Options{Authenticator: testUserAuth{}})
	url := gw.URL + "/servers/rec/mcp"
	alice := newRawMCP(t, url, asUser("alice"))
	bob := newRawMCP(t, url, asUser("bob"))
	nobody := newRawMCP(t, url, nil)

	before := up.count()
	sid := alice.initialize()
	upSID := up.upstreamSession(t, before)
	up.waitStream(t, upSID)

	n := up.count()
	expectStatus(t, "bob POSTs with alice's session", bob.do(http.MethodPost, sid, listTools, nil), http.StatusNotFound)
	expectStatus(t, "bob calls a tool in alice's session", bob.do(http.MethodPost, sid, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}`, nil), http.StatusNotFound)
	expectStatus(t, "bob notifies alice's session", bob.do(http.MethodPost, sid, `{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}`, nil), http.StatusNotFound)
	if got := getStream(t, bob, sid); got != http.StatusNotFound {
		t.Errorf("bob GETs alice's stream: HTTP %d, want 404", got)
	}
	if resp := bob.do(http.MethodDelete, sid, "", nil); resp.Status != http.StatusNotFound {
		t.Errorf("bob DELETEs alice's session: HTTP %d, want 404; body %s", resp.Status, resp.Body)
	}
	expectStatus(t, "no credentials, alice's session", nobody.do(http.MethodPost, sid, listTools, nil), http.StatusUnauthorized)
	expectStatus(t, "no credentials, initialize", nobody.do(http.MethodPost, "", initializeBody, nil), http.StatusUnauthorized)
	if resp := nobody.do(http.MethodDelete, sid, "", nil); resp.Status != http.StatusUnauthorized {
		t.Errorf("DELETE without credentials: HTTP %d, want 401", resp.Status)
	}
	if got := up.count(); got != n {
		t.Errorf("refused requests reached the upstream: %s", up.describe(n))
	}

	// Alice's session survived bob's DELETE, with its upstream session.
	if got := alice.callEcho(sid, 4, "alice's"); got != "alice's" {
		t.Errorf("alice's echo returned %q", got)
	}
	if got := getStream(t, alice, sid); got != http.StatusOK {
		t.Errorf("alice GETs her own stream: HTTP %d, want 200", got)
	}
	for _, r := range up.since(0) {
		if r.Method == http.MethodDelete {
			t.Errorf("the upstream session was deleted (DELETE %s)", r.SessionID)
		}
		if r.SessionID == sid {
			t.Errorf("the gateway's session ID reached the upstream (%s %s)", r.Method, r.RPCMethod)
		}
	}
	if got := up.rpcCount("initialize"); got != 1 {
		t.Errorf("upstream initialize requests: %d, want 1", got)
	}

	// Bob's own session is separate from alice's.
	bobSID := bob.initialize()
	if bobSID == sid {
		t.Fatal("bob got alice's session ID")
	}
	if resp := alice.do(http.MethodDelete, bobSID, "", nil); resp.Status != http.StatusNotFound {
		t.Errorf("alice DELETEs bob's session: HTTP %d, want 404", resp.Status)
	}
	if got := bob.callEcho(bobSID, 5, "bob's"); got != "bob's" {
		t.Errorf("bob's echo returned %q", got)
	}
}

// visibleASCII reports whether s is non-empty visible ASCII (0x21–0x7E).
func visibleASCII(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func TestSessionLifecycle(t *testing.T) {
	up := startRecordingMCP(t)
	gw := startGateway(t, recGatewayConfig(up, ""), gateway.Options{})
	c := newRawMCP(t, gw.URL+"/servers/rec/mcp", nil)

	// IDs: 32 visible ASCII characters, fresh per initialize, never the
	// upstream's.
	var sids, upSIDs []string
	for range 4 {
		n := up.count()
		sid := c.initialize()
		upSID := up.upstreamSession(t, n)
		up.waitStream(t, upSID)
		if len(sid) != 32 || !visibleASCII(sid) {
			t.Errorf("session ID %q: want 32 visible ASCII characters", sid)
		}
		if slices.Contains(sids, sid) {
			t.Errorf("session ID %q issued twice", sid)
		}
		if sid == upSID {
			t.Errorf("the gateway handed out the upstream's session ID %q", sid)
		}
		if slices.Contains(upSIDs, upSID) {
			t.Errorf("two gateway sessions share upstream session %q", upSID)
		}
		sids, upSIDs = append(sids, sid), append(upSIDs, upSID)
	}
	if got := gw.SessionCount(); got != len(sids) {
		t.Errorf("SessionCount() = %d, want %d", got, len(sids))
	}

	sid, upSID := sids[0], upSIDs[0]
	if got := c.callEcho(sid, 1, "before delete"); got != "before delete" {
		t.Fatalf("echo returned %q", got)
	}

	// A session belongs to the endpoint that created it.
	agg := newRawMCP(t, gw.URL+"/mcp", nil)
	expectStatus(t, "session used on another endpoint", agg.do(http.MethodPost, sid, listTools, nil), http.StatusNotFound)
	if resp := agg.do(http.MethodDelete, sid, "", nil); resp.Status != http.StatusNotFound {
		t.Errorf("DELETE on another endpoint: HTTP %d, want 404", resp.Status)
	}
	if got := c.callEcho(sid, 2, "same endpoint"); got != "same endpoint" {
		t.Fatalf("echo after another endpoint's DELETE returned %q", got)
	}
	n := up.count()
	resp := c.do(http.MethodDelete, sid, "", nil)
	if resp.Status != http.StatusNoContent {
		t.Fatalf("DELETE: HTTP %d, want 204; body %s", resp.Status, resp.Body)
	}

	// The upstream session ends with the client session.
	if !up.waitFor(5*time.Second, func(rs []recordedRequest) bool {
		return slices.ContainsFunc(rs[n:], func(r recordedRequest) bool { return r.Method == http.MethodDelete && r.SessionID == upSID })
	}) {
		t.Errorf("no upstream DELETE of session %s after the client's DELETE; upstream saw %s", upSID, up.describe(n))
	}
	for _, r := range up.since(n) {
		if r.Method == http.MethodDelete && r.SessionID != upSID {
			t.Errorf("DELETE of session %s ended upstream session %s too", sid, r.SessionID)
		}
	}
	direct := newRawMCP(t, up.URL, nil)
	if resp := direct.do(http.MethodPost, upSID, listTools, nil); resp.Status != http.StatusNotFound {
		t.Errorf("the upstream still serves session %s after DELETE: HTTP %d", upSID, resp.Status)
	}

	// The ID is dead for every verb.
	expectStatus(t, "POST after DELETE", c.do(http.MethodPost, sid, listTools, nil), http.StatusNotFound)
	expectStatus(t, "notification after DELETE", c.do(http.MethodPost, sid, `{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}`, nil), http.StatusNotFound)
	if got := getStream(t, c, sid); got != http.StatusNotFound {
		t.Errorf("GET after DELETE: HTTP %d, want 404", got)
	}
	if resp := c.do(http.MethodDelete, sid, "", nil); resp.Status != http.StatusNotFound {
		t.Errorf("second DELETE: HTTP %d, want 404", resp.Status)
	}
	if got := gw.SessionCount(); got != len(sids)-1 {
		t.Errorf("SessionCount() after DELETE = %d, want %d", got, len(sids)-1)
	}

	// The other sessions are untouched.
	for i, s := range sids[1:] {
		if got := c.callEcho(s, 10+i, "still open"); got != "still open" {
			t.Errorf("session %d: echo returned %q", i+1, got)
		}
	}
}

func TestSessionCap(t *testing.T) {
	up := startRecordingMCP(t)
	gw := startGateway(t, recGatewayConfig(up, "sessions:\n  max_per_principal: 2\n"), gateway.Options{Authenticator: testUserAuth{}})
	url := gw.URL + "/servers/rec/mcp"
	alice := newRawMCP(t, url, asUser("alice"))
	bob := newRawMCP(t, url, asUser("bob"))

	first := alice.initialize()
	second := alice.initialize()
	inits := up.rpcCount("initialize")
	if inits != 2 {
		t.Fatalf("upstream initialize requests: %d, want 2", inits)
	}

	resp := alice.do(http.MethodPost, "", initializeBody, func(r *http.Request) { r.Header.Del("MCP-Protocol-Version") })
	if resp.Status != http.StatusTooManyRequests {
		t.Fatalf("third initialize: HTTP %d, want 429; body %s", resp.Status, resp.Body)
	}
	m := rpcError(t, resp)
	if string(m.ID) != "0" {
		t.Errorf("429 error id %s, want 0 (the initialize's)", m.ID)
	}
	if h := resp.Header.Get("Mcp-Session-Id"); h != "" {
		t.Errorf("refused initialize returned Mcp-Session-Id %q", h)
	}
	if got := up.rpcCount("initialize"); got != inits {
		t.Errorf("a refused initialize opened an upstream session (%d upstream initializes, want %d)", got, inits)
	}

	// The cap is per principal.
	bobSID := bob.initialize()
	if got := bob.callEcho(bobSID, 1, "bob"); got != "bob" {
		t.Errorf("bob's echo returned %q", got)
	}

	// Both of alice's sessions still work; closing one makes room.
	for i, s := range []string{first, second} {
		if got := alice.callEcho(s, 2+i, "capped"); got != "capped" {
			t.Errorf("session %d: echo returned %q", i, got)
		}
	}
	if resp := alice.do(http.MethodDelete, first, "", nil); resp.Status != http.StatusNoContent {
		t.Fatalf("DELETE: HTTP %d, want 204", resp.Status)
	}
	third := alice.initialize()
	if third == first || third == second {
		t.Errorf("new session reuses ID %q", third)
	}
	if got := alice.callEcho(third, 4, "room again"); got != "room again" {
		t.Errorf("echo in the new session returned %q", got)
	}
	resp = alice.do(http.MethodPost, "", initializeBody, func(r *http.Request) { r.Header.Del("MCP-Protocol-Version") })
	if resp.Status != http.StatusTooManyRequests {
		t.Errorf("initialize at the cap again: HTTP %d, want 429", resp.Status)
	}
}

func TestUpstreamSessionReused(t *testing.T) {
	up := startRecordingMCP(t)
	gw := startGateway(t, recGatewayConfig(up, ""), gateway.Options{})
	c := newRawMCP(t, gw.URL+"/servers/rec/mcp", nil)

	sid := c.initialize()
	const calls = 10
	for i := range calls {
		want := fmt.Sprintf("call %d", i)
		if got := c.callEcho(sid, 100+i, want); got != want {
			t.Errorf("call %d: echo returned %q", i, got)
		}
	}
	if got := up.rpcCount("initialize"); got != 1 {
		t.Errorf("%d upstream initialize requests for one session and %d calls, want 1: %s", got, calls, up.describe(0))
	}
	upSID := up.upstreamSession(t, 0)
	var seen int
	for _, r := range up.since(0) {
		if r.RPCMethod != "tools/call" {
			continue
		}
		seen++
		if r.SessionID != upSID {
			t.Errorf("tools/call in upstream session %q, want %q", r.SessionID, upSID)
		}
	}
	if seen != calls {
		t.Errorf("upstream received %d tools/call, want %d", seen, calls)
	}
	if got := strings.Count(up.describe(0), "DELETE"); got != 0 {
		t.Errorf("upstream sessions were deleted between calls: %s", up.describe(0))
	}
}

func TestIdleTimeout(t *testing.T) {
	up := startRecordingMCP(t)
	gw := startGateway(t, recGatewayConfig(up, "sessions:\n  idle_timeout: 1s\n"), gateway.Options{})
	c := newRawMCP(t, gw.URL+"/servers/rec/mcp", nil)

	n := up.count()
	sid := c.initialize()
	upSID := up.upstreamSession(t, n)

	// Use keeps the session alive well past the idle timeout.
	const ping = `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	for end := time.Now().Add(2500 * time.Millisecond); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if resp := c.do(http.MethodPost, sid, ping, nil); resp.Status != http.StatusOK {
			t.Fatalf("ping in an active session: HTTP %d; body %s", resp.Status, resp.Body)
		}
	}

	// Idle, it expires. Polling through the session would keep it alive,
	// so watch the gateway's count instead.
	idleSince := time.Now()
	deadline := idleSince.Add(10 * time.Second)
	for gw.SessionCount() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("session still open %v after its last use (idle_timeout 1s)", time.Since(idleSince).Round(time.Millisecond))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The last use was a little before idleSince; allow for it.
	if d := time.Since(idleSince); d < 900*time.Millisecond {
		t.Errorf("session expired %v after its last use, before idle_timeout 1s", d)
	}
	t.Logf("expired %v after its last use", time.Since(idleSince).Round(time.Millisecond))
	expectStatus(t, "POST to an expired session", c.do(http.MethodPost, sid, listTools, nil), http.StatusNotFound)
	if !up.waitFor(5*time.Second, func(rs []recordedRequest) bool {
		return slices.ContainsFunc(rs, func(r recordedRequest) bool { return r.Method == http.MethodDelete && r.SessionID == upSID })
	}) {
		t.Errorf("expiry did not end upstream session %s: upstream saw %s", upSID, up.describe(n))
	}
}
