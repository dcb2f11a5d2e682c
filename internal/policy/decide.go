package policy

import (
	"errors"
	"fmt"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
)

// Decide decides one call. A method no rule can govern (anything but the
// six listed in the Method constants) is allowed: the policy does not
// apply to it.
//
// Enforcing deny rules are tried first, in order: the first that matches,
// or that cannot be evaluated, denies. Then enforcing allow rules: the
// first that matches allows. Otherwise the method's fallback decides.
// Dry-run rules are evaluated only when they could change that outcome.
func (p *Policy) Decide(in *Input) Decision {
	set := p.set(in.Method)
	if set == nil {
		return Decision{Allow: true}
	}
	act := &activation{in: in}
	var errs []error
	d, decided := Decision{}, false
	for _, r := range set.deny {
		matched, err := eval(r.prg, act)
		if err != nil {
			errs = append(errs, evalError(r, err))
			d, decided = Decision{Rule: r.name, Reason: r.errorReason}, true
			break
		}
		if matched {
			d, decided = Decision{Rule: r.name, Reason: r.reason}, true
			break
		}
	}
	if !decided {
		for _, r := range set.allow {
			matched, err := eval(r.prg, act)
			if err != nil {
				errs = append(errs, evalError(r, err))
				continue
			}
			if matched {
				d, decided = Decision{Allow: true, Rule: r.name}, true
				break
			}
		}
	}
	if !decided {
		d.Allow = set.fallback
		if !d.Allow {
			d.Reason = set.fallbackReason
		}
	}
	switch {
	case d.Allow:
		for _, r := range set.dryDeny {
			// A dry-run deny that fails would, enforced, deny.
			matched, err := eval(r.prg, act)
			if err != nil {
				errs = append(errs, evalError(r, err))
			}
			if matched || err != nil {
				d.DryRun = append(d.DryRun, r.name)
			}
		}
	case d.Rule == "":
		for _, r := range set.dryAllow {
			matched, err := eval(r.prg, act)
			if err != nil {
				errs = append(errs, evalError(r, err))
			}
			if matched {
				d.DryRun = append(d.DryRun, r.name)
			}
		}
	}
	if len(errs) > 0 {
		d.Err = errors.Join(errs...)
	}
	return d
}

// Visible reports whether a tool (prompt, resource) may be listed to the
// caller: false only when every call of it would be denied whatever its
// arguments. It decides as Decide does with args unknown, and uri too for
// resources/read when in.URI is empty; in.Args is ignored. A rule that
// reads neither gives the same answer as in Decide; a rule that does
// hides the tool only when it denies, or cannot allow, for any value of
// them. Dry-run rules never hide anything.
func (p *Policy) Visible(in *Input) bool {
	set := p.set(in.Method)
	if set == nil {
		return true
	}
	act := &activation{in: in}
	var pact cel.Activation
	partial := func() cel.Activation {
		if pact == nil {
			unknown := unknownArgs
			if in.Method == MethodResourcesRead && in.URI == "" {
				unknown = unknownArgsURI
			}
			// The patterns are never nil, so PartialVars cannot fail.
			pact, _ = cel.PartialVars(act, unknown...)
		}
		return pact
	}
	for _, r := range set.deny {
		if r.partial == nil {
			if matched, err := eval(r.prg, act); matched || err != nil {
				return false
			}
			continue
		}
		// Only a certain match hides: an unknown result, or an error that
		// a concrete call might not hit, leaves the tool listed.
		out, _, err := r.partial.Eval(partial())
		if err == nil && out == types.True {
			return false
		}
	}
	for _, r := range set.allow {
		if r.partial == nil {
			if matched, _ := eval(r.prg, act); matched {
				return true
			}
			continue
		}
		// Anything but a certain non-match might allow some call.
		if out, _, err := r.partial.Eval(partial()); err != nil || out != types.False {
			return true
		}
	}
	return set.fallback
}

var (
	unknownArgs    = []*cel.AttributePatternType{cel.AttributePattern("args")}
	unknownArgsURI = []*cel.AttributePatternType{cel.AttributePattern("args"), cel.AttributePattern("uri")}
)

// set returns the rules of a method, nil when no rule can govern it or
// the policy is nil.
func (p *Policy) set(method string) *ruleSet {
	if p == nil {
		return nil
	}
	return p.sets[method]
}

// eval runs one rule; err says why it could not be evaluated.
func eval(prg cel.Program, act cel.Activation) (bool, error) {
	out, _, err := prg.Eval(act)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		// Compile checked the type; this is a value the checker could
		// not see, such as an unknown.
		return false, fmt.Errorf("result is %v, not a bool", out.Type())
	}
	return bool(b), nil
}

func evalError(r *rule, err error) error {
	return fmt.Errorf("policy rule %s could not be evaluated: %w", r.name, err)
}
