package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, h http.Handler, path, accept string) (*http.Response, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestHealthAndReadiness(t *testing.T) {
	ready := true
	h := Handler(func() (bool, any) { return ready, map[string]bool{"ready": ready} })
	for _, tc := range []struct {
		path   string
		ready  bool
		status int
		body   string
	}{
		{"/healthz", false, http.StatusOK, "ok\n"},
		{"/readyz", true, http.StatusOK, `{"ready":true}` + "\n"},
		{"/readyz", false, http.StatusServiceUnavailable, `{"ready":false}` + "\n"},
	} {
		ready = tc.ready
		resp, body := get(t, h, tc.path, "")
		if resp.StatusCode != tc.status || body != tc.body {
			t.Errorf("GET %s (ready %v) = %d %q, want %d %q", tc.path, tc.ready, resp.StatusCode, body, tc.status, tc.body)
		}
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "mcpgate_test_total", Help: "A test counter."})
	reg.MustRegister(c)
	c.Add(3)
	ready := func() (bool, any) { return true, nil }

	if resp, _ := get(t, Handler(ready), "/metrics", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics without WithMetrics = %d, want 404", resp.StatusCode)
	}
	if resp, _ := get(t, Handler(ready, WithMetrics(nil)), "/metrics", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics with a nil gatherer = %d, want 404", resp.StatusCode)
	}

	h := Handler(ready, WithMetrics(reg))
	for _, tc := range []struct {
		accept, contentType, line string
	}{
		{"", "text/plain; version=0.0.4", "mcpgate_test_total 3\n"},
		{"application/openmetrics-text; version=1.0.0", "application/openmetrics-text; version=1.0.0", "mcpgate_test_total 3.0\n# EOF\n"},
		{"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited", "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited", "mcpgate_test_total"},
	} {
		resp, body := get(t, h, "/metrics", tc.accept)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.contentType) || !strings.Contains(body, tc.line) {
			t.Errorf("GET /metrics (Accept %q) = %d %s:\n%s\nwant %s containing %q", tc.accept, resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.contentType, tc.line)
		}
	}
}
