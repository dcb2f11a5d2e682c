package upstreamid_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"

	"github.com/mcpgate/mcpgate/internal/upstreamid"
)

// keyPEM generates a key of the given kind and returns it as PEM.
func keyPEM(t testing.TB, kind string) []byte {
	t.Helper()
	var typ string
	var der []byte
	var err error
	switch kind {
	case "ec-pkcs8", "ec-sec1", "ec-p384":
		curve := elliptic.P256()
		if kind == "ec-p384" {
			curve = elliptic.P384()
		}
		k, _ := ecdsa.GenerateKey(curve, rand.Reader)
		if kind == "ec-sec1" {
			typ = "EC PRIVATE KEY"
			der, err = x509.MarshalECPrivateKey(k)
		} else {
			typ = "PRIVATE KEY"
			der, err = x509.MarshalPKCS8PrivateKey(k)
		}
	case "rsa-pkcs8", "rsa-pkcs1", "rsa-1024":
		bits := 2048
		if kind == "rsa-1024" {
			bits = 1024
		}
		k, _ := rsa.GenerateKey(rand.Reader, bits)
		if kind == "rsa-pkcs1" {
			typ = "RSA PRIVATE KEY"
			der = x509.MarshalPKCS1PrivateKey(k)
		} else {
			typ = "PRIVATE KEY"
			der, err = x509.MarshalPKCS8PrivateKey(k)
		}
	case "ed25519":
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		typ = "PRIVATE KEY"
		der, err = x509.MarshalPKCS8PrivateKey(k)
	default:
		t.Fatalf("unknown key kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// writeKey replaces the file at path atomically, as a rotation should.
func writeKey(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func newSigner(t testing.TB, data []byte) (*upstreamid.Signer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "signing.pem")
	writeKey(t, path, data)
	s, err := upstreamid.NewSigner(path, nil)
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	return s, path
}

// verified is a token checked against a JWKS.
type verified struct {
	header jose.Header
	std    jwt.Claims
	all    map[string]any
}

// verify checks tok's signature with the key its kid names in jwks, and
// its registered claims at now.
func verify(t testing.TB, jwks []byte, tok string, now time.Time) verified {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatalf("JWKS: %v\n%s", err, jwks)
	}
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA})
	if err != nil {
		t.Fatalf("ParseSigned: %v", err)
	}
	h := parsed.Headers[0]
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q: %d keys in the JWKS %s", h.KeyID, len(keys), jwks)
	}
	var v verified
	v.header = h
	if err := parsed.Claims(keys[0].Key, &v.std, &v.all); err != nil {
		t.Fatalf("signature: %v", err)
	}
	if err := v.std.ValidateWithLeeway(jwt.Expected{Time: now}, 0); err != nil {
		t.Fatalf("claims at %v: %v", now, err)
	}
	return v
}

func TestMintVerifies(t *testing.T) {
	tests := []struct {
		kind string
		alg  jose.SignatureAlgorithm
	}{
		{"ec-pkcs8", jose.ES256},
		{"ec-sec1", jose.ES256},
		{"rsa-pkcs8", jose.RS256},
		{"rsa-pkcs1", jose.RS256},
		{"ed25519", jose.EdDSA},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			s, _ := newSigner(t, keyPEM(t, tt.kind))
			c := upstreamid.Claims{
				Issuer: "https://gw.example.com", Audience: "https://tools.example.com", Subject: "alice",
				Tenant: "acme", Groups: []string{"dev", "ops"}, Client: "claude-code", Session: "sess-1", Tool: "echo",
				TTL: 2 * time.Minute,
			}
			before := time.Now()
			tok, exp, err := s.Mint(c)
			if err != nil {
				t.Fatalf("Mint: %v", err)
			}
			v := verify(t, s.JWKS(), tok, time.Now())
			if v.header.Algorithm != string(tt.alg) || v.header.KeyID != s.KeyID() || v.header.ExtraHeaders["typ"] != "JWT" {
				t.Errorf("header = alg %s kid %s typ %v; want alg %s kid %s typ JWT", v.header.Algorithm, v.header.KeyID, v.header.ExtraHeaders["typ"], tt.alg, s.KeyID())
			}
			if !exp.Equal(v.std.Expiry.Time()) || exp.Before(before.Add(2*time.Minute-time.Second)) {
				t.Errorf("returned expiry %v, token's %v", exp, v.std.Expiry.Time())
			}
			want := map[string]any{
				"iss": c.Issuer, "aud": c.Audience, "sub": "alice", "tenant": "acme", "groups": []any{"dev", "ops"},
				"mcp_client": "claude-code", "mcp_session": "sess-1", "mcp_tool": "echo",
			}
			got := map[string]any{}
			for k := range want {
				got[k] = v.all[k]
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
			if iat, nbf, e := v.std.IssuedAt.Time(), v.std.NotBefore.Time(), v.std.Expiry.Time(); !iat.Equal(nbf) || e.Sub(iat) != 2*time.Minute {
				t.Errorf("iat %v nbf %v exp %v; want nbf = iat and exp = iat + 2m", iat, nbf, e)
			}
			if v.std.ID == "" {
				t.Error("no jti")
			}
		})
	}
}

