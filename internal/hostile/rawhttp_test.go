package hostile

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// rawExchange writes req byte for byte on a new connection to addr (for
// what net/http refuses to send: control characters in headers, broken
// framing) and reads one response.
func rawExchange(t *testing.T, addr, req string) reply {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	start := time.Now()
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatalf("writing the request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	defer resp.Body.Close()
	r := readReply(resp.Body)
	r.Status, r.Header, r.Elapsed = resp.StatusCode, resp.Header, time.Since(start)
	return r
}

// apiKey is a random API key and the sha256 the config holds for it.
type apiKey struct {
	key, sum string
}

func newAPIKey(t *testing.T) apiKey {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	key := hex.EncodeToString(b)
	sum := sha256.Sum256([]byte(key))
	return apiKey{key: key, sum: hex.EncodeToString(sum[:])}
}

func (k apiKey) header() http.Header { return http.Header{"X-Api-Key": {k.key}} }
