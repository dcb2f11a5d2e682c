package config

import (
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

var (
	policyRuleNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	mcpToolNameRE    = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
)

// policyMethods are the methods a policy rule can apply to. Expressions
// are compiled by internal/policy, which config does not import; this
// checks only the structure.
var policyMethods = []string{
	"tools/call", "prompts/get", "resources/read",
	"sampling/createMessage", "elicitation/create", "roots/list",
}

const (
	maxPolicyRuleName = 64
	maxPolicyReason   = 200
)

// validatePolicy checks the policy section and the per-server tool
// overrides that feed it annotations.
func (c *Config) validatePolicy(ps *Problems) {
	p := &c.Policy
	switch {
	case p.Default == "" && len(p.Rules) > 0:
		ps.add("policy.default", "must be set to allow or deny when rules are given: it decides every call no rule allows or denies")
	case p.Default != "":
		oneOf(ps, "policy.default", p.Default, "allow", "deny")
	}
	if p.ServerRequests != "" {
		oneOf(ps, "policy.server_requests", p.ServerRequests, "allow", "deny")
	}
	names := make(map[string]int, len(p.Rules))
	for i := range p.Rules {
		validatePolicyRule(ps, index("policy.rules", i), &p.Rules[i])
		name := p.Rules[i].Name
		if first, dup := names[name]; dup && name != "" {
			ps.add(join(index("policy.rules", i), "name"), "repeats the name of %s", index("policy.rules", first))
		} else {
			names[name] = i
		}
	}
	for name, s := range c.Servers {
		validateServerTools(ps, join("servers", name), s)
	}
}

func validatePolicyRule(ps *Problems, path string, r *PolicyRule) {
	switch {
	case r.Name == "":
		ps.add(join(path, "name"), "must be set: the name identifies the rule in logs, metrics and denials")
	case len(r.Name) > maxPolicyRuleName || !policyRuleNameRE.MatchString(r.Name):
		ps.add(join(path, "name"), "must be 1 to %d characters of a-z, 0-9, _ and -, starting with a letter or digit, got %q", maxPolicyRuleName, r.Name)
	}
	switch {
	case r.Allow != "" && r.Deny != "":
		ps.add(path, "must set only one of allow or deny, not both; write two rules")
	case r.Allow == "" && r.Deny == "":
		ps.add(path, "must set allow or deny to a CEL expression")
	}
	if r.Mode != "" {
		oneOf(ps, join(path, "mode"), r.Mode, "enforce", "dry_run")
	}
	if r.Methods != nil && len(r.Methods) == 0 {
		ps.add(join(path, "methods"), "must list at least one method, or be left out to mean [tools/call]")
	}
	seen := make(map[string]bool, len(r.Methods))
	for i, m := range r.Methods {
		p := index(join(path, "methods"), i)
		switch {
		case !slices.Contains(policyMethods, m):
			ps.add(p, "must be one of %s, got %q", strings.Join(policyMethods, ", "), m)
		case seen[m]:
			ps.add(p, "repeats %s", m)
		}
		seen[m] = true
	}
	if r.Reason != "" {
		p := join(path, "reason")
		if r.Allow != "" && r.Deny == "" {
			ps.add(p, "only a deny rule takes a reason: it is the message of a denial")
		}
		if n := utf8.RuneCountInString(r.Reason); n > maxPolicyReason {
			ps.add(p, "must be at most %d characters, got %d", maxPolicyReason, n)
		}
		if strings.IndexFunc(r.Reason, unicode.IsControl) >= 0 {
			ps.add(p, "must not contain control characters such as newlines")
		}
	}
}

// validateServerTools checks a server's tool overrides. Its pin mode is
// checked with the store (validateStore).
func validateServerTools(ps *Problems, path string, s *Server) {
	if s == nil {
		return // reported by validateServer
	}
	for tool, o := range s.Tools {
		p := join(join(path, "tools"), tool)
		server := path[len("servers."):]
		switch {
		case !mcpToolNameRE.MatchString(tool):
			ps.add(p, "invalid tool name; MCP tool names are 1 to 128 characters of A-Z, a-z, 0-9, '.', '_' and '-'")
		case strings.HasPrefix(tool, server+"__"):
			ps.add(p, "use the server's own tool name (%s), not the name on /mcp", strings.TrimPrefix(tool, server+"__"))
		}
		if o == nil || *o == (ToolOverride{}) {
			ps.add(p, "must set annotations, timeout or duplicates")
			continue
		}
		if a := o.Annotations; a != nil && *a == (ToolAnnotations{}) {
			ps.add(join(p, "annotations"), "must set at least one of read_only, destructive, idempotent or open_world")
		}
		if o.Timeout < 0 {
			ps.add(join(p, "timeout"), "must not be negative, got %s", o.Timeout)
		}
		if o.Duplicates != "" {
			oneOf(ps, join(p, "duplicates"), o.Duplicates, "flag", "refuse")
		}
	}
}
