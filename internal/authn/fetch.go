package authn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/json"
)

// maxDocumentBytes bounds a discovery document, JWKS or introspection
// response.
const maxDocumentBytes = 1 << 20

// defaultHTTPClient returns the client used when Options.HTTPClient is
// nil: bounded in time, a small connection pool, and redirects followed
// only within the origin first asked.
func defaultHTTPClient() *http.Client {
	return &http.Client{
		Timeout: fetchTimeout,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second,
			MaxIdleConns:          16,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		},
		CheckRedirect: sameOriginRedirect,
	}
}

// sameOriginRedirect follows at most 3 redirects, none leaving the scheme
// and host of the first request: an identity provider has no reason to
// send the gateway elsewhere for its keys.
func sameOriginRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 3 {
		return errors.New("stopped after 3 redirects")
	}
	if req.URL.Scheme != via[0].URL.Scheme || req.URL.Host != via[0].URL.Host {
		return fmt.Errorf("refused redirect from %s to another origin", via[0].URL.Redacted())
	}
	return nil
}

// getJSON fetches u and decodes a JSON response of at most
// maxDocumentBytes into v.
func getJSON(ctx context.Context, client *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	body, err := do(client, req)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: decoding response: %w", u, err)
	}
	return nil
}

// do sends req and returns the body of a 200 response with a JSON media
// type, read up to maxDocumentBytes.
func do(client *http.Client, req *http.Request) ([]byte, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	what := req.Method + " " + req.URL.Redacted()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDocumentBytes))
		return nil, fmt.Errorf("%s: status %s", what, resp.Status)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || !(mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		return nil, fmt.Errorf("%s: content type %q, want JSON", what, resp.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(body) > maxDocumentBytes {
		return nil, fmt.Errorf("%s: response larger than %d bytes", what, maxDocumentBytes)
	}
	return body, nil
}

// secureURL reports whether s is an absolute https URL, or http to a
// loopback host — the rule config applies to configured URLs, applied
// here to discovered ones.
func secureURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil {
		return false
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		host := u.Hostname()
		if strings.EqualFold(host, "localhost") {
			return true
		}
		ip := net.ParseIP(host)
		return ip != nil && ip.IsLoopback()
	}
	return false
}
