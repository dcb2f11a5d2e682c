package policy

import (
	"errors"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

var errWrongObject = errors.New("policy: field read from the wrong object")

var (
	emptyMap   = types.NewMap(types.DefaultTypeAdapter, map[string]ref.Val{})
	emptyFlags = types.DefaultTypeAdapter.NativeToValue(map[string]bool{})
)

// activation supplies the variables of one call to every rule evaluated
// for it. Values are made when a rule reads them, so a rule that never
// reads args never pays for parsing them.
type activation struct {
	in   *Input
	args ref.Val // nil until first read
}

// ResolveName implements cel.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "principal":
		return (*principalObj)(a.in), true
	case "tool":
		return (*toolObj)(a.in), true
	case "server":
		return types.String(a.in.Server), true
	case "args":
		if a.args == nil {
			a.args = parseArgs(a.in.Args)
		}
		return a.args, true
	case "uri":
		return types.String(a.in.URI), true
	case "method":
		return types.String(a.in.Method), true
	case "session":
		return types.String(a.in.Session), true
	case "time":
		return types.Timestamp{Time: a.in.Time}, true
	case "flags":
		return emptyFlags, true
	}
	return nil, false
}

// Parent implements cel.Activation.
func (a *activation) Parent() cel.Activation { return nil }
