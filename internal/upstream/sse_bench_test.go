package upstream

import (
	"strings"
	"testing"
)

// benchRepeatReader yields the same bytes over and over, so that a benchmark
// can read an endless stream of identical events.
type benchRepeatReader struct {
	data []byte
	off  int
}

func (r *benchRepeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.data[r.off:])
		n += c
		r.off = (r.off + c) % len(r.data)
	}
	return n, nil
}

// A tools/call response event as the Go SDK sends it, preceded by the
// priming event of a 2025-11-25 POST stream.
const (
	benchPrimingEvent  = "id: 1_0\ndata: \n\n"
	benchToolCallEvent = "event: message\nid: 1_1\ndata: {\"jsonrpc\":\"2.0\",\"id\":17,\"result\":{\"content\":[{\"type\":\"text\"," +
		"\"text\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}],\"isError\":false}}\n\n"
)

func BenchmarkSSEReaderNext(b *testing.B) {
	for _, bc := range []struct {
		name   string
		stream string
	}{
		{"tools_call_result", benchToolCallEvent},
		{"primed_tools_call_result", benchPrimingEvent + benchToolCallEvent},
		{"result_64KiB", "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"" +
			strings.Repeat("y", 64<<10) + "\"}]}}\n\n"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := newSSEReader(&benchRepeatReader{data: []byte(bc.stream)}, DefaultMaxResponseBytes)
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.stream)))
			for b.Loop() {
				ev, err := r.Next()
				if err != nil || len(ev.Data) == 0 {
					b.Fatal(err)
				}
			}
		})
	}
}
