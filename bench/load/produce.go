package load

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rafka/rafka/bench"
	"github.com/rafka/rafka/client"
)

// produceAll runs cfg.Producers producers until count records (0: no
// bound) or duration (0: no bound) and waits for every delivery. Records
// and bytes are counted in c when acknowledged; ack latency goes to ack.
func produceAll(ctx context.Context, t Target, cfg Config, c *bench.Counters, ack *bench.Histogram, count int64, duration time.Duration) error {
	acks, _ := ParseAcks(cfg.Acks)
	codec, _ := ParseCompression(cfg.Compression)
	popts := []client.ProducerOption{client.WithAcks(acks), client.WithCompression(codec), client.WithLinger(cfg.Linger)}
	if cfg.BatchBytes > 0 {
		popts = append(popts, client.WithMaxBatchBytes(cfg.BatchBytes))
	}
	if cfg.MaxInFlight > 0 {
		popts = append(popts, client.WithMaxInFlight(cfg.MaxInFlight))
	}
	if cfg.MaxInFlight > client.MaxIdempotentInFlight {
		// More in flight than brokers remember per producer: measured
		// without idempotence, as the client allows it only so.
		popts = append(popts, client.WithIdempotence(false))
	}
	var keys [][]byte
	for i := range cfg.Keys {
		keys = append(keys, fmt.Appendf(nil, "key-%08d", i))
	}

	// One pool of values for all producers: generating 8 MiB per producer
	// took a second of CPU with 64 producers, inside the measured time.
	base, err := bench.NewPayloads(cfg.RecordSize, cfg.Compressibility, cfg.Seed)
	if err != nil {
		return err
	}
	deadline := time.Time{}
	if duration > 0 {
		deadline = time.Now().Add(duration)
	}
	errs := make([]error, cfg.Producers)
	var wg sync.WaitGroup
	for i := range cfg.Producers {
		share := int64(0)
		if count > 0 {
			share = count / int64(cfg.Producers)
			if int64(i) < count%int64(cfg.Producers) {
				share++
			}
			if share == 0 {
				continue
			}
		}
		w := &producer{
			cfg: cfg, payloads: base.Fork(i), keys: keys, keyOff: i, count: share, deadline: deadline,
			rate: cfg.Rate / float64(cfg.Producers), c: c, ack: ack, opts: popts,
		}
		wg.Go(func() { errs[i] = w.run(ctx, t) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// producer is one producing goroutine with its own client.
type producer struct {
	cfg      Config
	payloads *bench.Payloads
	keys     [][]byte
	keyOff   int
	count    int64     // 0: unbounded
	deadline time.Time // zero: none
	rate     float64   // records/s of this producer; 0: unlimited
	c        *bench.Counters
	ack      *bench.Histogram
	opts     []client.ProducerOption

	pool sync.Pool // *client.Record, returned by the delivery callback
}

// deadlineCheckEvery is how many records pass between clock reads when no
// rate is set (a clock read per record would cost more than the record).
const deadlineCheckEvery = 64

func (w *producer) run(ctx context.Context, t Target) error {
	cl, err := client.New(ctx, t.ClientOptions()...)
	if err != nil {
		return fmt.Errorf("load: producer: %w", err)
	}
	defer cl.Close()
	p, err := cl.NewProducer(w.opts...)
	if err != nil {
		return fmt.Errorf("load: producer: %w", err)
	}
	size := int64(w.payloads.Size())
	onDelivery := func(r *client.Record, err error) {
		// Timestamp is when the record was due: its latency includes any wait
		// for buffer space, as an application's would.
		w.ack.Record(time.Since(r.Timestamp))
		if err != nil {
			w.c.Errors.Add(1)
		} else {
			w.c.Records.Add(1)
			w.c.Bytes.Add(size)
		}
		w.pool.Put(r)
	}
	var scratch []byte
	if w.cfg.stamped() {
		scratch = make([]byte, size)
	}
	var interval time.Duration
	if w.rate > 0 {
		interval = time.Duration(float64(time.Second) / w.rate)
	}
	start := time.Now()
	var produceErr error
	for n := int64(0); w.count == 0 || n < w.count; n++ {
		if ctx.Err() != nil {
			break
		}
		var due time.Time
		if interval > 0 {
			due = start.Add(time.Duration(n) * interval)
			now := time.Now()
			if !w.deadline.IsZero() && !now.Before(w.deadline) {
				break
			}
			if d := due.Sub(now); d > 0 {
				if err := sleepCtx(ctx, d); err != nil {
					break
				}
			}
		} else {
			due = time.Now()
			if n%deadlineCheckEvery == 0 && !w.deadline.IsZero() && !due.Before(w.deadline) {
				break
			}
		}
		r, _ := w.pool.Get().(*client.Record)
		if r == nil {
			r = new(client.Record)
		}
		*r = client.Record{Topic: w.cfg.Topic, Partition: client.AnyPartition, Timestamp: due}
		if len(w.keys) > 0 {
			r.Key = w.keys[(int(n)+w.keyOff)%len(w.keys)]
		}
		v := w.payloads.Next()
		if scratch != nil {
			copy(scratch, v)
			_ = bench.Stamp(scratch, due.UnixNano())
			v = scratch
		}
		r.Value = v
		if err := p.Produce(ctx, r, onDelivery); err != nil {
			if ctx.Err() == nil {
				produceErr = fmt.Errorf("load: produce: %w", err)
			}
			break
		}
	}
	// Bounded: every record is delivered or failed by the client's request
	// timeout and retries; DrainTimeout caps the wait regardless.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.DrainTimeout)
	defer cancel()
	flushErr := p.Close(fctx)
	if flushErr != nil {
		flushErr = fmt.Errorf("load: flush: %w", flushErr)
	}
	return errors.Join(produceErr, flushErr)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
