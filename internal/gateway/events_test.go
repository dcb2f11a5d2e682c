package gateway

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestEventLogReplayAndBound(t *testing.T) {
	l := newEventLog("7", 3)
	for _, d := range []string{"a", "b", "c", "d"} {
		l.append([]byte(d))
	}
	evs, closed, _ := l.since(1)
	if closed || len(evs) != 3 || string(evs[0].data) != "b" || evs[0].seq != 2 {
		t.Fatalf("since(1) = %+v closed=%v; want the 3 newest, from seq 2", evs, closed)
	}
	evs, _, _ = l.since(4)
	if len(evs) != 1 || string(evs[0].data) != "d" {
		t.Fatalf("since(4) = %+v", evs)
	}
	l.close()
	if l.append([]byte("e")) {
		t.Fatal("append after close succeeded")
	}
	if _, closed, _ := l.since(5); !closed {
		t.Fatal("closed log not reported closed")
	}
}

// A stream of large events keeps at most maxLogBytes, and always the
// newest event, however large.
func TestEventLogByteBound(t *testing.T) {
	l := newEventLog("1", 256)
	big := strings.Repeat("x", 1<<20)
	for range 40 {
		l.append([]byte(big))
	}
	evs, _, _ := l.since(1)
	total := 0
	for _, e := range evs {
		total += len(e.data)
	}
	if total > maxLogBytes || len(evs) != maxLogBytes/(1<<20) || evs[len(evs)-1].seq != 40 {
		t.Fatalf("kept %d events, %d bytes (newest seq %d); want ≤ %d bytes ending at seq 40", len(evs), total, evs[len(evs)-1].seq, maxLogBytes)
	}
	huge := strings.Repeat("y", 2*maxLogBytes)
	l.append([]byte(huge))
	if evs, _, _ := l.since(1); len(evs) != 1 || len(evs[0].data) != len(huge) {
		t.Fatalf("an event larger than the bound must still be kept alone; kept %d events", len(evs))
	}
}

func TestEventIDRoundTrip(t *testing.T) {
	l := newEventLog("12", 4)
	id := l.eventID(5)
	s, n, ok := parseEventID(id)
	if !ok || s != "12" || n != 5 {
		t.Fatalf("parseEventID(%q) = %q, %d, %v", id, s, n, ok)
	}
	for _, bad := range []string{"", "x", "_1", "1_", "1_-2", "1_x"} {
		if _, _, ok := parseEventID(bad); ok {
			t.Errorf("parseEventID(%q) ok", bad)
		}
	}
}

func TestAttachReplacesTailer(t *testing.T) {
	l := newEventLog("0", 4)
	first := l.attach()
	second := l.attach()
	select {
	case <-first:
	default:
		t.Fatal("first tailer not detached by the second")
	}
	l.detach(first) // a stale detach must not detach the current tailer
	if !l.isAttached() {
		t.Fatal("stale detach removed the current tailer")
	}
	l.detach(second)
	if l.isAttached() {
		t.Fatal("still attached after detach")
	}
}

func TestSSEWriterSplitsLines(t *testing.T) {
	rr := httptest.NewRecorder()
	sw := newSSEWriter(rr)
	if err := sw.write("1_1", []byte("{\"a\":\r\n 1}")); err != nil {
		t.Fatal(err)
	}
	if err := sw.prime("1_0"); err != nil {
		t.Fatal(err)
	}
	want := "id: 1_1\ndata: {\"a\":\ndata:  1}\n\nid: 1_0\nretry: 500\ndata: \n\n"
	if got := rr.Body.String(); got != want {
		t.Fatalf("body = %q, want %q", got, want)
	}
	if ct := rr.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type %q", ct)
	}
}

func TestSSEWriterSingleLine(t *testing.T) {
	rr := httptest.NewRecorder()
	sw := newSSEWriter(rr)
	if err := sw.write("2_3", []byte(`{"jsonrpc":"2.0","id":1,"result":{}}`)); err != nil {
		t.Fatal(err)
	}
	if err := sw.write("", []byte("  ")); err != nil {
		t.Fatal(err)
	}
	want := "id: 2_3\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\ndata: \n\n"
	if got := rr.Body.String(); got != want {
		t.Fatalf("body = %q, want %q", got, want)
	}
}

// FuzzParseEventID: Last-Event-ID comes from clients.
func FuzzParseEventID(f *testing.F) {
	f.Add("3_7")
	f.Add("_")
	f.Add("1_99999999999999999999")
	f.Fuzz(func(t *testing.T, s string) {
		stream, seq, ok := parseEventID(s)
		if !ok {
			return
		}
		if seq < 0 {
			t.Fatalf("negative sequence %d from %q", seq, s)
		}
		l := newEventLog(stream, 1)
		if st, n, ok := parseEventID(l.eventID(seq)); !ok || st != stream || n != seq {
			t.Fatalf("round trip of %q: %q %d %v", s, st, n, ok)
		}
	})
}
