package upstreamid

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
)

// minRSABits is the shortest RSA key the gateway signs with.
const minRSABits = 2048

// signingKey is one loaded private key, ready to sign. It is immutable.
type signingKey struct {
	kid    string // RFC 7638 thumbprint of the public key
	alg    jose.SignatureAlgorithm
	signer jose.Signer
	public jose.JSONWebKey
}

// loadKey parses a PEM file holding exactly one private key (PKCS#8, SEC1
// or PKCS#1; certificates and EC parameters beside it are ignored) and
// prepares a signer for it.
func loadKey(data []byte) (*signingKey, error) {
	var der []byte
	var typ string
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch {
		case b.Type == "ENCRYPTED PRIVATE KEY" || b.Headers["Proc-Type"] != "":
			return nil, errors.New("the private key is encrypted; the gateway needs it unencrypted, in a file only it can read")
		case b.Type == "PRIVATE KEY" || b.Type == "EC PRIVATE KEY" || b.Type == "RSA PRIVATE KEY":
			if der != nil {
				return nil, errors.New("the file holds more than one private key; keep one key per file")
			}
			der, typ = b.Bytes, b.Type
		}
	}
	if der == nil {
		return nil, errors.New("no PEM private key found (want PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)")
	}
	var key any
	var err error
	switch typ {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(der)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(der)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(der)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", typ, err)
	}
	return newSigningKey(key)
}

// newSigningKey checks that key is of a supported kind and strength and
// derives its algorithm and key ID.
func newSigningKey(key any) (*signingKey, error) {
	var alg jose.SignatureAlgorithm
	var pub crypto.PublicKey
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("EC key on curve %s; use P-256 (ES256)", k.Curve.Params().Name)
		}
		alg, pub = jose.ES256, k.Public()
	case *rsa.PrivateKey:
		if bits := k.N.BitLen(); bits < minRSABits {
			return nil, fmt.Errorf("RSA key of %d bits; use at least %d", bits, minRSABits)
		}
		alg, pub = jose.RS256, k.Public()
	case ed25519.PrivateKey:
		alg, pub = jose.EdDSA, k.Public()
	default:
		return nil, fmt.Errorf("unsupported key type %T; use EC P-256, RSA or Ed25519", key)
	}
	public := jose.JSONWebKey{Key: pub, Algorithm: string(alg), Use: "sig"}
	sum, err := public.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("key thumbprint: %w", err)
	}
	public.KeyID = base64.RawURLEncoding.EncodeToString(sum)
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: public.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	return &signingKey{kid: public.KeyID, alg: alg, signer: signer, public: public}, nil
}
