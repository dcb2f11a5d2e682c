package authn

import (
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/config"
)

const apiKeysYAML = `
auth:
  resource: https://mcp.example.com/mcp
  api_keys:
    - {name: a, sha256: 840bd5f539f1d4fc7f18b521fb2b66e14c4ace79ee3093b654b48b721e6abb11}
`

func TestNewErrors(t *testing.T) {
	valid := parseAuth(t, apiKeysYAML)
	if _, err := New(valid, Options{}); err != nil {
		t.Fatalf("New(valid) = %v", err)
	}

	noResource := valid
	noResource.Resource = ""
	if _, err := New(noResource, Options{}); err == nil || !strings.Contains(err.Error(), "auth.resource") {
		t.Errorf("New(no resource) = %v, want a problem at auth.resource", err)
	}

	if _, err := New(config.Auth{}, Options{}); err == nil {
		t.Error("New(no method) succeeded")
	}

	// Parsed but not resolved: the secret has not been read.
	c, err := config.Parse([]byte(`
auth:
  resource: https://mcp.example.com/mcp
  introspection:
    - {url: "https://idp.example.com/i", client_id: c, client_secret: {env: MCPGATE_TEST_NEVER_SET}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(c.Auth, Options{}); err == nil || !strings.Contains(err.Error(), "not resolved") {
		t.Errorf("New(unresolved secret) = %v, want a not-resolved error", err)
	}

	missingCA := valid
	missingCA.MTLS = &config.MTLS{ClientCA: t.TempDir() + "/missing.pem", Identity: "cn"}
	if _, err := New(missingCA, Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("New(missing CA) = %v, want a not-exist error", err)
	}

	notPEM := valid
	notPEM.MTLS = &config.MTLS{ClientCA: writeTemp(t, "not a certificate"), Identity: "cn"}
	if _, err := New(notPEM, Options{}); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("New(CA without PEM) = %v", err)
	}
}
