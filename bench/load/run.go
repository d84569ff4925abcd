package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rafka/rafka/bench"
	"github.com/rafka/rafka/client"
)

// Options are the run's surroundings, not its workload.
type Options struct {
	// Progress receives the live progress line; nil prints none.
	Progress io.Writer
	// ProgressInterval is the progress line's period. Default 1s.
	ProgressInterval time.Duration
}

// Run executes cfg against t and returns its result.
func Run(ctx context.Context, t Target, cfg Config, o Options) (*bench.Result, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if o.ProgressInterval == 0 {
		o.ProgressInterval = time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.MaxRunTime)
	defer cancel()

	if err := createTopic(ctx, t, cfg); err != nil {
		return nil, err
	}
	if !t.Throwaway() {
		defer deleteTopic(t, cfg.Topic)
	}
	switch {
	case cfg.Workload == WorkloadProduce:
		return runProduce(ctx, t, cfg, o)
	case cfg.Workload == WorkloadConsume && cfg.From == FromEarliest:
		_, r, err := runConsumeEarliest(ctx, t, cfg, o)
		return r, err
	default:
		return runConcurrent(ctx, t, cfg, o)
	}
}

func createTopic(ctx context.Context, t Target, cfg Config) error {
	c, err := client.New(ctx, t.ClientOptions()...)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	defer c.Close()
	var configs map[string]string
	if cfg.Fsync != "" {
		configs = map[string]string{"fsync": cfg.Fsync}
	}
	if err := c.CreateTopic(ctx, cfg.Topic, cfg.Partitions, configs, client.WithReplicationFactor(cfg.ReplicationFactor)); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	return nil
}

func deleteTopic(t Target, topic string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.New(ctx, t.ClientOptions()...)
	if err != nil {
		return
	}
	defer c.Close()
	_ = c.DeleteTopic(ctx, topic)
}

// usage is the brokers' resource use at the start of the measured phase.
type usage struct {
	sum bench.ProcStats
	per []bench.BrokerUse // several brokers (MultiBroker targets)
	ok  bool
}

// statsBefore reads the brokers' resource use at the start of the measured
// phase; finishStats fills r.Broker (and r.Brokers) with what was spent
// since.
func statsBefore(ctx context.Context, t Target) usage {
	if m, ok := t.(MultiBroker); ok {
		per, ok := m.BrokerStats(ctx)
		return usage{sum: bench.SumUse(per), per: per, ok: ok}
	}
	st, ok := t.Stats(ctx)
	return usage{sum: st, ok: ok}
}

func finishStats(ctx context.Context, t Target, r *bench.Result, before usage) error {
	if !before.ok {
		return nil
	}
	after := statsBefore(ctx, t)
	if !after.ok {
		// Readable before, not now: a local broker has exited.
		return errors.New("load: the broker's resource use could not be read after the run: did it exit?")
	}
	d := after.sum.Sub(before.sum)
	r.Broker = &d
	if len(after.per) == len(before.per) && len(after.per) > 0 {
		r.Brokers = make([]bench.BrokerUse, len(after.per))
		for i, a := range after.per {
			a.ProcStats = a.ProcStats.Sub(before.per[i].ProcStats)
			a.Restarts -= before.per[i].Restarts
			r.Brokers[i] = a
		}
	}
	return nil
}

// failures turns failed records into an error: a run that lost records
// must not pass for a successful one.
func failures(r *bench.Result) error {
	if r.Errors > 0 {
		return fmt.Errorf("load: %d records failed (%d succeeded)", r.Errors, r.Records)
	}
	return nil
}

func runProduce(ctx context.Context, t Target, cfg Config, o Options) (*bench.Result, error) {
	ack := bench.NewHistogram()
	var c bench.Counters
	var before usage
	var prog *bench.Progress
	lag := bench.NewHistogram()
	start, err := produceAll(ctx, t, cfg, &c, ack, lag, cfg.Count, cfg.Duration, func() {
		before = statsBefore(ctx, t)
		prog = bench.StartProgress(progressWriter(o), o.ProgressInterval, &c, ack, nil)
	})
	if prog == nil { // no producer got connected
		return nil, err
	}
	elapsed := time.Since(start)
	prog.Stop()
	r := &bench.Result{System: "rafka", Workload: WorkloadProduce, Config: cfg.describe(), ReplicationFactor: int(cfg.ReplicationFactor),
		Records: c.Records.Load(), Bytes: c.Bytes.Load(), Errors: c.Errors.Load()}
	statsErr := finishStats(ctx, t, r, before)
	s := ack.Summary()
	r.Ack = &s
	r.SendLag = lagSummary(cfg, lag)
	r.Finish(elapsed, &s)
	return r, errors.Join(err, failures(r), statsErr)
}

