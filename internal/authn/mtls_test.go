package authn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue makes a client certificate.
func (ca *testCA) issue(t *testing.T, cn string, uris []string, dns []string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		DNSNames:     dns,
	}
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mtlsEnv(t *testing.T, ca *testCA, ident string) *env {
	t.Helper()
	return newEnv(t, fmt.Sprintf(`
tls: {cert_file: /unused/tls.crt, key_file: /unused/tls.key}
auth:
  resource: https://mcp.example.com/mcp
  mtls: {client_ca: %q, identity: %s}
`, writeTemp(t, string(ca.pem)), ident))
}

// TestMTLSIdentity checks which certificate field becomes the subject, on
// requests whose TLS state is built by hand.
func TestMTLSIdentity(t *testing.T) {
	ca := newCA(t, "clients")
	const spiffe = "spiffe://example.org/ns/prod/sa/agent"
	cert := ca.issue(t, "agent-cn", []string{spiffe}, []string{"agent.example.org", "alt.example.org"})
	twoURIs := ca.issue(t, "x", []string{spiffe, "spiffe://example.org/other"}, nil)
	bare := ca.issue(t, "", nil, nil)
	verified := func(c tls.Certificate) *tls.ConnectionState {
		return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.Leaf}, VerifiedChains: [][]*x509.Certificate{{c.Leaf, ca.cert}}}
	}
	tests := []struct {
		name     string
		identity string
		state    *tls.ConnectionState
		want     string // "" for refused
	}{
		{"SAN URI", "san_uri", verified(cert), spiffe},
		{"SAN DNS", "san_dns", verified(cert), "agent.example.org"},
		{"CN", "cn", verified(cert), "agent-cn"},
		{"two SAN URIs", "san_uri", verified(twoURIs), ""},
		{"no SAN URI", "san_uri", verified(bare), ""},
		{"no SAN DNS", "san_dns", verified(bare), ""},
		{"no CN", "cn", verified(bare), ""},
		{"peer certificate not verified", "cn", &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert.Leaf}}, ""},
		{"empty chain", "cn", &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{}}}, ""},
		{"TLS without certificate", "cn", &tls.ConnectionState{}, ""},
		{"plain HTTP", "cn", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mtlsEnv(t, ca, tt.identity)
			r := httptest.NewRequest(http.MethodPost, "https://127.0.0.1/mcp", nil)
			r.TLS = tt.state
			p, ok := e.auth(t, r)
			if ok != (tt.want != "") || p.Subject != tt.want {
				t.Fatalf("got %+v, %v; want subject %q", p, ok, tt.want)
			}
			if ok && p.Method != "mtls" {
				t.Errorf("method = %q, want mtls", p.Method)
			}
		})
	}
}

// TestMTLSHandshake runs real TLS with the Authenticator's TLSConfig: a
// certificate from the client CA authenticates, one from another CA fails
// the handshake, and no certificate leaves the request unauthenticated.
func TestMTLSHandshake(t *testing.T) {
	ca := newCA(t, "clients")
	other := newCA(t, "someone else")
	e := mtlsEnv(t, ca, "san_uri")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok, err := e.a.Authenticate(r)
		switch {
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
		case !ok:
			http.Error(w, "unauthenticated", http.StatusUnauthorized)
		default:
			io.WriteString(w, p.String())
		}
	}))
	srv.TLS = e.a.TLSConfig()
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	srv.StartTLS()
	t.Cleanup(srv.Close)

	get := func(cert *tls.Certificate) (string, error) {
		tr := srv.Client().Transport.(*http.Transport).Clone()
		if cert != nil {
			// Offer the certificate even when the server's list of
			// acceptable CAs does not name its issuer, as an attacker would.
			tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
		}
		client := &http.Client{Transport: tr}
		defer tr.CloseIdleConnections()
		resp, err := client.Get(srv.URL + "/mcp")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b))), nil
	}

	trusted := ca.issue(t, "agent", []string{"spiffe://example.org/agent"}, nil)
	if got, err := get(&trusted); err != nil || got != "200 mtls:spiffe://example.org/agent" {
		t.Errorf("trusted certificate: %q, %v", got, err)
	}
	untrusted := other.issue(t, "agent", []string{"spiffe://example.org/agent"}, nil)
	if got, err := get(&untrusted); err == nil {
		t.Errorf("untrusted certificate: handshake succeeded: %q", got)
	}
	if got, err := get(nil); err != nil || got != "401 unauthenticated" {
		t.Errorf("no certificate: %q, %v", got, err)
	}
}

func TestTLSConfigWithoutMTLS(t *testing.T) {
	e := newEnv(t, apiKeysYAML)
	if c := e.a.TLSConfig(); c != nil {
		t.Errorf("TLSConfig() = %+v, want nil", c)
	}
}
