package mcpwire

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParamsField(t *testing.T) {
	params := ` { "name" : "echo" , "arguments":{"name":"inner","x":[1,{"name":2}]}, "n":-1.5e3, "b":true, "z":null, "s":"a,}]\"", "\u0065sc":"escaped", "e":{}} `
	tests := []struct {
		key  string
		want string
		ok   bool
	}{
		{"name", `"echo"`, true},
		{"arguments", `{"name":"inner","x":[1,{"name":2}]}`, true},
		{"n", `-1.5e3`, true},
		{"b", `true`, true},
		{"z", `null`, true},
		{"s", `"a,}]\""`, true},
		{"esc", `"escaped"`, true},
		{"e", `{}`, true},
		{"x", ``, false},    // only nested
		{"Name", ``, false}, // exact match only
		{"", ``, false},
	}
	for _, tt := range tests {
		got, ok := ParamsField([]byte(params), tt.key)
		if string(got) != tt.want || ok != tt.ok {
			t.Errorf("ParamsField(%q) = %q, %v; want %q, %v", tt.key, got, ok, tt.want, tt.ok)
		}
	}
	for _, bad := range []string{``, `[]`, `"name"`, `{`, `{"name"`, `{"name":`, `{"a":1 "name":2}`, `{"a":[1,2}`, `null`} {
		if got, ok := ParamsField([]byte(bad), "name"); ok {
			t.Errorf("ParamsField(%q) = %q, true; want false", bad, got)
		}
	}
	if got, ok := ParamsField([]byte(`{}`), "name"); ok || got != nil {
		t.Errorf("ParamsField({}) = %q, %v", got, ok)
	}
}

func TestParamsFieldLongEscapedKey(t *testing.T) {
	key := strings.Repeat("é", 100)
	params := `{"` + strings.Repeat(`\u00e9`, 100) + `":1}`
	if got, ok := ParamsField([]byte(params), key); !ok || string(got) != "1" {
		t.Errorf("ParamsField = %q, %v; want 1, true", got, ok)
	}
}

func TestStringValue(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{`"echo"`, "echo", true},
		{` "echo" `, "echo", true},
		{`""`, "", true},
		{`"a\"b\\c\/d\n\t\u00e9\ud83d\ude00"`, "a\"b\\c/d\n\té😀", true},
		{`"日本"`, "日本", true},
		{`echo`, "", false},
		{`"echo`, "", false},
		{`"a"b"`, "", false},
		{`1`, "", false},
		{`null`, "", false},
		{``, "", false},
		{`"\ud800"`, "", false},
		{"\"\xff\"", "", false},
		{"\"a\nb\"", "", false},
		{`"\q"`, "", false},
	}
	for _, tt := range tests {
		got, ok := StringValue([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("StringValue(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestReplaceParamsField(t *testing.T) {
	tests := []struct {
		name   string
		params string
		key    string
		value  string
		want   string
	}{
		{"replace", `{"name":"a__echo","arguments":{"x":1}}`, "name", `"echo"`, `{"name":"echo","arguments":{"x":1}}`},
		{"replace last", `{"name":"a","arguments":{"x":1}}`, "arguments", `{}`, `{"name":"a","arguments":{}}`},
		{"replace keeps spacing", "{ \"name\" : \"a\" ,\n \"b\" : [ 1 ] }", "name", `"b"`, "{ \"name\" : \"b\" ,\n \"b\" : [ 1 ] }"},
		{"replace escaped key", `{"n\u0061me":"a","b":1}`, "name", `"z"`, `{"n\u0061me":"z","b":1}`},
		{"replace top level only", `{"arguments":{"name":"x"},"name":"a"}`, "name", `"b"`, `{"arguments":{"name":"x"},"name":"b"}`},
		{"add", `{"arguments":{"x":1}}`, "name", `"echo"`, `{"arguments":{"x":1},"name":"echo"}`},
		{"add after whitespace", "{\"a\":1 \n}", "b", `2`, "{\"a\":1,\"b\":2 \n}"},
		{"add to empty", `{}`, "name", `"x"`, `{"name":"x"}`},
		{"add to empty with space", `{ }`, "name", `"x"`, `{"name":"x" }`},
		{"add to nil", ``, "name", `"x"`, `{"name":"x"}`},
		{"add quoted key", `{}`, "a\"b", `1`, `{"a\"b":1}`},
		{"not an object", `[1]`, "name", `1`, ``},
		{"malformed", `{"a":1`, "name", `1`, ``},
		{"trailing garbage", `{"a":1} x`, "name", `1`, ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			params := []byte(tt.params)
			got := ReplaceParamsField(params, tt.key, []byte(tt.value))
			if string(got) != tt.want {
				t.Fatalf("ReplaceParamsField = %q, want %q", got, tt.want)
			}
			if tt.want == "" {
				if got != nil {
					t.Fatalf("got %q, want nil", got)
				}
				return
			}
			if string(params) != tt.params {
				t.Errorf("params modified: %q", params)
			}
			if !json.Valid(got) {
				t.Errorf("result is not valid JSON: %q", got)
			}
			if v, ok := ParamsField(got, tt.key); !ok || string(v) != tt.value {
				t.Errorf("ParamsField(result, %q) = %q, %v; want %q", tt.key, v, ok, tt.value)
			}
		})
	}
}

// TestReplaceParamsFieldDoesNotAlias guards against appending into the
// caller's params when it has spare capacity.
func TestReplaceParamsFieldDoesNotAlias(t *testing.T) {
	buf := make([]byte, 0, 256)
	buf = append(buf, `{"name":"a","b":1}`...)
	got := ReplaceParamsField(buf[:len(buf):len(buf)], "name", []byte(`"x"`))
	got2 := ReplaceParamsField(buf, "c", []byte(`2`))
	if string(got) != `{"name":"x","b":1}` || string(got2) != `{"name":"a","b":1,"c":2}` || string(buf) != `{"name":"a","b":1}` {
		t.Errorf("got %q, %q; buf %q", got, got2, buf)
	}
}

func TestValidToolName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"echo", true},
		{"github__create_issue", true},
		{"a.b-c_D9", true},
		{"x", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"", false},
		{"has space", false},
		{"slash/name", false},
		{"colon:name", false},
		{"tab\tname", false},
		{"nul\x00", false},
		{"é", false},
		{"name\n", false},
	}
	for _, tt := range tests {
		if got := ValidToolName(tt.name); got != tt.want {
			t.Errorf("ValidToolName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}
