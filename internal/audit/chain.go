package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/gowebpki/jcs"
)

// zeroHash is the prev_hash of the first record of a chain.
var zeroHash = strings.Repeat("0", 64)

// chainFields are the fields that link a line to the chain.
type chainFields struct {
	Kind     string `json:"kind"`
	Seq      uint64 `json:"seq"`
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}

// encodeLine sets rec.Hash from the record's content, which must already
// carry Seq and PrevHash, and returns the record as one JSON line ending in
// a newline. encoding/json escapes every control character, so the line
// holds no raw newline.
//
// The hash covers the exact bytes of the line without its hash member:
// the record marshalled without hash (hash is its last field), so the line
// is that body with `,"hash":"…"` inserted before the closing brace. Any
// change to a written line, even one that keeps the JSON equivalent, breaks
// the hash; and no canonicalization runs per record.
func encodeLine(rec *Record) ([]byte, error) {
	rec.Hash = ""
	body, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	rec.Hash = hex.EncodeToString(sum[:])
	line := make([]byte, 0, len(body)+len(hashMember)+len(rec.Hash)+3)
	line = append(line, body[:len(body)-1]...)
	line = append(line, hashMember...)
	line = append(line, rec.Hash...)
	line = append(line, '"', '}', '\n')
	return line, nil
}

// hashMember introduces the hash at the end of a chained line.
const hashMember = `,"hash":"`

// parseLine checks one line (without its newline) of a chained file: it
// must be a JSON object with no duplicate key, ending with its hash member,
// whose hash is the SHA-256 of the line without that member. It returns
// the chain fields; hashOK is false when the content does not match the
// hash. err means the line is not a chained record at all.
func parseLine(line []byte) (f chainFields, hashOK bool, err error) {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if _, err := jcs.Transform(line); err != nil {
		// jcs also refuses duplicate keys, which json.Unmarshal would
		// silently resolve.
		return f, false, fmt.Errorf("not valid JSON: %v", err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(line, &obj); err != nil {
		return f, false, errors.New("not a JSON object")
	}
	if err := json.Unmarshal(line, &f); err != nil {
		return f, false, fmt.Errorf("malformed chain fields: %v", err)
	}
	switch {
	case f.Seq == 0:
		return f, false, errors.New("no seq")
	case !isHexHash(f.PrevHash):
		return f, false, errors.New("prev_hash is not a hex SHA-256")
	case !isHexHash(f.Hash):
		return f, false, errors.New("hash is not a hex SHA-256")
	}
	suffix := hashMember + f.Hash + `"}`
	if !bytes.HasSuffix(line, []byte(suffix)) {
		return f, false, nil // the hash member was moved: the line was rewritten
	}
	body := append(bytes.Clone(line[:len(line)-len(suffix)]), '}')
	sum := sha256.Sum256(body)
	return f, hex.EncodeToString(sum[:]) == f.Hash, nil
}

func isHexHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := range len(s) {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}
