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
func encodeLine(rec *Record) ([]byte, error) {
	rec.Hash = ""
	body, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	if rec.Hash, err = contentHash(body); err != nil {
		return nil, err
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	return append(line, '\n'), nil
}

// contentHash is the hex SHA-256 of the RFC 8785 form of a JSON object
// that has no hash field.
func contentHash(obj []byte) (string, error) {
	c, err := jcs.Transform(obj)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:]), nil
}

// parseLine checks one line (without its newline) of a chained file: it
// must be a JSON object with no duplicate key whose hash field is the
// SHA-256 of the rest. It returns the chain fields; hashOK is false when
// the content does not match the hash. err means the line is not a
// chained record at all.
func parseLine(line []byte) (f chainFields, hashOK bool, err error) {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	canon, err := jcs.Transform(line)
	if err != nil {
		return f, false, fmt.Errorf("not valid JSON: %v", err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(canon, &obj); err != nil {
		return f, false, errors.New("not a JSON object")
	}
	if err := json.Unmarshal(canon, &f); err != nil {
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
	delete(obj, "hash")
	rest, err := json.Marshal(obj)
	if err != nil {
		return f, false, err
	}
	h, err := contentHash(rest)
	if err != nil {
		return f, false, err
	}
	return f, h == f.Hash, nil
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
