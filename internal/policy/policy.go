// Package policy owns authorization: named rules written in CEL, compiled
// once at load into a Policy whose Decide (may this call go ahead?) and
// Visible (may this tool appear in a list?) are pure functions of one
// call's Input.
package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/identity"
)

// Methods a rule can apply to. Client requests fall back to policy.default,
// server→client requests to policy.server_requests.
const (
	MethodToolsCall     = "tools/call"
	MethodPromptsGet    = "prompts/get"
	MethodResourcesRead = "resources/read"
	MethodSampling      = "sampling/createMessage"
	MethodElicitation   = "elicitation/create"
	MethodRootsList     = "roots/list"
)

// Values of the config, and the public reasons of denials.
const (
	defaultAllow         = "allow"
	defaultDeny          = "deny"
	modeEnforce          = "enforce"
	modeDryRun           = "dry_run"
	defaultRuleMethod    = MethodToolsCall
	ruleReasonFormat     = "denied by policy rule %s"
	errorReasonFormat    = "denied by policy rule %s: the rule could not be evaluated for this call"
	defaultReasonClient  = "denied by policy: no rule allows this call"
	defaultReasonRequest = "denied by policy: no rule allows this request"
)

var (
	clientMethods = []string{MethodToolsCall, MethodPromptsGet, MethodResourcesRead}
	serverMethods = []string{MethodSampling, MethodElicitation, MethodRootsList}
)

// Tool is the tool (or, for prompts/get, the prompt) a call is about, with
// the annotations the gateway believes.
type Tool struct {
	Name, Version                                string
	ReadOnly, Destructive, Idempotent, OpenWorld bool
}

// Input is everything a rule may read about one call.
type Input struct {
	Principal                 identity.Principal
	ClientName, ClientVersion string
	Server                    string
	Tool                      Tool
	// URI is the resource of resources/read.
	URI     string
	Method  string
	Session string
	// Args is the raw JSON object of the call's arguments; nil means none.
	// It is parsed at most once, and only if a rule reads args.
	Args []byte
	Time time.Time
}

// Decision is the outcome of Decide.
type Decision struct {
	Allow bool
	// Rule is the enforcing rule that decided; empty when the default did.
	Rule string
	// Reason is the public reason of a denial, fit to show a client.
	Reason string
	// DryRun names the dry-run rules that would have changed the outcome.
	DryRun []string
	// Err describes rules that could not be evaluated, for the log only;
	// Allow already accounts for them (fail-closed for deny rules).
	Err error
}

// Policy is a compiled policy. It is immutable and safe for concurrent use.
type Policy struct {
	enabled bool
	sets    map[string]*ruleSet
}

// ruleSet holds the rules that apply to one method, in config order.
type ruleSet struct {
	deny, allow, dryDeny, dryAllow []*rule
	fallback                       bool   // allow when no rule decides
	fallbackReason                 string // the reason when fallback denies
}

// rule is one compiled rule.
type rule struct {
	name        string
	reason      string // public reason of a denial by this rule
	errorReason string // public reason of a denial because it failed
	prg         cel.Program
	// partial evaluates with args (and uri) unknown, for Visible; nil when
	// the rule reads neither, and prg gives the same answer.
	partial cel.Program
}

