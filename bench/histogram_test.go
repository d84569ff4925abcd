package bench

import (
	"math"
	"sync"
	"testing"
	"time"
)

// within checks got against want to HDR's 3 significant digits.
func within(t *testing.T, name string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > want*1e-3+1e-9 {
		t.Errorf("%s = %v, want %v (to 0.1%%)", name, got, want)
	}
}

func TestHistogramPercentiles(t *testing.T) {
	h := NewHistogram()
	// 1..10000 microseconds, once each: the p-th percentile is p% of 10 ms.
	for i := 1; i <= 10000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	s := h.Summary()
	if s.Count != 10000 {
		t.Fatalf("count %d", s.Count)
	}
	within(t, "min", s.MinMs, 0.001)
	within(t, "mean", s.MeanMs, 5.0005)
	within(t, "p50", s.P50Ms, 5)
	within(t, "p90", s.P90Ms, 9)
	within(t, "p99", s.P99Ms, 9.9)
	within(t, "p99.9", s.P999Ms, 9.99)
	within(t, "max", s.MaxMs, 10)
}

func TestHistogramClampsAndIntervals(t *testing.T) {
	h := NewHistogram()
	h.Record(-time.Second) // clock step: counts as (almost) zero
	h.Record(time.Hour)    // beyond the range: clamped to 10 minutes
	h.Record(time.Millisecond)
	s := h.TakeInterval()
	if s.Count != 3 || s.MinMs > 1e-6 || math.Abs(s.MaxMs-600000) > 600 {
		t.Fatalf("interval %+v", s)
	}
	if e := h.TakeInterval(); e.Count != 0 || e.P99Ms != 0 {
		t.Fatalf("a new interval is not empty: %+v", e)
	}
	h.Record(2 * time.Millisecond)
	if i := h.TakeInterval(); i.Count != 1 {
		t.Fatalf("interval count %d", i.Count)
	}
	if tot := h.Summary(); tot.Count != 4 {
		t.Fatalf("total count %d, want 4 (intervals do not reset the total)", tot.Count)
	}
	if (Summary{}) != NewHistogram().Summary() {
		t.Fatal("empty histogram has a non-zero summary")
	}
}

func TestHistogramConcurrentAndMerge(t *testing.T) {
	parts := make([]*Histogram, 4)
	var wg sync.WaitGroup
	for i := range parts {
		parts[i] = NewHistogram()
		wg.Go(func() {
			for j := range 1000 {
				parts[i].Record(time.Duration(j+1) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	all := NewHistogram()
	for _, p := range parts {
		all.Merge(p)
	}
	s := all.Summary()
	if s.Count != 4000 {
		t.Fatalf("merged count %d", s.Count)
	}
	within(t, "merged p50", s.P50Ms, 0.5)
	within(t, "merged max", s.MaxMs, 1)
}
