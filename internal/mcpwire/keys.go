package mcpwire

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"unicode"
	"unicode/utf8"
)

// Duplicate and case-variant keys are found by hashing each key's canonical
// case-folded form and confirming equal hashes with bytes.Equal and
// bytes.EqualFold. Two keys are case variants when bytes.EqualFold reports
// them equal, which is also the rule encoding/json uses to match object keys
// to struct fields. EqualFold treats runes as equal when they share a
// unicode.SimpleFold orbit, so mapping every rune to the smallest rune of its
// orbit gives a canonical form: EqualFold(a, b) exactly when the canonical
// forms are equal.

// keyRef locates an unescaped key: in the input when it has no escapes,
// otherwise in the scanner's arena.
type keyRef struct {
	off, n  int
	inArena bool
	ascii   bool
	hash    uint64 // foldKeyHash of the key
}

// linearKeys is the object size up to which keys are checked against each
// other pairwise (by hash first); larger objects get a map, so a hostile
// object with many keys costs linear time, not quadratic.
const linearKeys = 32

// keyBytes returns the unescaped bytes of k.
func (s *scanner) keyBytes(k keyRef) []byte {
	if k.inArena {
		return s.arena[k.off : k.off+k.n]
	}
	return s.data[k.off : k.off+k.n]
}

// checkKey rejects key if an earlier key of the innermost object equals it,
// exactly or under Unicode case folding, and then records it.
func (s *scanner) checkKey(ref keyRef, key []byte, off int) error {
	f := &s.frames[len(s.frames)-1]
	ref.hash = s.foldKeyHash(ref, key)
	if f.index == nil && len(s.keys)-f.keyStart < linearKeys {
		for _, o := range s.keys[f.keyStart:] {
			if o.hash != ref.hash {
				continue
			}
			if err := s.compareKeys(s.keyBytes(o), key, off); err != nil {
				return err
			}
		}
		s.keys = append(s.keys, ref)
		return nil
	}
	if f.index == nil {
		f.index = make(map[string]int, 2*linearKeys)
		var buf []byte
		for i := f.keyStart; i < len(s.keys); i++ {
			buf = appendFold(buf[:0], s.keyBytes(s.keys[i]))
			f.index[string(buf)] = i
		}
	}
	s.fold = appendFold(s.fold[:0], key)
	if i, ok := f.index[string(s.fold)]; ok {
		if err := s.compareKeys(s.keyBytes(s.keys[i]), key, off); err != nil {
			return err
		}
	}
	f.index[string(s.fold)] = len(s.keys)
	s.keys = append(s.keys, ref)
	return nil
}

// foldKeyHash returns a hash of key's canonical case-folded form, so that
// keys equal under bytes.EqualFold hash equally. Forms of up to 16 bytes,
// which cover the common keys, are hashed from one or two words in
// registers; longer ones through a seeded hash. A collision costs only a
// comparison, and at most linearKeys keys are compared pairwise.
func (s *scanner) foldKeyHash(ref keyRef, key []byte) uint64 {
	if ref.ascii && len(key) <= 16 && !ref.inArena && ref.off+16 <= len(s.data) {
		// Load whole words and clear the bytes past the key.
		lo := binary.LittleEndian.Uint64(s.data[ref.off:])
		if len(key) <= 8 {
			return upper8(lo & mask8(len(key)))
		}
		hi := binary.LittleEndian.Uint64(s.data[ref.off+8:])
		return mix16(upper8(lo), upper8(hi&mask8(len(key)-8)))
	}
	if ref.ascii {
		s.fold = appendUpperASCII(s.fold[:0], key)
	} else {
		s.fold = appendFold(s.fold[:0], key)
	}
	return hashFolded(s.fold)
}

// hashFolded hashes a canonical case-folded key the same way foldKeyHash's
// word path does.
func hashFolded(c []byte) uint64 {
	switch {
	case len(c) <= 8:
		return pack8(c)
	case len(c) <= 16:
		return mix16(pack8(c[:8]), pack8(c[8:]))
	}
	return maphash.Bytes(keySeed, c)
}

// mask8 keeps the low n bytes of a word, 0 <= n <= 8.
func mask8(n int) uint64 {
	return 1<<(8*uint(n)) - 1
}

// mix16 combines the two words of a 9- to 16-byte key.
func mix16(lo, hi uint64) uint64 {
	return lo ^ bits.RotateLeft64(hi*0x9E3779B97F4A7C15, 31)
}

// compareKeys returns an error if key collides with the earlier key prev.
func (s *scanner) compareKeys(prev, key []byte, off int) error {
	if bytes.Equal(prev, key) {
		return s.fail(ErrDuplicateKey, off, "duplicate key "+quoteKey(key))
	}
	if bytes.EqualFold(prev, key) {
		return s.fail(ErrCaseVariantKey, off, "key "+quoteKey(key)+" differs only in case from "+quoteKey(prev))
	}
	return nil
}

// foldRune returns the smallest rune in r's simple case-folding orbit.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' {
			r -= 'a' - 'A'
		}
		return r
	}
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		m = min(m, f)
	}
	return m
}

// keySeed keys the hash of long folded keys, so that a peer cannot choose
// long keys that collide.
var keySeed = maphash.MakeSeed()

// appendUpperASCII appends the canonical folded form of the ASCII key k: its
// upper-case form, converted eight bytes at a time.
func appendUpperASCII(dst, k []byte) []byte {
	n := len(dst)
	dst = append(dst, k...)
	b := dst[n:]
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], upper8(binary.LittleEndian.Uint64(b[i:])))
	}
	for ; i < len(b); i++ {
		if 'a' <= b[i] && b[i] <= 'z' {
			b[i] -= 'a' - 'A'
		}
	}
	return dst
}

// upper8 upper-cases the ASCII letters in the little-endian word x of ASCII
// bytes.
func upper8(x uint64) uint64 {
	// High bit of each byte set for 'a'..'z'; no carries since bytes < 0x80.
	lower := (x + lsb8*(0x80-'a')) &^ (x + lsb8*(0x80-'z'-1)) & msb8
	return x - lower>>2
}

// pack8 returns the bytes of b, at most eight, as a little-endian word.
// Keys hold no NUL, so the zero padding keeps distinct keys distinct.
func pack8(b []byte) uint64 {
	var w [8]byte
	copy(w[:], b)
	return binary.LittleEndian.Uint64(w[:])
}

// isASCII reports whether b holds only ASCII bytes.
func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// appendFold appends the canonical case-folded form of k.
func appendFold(dst, k []byte) []byte {
	for i := 0; i < len(k); {
		r, size := utf8.DecodeRune(k[i:])
		dst = utf8.AppendRune(dst, foldRune(r))
		i += size
	}
	return dst
}