// New compiles every rule of cfg. The error, a config.Problems, lists every
// rule that does not compile, by path (policy.rules[2].deny).
func New(cfg config.Policy) (*Policy, error) {
	env, err := newEnv()
	if err != nil {
		return nil, fmt.Errorf("policy: build CEL environment: %w", err)
	}
	var ps config.Problems
	clientFallback := fallback(&ps, "policy.default", cfg.Default, len(cfg.Rules) > 0)
	serverFallback := fallback(&ps, "policy.server_requests", cfg.ServerRequests, false)
	p := &Policy{
		enabled: len(cfg.Rules) > 0 || cfg.Default == defaultDeny || cfg.ServerRequests == defaultDeny,
		sets:    make(map[string]*ruleSet, len(clientMethods)+len(serverMethods)),
	}
	for _, m := range clientMethods {
		p.sets[m] = &ruleSet{fallback: clientFallback, fallbackReason: defaultReasonClient}
	}
	for _, m := range serverMethods {
		p.sets[m] = &ruleSet{fallback: serverFallback, fallbackReason: defaultReasonRequest}
	}
	for i, rc := range cfg.Rules {
		path := fmt.Sprintf("policy.rules[%d]", i)
		r := compile(&ps, env, path, rc)
		methods := rc.Methods
		if len(methods) == 0 {
			methods = []string{defaultRuleMethod}
		}
		for j, m := range methods {
			set, ok := p.sets[m]
			if !ok {
				ps = append(ps, config.Problem{Path: fmt.Sprintf("%s.methods[%d]", path, j),
					Message: fmt.Sprintf("must be one of %s, got %q", strings.Join(append(slices.Clone(clientMethods), serverMethods...), ", "), m)})
				continue
			}
			if r == nil || slices.Contains(methods[:j], m) {
				continue
			}
			dryRun := rc.Mode == modeDryRun
			switch {
			case rc.Deny != "" && dryRun:
				set.dryDeny = append(set.dryDeny, r)
			case rc.Deny != "":
				set.deny = append(set.deny, r)
			case dryRun:
				set.dryAllow = append(set.dryAllow, r)
			default:
				set.allow = append(set.allow, r)
			}
		}
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return p, nil
}

// fallback parses policy.default or policy.server_requests. Unset means
// allow, unless required.
func fallback(ps *config.Problems, path, v string, required bool) bool {
	switch v {
	case defaultAllow:
		return true
	case defaultDeny:
		return false
	case "":
		if required {
			*ps = append(*ps, config.Problem{Path: path, Message: "must be set to allow or deny when rules are given: it decides every call no rule allows or denies"})
		}
		return true
	}
	*ps = append(*ps, config.Problem{Path: path, Message: fmt.Sprintf("must be one of allow, deny, got %q", v)})
	return false
}

// compile compiles one rule, or records why it cannot and returns nil.
func compile(ps *config.Problems, env *cel.Env, path string, rc config.PolicyRule) *rule {
	add := func(p, format string, args ...any) {
		*ps = append(*ps, config.Problem{Path: p, Message: fmt.Sprintf(format, args...)})
	}
	ok := true
	if rc.Name == "" {
		add(path+".name", "must be set")
		ok = false
	}
	if rc.Mode != "" && rc.Mode != modeEnforce && rc.Mode != modeDryRun {
		add(path+".mode", "must be one of enforce, dry_run, got %q", rc.Mode)
		ok = false
	}
	key, src := "allow", rc.Allow
	switch {
	case rc.Allow != "" && rc.Deny != "":
		add(path, "must set only one of allow or deny, not both; write two rules")
		return nil
	case rc.Deny != "":
		key, src = "deny", rc.Deny
	case rc.Allow == "":
		add(path, "must set allow or deny to a CEL expression")
		return nil
	}
	path += "." + key
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		multiline := strings.Contains(src, "\n")
		for _, e := range iss.Errors() {
			if multiline {
				add(path, "%s (line %d, column %d)", e.Message, e.Location.Line(), e.Location.Column()+1)
			} else {
				add(path, "%s (column %d)", e.Message, e.Location.Column()+1)
			}
		}
		return nil
	}
	if t := ast.OutputType(); !t.IsExactType(types.BoolType) {
		add(path, "must be a bool expression, got %s", cel.FormatCELType(t))
		return nil
	}
	est, err := env.EstimateCost(ast, estimator{})
	if err != nil {
		add(path, "cannot estimate the cost: %v", err)
		return nil
	}
	if est.Max > MaxEstimatedCost {
		add(path, "too expensive: estimated worst-case cost %d exceeds the limit of %d (for lists, maps and strings of up to %d entries); a loop inside a loop (exists, all, filter, map) multiplies the cost", est.Max, MaxEstimatedCost, assumedSize)
		return nil
	}
	if !ok {
		return nil
	}
	r := &rule{
		name:        rc.Name,
		reason:      rc.Reason,
		errorReason: fmt.Sprintf(errorReasonFormat, rc.Name),
	}
	if r.reason == "" {
		r.reason = fmt.Sprintf(ruleReasonFormat, rc.Name)
	}
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	// Tracking the cost costs allocations on every call. It is needed only
	// where some input could push the cost over the limit: whatever the
	// sizes of the inputs, an evaluation never costs more than CEL
	// estimates for inputs of unbounded size.
	if worst, err := env.EstimateCost(ast, unboundedEstimator{}); err != nil || worst.Max > MaxRuntimeCost {
		opts = append(opts, cel.CostLimit(MaxRuntimeCost))
	}
	if r.prg, err = env.Program(ast, opts...); err != nil {
		add(path, "%v", err)
		return nil
	}
	if readsUnknowable(ast.NativeRep()) {
		r.partial, err = env.Program(ast, append(opts, cel.EvalOptions(cel.OptPartialEval))...)
		if err != nil {
			add(path, "%v", err)
			return nil
		}
	}
	return r
}

// readsUnknowable reports whether an expression names args or uri, the
// variables Visible does not know. A comprehension variable of the same
// name makes it answer true too, which only costs a partial evaluation.
func readsUnknowable(a *celast.AST) bool {
	found := false
	celast.PostOrderVisit(a.Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() == celast.IdentKind && (e.AsIdent() == "args" || e.AsIdent() == "uri") {
			found = true
		}
	}))
	return found
}

// Enabled reports whether the policy can deny anything: it has rules, or a
// default of deny.
func (p *Policy) Enabled() bool { return p != nil && p.enabled }
