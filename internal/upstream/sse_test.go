package upstream

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestSSEReader(t *testing.T) {
	in := "\xef\xbb\xbf: comment\n" +
		"id: 1\ndata:\n\n" + // priming event: empty data, not dispatched
		"id: 2\nretry: 1500\nevent: message\ndata: {\"a\":\n" + "data: 1}\n\n" +
		"data: x\r\n\r\n" +
		"data: tail-without-blank-line"
	r := newSSEReader(strings.NewReader(in), 1<<20)
	e, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != "2" || e.Name != "message" || string(e.Data) != "{\"a\":\n1}" || e.Retry != 1500*time.Millisecond {
		t.Fatalf("first event = %+v %q", e, e.Data)
	}
	e, err = r.Next()
	if err != nil || string(e.Data) != "x" || e.ID != "2" {
		t.Fatalf("second event = %+v %q, %v", e, e.Data, err)
	}
	if _, err := r.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("unterminated event: err = %v", err)
	}
}

func TestSSEReaderCapsEventSize(t *testing.T) {
	in := "data: " + strings.Repeat("x", 100) + "\n" + "data: " + strings.Repeat("y", 100) + "\n\n"
	r := newSSEReader(strings.NewReader(in), 150)
	if _, err := r.Next(); !errors.Is(err, errEventTooLarge) {
		t.Fatalf("err = %v, want errEventTooLarge", err)
	}
	long := "data: " + strings.Repeat("z", 1<<20) + "\n\n"
	r = newSSEReader(strings.NewReader(long), 1000)
	if _, err := r.Next(); !errors.Is(err, errEventTooLarge) {
		t.Fatalf("long line: err = %v, want errEventTooLarge", err)
	}
}
