package bench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Counters are the running totals of a workload, updated by its goroutines
// and read by the progress line.
type Counters struct {
	Records atomic.Int64
	Bytes   atomic.Int64
	Errors  atomic.Int64
}

// Progress prints a line per interval with the rate over that interval and
// the latency percentiles of the samples recorded in it. On a terminal the
// line rewrites itself; elsewhere (CI logs) each interval is a new line.
//
// Goroutines: one ticker loop, started by StartProgress and ended by Stop.
type Progress struct {
	w        io.Writer
	tty      bool
	c        *Counters
	ack, e2e *Histogram // either may be nil
	stop     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
}

// StartProgress prints progress to w every interval until Stop. interval
// <= 0 disables it (Stop is still safe to call).
func StartProgress(w io.Writer, interval time.Duration, c *Counters, ack, e2e *Histogram) *Progress {
	p := &Progress{w: w, c: c, ack: ack, e2e: e2e, stop: make(chan struct{})}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	if interval <= 0 {
		return p
	}
	p.wg.Add(1)
	go p.run(interval)
	return p
}

func (p *Progress) run(interval time.Duration) {
	defer p.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	start, last := time.Now(), time.Now()
	var lastRec, lastBytes int64
	for {
		select {
		case <-p.stop:
			if p.tty {
				fmt.Fprint(p.w, "\r\x1b[K")
			}
			return
		case now := <-t.C:
			rec, by := p.c.Records.Load(), p.c.Bytes.Load()
			line := ProgressLine(now.Sub(start), now.Sub(last), rec-lastRec, by-lastBytes, p.c.Errors.Load(), p.interval(p.ack), p.interval(p.e2e))
			lastRec, lastBytes, last = rec, by, now
			if p.tty {
				fmt.Fprint(p.w, "\r\x1b[K"+line)
			} else {
				fmt.Fprintln(p.w, line)
			}
		}
	}
}

func (p *Progress) interval(h *Histogram) *Summary {
	if h == nil {
		return nil
	}
	s := h.TakeInterval()
	return &s
}

// Stop ends the progress line and waits for its goroutine. Idempotent.
func (p *Progress) Stop() {
	p.once.Do(func() { close(p.stop) })
	p.wg.Wait()
}

// ProgressLine formats one progress line: elapsed time, the record and byte
// rates over the last dt, and the interval's latency percentiles.
func ProgressLine(elapsed, dt time.Duration, records, bytes, errors int64, ack, e2e *Summary) string {
	var b strings.Builder
	secs := dt.Seconds()
	if secs <= 0 {
		secs = 1
	}
	fmt.Fprintf(&b, "[%6.1fs] %10.0f rec/s %9.2f MB/s", elapsed.Seconds(), float64(records)/secs, float64(bytes)/MB/secs)
	for _, l := range []struct {
		name string
		s    *Summary
	}{{"ack", ack}, {"e2e", e2e}} {
		if l.s == nil {
			continue
		}
		if l.s.Count == 0 {
			fmt.Fprintf(&b, "  %s -", l.name)
			continue
		}
		fmt.Fprintf(&b, "  %s p50 %s p99 %s ms", l.name, fmtMs(l.s.P50Ms), fmtMs(l.s.P99Ms))
	}
	if errors > 0 {
		fmt.Fprintf(&b, "  errors %d", errors)
	}
	return b.String()
}
