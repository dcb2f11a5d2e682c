package telemetry_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/telemetry"
)

func benchMetrics() *telemetry.Metrics {
	servers := []string{"github", "files", "everything"}
	m := telemetry.NewMetrics("bench", servers)
	tools := make([]string, 200)
	for i := range tools {
		tools[i] = fmt.Sprintf("tool_%d", i)
	}
	for _, s := range servers {
		m.SetCatalog(s, tools)
	}
	return m
}

// BenchmarkRequest is the per-request cost on the hot path, series already
// resolved.
func BenchmarkRequest(b *testing.B) {
	m := benchMetrics()
	m.Request("tools/call", "github", "tool_42", "ok", time.Millisecond)
	b.ReportAllocs()
	for b.Loop() {
		m.Request("tools/call", "github", "tool_42", "ok", 1200*time.Microsecond)
	}
}

// BenchmarkRequestParallel is the same from every core at once.
func BenchmarkRequestParallel(b *testing.B) {
	m := benchMetrics()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Request("tools/call", "github", "tool_42", "ok", 1200*time.Microsecond)
		}
	})
}

// BenchmarkRequestFolded is a request whose tool and server are unknown.
func BenchmarkRequestFolded(b *testing.B) {
	m := benchMetrics()
	b.ReportAllocs()
	for b.Loop() {
		m.Request("tools/call", "nope", "made_up_tool", "ok", 1200*time.Microsecond)
	}
}

// BenchmarkUpstreamRequest is the per-call cost of an upstream call.
func BenchmarkUpstreamRequest(b *testing.B) {
	m := benchMetrics()
	b.ReportAllocs()
	for b.Loop() {
		m.UpstreamRequest("github", "0", "tools/call", "ok", 900*time.Microsecond)
	}
}

// BenchmarkRequestNil is the cost when metrics are off.
func BenchmarkRequestNil(b *testing.B) {
	var m *telemetry.Metrics
	b.ReportAllocs()
	for b.Loop() {
		m.Request("tools/call", "github", "tool_42", "ok", time.Millisecond)
	}
}
