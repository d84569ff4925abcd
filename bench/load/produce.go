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
// and bytes are counted in c when acknowledged; ack latency goes to ack,
// and, when paced, each record's send lag (bench.Pacer.RecordLag) to lag.
//
// The measured phase starts once every producer is connected: then
// onStart (nil: none) is called and the clock starts, so that neither the
// handshakes of many connections nor the values' generation count in the
// run's time or shorten its producers' schedule. It returns that start
// (zero when no producer got connected).
func produceAll(ctx context.Context, t Target, cfg Config, c *bench.Counters, ack, lag *bench.Histogram, count int64, duration time.Duration, onStart func()) (time.Time, error) {
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
	// took a second of CPU with 64 producers.
	base, err := bench.NewPayloads(cfg.RecordSize, cfg.Compressibility, cfg.Seed)
	if err != nil {
		return time.Time{}, err
	}
	var workers []*producer
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
		workers = append(workers, &producer{
			cfg: cfg, payloads: base.Fork(i), keys: keys, keyOff: i, count: share,
			rate: cfg.Rate / float64(cfg.Producers), phase: ratePhase(cfg.Rate, i), c: c, ack: ack, lag: lag, opts: popts,
		})
	}
	errs := make([]error, len(workers))
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Go(func() { errs[i] = w.connect(ctx, t) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, w := range workers {
			w.close()
		}
		return time.Time{}, err
	}
	if onStart != nil {
		onStart()
	}
	start := time.Now()
	deadline := time.Time{}
	if duration > 0 {
		deadline = start.Add(duration)
	}
	for i, w := range workers {
		wg.Go(func() { errs[i] = w.run(ctx, start, deadline) })
	}
	wg.Wait()
	return start, errors.Join(errs...)
}

// ratePhase is when the first record of producer i is due after the start
// at a total rate of rate records/s (0: unpaced): producer i's records are
// due at i/rate + n*producers/rate, so that all of them together are
// evenly spaced.
func ratePhase(rate float64, i int) time.Duration {
	if rate <= 0 {
		return 0
	}
	return time.Duration(float64(i) / rate * float64(time.Second))
}

// producer is one producing goroutine with its own client.
type producer struct {
	cfg      Config
	payloads *bench.Payloads
	keys     [][]byte
	keyOff   int
	count    int64   // 0: unbounded
	rate     float64 // records/s of this producer; 0: unlimited
	// phase delays the producer's schedule so that the producers' records
	// are due evenly spaced at the total rate, not in bursts of one per
	// producer at the same instants.
	phase time.Duration
	c     *bench.Counters
	ack   *bench.Histogram
	lag   *bench.Histogram
	opts  []client.ProducerOption

	pool sync.Pool // *client.Record, returned by the delivery callback

	cl *client.Client // set by connect
	p  *client.Producer
}

// connect makes the producer's client and producer; close (or run)
// releases them.
func (w *producer) connect(ctx context.Context, t Target) error {
	cl, err := client.New(ctx, t.ClientOptions()...)
	if err != nil {
		return fmt.Errorf("load: producer: %w", err)
	}
	p, err := cl.NewProducer(w.opts...)
	if err != nil {
		cl.Close()
		return fmt.Errorf("load: producer: %w", err)
	}
	w.cl, w.p = cl, p
	return nil
}

// close releases a connected producer that will not run.
func (w *producer) close() {
	if w.cl == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.DrainTimeout)
	defer cancel()
	_ = w.p.Close(ctx)
	w.cl.Close()
}

// run produces from start (the rate's schedule starts then) until its
// count or deadline (zero: none), then flushes and closes the connection.
func (w *producer) run(ctx context.Context, start, deadline time.Time) error {
	defer w.cl.Close()
	p := w.p
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
	pace := bench.NewPacer(start, w.rate, w.phase, deadline)
	if w.rate > 0 {
		pace.RecordLag(w.lag)
	}
	var produceErr error
	for n := int64(0); w.count == 0 || n < w.count; n++ {
		due, ok := pace.Next(ctx, n)
		if !ok {
			break
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
