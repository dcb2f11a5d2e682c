package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

var (
	serverNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	envNameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// hopByHopHeaders belong to one connection and are never forwarded.
var hopByHopHeaders = []string{"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}

// gatewayHeaders are set by the gateway on every upstream request.
var gatewayHeaders = []string{
	"host", "content-length", "content-type", "accept",
	"mcp-session-id", "mcp-protocol-version", "mcp-method", "mcp-name", "last-event-id",
}

// credentialWords mark a header name as carrying a credential.
var credentialWords = []string{"key", "token", "secret", "password", "passwd", "auth", "credential", "cookie"}

func validateServer(ps *Problems, name string, s *Server) {
	path := join("servers", name)
	if len(name) > maxServerName || !serverNameRE.MatchString(name) {
		ps.add(path, "invalid server name; use at most %d characters of a-z, 0-9 and -, starting with a letter or digit", maxServerName)
	}
	if s == nil {
		ps.add(path, "must set url (an HTTP server) or command (a stdio server)")
		return
	}
	hasURL, hasURLs, hasCommand := s.URL != "", s.URLs != nil, s.Command != nil
	isHTTP := hasURL || hasURLs
	switch {
	case hasURL && hasCommand:
		ps.add(path, "must set only one of url (an HTTP server) or command (a stdio server), not both")
	case hasURLs && hasCommand:
		ps.add(join(path, "urls"), "only an HTTP server takes urls; set urls (HTTP replicas) or command (a stdio server), not both")
	case !isHTTP && !hasCommand:
		ps.add(path, "must set url (an HTTP server) or command (a stdio server)")
	}
	if hasURL && hasURLs {
		ps.add(join(path, "urls"), "set url (one endpoint) or urls (replicas), not both; list every replica in urls")
	}
	if hasURL {
		if msg := upstreamURLProblem(s.URL); msg != "" {
			ps.add(join(path, "url"), "%s", msg)
		}
	}
	if hasURLs {
		validateReplicaURLs(ps, join(path, "urls"), s.URLs)
	}
	if hasCommand {
		validateCommand(ps, join(path, "command"), s.Command)
	}
	validateResilience(ps, path, s, isHTTP)
	if len(s.Headers) > 0 && !isHTTP {
		ps.add(join(path, "headers"), "only an HTTP server (url) takes headers")
	}
	if len(s.Env) > 0 && !hasCommand {
		ps.add(join(path, "env"), "only a stdio server (command) takes env")
	}
	if s.Dir != "" && !hasCommand {
		ps.add(join(path, "dir"), "only a stdio server (command) takes dir")
	}
	if strings.ContainsRune(s.Dir, 0) {
		ps.add(join(path, "dir"), "must not contain NUL")
	}
	validateHeaders(ps, join(path, "headers"), s.Headers)
	validateEnv(ps, join(path, "env"), s.Env)
	durationAtLeast(ps, join(path, "connect_timeout"), s.ConnectTimeout, time.Millisecond)
	durationAtLeast(ps, join(path, "response_timeout"), s.ResponseTimeout, time.Millisecond)
	durationAtLeast(ps, join(path, "restart_backoff_max"), s.RestartBackoffMax, time.Millisecond)
}

// Limits of the resilience settings (servers.<name>.urls,
// max_response_bytes, health_check, breaker).
const (
	maxReplicas        = 64
	minResponseBytes   = 1 << 10
	maxResponseBytes   = 1 << 30
	minHealthInterval  = time.Second
	maxBreakerFailures = 1000
	minBreakerCooldown = time.Second
	maxBreakerCooldown = time.Hour
)

// validateReplicaURLs checks each replica like url, and the list as a
// whole: not empty, no repeats, not too long.
func validateReplicaURLs(ps *Problems, path string, urls []string) {
	switch {
	case len(urls) == 0:
		ps.add(path, "must list at least one URL; use url for a single endpoint")
	case len(urls) > maxReplicas:
		ps.add(path, "lists %d URLs; at most %d replicas are supported", len(urls), maxReplicas)
	}
	seen := make(map[string]int, len(urls))
	for i, u := range urls {
		p := index(path, i)
		if msg := upstreamURLProblem(u); msg != "" {
			ps.add(p, "%s", msg)
			continue
		}
		key := strings.ToLower(u)
		if first, ok := seen[key]; ok {
			ps.add(p, "repeats %s; each replica is listed once", index(path, first))
			continue
		}
		seen[key] = i
	}
}

// validateResilience checks max_response_bytes, health_check and breaker.
// A stdio server has one process per session and is restarted with
// backoff, so health checks and the breaker apply only to HTTP servers.
func validateResilience(ps *Problems, path string, s *Server, isHTTP bool) {
	if n := s.MaxResponseBytes; n != 0 && (n < minResponseBytes || n > maxResponseBytes) {
		ps.add(join(path, "max_response_bytes"), "must be between %d (1 KiB) and %d (1 GiB), got %d", minResponseBytes, maxResponseBytes, n)
	}
	hc := join(path, "health_check")
	if d := s.HealthCheck.Interval; d != 0 {
		if !isHTTP {
			ps.add(hc, "applies only to an HTTP server (url or urls); a stdio server is restarted when it exits")
		} else {
			durationAtLeast(ps, join(hc, "interval"), d, minHealthInterval)
		}
	}
	br := join(path, "breaker")
	if s.Breaker != (Breaker{}) && !isHTTP {
		ps.add(br, "applies only to an HTTP server (url or urls); a stdio server that fails is restarted with backoff (restart_backoff_max)")
		return
	}
	if n := s.Breaker.Failures; n != 0 && (n < 1 || n > maxBreakerFailures) {
		ps.add(join(br, "failures"), "must be between 1 and %d, got %d", maxBreakerFailures, n)
	}
	if d := s.Breaker.Cooldown; d != 0 && (d.D() < minBreakerCooldown || d.D() > maxBreakerCooldown) {
		ps.add(join(br, "cooldown"), "must be between %s and %s, got %s", Duration(minBreakerCooldown), Duration(maxBreakerCooldown), d)
	}
}

func upstreamURLProblem(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "must be an absolute http or https URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("scheme must be http or https, got %q", u.Scheme)
	case u.Hostname() == "":
		return "must include a host"
	case u.User != nil:
		return "must not contain credentials; send them in headers, using {env: NAME} or {file: PATH}"
	case u.Fragment != "":
		return "must not contain a fragment"
	}
	if port := u.Port(); port != "" {
		return portProblem(port)
	}
	return ""
}

func validateCommand(ps *Problems, path string, argv []string) {
	if len(argv) == 0 {
		ps.add(path, "must list the program and its arguments, as in [\"npx\", \"-y\", \"some-server\"]")
		return
	}
	if argv[0] == "" {
		ps.add(index(path, 0), "the program must not be empty")
	}
	for i, arg := range argv {
		if strings.ContainsRune(arg, 0) {
			ps.add(index(path, i), "must not contain NUL")
		}
	}
}

func validateHeaders(ps *Problems, path string, headers map[string]Value) {
	seen := make(map[string]string, len(headers))
	for name, v := range headers {
		p := join(path, name)
		lower := strings.ToLower(name)
		switch {
		case !validToken(name):
			ps.add(p, "invalid header name; use letters, digits and !#$%%&'*+-.^_`|~")
		case slices.Contains(hopByHopHeaders, lower):
			ps.add(p, "%s is a hop-by-hop header and cannot be set", name)
		case slices.Contains(gatewayHeaders, lower):
			ps.add(p, "%s is set by the gateway and cannot be configured", name)
		}
		if other, ok := seen[lower]; ok {
			first, second := min(other, name), max(other, name)
			ps.add(join(path, second), "repeats header %s (header names are case-insensitive)", first)
		}
		seen[lower] = name
		if isCredentialHeader(lower) && !v.IsSecret() {
			ps.add(p, "looks like a credential, so it must not be written in the config; use {env: NAME} or {file: PATH}")
		}
		if err := v.refProblem(); err != nil {
			ps.add(p, "%v", err)
		}
		if !v.IsSecret() && !validHeaderValue(v.literal) {
			ps.add(p, "value must not contain control characters such as newlines")
		}
	}
}

func validateEnv(ps *Problems, path string, env map[string]Value) {
	for name, v := range env {
		p := join(path, name)
		if !validEnvName(name) {
			ps.add(p, "invalid variable name; use letters, digits and _, not starting with a digit")
		}
		if err := v.refProblem(); err != nil {
			ps.add(p, "%v", err)
		}
		if strings.ContainsRune(v.literal, 0) {
			ps.add(p, "value must not contain NUL")
		}
	}
}

// isCredentialHeader reports whether a lower-case header name looks like it
// carries a credential (Authorization, Proxy-Authorization, Cookie,
// X-Api-Key, ...).
func isCredentialHeader(lower string) bool {
	for _, w := range credentialWords {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}

func validEnvName(s string) bool { return envNameRE.MatchString(s) }

// validToken reports whether s is an HTTP token (RFC 9110, section 5.6.2).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validHeaderValue rejects control characters other than tab, which would
// let a value split or end the header.
func validHeaderValue(s string) bool {
	for i := range len(s) {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
