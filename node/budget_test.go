package node

import (
	"errors"
	"testing"

	"github.com/rafka/rafka/wire"
)

// The connection budget refuses what the connection cannot hold even when
// the broker could, and the broker budget what all connections together
// cannot; refused charges leave nothing behind.
func TestFrameBudgetLimits(t *testing.T) {
	fb := newFrameBudget(100, 60)
	a, b := fb.forConn(nil), &connBudget{fb: fb}
	if err := a.Acquire(60); err != nil {
		t.Fatal(err)
	}
	if err := a.Acquire(1); !errors.Is(err, wire.ErrFrameBudget) {
		t.Fatalf("over the connection budget: %v", err)
	}
	if err := b.Acquire(41); !errors.Is(err, wire.ErrFrameBudget) {
		t.Fatalf("over the broker budget: %v", err)
	}
	if err := b.Acquire(40); err != nil {
		t.Fatal(err)
	}
	if fb.used.Load() != 100 || fb.peak.Load() != 100 {
		t.Fatalf("used %d peak %d", fb.used.Load(), fb.peak.Load())
	}
	a.Release(60)
	b.Release(40)
	fb.done(nil)
	if fb.used.Load() != 0 || len(fb.conns) != 0 {
		t.Fatalf("used %d, %d connections left", fb.used.Load(), len(fb.conns))
	}
}
