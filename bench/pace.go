package bench

import (
	"context"
	"time"
)

// Pacer gives a producer's records their due times. Paced (rate > 0),
// record n is due at start + phase + n/rate and Next waits for it, so a
// producer that falls behind keeps the schedule and its latency, counted
// from the due time, shows the delay (no coordinated omission). Unpaced,
// a record is due when it is asked for. Either way the deadline (zero:
// none) ends the schedule; unpaced, the clock is read only every
// deadlineCheckEvery records, as a read per record would cost more than
// the record.
//
// A paced record leaves late when the wait for it oversleeps: Go's timers
// wake an idle process on a millisecond grid (the runtime's poller waits
// whole milliseconds, so a wait of 200 µs lasts up to 1 ms), and a busy
// machine may not run the producer at once. That delay is the load
// generator's, and it counts in the record's latency; RecordLag measures
// it, so that a report can tell it from the system's.
type Pacer struct {
	start, deadline time.Time
	phase, interval time.Duration
	lag             *Histogram
}

// RecordLag makes Next record in h, for every paced record, how long after
// its due time Next returned it.
func (p *Pacer) RecordLag(h *Histogram) { p.lag = h }

// deadlineCheckEvery is how many unpaced records pass between clock reads.
const deadlineCheckEvery = 64

// NewPacer paces at rate records/s (0: unpaced) from start, delayed by
// phase, until deadline.
func NewPacer(start time.Time, rate float64, phase time.Duration, deadline time.Time) *Pacer {
	p := &Pacer{start: start, deadline: deadline, phase: phase}
	if rate > 0 {
		p.interval = time.Duration(float64(time.Second) / rate)
	}
	return p
}

// Next waits until record n is due and returns its due time. It returns
// false when the schedule is over: the deadline passed (or record n would
// be due after it), or ctx is done.
func (p *Pacer) Next(ctx context.Context, n int64) (time.Time, bool) {
	if ctx.Err() != nil {
		return time.Time{}, false
	}
	if p.interval <= 0 {
		due := time.Now()
		if n%deadlineCheckEvery == 0 && !p.deadline.IsZero() && !due.Before(p.deadline) {
			return time.Time{}, false
		}
		return due, true
	}
	due := p.start.Add(p.phase + time.Duration(n)*p.interval)
	now := time.Now()
	if !p.deadline.IsZero() && (!now.Before(p.deadline) || !due.Before(p.deadline)) {
		return time.Time{}, false
	}
	if d := due.Sub(now); d > 0 {
		if SleepCtx(ctx, d) != nil {
			return time.Time{}, false
		}
		if p.lag != nil {
			now = time.Now()
		}
	}
	if p.lag != nil {
		p.lag.Record(now.Sub(due))
	}
	return due, true
}

// SleepCtx waits for d or until ctx is done, returning ctx's error then.
func SleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
