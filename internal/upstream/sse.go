package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
)

// errEventTooLarge is returned when one SSE event, or one line of it,
// exceeds the size cap. Lines are capped too, so a stream that never ends
// a line cannot grow a buffer without bound.
var errEventTooLarge = errors.New("sse event too large")

// maxEventID bounds the event IDs kept for resumption.
const maxEventID = 1024

// sseEvent is one dispatched server-sent event.
type sseEvent struct {
	ID    string
	Name  string
	Data  []byte
	Retry time.Duration
}

// sseReader reads events one at a time, never buffering more than one.
type sseReader struct {
	r       *bufio.Reader
	max     int
	lastID  string
	retry   time.Duration
	started bool
}

func newSSEReader(r io.Reader, maxEvent int) *sseReader {
	return newSSEReaderSize(r, maxEvent, 16<<10)
}

// newSSEReaderSize reads with a buffer of size bytes; longer lines still
// assemble, a buffer at a time.
func newSSEReaderSize(r io.Reader, maxEvent, size int) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, size), max: maxEvent}
}

// callReaders recycles the read buffers of call streams: one per call
// would be most of a call's allocation.
var callReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}

// Next returns the next message event with a non-empty data field. Events
// with only an id (priming events) update the last event ID and are
// skipped, as are events of any type but "message".
func (s *sseReader) Next() (sseEvent, error) {
	var name string
	// data is the event's data: the first data line itself (readLine
	// returns a fresh slice), extended by later ones. It is handed to the
	// caller without another copy: events can be megabytes.
	var data []byte
	hasData := false
	for {
		line, err := s.readLine()
		if err != nil {
			if err == io.EOF && hasData {
				// An event not terminated by a blank line is discarded (WHATWG).
				return sseEvent{}, io.ErrUnexpectedEOF
			}
			return sseEvent{}, err
		}
		if len(line) == 0 {
			// An event with an empty data buffer is not dispatched (WHATWG):
			// a priming event only sets the last event ID. Only "message"
			// events (the default type) carry MCP messages; others are
			// skipped, never taken for a response.
			if hasData && len(data) > 0 && (name == "" || name == "message") {
				return sseEvent{ID: s.lastID, Name: name, Data: data, Retry: s.retry}, nil
			}
			name = ""
			data = nil
			hasData = false
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "data":
			if len(data)+len(value) > s.max {
				return sseEvent{}, errEventTooLarge
			}
			if !hasData {
				data = value
			} else {
				data = append(append(data, '\n'), value...)
			}
			hasData = true
		case "id":
			// An ID goes back in a Last-Event-ID header: a huge one is
			// ignored rather than sent.
			if bytes.IndexByte(value, 0) < 0 && len(value) <= maxEventID {
				s.lastID = string(value)
			}
		case "event":
			name = string(value)
		case "retry":
			if ms, err := strconv.Atoi(string(value)); err == nil && ms >= 0 {
				s.retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
}

// readLine returns one line without its terminator (CRLF, LF or CR).
func (s *sseReader) readLine() ([]byte, error) {
	var line []byte
	for {
		chunk, err := s.r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > s.max+64 {
			return nil, errEventTooLarge
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				return trimEOL(line), nil
			}
			return nil, err
		}
		if !s.started {
			s.started = true
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		}
		return trimEOL(line), nil
	}
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// String implements fmt.Stringer for debugging.
func (e sseEvent) String() string {
	return fmt.Sprintf("event{id=%q name=%q %d bytes}", e.ID, e.Name, len(e.Data))
}
