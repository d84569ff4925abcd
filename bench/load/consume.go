package load

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rafka/rafka/bench"
	"github.com/rafka/rafka/client"
)

// consumeRun is the shared state of the consumers of one run.
type consumeRun struct {
	cfg    Config
	c      *bench.Counters
	e2e    *bench.Histogram // nil: values are not stamped
	target *atomic.Int64    // records to read; -1 until known
	last   atomic.Int64     // Unix ns of the latest record read
	done   chan struct{}    // closed once target records were read
	once   sync.Once
}

func (cr *consumeRun) reached() bool {
	tgt := cr.target.Load()
	return tgt >= 0 && cr.c.Records.Load() >= tgt
}

func (cr *consumeRun) finish() { cr.once.Do(func() { close(cr.done) }) }

// consumeAll runs cfg.Consumers consumers from start until target records
// (counted over all of them) were read. ready (may be nil) is closed once
// every consumer is subscribed; the target must be stored before
// targetKnown is closed. Once the target is known the consumers have drain
// to reach it. It returns when the last record was read.
func consumeAll(ctx context.Context, t Target, cfg Config, start client.StartOffset, c *bench.Counters, e2e *bench.Histogram,
	target *atomic.Int64, targetKnown <-chan struct{}, ready chan<- struct{}, drain time.Duration) (time.Time, error) {
	cr := &consumeRun{cfg: cfg, c: c, e2e: e2e, target: target, done: make(chan struct{})}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var subscribed sync.WaitGroup
	subscribed.Add(cfg.Consumers)
	errs := make([]error, cfg.Consumers)
	var wg sync.WaitGroup
	for i := range cfg.Consumers {
		var parts []int32
		for p := int32(i); p < cfg.Partitions; p += int32(cfg.Consumers) {
			parts = append(parts, p)
		}
		wg.Go(func() {
			errs[i] = cr.consume(ctx, t, start, parts, subscribed.Done)
			if errs[i] != nil {
				cancel(errs[i])
			}
		})
	}
	// The watcher ends the run: when the target is reached (a consumer may
	// be blocked in Poll with nothing more to come), when the drain time is
	// up, or when a consumer failed.
	wg.Go(func() {
		subscribed.Wait()
		if ready != nil {
			close(ready)
		}
		select {
		case <-targetKnown:
		case <-ctx.Done():
			return
		}
		if cr.reached() {
			cr.finish()
		}
		timer := time.NewTimer(drain)
		defer timer.Stop()
		select {
		case <-cr.done:
			cancel(nil)
		case <-timer.C:
			cancel(fmt.Errorf("load: consumers read %d of %d records within %v of the end of producing", c.Records.Load(), target.Load(), drain))
		case <-ctx.Done():
		}
	})
	wg.Wait()
	err := errors.Join(errs...)
	if cause := context.Cause(ctx); err == nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	if err == nil && !cr.reached() {
		err = fmt.Errorf("load: consumers read %d of %d records", c.Records.Load(), target.Load())
	}
	return time.Unix(0, cr.last.Load()), err
}

// consume reads parts with a client of its own until the run is done.
func (cr *consumeRun) consume(ctx context.Context, t Target, start client.StartOffset, parts []int32, subscribed func()) error {
	once := sync.OnceFunc(subscribed)
	defer once() // a failed consumer must not hold the others' ready signal
	cl, err := client.New(ctx, t.ClientOptions()...)
	if err != nil {
		return fmt.Errorf("load: consumer: %w", err)
	}
	defer cl.Close()
	var copts []client.ConsumerOption
	if cr.cfg.CreditBytes > 0 {
		copts = append(copts, client.WithCreditBytes(cr.cfg.CreditBytes))
	}
	cs, err := cl.NewConsumer(copts...)
	if err != nil {
		return fmt.Errorf("load: consumer: %w", err)
	}
	defer cs.Close()
	as := make([]client.Assignment, len(parts))
	for i, p := range parts {
		as[i] = client.Assignment{Topic: cr.cfg.Topic, Partition: p, Start: start}
	}
	if err := cs.Assign(ctx, as...); err != nil {
		return fmt.Errorf("load: consumer: %w", err)
	}
	once()
	for {
		b, err := cs.PollBatch(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil // the run is over (or another part failed)
			}
			return fmt.Errorf("load: poll: %w", err)
		}
		now := time.Now()
		recs := b.Records()
		var bytes int64
		for i := range recs {
			v := recs[i].Value
			bytes += int64(len(v))
			if cr.e2e == nil {
				continue
			}
			if ts, err := bench.ReadStamp(v); err == nil {
				cr.e2e.Record(now.Sub(time.Unix(0, ts)))
			} else {
				cr.c.Errors.Add(1)
			}
		}
		n := len(recs)
		b.Release()
		cr.c.Bytes.Add(bytes)
		cr.c.Records.Add(int64(n))
		cr.last.Store(now.UnixNano())
		if cr.reached() {
			cr.finish()
		}
	}
}
