package load

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistIndexMonotonic(t *testing.T) {
	prev := -1
	for v := uint64(0); v < 1<<20; v += 1 + v/512 {
		i := histIndex(v)
		if i < prev {
			t.Fatalf("index(%d) = %d < previous %d", v, i, prev)
		}
		if lo, w := histBounds(i); v < lo || v >= lo+w {
			t.Fatalf("value %d lands in bucket %d = [%d, %d)", v, i, lo, lo+w)
		}
		prev = i
	}
	if i := histIndex(1<<63 + 12345); i >= histBuckets {
		t.Fatalf("index of a huge value %d out of range %d", i, histBuckets)
	}
}

func TestQuantileAccuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	var samples []time.Duration
	for range 100000 {
		d := time.Duration(r.ExpFloat64() * float64(300*time.Microsecond))
		h.Record(d)
		samples = append(samples, d)
	}
	slices.Sort(samples)
	for _, q := range []float64{0.5, 0.95, 0.99, 0.999} {
		want := samples[int(q*float64(len(samples)))-1]
		got := h.Quantile(q)
		if diff := float64(got-want) / float64(want); diff > 0.02 || diff < -0.02 {
			t.Errorf("q%.3f = %v, want %v (±2%%)", q, got, want)
		}
	}
	if h.Count() != 100000 || h.Max() != samples[len(samples)-1] {
		t.Errorf("count %d max %v", h.Count(), h.Max())
	}
}
