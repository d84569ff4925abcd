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

func TestPacerRecordsLag(t *testing.T) {
	// Records due a second ago leave a second late (and a little more); a
	// record that had to be waited for leaves at or after its due time.
	// Each paced record is recorded once.
	ctx := context.Background()
	lag := NewHistogram()
	start := time.Now().Add(-time.Second)
	p := NewPacer(start, 1000, 0, time.Time{})
	p.RecordLag(lag)
	for n := range int64(5) {
		if _, ok := p.Next(ctx, n); !ok {
			t.Fatalf("record %d refused", n)
		}
	}
	s := lag.Summary()
	if s.Count != 5 || s.MinMs < float64(time.Second-5*time.Millisecond)/1e6 {
		t.Fatalf("lag of records due a second ago: %+v", s)
	}

	waited := NewHistogram()
	q := NewPacer(time.Now(), 1000, 2*time.Millisecond, time.Time{})
	q.RecordLag(waited)
	due, ok := q.Next(ctx, 0)
	if !ok {
		t.Fatal("record refused")
	}
	if left := time.Now(); left.Before(due) {
		t.Fatalf("record left %v before its due time", due.Sub(left))
	}
	if c := waited.Summary().Count; c != 1 {
		t.Fatalf("a waited-for record recorded %d lags, want 1", c)
	}

	// Unpaced records have no schedule to be late for: nothing is recorded.
	none := NewHistogram()
	u := NewPacer(time.Now(), 0, 0, time.Time{})
	u.RecordLag(none)
	for n := range int64(3) {
		u.Next(ctx, n)
	}
	if c := none.Summary().Count; c != 0 {
		t.Fatalf("unpaced records recorded %d lags", c)
	}
}
