package authn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/identity"
)

// mtlsAuth takes the principal from a client certificate the TLS
// handshake verified against the client CA.
type mtlsAuth struct {
	pool     *x509.CertPool
	identity string // san_uri, san_dns or cn
}

func newMTLS(c config.MTLS) (*mtlsAuth, error) {
	pem, err := os.ReadFile(c.ClientCA)
	if err != nil {
		return nil, fmt.Errorf("authn: mtls client_ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("authn: mtls client_ca %s holds no PEM certificate", c.ClientCA)
	}
	return &mtlsAuth{pool: pool, identity: c.Identity}, nil
}

// TLSConfig returns the client-certificate half of the data listener's
// TLS configuration: ClientCAs holds the configured client CA and
// ClientAuth is VerifyClientCertIfGiven, so the handshake verifies any
// certificate offered (chain, validity, client-auth usage) and clients
// without one can still use another method. The caller adds the server
// certificate. It returns nil when mTLS is not configured.
func (a *Authenticator) TLSConfig() *tls.Config {
	if a.mtls == nil {
		return nil
	}
	return &tls.Config{
		ClientCAs:  a.mtls.pool,
		ClientAuth: tls.VerifyClientCertIfGiven,
		MinVersion: tls.VersionTLS12,
	}
}

// clientCert authenticates by the verified client certificate. Only
// r.TLS.VerifiedChains counts: PeerCertificates alone are whatever the
// client sent.
func (a *Authenticator) clientCert(ctx context.Context, r *http.Request) (identity.Principal, bool, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			return a.refuse(ctx, "mtls", "client certificate not verified")
		}
		return identity.Principal{}, false, nil
	}
	leaf := r.TLS.VerifiedChains[0][0]
	var subject string
	switch a.mtls.identity {
	case "san_uri":
		// A SPIFFE SVID has exactly one URI SAN; with several the
		// identity would be ambiguous.
		if len(leaf.URIs) != 1 {
			return a.refuse(ctx, "mtls", fmt.Sprintf("certificate has %d URI SANs, want 1", len(leaf.URIs)))
		}
		subject = leaf.URIs[0].String()
	case "san_dns":
		if len(leaf.DNSNames) == 0 {
			return a.refuse(ctx, "mtls", "certificate has no DNS SAN")
		}
		subject = leaf.DNSNames[0]
	case "cn":
		subject = leaf.Subject.CommonName
	}
	if subject == "" || hasControl(subject) {
		return a.refuse(ctx, "mtls", "certificate has no usable "+a.mtls.identity)
	}
	return identity.Principal{Method: "mtls", Subject: subject}, true, nil
}
