package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gowebpki/jcs"
)

// pinnedMembers are the members of a tool that its fingerprint covers:
// everything a model reads to decide whether and how to call the tool, and
// everything the gateway's policy reads from it. _meta and icons are left
// out: they are presentation for hosts and people (icon URLs rotate with a
// CDN, _meta carries implementation hints), and a change there must not
// quarantine a tool whose contract did not change. Order is the order diffs
// are shown in.
var pinnedMembers = []string{"name", "title", "description", "inputSchema", "outputSchema", "annotations"}

// Fingerprint returns the fingerprint of one tool object from a tools/list
// result: hash is "sha256:<hex>" of canonical, the RFC 8785 canonical JSON
// of an object holding only the tool's pinned members (name, title,
// description, inputSchema, outputSchema, annotations). Key order and
// whitespace do not change it; a null member counts as absent. It fails if
// tool is not a JSON object with a string name, or holds a duplicate key
// anywhere (clients would disagree on which copy is the definition).
func Fingerprint(tool []byte) (hash string, canonical []byte, err error) {
	// Canonicalizing the whole tool first rejects duplicate keys at every
	// depth, which decoding into a map would silently resolve.
	whole, err := jcs.Transform(tool)
	if err != nil {
		return "", nil, fmt.Errorf("tool definition is not valid JSON: %w", err)
	}
	var members map[string]json.RawMessage
	if len(whole) == 0 || whole[0] != '{' {
		return "", nil, errors.New("tool definition is not a JSON object")
	}
	if err := json.Unmarshal(whole, &members); err != nil {
		return "", nil, fmt.Errorf("tool definition: %w", err)
	}
	if name := members["name"]; len(name) == 0 || name[0] != '"' {
		return "", nil, errors.New("tool definition has no string name")
	}
	pinned := make(map[string]json.RawMessage, len(pinnedMembers))
	for _, m := range pinnedMembers {
		if v, ok := members[m]; ok && string(v) != "null" {
			pinned[m] = v
		}
	}
	b, err := json.Marshal(pinned)
	if err != nil {
		return "", nil, err
	}
	// encoding/json sorts keys and escapes <, > and &; Transform restores
	// the one canonical form.
	if canonical, err = jcs.Transform(b); err != nil {
		return "", nil, err
	}
	sum := sha256.Sum256(canonical)
	return "sha256:" + hex.EncodeToString(sum[:]), canonical, nil
}
