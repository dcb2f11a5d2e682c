package config

import "strings"

// TLS serves the data listener over TLS. It is required for mTLS client
// authentication, and for anything but loopback in production.
type TLS struct {
	// CertFile is the PEM certificate chain of the listener.
	CertFile string `yaml:"cert_file" json:"cert_file"`
	// KeyFile is the PEM private key of the listener.
	KeyFile string `yaml:"key_file" json:"key_file"`
}

func (c *Config) validateTLS(ps *Problems) {
	if c.TLS == nil {
		if c.Auth.MTLS != nil {
			ps.add("auth.mtls", "client certificates need TLS on the data listener; set tls.cert_file and tls.key_file")
		}
		return
	}
	if strings.TrimSpace(c.TLS.CertFile) == "" {
		ps.add("tls.cert_file", "is required")
	}
	if strings.TrimSpace(c.TLS.KeyFile) == "" {
		ps.add("tls.key_file", "is required")
	}
}
