package policy

import (
	"bytes"
	"encoding/json"
	"strconv"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// decodeStd decodes raw as parseArgs should, with encoding/json: ok is
// false unless raw is empty, null or a JSON object.
func decodeStd(raw []byte) (v any, ok bool) {
	t := bytes.Trim(raw, " \t\r\n") // JSON whitespace only
	if len(t) == 0 || string(t) == "null" {
		return map[string]any{}, true
	}
	if t[0] != '{' || !json.Valid(raw) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, false
	}
	return m, true
}

// sameJSON reports whether a CEL value from parseArgs holds what
// encoding/json decoded.
func sameJSON(v ref.Val, j any) bool {
	switch j := j.(type) {
	case map[string]any:
		m, ok := v.(traits.Mapper)
		if !ok || int(m.Size().(types.Int)) != len(j) {
			return false
		}
		for k, jv := range j {
			mv, found := m.Find(types.String(k))
			if !found || !sameJSON(mv, jv) {
				return false
			}
		}
		return true
	case []any:
		l, ok := v.(traits.Lister)
		if !ok || int(l.Size().(types.Int)) != len(j) {
			return false
		}
		for i, jv := range j {
			if !sameJSON(l.Get(types.Int(i)), jv) {
				return false
			}
		}
		return true
	case json.Number:
		want, _ := strconv.ParseFloat(string(j), 64)
		switch n := v.(type) {
		case types.Int:
			i, err := strconv.ParseInt(string(j), 10, 64)
			return err == nil && int64(n) == i
		case types.Double:
			return float64(n) == want
		}
		return false
	case string:
		return v == types.String(j)
	case bool:
		return v == types.Bool(j)
	case nil:
		return v == types.NullValue
	}
	return false
}
