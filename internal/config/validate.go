package config

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Validate reports every problem in c as [Problems] sorted by path, or nil.
// It reads neither the environment nor any file, so a configuration can be
// checked offline; [Config.ResolveSecrets] reads the secrets.
func (c *Config) Validate() error {
	var ps Problems
	validateListen(&ps, "listen", c.Listen)
	validateListen(&ps, "admin.listen", c.Admin.Listen)
	if c.Admin.Listen == c.Listen && c.Listen != "" {
		if _, port, err := net.SplitHostPort(c.Listen); err == nil && port != "0" {
			ps.add("admin.listen", "must differ from listen (%s)", c.Listen)
		}
	}
	oneOf(&ps, "log.level", c.Log.Level, "debug", "info", "warn", "error")
	oneOf(&ps, "log.format", c.Log.Format, "json", "text")
	c.HTTP.validate(&ps)
	durationAtLeast(&ps, "sessions.idle_timeout", c.Sessions.IdleTimeout, minIdleTimeout)
	if n := c.Sessions.MaxPerPrincipal; n < 1 {
		ps.add("sessions.max_per_principal", "must be at least 1, got %d", n)
	}
	if c.ShutdownGrace < 0 {
		ps.add("shutdown_grace", "must not be negative, got %s", c.ShutdownGrace)
	}
	for name, s := range c.Servers {
		validateServer(&ps, name, s)
	}
	c.Auth.validate(&ps)
	c.validateTLS(&ps)
	c.validateIdentity(&ps)
	c.validatePolicy(&ps)
	c.validateStore(&ps)
	c.validateTelemetry(&ps)
	c.validateAudit(&ps)
	c.validateLimits(&ps)
	return ps.err()
}

func (h *HTTP) validate(ps *Problems) {
	if n := h.MaxBodyBytes; n < minBodyBytes || n > maxBodyBytes {
		ps.add("http.max_body_bytes", "must be between %d (1 KiB) and %d (64 MiB), got %d", minBodyBytes, maxBodyBytes, n)
	}
	if n := h.MaxJSONDepth; n < minJSONDepth || n > maxJSONDepth {
		ps.add("http.max_json_depth", "must be between %d and %d, got %d", minJSONDepth, maxJSONDepth, n)
	}
	for i, host := range h.AllowedHosts {
		if msg := hostHeaderProblem(host); msg != "" {
			ps.add(index("http.allowed_hosts", i), "%s", msg)
		}
	}
	for i, origin := range h.AllowedOrigins {
		if msg := originProblem(origin); msg != "" {
			ps.add(index("http.allowed_origins", i), "%s", msg)
		}
	}
}

func oneOf(ps *Problems, path, got string, allowed ...string) {
	if !slices.Contains(allowed, got) {
		ps.add(path, "must be one of %s, got %q", strings.Join(allowed, ", "), got)
	}
}

// validateListen checks a host:port listen address. An empty host means
// every interface; whether that is allowed is the gateway's decision.
func validateListen(ps *Problems, path, addr string) {
	if addr == "" {
		ps.add(path, "must be set, as host:port")
		return
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		ps.add(path, "must be host:port, such as 127.0.0.1:8080, got %q", addr)
		return
	}
	if msg := portProblem(port); msg != "" {
		ps.add(path, "%s", msg)
	}
	if host != "" && !validHost(host) {
		ps.add(path, "invalid host %q", host)
	}
}

func portProblem(port string) string {
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || port != strconv.Itoa(n) {
		return fmt.Sprintf("port must be a number from 0 to 65535, got %q", port)
	}
	return ""
}

// validHost reports whether host is an IP address or a DNS name.
func validHost(host string) bool {
	if net.ParseIP(host) != nil {
		return true
	}
	if len(host) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(host, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// hostHeaderProblem checks a Host header value: host or host:port, an IPv6
// host in brackets.
func hostHeaderProblem(s string) string {
	switch {
	case s == "":
		return "must not be empty"
	case strings.Contains(s, "*"):
		return "wildcards are not supported; list each host"
	case strings.Contains(s, "/"):
		return fmt.Sprintf("must be host or host:port, without scheme or path, got %q", s)
	}
	host := s
	if strings.HasPrefix(s, "[") || strings.Count(s, ":") == 1 {
		h, port, err := net.SplitHostPort(s)
		if err != nil {
			if !strings.HasPrefix(s, "[") || !strings.HasSuffix(s, "]") {
				return fmt.Sprintf("must be host or host:port, got %q", s)
			}
			h, port = s[1:len(s)-1], "" // bracketed IPv6 without a port
		}
		if port != "" {
			if msg := portProblem(port); msg != "" {
				return msg
			}
		}
		if strings.HasPrefix(s, "[") && net.ParseIP(h) == nil {
			return fmt.Sprintf("invalid IPv6 address in %q", s)
		}
		host = h
	} else if strings.Contains(s, ":") {
		return fmt.Sprintf("an IPv6 host must be in brackets, as in [::1], got %q", s)
	}
	if !validHost(host) {
		return fmt.Sprintf("invalid host %q", host)
	}
	return ""
}

// originProblem checks an Origin value: exactly scheme://host[:port].
func originProblem(s string) string {
	if strings.Contains(s, "*") {
		return "wildcards are not supported; list each origin"
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return fmt.Sprintf("must be an origin such as https://app.example.com, got %q", s)
	}
	if u.User != nil || u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || s != u.Scheme+"://"+u.Host {
		return fmt.Sprintf("must be scheme://host[:port] only, with no path, query or trailing slash, got %q", s)
	}
	if msg := hostHeaderProblem(u.Host); msg != "" {
		return msg
	}
	return ""
}

// durationAtLeast reports d below minimum.
func durationAtLeast(ps *Problems, path string, d Duration, minimum time.Duration) {
	if d.D() < minimum {
		ps.add(path, "must be at least %s, got %s", Duration(minimum), d)
	}
}
