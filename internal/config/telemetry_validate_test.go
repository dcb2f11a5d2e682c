package config

import (
	"errors"
	"testing"
)

// TestTracingResolveSecrets checks that header references of the tracing
// exporter resolve like server headers, placeholders refused.
func TestTracingResolveSecrets(t *testing.T) {
	t.Setenv("MCPGATE_TEST_OTLP_TOKEN", "Bearer 0123456789abcdef")
	t.Setenv("MCPGATE_TEST_OTLP_WEAK", "changeme")
	tr := Tracing{Headers: map[string]Value{
		"Authorization": EnvRef("MCPGATE_TEST_OTLP_TOKEN"),
		"X-Scope-OrgID": Literal("tenant-1"),
		"X-Api-Key":     EnvRef("MCPGATE_TEST_OTLP_WEAK"),
	}}
	var ps Problems
	tr.resolveSecrets(&ps)
	if got := tr.Headers["Authorization"].Resolved(); got != "Bearer 0123456789abcdef" {
		t.Errorf("Authorization resolved to %q", got)
	}
	if got := tr.Headers["X-Scope-OrgID"].Resolved(); got != "tenant-1" {
		t.Errorf("literal resolved to %q", got)
	}
	err := ps.err()
	if got, ok := errors.AsType[Problems](err); !ok || len(got) != 1 || got[0].Path != "telemetry.tracing.headers.X-Api-Key" {
		t.Errorf("problems = %v, want one for the placeholder X-Api-Key", err)
	}
}