// TestKeyIDIsThumbprint checks kid against RFC 7638 computed independently.
func TestKeyIDIsThumbprint(t *testing.T) {
	data := keyPEM(t, "ec-pkcs8")
	s, _ := newSigner(t, data)
	b, _ := pem.Decode(data)
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pub := k.(*ecdsa.PrivateKey).PublicKey
	ecdh, _ := pub.ECDH()
	raw := ecdh.Bytes() // 0x04 || X || Y
	enc := base64.RawURLEncoding.EncodeToString
	input := `{"crv":"P-256","kty":"EC","x":"` + enc(raw[1:33]) + `","y":"` + enc(raw[33:]) + `"}`
	sum := sha256.Sum256([]byte(input))
	if want := enc(sum[:]); s.KeyID() != want {
		t.Errorf("kid = %s, want the RFC 7638 thumbprint %s", s.KeyID(), want)
	}
}

func TestNewSignerRefuses(t *testing.T) {
	ec := keyPEM(t, "ec-pkcs8")
	pubDER, _ := x509.MarshalPKIXPublicKey(&mustEC(t, ec).PublicKey)
	encrypted := []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n")
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"RSA below 2048 bits", keyPEM(t, "rsa-1024"), "1024 bits"},
		{"EC on P-384", keyPEM(t, "ec-p384"), "P-384"},
		{"encrypted", encrypted, "encrypted"},
		{"two keys", append(append([]byte{}, ec...), keyPEM(t, "ed25519")...), "more than one"},
		{"public key only", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), "no PEM private key"},
		{"not PEM", []byte("hello"), "no PEM private key"},
		{"corrupt DER", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}), "parsing PRIVATE KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k.pem")
			writeKey(t, path, tt.data)
			_, err := upstreamid.NewSigner(path, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewSigner = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := upstreamid.NewSigner(filepath.Join(t.TempDir(), "missing.pem"), nil); !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("missing file: %v", err)
	}
	// A certificate and EC parameters beside the key are ignored.
	params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}})
	newSigner(t, append(params, keyPEM(t, "ec-sec1")...))
}

func mustEC(t testing.TB, data []byte) *ecdsa.PrivateKey {
	t.Helper()
	b, _ := pem.Decode(data)
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*ecdsa.PrivateKey)
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

// TestJWKSPublicOnly: no private parameter of any key type is published.
func TestJWKSPublicOnly(t *testing.T) {
	for _, kind := range []string{"ec-pkcs8", "rsa-pkcs1", "ed25519"} {
		t.Run(kind, func(t *testing.T) {
			s, _ := newSigner(t, keyPEM(t, kind))
			var set struct {
				Keys []map[string]any `json:"keys"`
			}
			raw := s.JWKS()
			if err := json.Unmarshal(raw, &set); err != nil || len(set.Keys) != 1 {
				t.Fatalf("JWKS %s: %v", raw, err)
			}
			for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"} {
				if _, ok := set.Keys[0][private]; ok {
					t.Errorf("JWKS publishes private parameter %q: %s", private, raw)
				}
			}
			if set.Keys[0]["use"] != "sig" || set.Keys[0]["kid"] != s.KeyID() {
				t.Errorf("key = %v", set.Keys[0])
			}
			var jset jose.JSONWebKeySet
			if err := json.Unmarshal(raw, &jset); err != nil || !jset.Keys[0].IsPublic() {
				t.Errorf("JWKS key is not public: %v", err)
			}
		})
	}
}

func TestTTL(t *testing.T) {
	s, _ := newSigner(t, keyPEM(t, "ed25519"))
	for _, tt := range []struct {
		ttl, want time.Duration
	}{
		{time.Hour, upstreamid.MaxTTL},
		{0, upstreamid.MaxTTL},
		{-time.Second, upstreamid.MaxTTL},
		{5*time.Minute + time.Second, upstreamid.MaxTTL},
		{30 * time.Second, 30 * time.Second},
		{1500 * time.Millisecond, time.Second},
	} {
		tok, _, err := s.Mint(upstreamid.Claims{Issuer: "https://gw", Audience: "https://up", Subject: "a", TTL: tt.ttl})
		if err != nil {
			t.Fatal(err)
		}
		v := verify(t, s.JWKS(), tok, time.Now())
		if got := v.std.Expiry.Time().Sub(v.std.IssuedAt.Time()); got != tt.want {
			t.Errorf("TTL %v: exp - iat = %v, want %v", tt.ttl, got, tt.want)
		}
	}
	if _, _, err := s.Mint(upstreamid.Claims{Issuer: "https://gw", Subject: "a"}); err == nil {
		t.Error("minted a token without an audience")
	}
	if _, _, err := s.Mint(upstreamid.Claims{Audience: "https://up", Subject: "a"}); err == nil {
		t.Error("minted a token without an issuer")
	}
}

