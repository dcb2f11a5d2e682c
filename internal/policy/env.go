package policy

import (
	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
)

// Cost limits. The estimate is taken at load, assuming every string, list
// and map an expression reads holds at most assumedSize bytes or entries;
// the runtime limit stops one evaluation that still runs away (a larger
// input), which then counts as an evaluation error.
const (
	// MaxEstimatedCost bounds the estimated worst-case cost of one rule.
	MaxEstimatedCost = 100_000
	// MaxRuntimeCost bounds the actual cost of one evaluation of one rule.
	MaxRuntimeCost = 100_000

	assumedSize = 1000
)

// Names of the object types of principal and tool, as CEL reports them.
const (
	principalType = "mcpgate.Principal"
	toolType      = "mcpgate.Tool"
)

// principalObj and toolObj are the values of the principal and tool
// variables: views of the same Input, told apart by type so that a field
// getter can never read the wrong one.
type (
	principalObj Input
	toolObj      Input
)

// field is one field of principal or tool.
type field[T any] struct {
	typ   *types.Type
	get   func(*T) ref.Val
	isSet func(*T) bool
}

func stringField[T any](f func(*T) string) field[T] {
	return field[T]{
		typ:   types.StringType,
		get:   func(o *T) ref.Val { return types.String(f(o)) },
		isSet: func(o *T) bool { return f(o) != "" },
	}
}

func listField[T any](f func(*T) []string) field[T] {
	return field[T]{
		typ:   types.NewListType(types.StringType),
		get:   func(o *T) ref.Val { return types.NewStringList(types.DefaultTypeAdapter, f(o)) },
		isSet: func(o *T) bool { return len(f(o)) > 0 },
	}
}

func boolField[T any](f func(*T) bool) field[T] {
	return field[T]{
		typ:   types.BoolType,
		get:   func(o *T) ref.Val { return types.Bool(f(o)) },
		isSet: f,
	}
}

var principalFields = map[string]field[principalObj]{
	"subject":        stringField(func(o *principalObj) string { return o.Principal.Subject }),
	"tenant":         stringField(func(o *principalObj) string { return o.Principal.Tenant }),
	"groups":         listField(func(o *principalObj) []string { return o.Principal.Groups }),
	"scopes":         listField(func(o *principalObj) []string { return o.Principal.Scopes }),
	"issuer":         stringField(func(o *principalObj) string { return o.Principal.Issuer }),
	"method":         stringField(func(o *principalObj) string { return o.Principal.Method }),
	"client_name":    stringField(func(o *principalObj) string { return o.ClientName }),
	"client_version": stringField(func(o *principalObj) string { return o.ClientVersion }),
}

var toolFields = map[string]field[toolObj]{
	"name":        stringField(func(o *toolObj) string { return o.Tool.Name }),
	"version":     stringField(func(o *toolObj) string { return o.Tool.Version }),
	"read_only":   boolField(func(o *toolObj) bool { return o.Tool.ReadOnly }),
	"destructive": boolField(func(o *toolObj) bool { return o.Tool.Destructive }),
	"idempotent":  boolField(func(o *toolObj) bool { return o.Tool.Idempotent }),
	"open_world":  boolField(func(o *toolObj) bool { return o.Tool.OpenWorld }),
}

// fieldType adapts a field to CEL. CEL plans a selection of a declared
// field into a direct call of GetFrom, so reading principal.tenant costs
// one function call and no map lookup at evaluation.
func fieldType[T any](f field[T]) *types.FieldType {
	return &types.FieldType{
		Type: f.typ,
		IsSet: func(target any) bool {
			o, ok := target.(*T)
			return ok && f.isSet(o)
		},
		GetFrom: func(target any) (any, error) {
			o, ok := target.(*T)
			if !ok {
				return nil, errWrongObject
			}
			return f.get(o), nil
		},
	}
}

// provider declares the principal and tool object types on top of CEL's
// own types.
type provider struct {
	types.Provider
	fields map[string]map[string]*types.FieldType
}

func newProvider(base types.Provider) *provider {
	p := &provider{Provider: base, fields: map[string]map[string]*types.FieldType{
		principalType: {},
		toolType:      {},
	}}
	for name, f := range principalFields {
		p.fields[principalType][name] = fieldType(f)
	}
	for name, f := range toolFields {
		p.fields[toolType][name] = fieldType(f)
	}
	return p
}

// FindStructType implements types.Provider.
func (p *provider) FindStructType(name string) (*types.Type, bool) {
	if _, ok := p.fields[name]; ok {
		return types.NewTypeTypeWithParam(types.NewObjectType(name)), true
	}
	return p.Provider.FindStructType(name)
}

// FindStructFieldNames implements types.Provider.
func (p *provider) FindStructFieldNames(name string) ([]string, bool) {
	fs, ok := p.fields[name]
	if !ok {
		return p.Provider.FindStructFieldNames(name)
	}
	names := make([]string, 0, len(fs))
	for n := range fs {
		names = append(names, n)
	}
	return names, true
}

// FindStructFieldType implements types.Provider.
func (p *provider) FindStructFieldType(name, fieldName string) (*types.FieldType, bool) {
	fs, ok := p.fields[name]
	if !ok {
		return p.Provider.FindStructFieldType(name, fieldName)
	}
	f, ok := fs[fieldName]
	return f, ok
}

// NewValue implements types.Provider: principal and tool cannot be built
// in an expression.
func (p *provider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if _, ok := p.fields[name]; ok {
		return types.NewErr("%s cannot be constructed", name)
	}
	return p.Provider.NewValue(name, fields)
}

// newEnv returns the CEL environment every rule is compiled in.
func newEnv() (*cel.Env, error) {
	base, err := cel.NewEnv()
	if err != nil {
		return nil, err
	}
	return cel.NewEnv(
		cel.CustomTypeProvider(newProvider(base.CELTypeProvider())),
		cel.Variable("principal", types.NewObjectType(principalType)),
		cel.Variable("server", cel.StringType),
		cel.Variable("tool", types.NewObjectType(toolType)),
		cel.Variable("args", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("uri", cel.StringType),
		cel.Variable("method", cel.StringType),
		cel.Variable("session", cel.StringType),
		cel.Variable("time", cel.TimestampType),
		cel.Variable("flags", cel.MapType(cel.StringType, cel.BoolType)),
		// JSON numbers become int or double; let them compare with
		// either without a conversion.
		cel.CrossTypeNumericComparisons(true),
		ext.Strings(),
	)
}

// estimator sizes every variable-length input at assumedSize for the
// load-time cost estimate; CEL's defaults would assume unbounded sizes and
// refuse any loop.
type estimator struct{}

func (estimator) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

func (estimator) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	if len(n.Path()) == 0 {
		return nil
	}
	sz := cost.RangedSizeEstimate(0, assumedSize)
	return &sz
}

// unboundedEstimator leaves every size unknown, so that an estimate made
// with it bounds the cost of any input.
type unboundedEstimator struct{}

func (unboundedEstimator) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

func (unboundedEstimator) EstimateSize(cost.AstNode) *cost.SizeEstimate { return nil }
