package mcpwire

import (
	"bytes"
	"fmt"
	"strconv"
	"sync"
)

// field identifies a top-level envelope member.
type field uint8

const (
	fieldNone field = iota
	fieldJSONRPC
	fieldID
	fieldMethod
	fieldParams
	fieldResult
	fieldError
	numFields
)

// fieldNames are the envelope member names, indexed by field.
var fieldNames = [numFields]string{"", "jsonrpc", "id", "method", "params", "result", "error"}

// span is the raw value of a top-level member: data[start:end].
type span struct {
	start, end int
	ok         bool
}

// frame is one open object or array.
type frame struct {
	obj        bool
	keyStart   int            // index in scanner.keys of this object's first key
	arenaStart int            // length of scanner.arena when the object opened
	index      map[string]int // case-folded key -> index in keys; built for large objects only
}

// scanner validates a whole JSON document in one pass and records the spans
// of the top-level envelope members. Scanners are pooled; only their buffers
// outlive a document.
type scanner struct {
	data     []byte
	pos      int
	maxDepth int

	frames []frame
	keys   []keyRef // keys of every open object, innermost last
	arena  []byte   // unescaped keys of every open object, innermost last
	fold   []byte   // scratch for case-folded keys

	env      [numFields]span
	cur      field // member whose value is being scanned in the top-level object
	curStart int
}

// scanners recycles scanners so that their stacks are allocated once, not
// per message.
var scanners = sync.Pool{New: func() any { return new(scanner) }}

// Scanners whose buffers grew past these sizes on a hostile document are not
// recycled.
const (
	maxPooledFrames = 256
	maxPooledKeys   = 4096
	maxPooledArena  = 64 << 10
)

func getScanner(data []byte, maxDepth int) *scanner {
	s := scanners.Get().(*scanner)
	s.data, s.pos, s.maxDepth = data, 0, maxDepth
	s.env, s.cur, s.curStart = [numFields]span{}, fieldNone, 0
	return s
}

func putScanner(s *scanner) {
	if cap(s.frames) > maxPooledFrames || cap(s.keys) > maxPooledKeys ||
		cap(s.arena)+cap(s.fold) > maxPooledArena {
		return
	}
	clear(s.frames) // drop index maps left by an error
	s.data = nil
	s.frames, s.keys, s.arena, s.fold = s.frames[:0], s.keys[:0], s.arena[:0], s.fold[:0]
	scanners.Put(s)
}

// fail returns an error of the given kind whose message is msg and where.
func (s *scanner) fail(kind error, off int, msg string) error {
	return &wireError{kind: kind, msg: msg + " at offset " + strconv.Itoa(off)}
}

func (s *scanner) syntaxErr(off int, what string) error {
	return s.fail(ErrSyntax, off, "invalid JSON: "+what)
}

// unexpected describes the byte at off for a syntax error.
func (s *scanner) unexpected(off int) error {
	if off >= len(s.data) {
		return s.syntaxErr(off, "unexpected end of input")
	}
	c := s.data[off]
	if c > ' ' && c < 0x7F {
		return s.syntaxErr(off, fmt.Sprintf("unexpected character %q", c))
	}
	return s.syntaxErr(off, fmt.Sprintf("unexpected byte 0x%02x", c))
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.data) && isSpace(s.data[s.pos]) {
		s.pos++
	}
}

// scan validates s.data. The caller checks what the top-level value is.
func (s *scanner) scan() error {
	s.skipSpace()
	for {
		closed, err := s.value()
		if err != nil {
			return err
		}
		if !closed {
			continue // opened a container; its first value is next
		}
		done, err := s.afterValue()
		if err != nil {
			return err
		}
		if done {
			break
		}
	}
	s.skipSpace()
	if s.pos != len(s.data) {
		return s.syntaxErr(s.pos, "data after top-level value")
	}
	return nil
}

// value scans the value at s.pos. It reports closed when a whole value was
// consumed, and false when it opened a non-empty container and left s.pos at
// the container's first value.
func (s *scanner) value() (closed bool, err error) {
	if s.pos >= len(s.data) {
		return false, s.unexpected(s.pos)
	}
	switch c := s.data[s.pos]; c {
	case '{', '[':
		if len(s.frames) >= s.maxDepth {
			return false, s.fail(ErrDepth, s.pos, "nesting deeper than "+strconv.Itoa(s.maxDepth)+" levels")
		}
		s.pos++
		s.push(c == '{')
		s.skipSpace()
		if c == '{' {
			if s.pos < len(s.data) && s.data[s.pos] == '}' {
				s.pos++
				s.pop()
				return true, nil
			}
			return false, s.member()
		}
		if s.pos < len(s.data) && s.data[s.pos] == ']' {
			s.pos++
			s.pop()
			return true, nil
		}
		return false, nil
	case '"':
		end, _, reason := scanString(s.data, s.pos)
		if reason != "" {
			return false, s.syntaxErr(end, reason)
		}
		s.pos = end
	case 't':
		return true, s.literal("true")
	case 'f':
		return true, s.literal("false")
	case 'n':
		return true, s.literal("null")
	default:
		if c == '-' || c >= '0' && c <= '9' {
			return true, s.number()
		}
		return false, s.unexpected(s.pos)
	}
	return true, nil
}

