package gateway

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// eventLog is one of the gateway's own SSE streams: the events sent on it,
// kept (bounded) so a client can resume with Last-Event-ID, and a signal for
// the HTTP response that tails it. At most one response tails a log at a
// time, so every message goes out on exactly one stream.
type eventLog struct {
	id  string // the stream's ID, the prefix of its event IDs
	max int    // events kept

	mu       sync.Mutex // guards the fields below
	events   []event
	bytes    int           // total size of events
	first    int           // sequence number of events[0]
	next     int           // sequence number of the next event
	sent     int           // events below this sequence number were delivered
	wake     chan struct{} // closed and replaced on every change
	closed   bool
	attached chan struct{} // closed to detach the current tailer
}

// maxLogBytes bounds the bytes one stream keeps for resumption.
const maxLogBytes = 4 << 20

type event struct {
	seq  int
	data []byte
}

func newEventLog(id string, max int) *eventLog {
	// Sequence numbers start at 1, so "<id>_0" (the priming event's ID)
	// resumes from the beginning.
	return &eventLog{id: id, max: max, first: 1, next: 1, sent: 1, wake: make(chan struct{})}
}

// append adds one message to the stream. It reports false if the stream is
// closed.
func (l *eventLog) append(data []byte) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.events = append(l.events, event{seq: l.next, data: data})
	l.next++
	l.bytes += len(data)
	// Keep at most max events and maxLogBytes (but always the newest): an
	// upstream that streams large notifications must not grow the gateway.
	drop := 0
	for n := len(l.events) - drop; n > 1 && (n > l.max || l.bytes > maxLogBytes); n-- {
		l.bytes -= len(l.events[drop].data)
		drop++
	}
	if drop > 0 {
		l.events = append(l.events[:0:0], l.events[drop:]...)
		l.first += drop
	}
	l.signalLocked()
	return true
}

// close ends the stream: tailers finish sending what is logged and return.
func (l *eventLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		l.signalLocked()
	}
}

func (l *eventLog) signalLocked() {
	close(l.wake)
	l.wake = make(chan struct{})
}

// attach makes the caller the stream's only tailer and returns a channel
// that is closed when another tailer replaces it.
func (l *eventLog) attach() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.attached != nil {
		close(l.attached)
	}
	l.attached = make(chan struct{})
	return l.attached
}

func (l *eventLog) detach(ch <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.attached != nil && (<-chan struct{})(l.attached) == ch {
		l.attached = nil
	}
}

// isAttached reports whether a response currently tails the log.
func (l *eventLog) isAttached() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.attached != nil
}

// since returns the events from sequence number from on, whether the log
// is closed, and the channel that signals the next change.
func (l *eventLog) since(from int) ([]event, bool, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	from = max(from, l.first)
	var out []event
	if i := from - l.first; i < len(l.events) {
		out = l.events[i:]
	}
	return out, l.closed, l.wake
}

// markSent records that events below seq were delivered.
func (l *eventLog) markSent(seq int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent = max(l.sent, seq)
}

// undelivered returns the sequence number of the first event not yet sent.
func (l *eventLog) undelivered() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent
}

// eventID formats the SSE event ID of an event in this stream.
func (l *eventLog) eventID(seq int) string {
	return l.id + "_" + strconv.Itoa(seq)
}

// parseEventID splits an event ID into stream ID and sequence number.
func parseEventID(s string) (stream string, seq int, ok bool) {
	i := strings.LastIndexByte(s, '_')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil || n < 0 {
		return "", 0, false
	}
	return s[:i], n, true
}

// sseWriter writes events to one HTTP response, flushing each.
type sseWriter struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	buf bytes.Buffer
}

func newSSEWriter(w http.ResponseWriter) *sseWriter {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	return &sseWriter{w: w, rc: http.NewResponseController(w)}
}

// retryMillis is the reconnection delay the gateway asks clients to use.
const retryMillis = 500

// prime writes a priming event: an ID to resume from and no data, with
// the reconnection delay (the 2025-11-25 transport's polling support).
func (s *sseWriter) prime(id string) error {
	_, err := fmt.Fprintf(s.w, "id: %s\nretry: %d\ndata: \n\n", id, retryMillis)
	return err
}

// flush sends what was written.
func (s *sseWriter) flush() error { return s.rc.Flush() }

// write writes one event; flush sends it. Data with line breaks is split
// into several data lines, as SSE requires.
func (s *sseWriter) write(id string, data []byte) error {
	s.buf.Reset()
	if id != "" {
		s.buf.WriteString("id: ")
		s.buf.WriteString(id)
		s.buf.WriteByte('\n')
	}
	if !bytes.ContainsAny(data, "\r\n") && len(bytes.TrimSpace(data)) > 0 {
		// The usual case: one line, written as it is rather than copied
		// (results can be megabytes).
		s.buf.WriteString("data: ")
		if _, err := s.w.Write(s.buf.Bytes()); err != nil {
			return err
		}
		if _, err := s.w.Write(data); err != nil {
			return err
		}
		_, err := io.WriteString(s.w, "\n\n")
		return err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		s.buf.WriteString("data: \n\n")
		_, err := s.w.Write(s.buf.Bytes())
		return err
	}
	// JSON may contain line breaks only as whitespace, so splitting on them
	// and dropping empty pieces keeps the message intact.
	for _, line := range bytes.FieldsFunc(data, func(r rune) bool { return r == '\r' || r == '\n' }) {
		s.buf.WriteString("data: ")
		s.buf.Write(line)
		s.buf.WriteByte('\n')
	}
	s.buf.WriteByte('\n')
	_, err := s.w.Write(s.buf.Bytes())
	return err
}
