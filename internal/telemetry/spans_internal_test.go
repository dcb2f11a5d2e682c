package telemetry

import "testing"

func TestSpanName(t *testing.T) {
	for _, tc := range []struct{ method, target, want string }{
		{"tools/call", "echo", "tools/call echo"},
		{"tools/call", "", "tools/call"},
		{"tools/call", "rm -rf /\n", "tools/call"}, // not a tool name: left out
		{"prompts/get", "analyze-code", "prompts/get analyze-code"},
		{"", "", "HTTP"},
	} {
		if got := spanName(tc.method, tc.target); got != tc.want {
			t.Errorf("spanName(%q, %q) = %q, want %q", tc.method, tc.target, got, tc.want)
		}
	}
}

func TestRequestID(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want string
		ok   bool
	}{
		{`7`, "7", true},
		{`"req-7"`, "req-7", true},
		{`"\u0041"`, "A", true},
		{`null`, "", false},
		{``, "", false},
	} {
		if got, ok := requestID([]byte(tc.raw)); got != tc.want || ok != tc.ok {
			t.Errorf("requestID(%s) = %q, %v; want %q, %v", tc.raw, got, ok, tc.want, tc.ok)
		}
	}
}

func TestHostPort(t *testing.T) {
	for _, tc := range []struct {
		addr string
		host string
		port int
	}{
		{"http://127.0.0.1:3001/mcp", "127.0.0.1", 3001},
		{"https://mcp.example.com/mcp", "mcp.example.com", 443},
		{"http://[::1]/mcp", "::1", 80},
		{"10.0.0.5:8080", "10.0.0.5", 8080},
	} {
		if host, port := hostPort(tc.addr); host != tc.host || port != tc.port {
			t.Errorf("hostPort(%q) = %q, %d; want %q, %d", tc.addr, host, port, tc.host, tc.port)
		}
	}
}