// afterValue consumes separators and closing brackets after a complete value.
// It reports done when the top-level value is complete.
func (s *scanner) afterValue() (done bool, err error) {
	for {
		n := len(s.frames)
		if n == 0 {
			return true, nil
		}
		if n == 1 && s.cur != fieldNone {
			s.env[s.cur] = span{start: s.curStart, end: s.pos, ok: true}
			s.cur = fieldNone
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			return false, s.unexpected(s.pos)
		}
		f := &s.frames[n-1]
		switch c := s.data[s.pos]; {
		case c == ',':
			s.pos++
			s.skipSpace()
			if f.obj {
				return false, s.member()
			}
			return false, nil
		case c == '}' && f.obj, c == ']' && !f.obj:
			s.pos++
			s.pop()
		default:
			return false, s.unexpected(s.pos)
		}
	}
}

func (s *scanner) push(obj bool) {
	s.frames = append(s.frames, frame{obj: obj, keyStart: len(s.keys), arenaStart: len(s.arena)})
}

func (s *scanner) pop() {
	f := &s.frames[len(s.frames)-1]
	s.keys = s.keys[:f.keyStart]
	s.arena = s.arena[:f.arenaStart]
	f.index = nil
	s.frames = s.frames[:len(s.frames)-1]
}

// member scans `"key" :` at s.pos and leaves s.pos at the member's value.
func (s *scanner) member() error {
	start := s.pos
	if start >= len(s.data) || s.data[start] != '"' {
		return s.unexpected(start)
	}
	end, flags, reason := scanString(s.data, start)
	if reason != "" {
		return s.syntaxErr(end, reason)
	}
	ref := keyRef{off: start + 1, n: end - start - 2}
	if flags&strEscaped != 0 {
		ref.off = len(s.arena)
		s.arena = appendUnescaped(s.arena, s.data[start+1:end-1])
		ref.n = len(s.arena) - ref.off
		ref.inArena = true
		flags = 0
		if !isASCII(s.arena[ref.off:]) {
			flags = strNonASCII
		}
	}
	ref.ascii = flags&strNonASCII == 0
	key := s.keyBytes(ref)
	if ref.inArena && bytes.IndexByte(key, 0) >= 0 {
		return s.fail(ErrNULKey, start, "key "+quoteKey(key)+" contains NUL")
	}
	if err := s.checkKey(ref, key, start); err != nil {
		return err
	}
	s.pos = end
	s.skipSpace()
	if s.pos >= len(s.data) || s.data[s.pos] != ':' {
		return s.unexpected(s.pos)
	}
	s.pos++
	s.skipSpace()
	if len(s.frames) == 1 {
		f, err := s.envelopeField(key, start)
		if err != nil {
			return err
		}
		s.cur, s.curStart = f, s.pos
	}
	return nil
}

// envelopeField maps a top-level key to its envelope field. A key that
// equals an envelope member name only under case folding is rejected: a
// case-insensitive peer would read it as that member.
func (s *scanner) envelopeField(key []byte, off int) (field, error) {
	for f := fieldJSONRPC; f < numFields; f++ {
		if string(key) == fieldNames[f] {
			return f, nil
		}
	}
	for f := fieldJSONRPC; f < numFields; f++ {
		if bytes.EqualFold(key, []byte(fieldNames[f])) {
			return fieldNone, s.fail(ErrCaseVariantKey, off, "key "+quoteKey(key)+" differs only in case from "+strconv.Quote(fieldNames[f]))
		}
	}
	return fieldNone, nil
}

func (s *scanner) literal(lit string) error {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		return s.unexpected(s.pos)
	}
	s.pos += len(lit)
	return nil
}

// maxSafeDigits is the number of integer digits below which a number without
// an exponent cannot overflow float64.
const maxSafeDigits = 300

// number scans a number per RFC 8259. Numbers that overflow float64 are
// rejected: parsers disagree about them (error, infinity, big number).
func (s *scanner) number() error {
	d, start := s.data, s.pos
	i := start
	if d[i] == '-' {
		i++
	}
	digits := i
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		return s.unexpected(i)
	}
	intDigits := i - digits
	if i < len(d) && d[i] == '.' {
		i++
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			return s.unexpected(i)
		}
	}
	exp := false
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		exp = true
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			return s.unexpected(i)
		}
	}
	s.pos = i
	if exp || intDigits > maxSafeDigits {
		if _, err := strconv.ParseFloat(string(d[start:i]), 64); err != nil {
			return s.syntaxErr(start, "number out of range")
		}
	}
	return nil
}
