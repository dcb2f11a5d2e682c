package telemetry_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/telemetry"
)

// spanContext returns a context holding a fixed sampled span with a
// tracestate.
func spanContext(t *testing.T) context.Context {
	t.Helper()
	tid, _ := trace.TraceIDFromHex(clientTrace)
	sid, _ := trace.SpanIDFromHex(clientSpan)
	ts, err := trace.ParseTraceState("a=1,b=2")
	if err != nil {
		t.Fatal(err)
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, TraceState: ts})
	return trace.ContextWithSpanContext(context.Background(), sc)
}

func TestInjectMeta(t *testing.T) {
	tr, err := telemetry.NewTracing(context.Background(), config.Tracing{}, "dev")
	if err != nil {
		t.Fatal(err)
	}
	const meta = `"traceparent":"` + clientParent + `","tracestate":"a=1,b=2"`
	for _, tc := range []struct {
		name, in, want string
	}{
		{"absent params", ``, `{"_meta":{` + meta + `}}`},
		{"null params", `null`, `{"_meta":{` + meta + `}}`},
		{"empty object", `{}`, `{"_meta":{` + meta + `}}`},
		{"no _meta", `{"name":"echo","arguments":{"b":[1, 2],"a":"\u00e9"}}`, `{"name":"echo","arguments":{"b":[1, 2],"a":"\u00e9"},"_meta":{` + meta + `}}`},
		{"other _meta keys kept", `{ "_meta" : {"progressToken": 5} , "name":"x" }`, `{ "_meta" : {"progressToken": 5,` + meta + `} , "name":"x" }`},
		{"stale context replaced", `{"_meta":{"tracestate":"old=1","traceparent":"00-x","k":1}}`, `{"_meta":{"tracestate":"a=1,b=2","traceparent":"` + clientParent + `","k":1}}`},
		{"_meta null", `{"_meta":null}`, `{"_meta":{` + meta + `}}`},
		{"_meta not an object", `{"_meta":[1]}`, `{"_meta":{` + meta + `}}`},
		{"params not an object", `[1,2]`, `[1,2]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(tr.InjectMeta(spanContext(t), []byte(tc.in))); got != tc.want {
				t.Errorf("InjectMeta(%s)\n got %s\nwant %s", tc.in, got, tc.want)
			}
		})
	}
	if got := string(tr.InjectMeta(context.Background(), []byte(`{"a":1}`))); got != `{"a":1}` {
		t.Errorf("InjectMeta without a trace = %s, want params unchanged", got)
	}
}

func TestMetaTraceContext(t *testing.T) {
	for _, tc := range []struct {
		params, parent, state string
	}{
		{`{"_meta":{"traceparent":"p","tracestate":"s"}}`, "p", "s"},
		{`{"_meta":{"trace\u0070arent":"p"}}`, "p", ""}, // keys compare unescaped
		{`{"_meta":{"traceparent":7}}`, "", ""},
		{`{"name":"x"}`, "", ""},
		{`{"traceparent":"p"}`, "", ""}, // only _meta counts
		{``, "", ""},
	} {
		parent, state := telemetry.MetaTraceContext([]byte(tc.params))
		if parent != tc.parent || state != tc.state {
			t.Errorf("MetaTraceContext(%s) = %q, %q; want %q, %q", tc.params, parent, state, tc.parent, tc.state)
		}
	}
}

func TestInjectRemovesStaleHeaders(t *testing.T) {
	tr, _ := telemetry.NewTracing(context.Background(), config.Tracing{}, "dev")
	h := map[string][]string{"Traceparent": {clientParent}, "Tracestate": {"x=1"}, "X-Other": {"kept"}}
	tr.Inject(context.Background(), h)
	if len(h) != 1 || h["X-Other"][0] != "kept" {
		t.Errorf("headers after Inject without a trace = %v, want only X-Other", h)
	}
}
