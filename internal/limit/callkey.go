package limit

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/gowebpki/jcs"
)

// CallKey identifies identical calls, for the [Coalescer] and [Writes]: a
// SHA-256, in hex, over the principal (its Principal.Key()), the server,
// the tool and the arguments. The arguments are canonicalized (RFC 8785),
// so key order and spacing do not matter; arguments that cannot be
// canonicalized are hashed as they are. Absent arguments count as {}.
func CallKey(principal, server, tool string, args []byte) string {
	return callKey(principal, server, tool, args, true)
}

// RawCallKey is CallKey over the arguments' bytes as sent, without
// canonicalization: a few hundred nanoseconds rather than tens of
// microseconds. Identical retries from one client are byte-identical in
// practice, so it suits best-effort uses (sharing reads, flagging
// repeats); refusing a repeat uses CallKey, which key order cannot evade.
func RawCallKey(principal, server, tool string, args []byte) string {
	return callKey(principal, server, tool, args, false)
}

func callKey(principal, server, tool string, args []byte, canonical bool) string {
	if len(args) == 0 {
		args = []byte("{}")
	}
	h := sha256.New()
	var n [20]byte
	field := func(b []byte) {
		h.Write(strconv.AppendInt(n[:0], int64(len(b)), 10))
		h.Write([]byte{':'})
		h.Write(b)
	}
	field([]byte(principal))
	field([]byte(server))
	field([]byte(tool))
	if !canonical {
		h.Write([]byte{'r'})
		field(args)
	} else if canon, err := jcs.Transform(args); err == nil {
		h.Write([]byte{'c'})
		field(canon)
	} else {
		h.Write([]byte{'r'})
		field(args)
	}
	return hex.EncodeToString(h.Sum(nil))
}