// TestCache: the same claims reuse a token during the first half of its
// lifetime; other claims get their own.
func TestCache(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := newSigner(t, keyPEM(t, "ec-pkcs8"))
		c := upstreamid.Claims{Issuer: "https://gw", Audience: "https://up", Subject: "alice", Groups: []string{"a"}, Session: "s1", Tool: "echo", TTL: time.Minute}
		first, exp1, _ := s.Mint(c)
		second, exp2, _ := s.Mint(c)
		if first != second || !exp1.Equal(exp2) {
			t.Fatal("the same claims were signed twice at once")
		}
		for name, other := range map[string]upstreamid.Claims{
			"tool":     {Issuer: c.Issuer, Audience: c.Audience, Subject: c.Subject, Groups: c.Groups, Session: c.Session, Tool: "other", TTL: c.TTL},
			"audience": {Issuer: c.Issuer, Audience: "https://other", Subject: c.Subject, Groups: c.Groups, Session: c.Session, Tool: c.Tool, TTL: c.TTL},
			"groups":   {Issuer: c.Issuer, Audience: c.Audience, Subject: c.Subject, Groups: []string{"a", "b"}, Session: c.Session, Tool: c.Tool, TTL: c.TTL},
			"ttl":      {Issuer: c.Issuer, Audience: c.Audience, Subject: c.Subject, Groups: c.Groups, Session: c.Session, Tool: c.Tool, TTL: 2 * time.Minute},
		} {
			if tok, _, _ := s.Mint(other); tok == first {
				t.Errorf("claims differing in %s got the same token", name)
			}
		}
		time.Sleep(29 * time.Second)
		if tok, _, _ := s.Mint(c); tok != first {
			t.Error("token not reused within the first half of its lifetime")
		}
		time.Sleep(2 * time.Second)
		third, exp3, _ := s.Mint(c)
		if third == first || !exp3.After(exp1) {
			t.Error("token reused past the first half of its lifetime")
		}
		verify(t, s.JWKS(), third, time.Now())
	})
}

// TestRotation: a replaced key file is picked up within 5s without a
// restart; the old key stays in the JWKS until its tokens have expired.
func TestRotation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs syncBuffer
		path := filepath.Join(t.TempDir(), "signing.pem")
		writeKey(t, path, keyPEM(t, "ec-pkcs8"))
		s, err := upstreamid.NewSigner(path, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		c := upstreamid.Claims{Issuer: "https://gw", Audience: "https://up", Subject: "alice"}
		oldKID := s.KeyID()
		oldTok, _, _ := s.Mint(c)

		writeKey(t, path, keyPEM(t, "rsa-pkcs8"))
		if s.KeyID() != oldKID {
			t.Fatal("the file was looked at again within 5s")
		}
		time.Sleep(5 * time.Second)
		newTok, _, err := s.Mint(c)
		if err != nil {
			t.Fatal(err)
		}
		newKID := s.KeyID()
		if newKID == oldKID {
			t.Fatal("the replaced key file was not picked up")
		}
		jwks := s.JWKS()
		if v := verify(t, jwks, newTok, time.Now()); v.header.KeyID != newKID || v.header.Algorithm != "RS256" {
			t.Errorf("new token: kid %s alg %s", v.header.KeyID, v.header.Algorithm)
		}
		if v := verify(t, jwks, oldTok, time.Now()); v.header.KeyID != oldKID {
			t.Errorf("old token: kid %s", v.header.KeyID)
		}
		if !strings.Contains(logs.String(), "rotated") {
			t.Errorf("rotation not logged: %s", logs.String())
		}

		// A broken replacement is refused, logged once, and the key in use stays.
		writeKey(t, path, []byte("not a key"))
		time.Sleep(5 * time.Second)
		if s.KeyID() != newKID {
			t.Fatal("a broken key file replaced the key in use")
		}
		time.Sleep(5 * time.Second)
		s.KeyID()
		if n := strings.Count(logs.String(), "not reloaded"); n != 1 {
			t.Errorf("broken key file logged %d times, want once:\n%s", n, logs.String())
		}

		// The old key leaves the JWKS once its last token has expired.
		time.Sleep(upstreamid.MaxTTL + time.Minute)
		if bytes.Contains(s.JWKS(), []byte(oldKID)) {
			t.Errorf("retired key still published after its tokens expired: %s", s.JWKS())
		}
		if !bytes.Contains(s.JWKS(), []byte(newKID)) {
			t.Error("current key missing from the JWKS")
		}
	})
}

// TestConcurrentMint exercises minting and rotation together under -race.
func TestConcurrentMint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, path := newSigner(t, keyPEM(t, "ed25519"))
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				for j := range 50 {
					tok, _, err := s.Mint(upstreamid.Claims{Issuer: "https://gw", Audience: "https://up", Subject: "u", Tool: string(rune('a' + j%3)), Session: string(rune('a' + i))})
					if err != nil || tok == "" {
						t.Errorf("Mint: %v", err)
					}
					time.Sleep(time.Second)
				}
			})
		}
		time.Sleep(10 * time.Second)
		writeKey(t, path, keyPEM(t, "ed25519"))
		wg.Wait()
	})
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
