package bench

import (
	"context"
	"testing"
	"time"
)

func TestPacerSchedule(t *testing.T) {
	// Paced: record n is due at start + phase + n/rate; a due time in the
	// past is returned at once.
	start := time.Now().Add(-time.Hour)
	p := NewPacer(start, 1000, 500*time.Microsecond, time.Now().Add(time.Hour))
	ctx := context.Background()
	for n := range int64(10) {
		due, ok := p.Next(ctx, n)
		if !ok {
			t.Fatalf("record %d: schedule over early", n)
		}
		if want := start.Add(500*time.Microsecond + time.Duration(n)*time.Millisecond); !due.Equal(want) {
			t.Fatalf("record %d due %v, want %v", n, due.Sub(start), want.Sub(start))
		}
	}
	// A record due after the deadline ends the schedule without a wait,
	// and so does a deadline already passed.
	now := time.Now()
	if _, ok := NewPacer(now, 1, 0, now.Add(time.Hour)).Next(ctx, 3601); ok {
		t.Fatal("record due after the deadline was scheduled")
	}
	if _, ok := NewPacer(start, 1000, 0, start.Add(time.Second)).Next(ctx, 0); ok {
		t.Fatal("record scheduled after the deadline passed")
	}

	// Unpaced: due now, until the deadline, which is checked every
	// deadlineCheckEvery records.
	u := NewPacer(time.Now(), 0, 0, time.Now().Add(-time.Second))
	if _, ok := u.Next(ctx, 1); !ok {
		t.Fatal("unpaced record between deadline checks refused")
	}
	if _, ok := u.Next(ctx, deadlineCheckEvery); ok {
		t.Fatal("unpaced record past the deadline scheduled")
	}
	if due, ok := NewPacer(time.Now(), 0, 0, time.Time{}).Next(ctx, 0); !ok || time.Since(due) < 0 {
		t.Fatalf("unpaced without deadline: %v %v", due, ok)
	}

	// A done context ends the schedule, also while waiting for a record.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, ok := NewPacer(time.Now(), 1, 0, time.Time{}).Next(cctx, 5); ok {
		t.Fatal("cancelled context: record scheduled")
	}
}
