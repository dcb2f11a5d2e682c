package config

import (
	"net/url"
	"regexp"
	"strings"
)

// Audit limits; internal/audit enforces the same.
const (
	minAuditKeyBytes  = 32
	minAuditFileBytes = 4096
)

// auditTableRE is the PostgreSQL table name accepted: an unquoted
// lowercase identifier, optionally schema-qualified, short enough for the
// sink to derive its index name.
var auditTableRE = regexp.MustCompile(`^([a-z_][a-z0-9_]{0,49}\.)?[a-z_][a-z0-9_]{0,49}$`)

// dsnPasswordRE finds a password in a key=value connection string.
var dsnPasswordRE = regexp.MustCompile(`(^|\s)password\s*=`)

func (c *Config) validateAudit(ps *Problems) {
	a := &c.Audit
	if a.IsZero() {
		return
	}
	const path = "audit"
	if !a.Enabled() {
		ps.add(path, "configures no sink, so nothing would be recorded; add file, stdout or postgres")
	}
	switch {
	case a.Key == nil || !a.Key.IsSecret() && a.Key.literal == "":
		if a.Enabled() {
			ps.add(join(path, "key"), "must be set to {env: NAME} or {file: PATH}: a random key of at least %d bytes (openssl rand -hex 32) that keys the HMAC of call arguments", minAuditKeyBytes)
		}
	case !a.Key.IsSecret():
		ps.add(join(path, "key"), "must be a reference, {env: NAME} or {file: PATH}, never the key itself")
	case a.Key.refProblem() != nil:
		ps.add(join(path, "key"), "%v", a.Key.refProblem())
	}
	if f := a.File; f != nil {
		p := join(path, "file")
		switch {
		case f.Path == "":
			ps.add(join(p, "path"), "must be set to the file records are appended to")
		case strings.HasSuffix(f.Path, "/"):
			ps.add(join(p, "path"), "must name a file, not a directory")
		case strings.ContainsRune(f.Path, 0):
			ps.add(join(p, "path"), "must not contain NUL")
		}
		if n := f.MaxBytes; n < 0 || n > 0 && n < minAuditFileBytes {
			ps.add(join(p, "max_bytes"), "must be 0 (never rotate) or at least %d, got %d", minAuditFileBytes, n)
		}
	}
	if pg := a.Postgres; pg != nil {
		p := join(path, "postgres")
		dsn := pg.DSN
		switch {
		case dsn.IsSecret():
			if err := dsn.refProblem(); err != nil {
				ps.add(join(p, "dsn"), "%v", err)
			}
		case dsn.literal == "":
			ps.add(join(p, "dsn"), "must be set to a postgres:// URL or a key=value connection string")
		default:
			if msg := dsnProblem(dsn.literal); msg != "" {
				ps.add(join(p, "dsn"), "%s", msg)
			}
		}
		if pg.Table != "" && !auditTableRE.MatchString(pg.Table) {
			ps.add(join(p, "table"), "must be a lowercase identifier of at most 50 characters (letters, digits, _), optionally schema.table, got %q", pg.Table)
		}
	}
	if a.OnFailure != "" {
		oneOf(ps, join(path, "on_failure"), a.OnFailure, "fail_closed", "fail_open")
	}
}

// dsnProblem checks a literal PostgreSQL connection string. Messages never
// quote it: it may hold a password.
func dsnProblem(s string) string {
	const withPassword = "holds a password; give the whole DSN as a reference, {env: NAME} or {file: PATH}, so the password stays out of the config file"
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		u, err := url.Parse(s)
		if err != nil {
			return "is not a valid postgres:// URL"
		}
		if _, ok := u.User.Password(); ok || u.Query().Has("password") {
			return withPassword
		}
		return ""
	}
	if !strings.Contains(s, "=") {
		return "must be a postgres:// URL or a key=value connection string such as \"host=127.0.0.1 dbname=audit\""
	}
	if dsnPasswordRE.MatchString(s) {
		return withPassword
	}
	return ""
}

// resolveSecrets reads audit.key, which must hold at least 32 bytes and
// not a placeholder, and audit.postgres.dsn when it is a reference.
func (a *Audit) resolveSecrets(ps *Problems) {
	if a.Key != nil && a.Key.IsSecret() {
		s, err := a.Key.Resolve()
		switch {
		case err != nil:
			ps.add("audit.key", "%v", err)
		case len(s) < minAuditKeyBytes || isPlaceholder(s):
			ps.add("audit.key", "is too weak: use a random key of at least %d bytes (openssl rand -hex 32)", minAuditKeyBytes)
		default:
			a.Key.resolved = &s
		}
	}
	if pg := a.Postgres; pg != nil && pg.DSN.IsSecret() {
		s, err := pg.DSN.Resolve()
		if err != nil {
			ps.add("audit.postgres.dsn", "%v", err)
			return
		}
		pg.DSN.resolved = &s
	}
}
