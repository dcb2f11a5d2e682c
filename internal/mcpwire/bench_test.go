package mcpwire

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// toolsCall is a typical tools/call request of about 300 bytes.
const toolsCall = `{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"github__create_issue",` +
	`"arguments":{"owner":"mcpgate","repo":"mcpgate","title":"Gateway drops progress notifications",` +
	`"body":"Steps:\n1. call a long tool\n2. watch for notifications/progress","labels":["bug","p2"],` +
	`"assignees":[]},"_meta":{"progressToken":"tok-7f3a"}}}`

// largeResult returns a tools/call result of about 64 KiB of text content.
func largeResult() []byte {
	var b strings.Builder
	b.WriteString(`{"jsonrpc":"2.0","id":"req-1","result":{"content":[`)
	for i := 0; b.Len() < 64<<10-200; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":"text","text":"line %d: the quick brown fox jumps over the lazy dog \u00e9\n","annotations":{"priority":0.5}}`, i)
	}
	b.WriteString(`],"isError":false}}`)
	return []byte(b.String())
}

func BenchmarkDecode(b *testing.B) {
	for _, bc := range []struct {
		name string
		data []byte
	}{
		{"tools_call", []byte(toolsCall)},
		{"result_64KiB", largeResult()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if _, err := Decode(bc.data, Limits{}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.data)))
			for b.Loop() {
				if _, err := Decode(bc.data, Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncodingJSON is the baseline Decode replaces: a non-strict
// encoding/json decode of the same documents into a map.
func BenchmarkEncodingJSON(b *testing.B) {
	for _, bc := range []struct {
		name string
		data []byte
	}{
		{"tools_call", []byte(toolsCall)},
		{"result_64KiB", largeResult()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.data)))
			for b.Loop() {
				var v map[string]json.RawMessage
				if err := json.Unmarshal(bc.data, &v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkWithID(b *testing.B) {
	m, err := Decode([]byte(toolsCall), Limits{})
	if err != nil {
		b.Fatal(err)
	}
	id := []byte(`"gw-00000001"`)
	b.ReportAllocs()
	for b.Loop() {
		_ = WithID(m, id)
	}
}

func BenchmarkParamsField(b *testing.B) {
	m, err := Decode([]byte(toolsCall), Limits{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		raw, ok := ParamsField(m.Params, "name")
		if !ok {
			b.Fatal("name not found")
		}
		if _, ok := StringValue(raw); !ok {
			b.Fatal("name not a string")
		}
	}
}
