package config

import (
	"encoding/json"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		out  string
	}{
		{"0", 0, "0s"},
		{"0s", 0, "0s"},
		{"250ms", 250 * time.Millisecond, "250ms"},
		{"30s", 30 * time.Second, "30s"},
		{"30m", 30 * time.Minute, "30m"},
		{"90s", 90 * time.Second, "1m30s"},
		{"1h", time.Hour, "1h"},
		{"1h0m1s", time.Hour + time.Second, "1h0m1s"},
		{"2h30m", 150 * time.Minute, "2h30m"},
		{"-5m", -5 * time.Minute, "-5m"},
	}
	for _, tt := range tests {
		var d Duration
		if err := yaml.Unmarshal([]byte(tt.in), &d); err != nil {
			t.Errorf("Unmarshal(%q): %v", tt.in, err)
			continue
		}
		if d.D() != tt.want {
			t.Errorf("Unmarshal(%q) = %v, want %v", tt.in, d.D(), tt.want)
		}
		y, _ := yaml.Marshal(d)
		j, _ := json.Marshal(d)
		if string(y) != tt.out+"\n" || string(j) != `"`+tt.out+`"` {
			t.Errorf("%q marshals to YAML %q and JSON %s, want %s", tt.in, y, j, tt.out)
		}
	}
	for _, bad := range []string{"30", "5 minutes", "1d", "PT5M", "[1s]", "{a: 1}", "true"} {
		var d Duration
		if err := yaml.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("Unmarshal(%q) = %v, want an error", bad, d)
		}
	}
}
