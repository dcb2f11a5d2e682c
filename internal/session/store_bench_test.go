package session

import (
	"strconv"
	"testing"
)

// benchValue is a session value that holds nothing.
type benchValue struct{}

func (benchValue) Close() {}

func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = NewID()
	}
}

func newBenchStore(b *testing.B, n int) (*Store[benchValue], []string) {
	b.Helper()
	s := NewStore[benchValue](Options{MaxPerPrincipal: n})
	ids := make([]string, n)
	for i := range ids {
		id, err := s.Create("principal-1", benchValue{})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = id
	}
	return s, ids
}

// BenchmarkStoreGet is the per-request session lookup.
func BenchmarkStoreGet(b *testing.B) {
	for _, n := range []int{100, 100_000} {
		b.Run("sessions="+strconv.Itoa(n), func(b *testing.B) {
			s, ids := newBenchStore(b, n)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, ok := s.Get(ids[i%n], "principal-1"); !ok {
					b.Fatal("session not found")
				}
				i++
			}
		})
	}
	// Every request of every session takes the store's one lock.
	b.Run("parallel/sessions=1000", func(b *testing.B) {
		s, ids := newBenchStore(b, 1000)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, ok := s.Get(ids[i%len(ids)], "principal-1"); !ok {
					b.Error("session not found")
					return
				}
				i++
			}
		})
	})
	b.Run("miss", func(b *testing.B) {
		s, _ := newBenchStore(b, 1000)
		other := NewID()
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := s.Get(other, "principal-1"); ok {
				b.Fatal("unknown session found")
			}
		}
	})
}

func BenchmarkStoreCreateDelete(b *testing.B) {
	s := NewStore[benchValue](Options{MaxPerPrincipal: 10})
	b.ReportAllocs()
	for b.Loop() {
		id, err := s.Create("principal-1", benchValue{})
		if err != nil {
			b.Fatal(err)
		}
		s.Delete(id, "principal-1")
	}
}