// RunProduceConsume runs cfg (a consume from earliest) and returns the
// fill, measured as a produce workload, with the read-back.
func RunProduceConsume(ctx context.Context, t Target, cfg Config, o Options) (produce, consume *bench.Result, err error) {
	cfg.Workload, cfg.From = WorkloadConsume, FromEarliest
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("load: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.MaxRunTime)
	defer cancel()
	if err := createTopic(ctx, t, cfg); err != nil {
		return nil, nil, err
	}
	if !t.Throwaway() {
		defer deleteTopic(t, cfg.Topic)
	}
	return runConsumeEarliest(ctx, t, cfg, o)
}

// runConsumeEarliest fills the topic (measured as a produce run), then
// reads it all back from the earliest offset (measured as the consume run).
func runConsumeEarliest(ctx context.Context, t Target, cfg Config, o Options) (*bench.Result, *bench.Result, error) {
	fillCfg := cfg
	fillCfg.Workload = WorkloadProduce
	fill, err := runProduce(ctx, t, fillCfg, Options{})
	if err != nil {
		return fill, nil, fmt.Errorf("load: fill: %w", err)
	}
	want := fill.Records
	fillTime := time.Duration(fill.DurationSec * float64(time.Second))
	if cfg.Cold {
		if err := t.Restart(ctx); err != nil {
			return fill, nil, err
		}
	}
	var c bench.Counters
	before := statsBefore(ctx, t)
	prog := bench.StartProgress(progressWriter(o), o.ProgressInterval, &c, nil, nil)
	start := time.Now()
	var target atomic.Int64
	target.Store(want)
	known := make(chan struct{})
	close(known)
	// Reading back may take as long as filling did, and then some.
	last, err := consumeAll(ctx, t, cfg, client.Earliest(), &c, nil, &target, known, nil, cfg.DrainTimeout+2*fillTime)
	prog.Stop()
	elapsed := sinceUntil(start, last)
	r := &bench.Result{System: "rafka", Workload: WorkloadConsume, Config: cfg.describe(), ReplicationFactor: int(cfg.ReplicationFactor),
		Records: c.Records.Load(), Bytes: c.Bytes.Load(), Errors: c.Errors.Load()}
	statsErr := finishStats(ctx, t, r, before)
	r.Finish(elapsed, nil)
	if err == nil && r.Records != want {
		err = fmt.Errorf("load: consumed %d records of %d produced", r.Records, want)
	}
	return fill, r, errors.Join(err, failures(r), statsErr)
}

// runConcurrent runs e2e and consume from latest: consumers subscribe at the
// log end, then producers send stamped values.
func runConcurrent(ctx context.Context, t Target, cfg Config, o Options) (*bench.Result, error) {
	ack, e2e := bench.NewHistogram(), bench.NewHistogram()
	var produced, consumed bench.Counters
	var target atomic.Int64
	target.Store(-1) // unknown until producers are done
	ready := make(chan struct{})
	producersDone := make(chan struct{}) // closed once target is stored

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	var consumeErr error
	var last time.Time
	wg.Go(func() {
		last, consumeErr = consumeAll(ctx, t, cfg, client.Latest(), &consumed, e2e, &target, producersDone, ready, cfg.DrainTimeout)
		if consumeErr != nil {
			cancel(consumeErr)
		}
	})
	select {
	case <-ready:
	case <-ctx.Done():
		wg.Wait()
		return nil, consumeErr
	}

	var before usage
	var prog *bench.Progress
	lag := bench.NewHistogram()
	start, produceErr := produceAll(ctx, t, cfg, &produced, ack, lag, cfg.Count, cfg.Duration, func() {
		before = statsBefore(ctx, t)
		prog = bench.StartProgress(progressWriter(o), o.ProgressInterval, &consumed, ack, e2e)
	})
	target.Store(produced.Records.Load())
	close(producersDone)
	wg.Wait()
	if prog == nil { // no producer got connected
		return nil, errors.Join(produceErr, consumeErr)
	}
	prog.Stop()
	elapsed := sinceUntil(start, last)

	workload := WorkloadE2E
	if cfg.Workload == WorkloadConsume {
		workload = WorkloadConsume
	}
	r := &bench.Result{System: "rafka", Workload: workload, Config: cfg.describe(), ReplicationFactor: int(cfg.ReplicationFactor),
		Records: consumed.Records.Load(), Bytes: consumed.Bytes.Load(),
		Errors: produced.Errors.Load() + consumed.Errors.Load()}
	statsErr := finishStats(ctx, t, r, before)
	a, e := ack.Summary(), e2e.Summary()
	r.Ack, r.E2E = &a, &e
	r.SendLag = lagSummary(cfg, lag)
	r.Finish(elapsed, &e)
	err := errors.Join(produceErr, consumeErr)
	if err == nil && r.Records != produced.Records.Load() {
		err = fmt.Errorf("load: consumed %d records of %d produced", r.Records, produced.Records.Load())
	}
	return r, errors.Join(err, failures(r), statsErr)
}

// lagSummary is the send lag of a paced run, nil for an unpaced one.
func lagSummary(cfg Config, lag *bench.Histogram) *bench.Summary {
	if cfg.Rate <= 0 {
		return nil
	}
	s := lag.Summary()
	return &s
}

func progressWriter(o Options) io.Writer {
	if o.Progress == nil {
		return io.Discard
	}
	return o.Progress
}

// sinceUntil is the time from start to the last record read, or to now when
// none was read.
func sinceUntil(start, last time.Time) time.Duration {
	if last.Before(start) {
		return time.Since(start)
	}
	return last.Sub(start)
}
