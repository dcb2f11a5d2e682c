package upstream

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzSSEReader feeds arbitrary upstream bytes to the SSE reader: it must
// neither panic nor loop, and never return an event larger than its cap
// or one of another type than message.
func FuzzSSEReader(f *testing.F) {
	for _, s := range []string{
		"data: {}\n\n",
		"id: 1\ndata: a\ndata: b\n\n",
		"event: other\ndata: x\n\nid: 2\n\n",
		": comment\nretry: 10\r\ndata:x\r\n\r\n",
		"data: unterminated",
		"\n\n\n",
		"data:" + string(bytes.Repeat([]byte("y"), 300)) + "\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		const maxEvent = 256
		r := newSSEReaderSize(bytes.NewReader(in), maxEvent, 64)
		for i := 0; i <= len(in); i++ {
			ev, err := r.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, errEventTooLarge) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(ev.Data) == 0 || len(ev.Data) > maxEvent {
				t.Fatalf("event of %d bytes (cap %d)", len(ev.Data), maxEvent)
			}
			if ev.Name != "" && ev.Name != "message" {
				t.Fatalf("event of type %q returned", ev.Name)
			}
		}
		t.Fatal("more events than input bytes")
	})
}
