package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// LimitKeys are the parts a rate limit may be counted per
// (limits.rate[].key).
var LimitKeys = []string{"principal", "tenant", "server", "tool", "session"}

// Duplicate-write handling (limits.dampening.duplicate_writes and
// servers.<name>.tools.<tool>.duplicates).
const (
	DuplicatesFlag   = "flag"
	DuplicatesRefuse = "refuse"
)

// Bounds of the limits section.
const (
	maxRateN          = 1_000_000
	maxBurst          = 1_000_000
	minDampenWindow   = 100 * time.Millisecond
	maxDampenWindow   = 24 * time.Hour
	maxRateNameLength = 64
)

var (
	rateNameRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	rateToolNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
)

// ParseRate parses a rate written N/s, N/m or N/h, with N from 1 to
// 1000000, into N and the period it is counted over.
func ParseRate(s string) (n int, per time.Duration, err error) {
	num, unit, ok := strings.Cut(s, "/")
	switch unit {
	case "s":
		per = time.Second
	case "m":
		per = time.Minute
	case "h":
		per = time.Hour
	default:
		ok = false
	}
	n, convErr := strconv.Atoi(num)
	if !ok || convErr != nil || num != strconv.Itoa(n) || n < 1 || n > maxRateN {
		return 0, 0, fmt.Errorf("must be N/s, N/m or N/h with N from 1 to %d, such as 100/m, got %q", maxRateN, s)
	}
	return n, per, nil
}

func (c *Config) validateLimits(ps *Problems) {
	c.State.validate(ps)
	const path = "limits"
	l := &c.Limits
	names := make(map[string]int, len(l.Rate))
	for i := range l.Rate {
		p := index(join(path, "rate"), i)
		r := &l.Rate[i]
		switch first, seen := names[r.Name]; {
		case !rateNameRE.MatchString(r.Name):
			ps.add(join(p, "name"), "must be 1 to %d characters of A-Z, a-z, 0-9, '_' and '-', starting with a letter or digit", maxRateNameLength)
		case seen:
			ps.add(join(p, "name"), "repeats the name of limits.rate[%d]", first)
		default:
			names[r.Name] = i
		}
		r.validate(ps, p, c.Servers)
	}
	nonNegative(ps, join(path, "concurrency.per_principal"), l.Concurrency.PerPrincipal)
	nonNegative(ps, join(path, "concurrency.per_server"), l.Concurrency.PerServer)
	nonNegative(ps, join(path, "budgets.calls_per_minute"), l.Budgets.CallsPerMinute)
	nonNegative(ps, join(path, "budgets.calls_per_session"), l.Budgets.CallsPerSession)
	if n := l.Budgets.CallsPerMinute; n > maxRateN {
		ps.add(join(path, "budgets.calls_per_minute"), "must be at most %d, got %d", maxRateN, n)
	}
	nonNegative(ps, join(path, "max_streams_per_principal"), l.MaxStreamsPerPrincipal)
	if w := l.Dampening.Window; w != 0 && (w.D() < minDampenWindow || w.D() > maxDampenWindow) {
		ps.add(join(path, "dampening.window"), "must be between %s and %s, got %s", Duration(minDampenWindow), Duration(maxDampenWindow), w)
	}
	if d := l.Dampening.DuplicateWrites; d != "" {
		oneOf(ps, join(path, "dampening.duplicate_writes"), d, DuplicatesFlag, DuplicatesRefuse)
	}
}

func (r *RateLimit) validate(ps *Problems, p string, servers map[string]*Server) {
	if len(r.Key) == 0 {
		ps.add(join(p, "key"), "must list what the limit is counted per: one or more of %s", strings.Join(LimitKeys, ", "))
	}
	for i, k := range r.Key {
		switch {
		case !slices.Contains(LimitKeys, k):
			ps.add(index(join(p, "key"), i), "must be one of %s, got %q", strings.Join(LimitKeys, ", "), k)
		case slices.Index(r.Key, k) < i:
			ps.add(index(join(p, "key"), i), "repeats %q", k)
		}
	}
	if _, _, err := ParseRate(r.Rate); err != nil {
		ps.add(join(p, "rate"), "%v", err)
	}
	if r.Burst < 0 || r.Burst > maxBurst {
		ps.add(join(p, "burst"), "must be between 1 and %d, or 0 for the rate's N, got %d", maxBurst, r.Burst)
	}
	for i, s := range r.Servers {
		switch {
		case servers[s] == nil:
			ps.add(index(join(p, "servers"), i), "names no server in servers, got %q", s)
		case slices.Index(r.Servers, s) < i:
			ps.add(index(join(p, "servers"), i), "repeats %q", s)
		}
	}
	for i, t := range r.Tools {
		switch {
		case !rateToolNameRE.MatchString(t):
			ps.add(index(join(p, "tools"), i), "must be a tool name as the server knows it (1 to 128 characters of A-Z, a-z, 0-9, '.', '_' and '-'), got %q", t)
		case slices.Index(r.Tools, t) < i:
			ps.add(index(join(p, "tools"), i), "repeats %q", t)
		}
	}
}

func nonNegative(ps *Problems, path string, n int) {
	if n < 0 {
		ps.add(path, "must not be negative (0 means no cap), got %d", n)
	}
}

// validate checks state.redis: a URL must be set, redis:// or rediss://,
// and written as a reference when it carries a password.
func (s *State) validate(ps *Problems) {
	if s.Redis == nil {
		return
	}
	const path = "state.redis.url"
	v := s.Redis.URL
	if v.IsSecret() {
		return // read and checked by ResolveSecrets and at start
	}
	raw := v.Resolved()
	if raw == "" {
		ps.add(path, "must be set: redis://host:port/db, or a reference such as {env: REDIS_URL}")
		return
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		ps.add(path, "must be a redis:// or rediss:// URL with a host")
		return
	}
	if _, has := u.User.Password(); has {
		ps.add(path, "holds a password: write it as a reference ({env: NAME} or {file: PATH}) so it stays out of the config file")
	}
}
