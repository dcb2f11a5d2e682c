package telemetry

import "testing"

// TestLabelIndexes keeps the hot-path switches in step with the label sets.
func TestLabelIndexes(t *testing.T) {
	for i, m := range methods[:len(methods)-1] {
		if got := methodIdx(m); got != i {
			t.Errorf("methodIdx(%q) = %d, want %d", m, got, i)
		}
	}
	for i, o := range outcomes[:len(outcomes)-1] {
		if got := outcomeIdx(o); got != i {
			t.Errorf("outcomeIdx(%q) = %d, want %d", o, got, i)
		}
	}
	for _, v := range []string{Other, "tools/CALL", "notifications/", "x", "OK"} {
		if got := methodIdx(v); got != len(methods)-1 {
			t.Errorf("methodIdx(%q) = %d, want Other", v, got)
		}
		if got := outcomeIdx(v); got != len(outcomes)-1 {
			t.Errorf("outcomeIdx(%q) = %d, want Other", v, got)
		}
	}
	if len(methods)*len(outcomes) > 1<<16 {
		t.Error("cache keys overflow uint16")
	}
}
