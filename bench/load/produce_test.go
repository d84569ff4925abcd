package load

import (
	"slices"
	"testing"
	"time"
)

// TestRatePhase checks that producers sharing a rate are due evenly
// spaced, not in bursts of one per producer at the same instants.
func TestRatePhase(t *testing.T) {
	const rate, producers, each = 1000.0, 4, 5
	interval := time.Duration(float64(time.Second) / (rate / producers))
	var due []time.Duration
	for i := range producers {
		for n := range each {
			due = append(due, ratePhase(rate, i)+time.Duration(n)*interval)
		}
	}
	slices.Sort(due)
	for k, d := range due {
		if want := time.Duration(k) * time.Millisecond; d != want {
			t.Fatalf("record %d due at %v, want %v (all: %v)", k, d, want, due)
		}
	}
	if ratePhase(0, 3) != 0 {
		t.Error("unpaced producers have a phase")
	}
}
