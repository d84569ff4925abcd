package load

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/rafka/rafka/bench"
	"github.com/rafka/rafka/client"
	"github.com/rafka/rafka/wire"
)

// FailoverConfig describes a failover run: records produced to a topic of
// one partition at a fixed rate with acks=all while its leader is killed
// (SIGKILL) Kills times. Zero fields take the defaults stated.
type FailoverConfig struct {
	// Topic is created for the run. Default rafka-failover-<random>.
	Topic string
	// ReplicationFactor of the topic. Default 3. With 1 there is no other
	// replica to take over: the killed broker is restarted at once and the
	// recovery time is its restart.
	ReplicationFactor int32
	// RecordSize is the value size, at least failoverHeader bytes (the
	// producer's clock and a sequence number). Default 256.
	RecordSize int
	// Rate is the produce rate in records/s. Default 2000.
	Rate float64
	// Kills is how many times the leader is killed. Default 3.
	Kills int
	// Settle is how long records are produced undisturbed before each kill
	// (and before the first). Default 2s.
	Settle time.Duration
	// Duration caps producing and killing; kills not done by then are
	// skipped. Default 3 minutes.
	Duration time.Duration
	// RequestTimeout bounds the wait for one produce answer before the
	// producer retries (a request to a killed leader gets none). Default 2s.
	RequestTimeout time.Duration
	// DrainTimeout bounds the final flush and the read-back. Default 60s.
	DrainTimeout time.Duration
	Fsync        string        // topic fsync policy; "" the broker's default
	Linger       time.Duration // producer linger; default 0 (none)
	Seed         uint64        // payload seed
}

// failoverHeader is the bytes of a failover value the run reads back: the
// producer's clock (bench.Stamp), then the record's sequence number.
const failoverHeader = bench.StampSize + 8

// WithDefaults fills the zero fields.
func (c FailoverConfig) WithDefaults() FailoverConfig {
	if c.Topic == "" {
		c.Topic = fmt.Sprintf("rafka-failover-%d", time.Now().UnixNano()%1e9)
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = 3
	}
	if c.RecordSize == 0 {
		c.RecordSize = 256
	}
	if c.Rate == 0 {
		c.Rate = 2000
	}
	if c.Kills == 0 {
		c.Kills = 3
	}
	if c.Settle == 0 {
		c.Settle = 2 * time.Second
	}
	if c.Duration == 0 {
		c.Duration = 3 * time.Minute
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 2 * time.Second
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 60 * time.Second
	}
	return c
}

// Validate reports every problem of a defaulted config at once; brokers is
// the size of the cluster.
func (c FailoverConfig) Validate(brokers int) error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.ReplicationFactor < 1 || int(c.ReplicationFactor) > brokers {
		add("replication factor %d: want 1 to the %d brokers", c.ReplicationFactor, brokers)
	}
	if c.RecordSize < failoverHeader || c.RecordSize > 4<<20 {
		add("record size %d: want %d bytes (clock and sequence number) to 4 MiB", c.RecordSize, failoverHeader)
	}
	if c.Rate <= 0 || c.Rate > 1e6 {
		add("rate %v: want more than 0 and at most 1,000,000 records/s", c.Rate)
	}
	if c.Kills < 0 {
		add("kills %d: want >= 0", c.Kills)
	}
	if c.Settle < 0 || c.Duration < 0 || c.RequestTimeout < 0 || c.DrainTimeout < 0 || c.Linger < 0 {
		add("durations must not be negative")
	}
	if c.Fsync != "" && c.Fsync != "always" && c.Fsync != "never" && len(c.Fsync) < len("interval:") {
		add("fsync %q: want always, interval:<ms> or never", c.Fsync)
	}
	return errors.Join(errs...)
}

func (c FailoverConfig) describe(brokers int) map[string]any {
	m := map[string]any{"topic": c.Topic, "replication_factor": c.ReplicationFactor, "record_size": c.RecordSize,
		"rate": c.Rate, "kills": c.Kills, "brokers": brokers, "acks": "all"}
	if c.Fsync != "" {
		m["fsync"] = c.Fsync
	}
	return m
}

// ErrLost is returned (wrapped) when acknowledged records were not read
// back.
var ErrLost = errors.New("load: acknowledged records lost")

// ErrDuplicates is returned (wrapped) when a record was read back more
// than once: the producer is idempotent, so a retry must not store a
// record again.
var ErrDuplicates = errors.New("load: records stored more than once")

// failoverRun is the shared state of a failover run.
type failoverRun struct {
	cfg FailoverConfig
	ack *bench.Histogram

	// mu guards the fields below; the producer's delivery callbacks and the
	// kill loop take it.
	mu      sync.Mutex
	acked   []bool   // by sequence number
	samples []sample // acknowledged records: scheduled time and latency
	failed  int64
	killAt  time.Time     // of the kill in progress; zero between kills
	firstAt time.Time     // first ack of a record scheduled after killAt
	first   chan struct{} // closed at firstAt
	kills   []killTimes   // of the kills done, as res.Kills
}

// killTimes are a kill's instant and its first acknowledgement after (zero:
// none).
type killTimes struct{ at, firstAck time.Time }

type sample struct {
	due     time.Time
	latency time.Duration
}

// RunFailover runs cfg against c, a local cluster whose brokers it kills
// and restarts. The result is returned even with an error: lost records
// give an error wrapping ErrLost, duplicates one wrapping ErrDuplicates.
func RunFailover(ctx context.Context, c *bench.LocalCluster, cfg FailoverConfig, o Options) (*bench.FailoverResult, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(c.Size()); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	log := o.Progress
	if log == nil {
		log = io.Discard
	}
	target := &Cluster{C: c}
	admin, err := client.New(ctx, target.ClientOptions()...)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer admin.Close()
	var configs map[string]string
	if cfg.Fsync != "" {
		configs = map[string]string{"fsync": cfg.Fsync}
	}
	if err := admin.CreateTopic(ctx, cfg.Topic, 1, configs, client.WithReplicationFactor(cfg.ReplicationFactor)); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}

	fr := &failoverRun{cfg: cfg, ack: bench.NewHistogram()}
	res := &bench.FailoverResult{Config: cfg.describe(c.Size())}
	pctx, stopProducing := context.WithTimeout(ctx, cfg.Duration)
	defer stopProducing()
	var wg sync.WaitGroup
	var sent int64
	var produceErr error
	start := time.Now()
	wg.Go(func() { sent, produceErr = fr.produce(pctx, ctx, target) })

	killErr := fr.killLoop(pctx, c, admin, res, log)
	stopProducing()
	wg.Wait()
	res.DurationSec = time.Since(start).Seconds()

	fr.mu.Lock()
	res.Sent, res.Failed = sent, fr.failed
	for _, a := range fr.acked {
		if a {
			res.Acked++
		}
	}
	for i, kt := range fr.kills {
		res.Kills[i].Spike = fr.spike(kt)
	}
	fr.mu.Unlock()
	s := fr.ack.Summary()
	res.Ack = &s
	res.FinishRecovery()

	fmt.Fprintln(log, "reading the partition back")
	readErr := fr.readBack(ctx, target, res)
	use, statErr := c.Stats()
	if statErr == nil {
		sum := bench.SumUse(use)
		res.Broker, res.Brokers = &sum, use
	}
	err = errors.Join(produceErr, killErr, readErr)
	if res.Lost > 0 {
		err = errors.Join(fmt.Errorf("%w: %d of %d", ErrLost, res.Lost, res.Acked), err)
	}
	if res.Duplicates > 0 {
		err = errors.Join(fmt.Errorf("%w: %d of %d read", ErrDuplicates, res.Duplicates, res.Read), err)
	}
	return res, err
}

// spike summarises the ack latency around kill k. fr.mu must be held.
func (fr *failoverRun) spike(k killTimes) bench.Summary {
	from, to := k.at.Add(-bench.SpikeMargin), time.Time{}
	if !k.firstAck.IsZero() {
		to = k.firstAck.Add(bench.SpikeMargin)
	}
	h := bench.NewHistogram()
	for _, s := range fr.samples {
		if !s.due.Before(from) && (to.IsZero() || s.due.Before(to)) {
			h.Record(s.latency)
		}
	}
	return h.Summary()
}

// produce sends records at cfg.Rate until pctx ends, then flushes (bounded
// by DrainTimeout, under ctx). It returns the records sent.
func (fr *failoverRun) produce(pctx, ctx context.Context, t Target) (int64, error) {
	cfg := fr.cfg
	cl, err := client.New(ctx, t.ClientOptions()...)
	if err != nil {
		return 0, fmt.Errorf("load: producer: %w", err)
	}
	defer cl.Close()
	// Retries without end but for the run's bound: a record must outlive
	// the election and the client's metadata refresh. The producer is
	// idempotent (the default): its retries store nothing twice.
	p, err := cl.NewProducer(client.WithAcks(client.AcksAll), client.WithLinger(cfg.Linger),
		client.WithRetries(1<<20), client.WithRetryBackoff(20*time.Millisecond, 200*time.Millisecond),
		client.WithRequestTimeout(cfg.RequestTimeout))
	if err != nil {
		return 0, fmt.Errorf("load: producer: %w", err)
	}
	pl, err := bench.NewPayloads(cfg.RecordSize, 0, cfg.Seed)
	if err != nil {
		return 0, err
	}
	onDelivery := func(r *client.Record, err error) {
		now := time.Now()
		seq := binary.LittleEndian.Uint64(r.Value[bench.StampSize:])
		lat := now.Sub(r.Timestamp)
		fr.mu.Lock()
		defer fr.mu.Unlock()
		if err != nil {
			fr.failed++
			return
		}
		fr.ack.Record(lat)
		fr.acked[seq] = true
		fr.samples = append(fr.samples, sample{due: r.Timestamp, latency: lat})
		if !fr.killAt.IsZero() && fr.firstAt.IsZero() && !r.Timestamp.Before(fr.killAt) {
			fr.firstAt = now
			close(fr.first)
		}
	}
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	start := time.Now()
	var n int64
	var produceErr error
	for ; pctx.Err() == nil; n++ {
		due := start.Add(time.Duration(n) * interval)
		if d := time.Until(due); d > 0 {
			if bench.SleepCtx(pctx, d) != nil {
				break
			}
		}
		v := make([]byte, cfg.RecordSize)
		copy(v, pl.Next())
		_ = bench.Stamp(v, due.UnixNano())
		binary.LittleEndian.PutUint64(v[bench.StampSize:], uint64(n))
		fr.mu.Lock()
		fr.acked = append(fr.acked, false)
		fr.mu.Unlock()
		r := &client.Record{Topic: cfg.Topic, Partition: 0, Timestamp: due, Value: v}
		if err := p.Produce(pctx, r, onDelivery); err != nil {
			if pctx.Err() == nil {
				produceErr = fmt.Errorf("load: produce: %w", err)
			} else {
				// Not handed over: not sent.
				fr.mu.Lock()
				fr.acked = fr.acked[:n]
				fr.mu.Unlock()
			}
			break
		}
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.DrainTimeout)
	defer cancel()
	if err := p.Close(fctx); err != nil {
		produceErr = errors.Join(produceErr, fmt.Errorf("load: flush: %w", err))
	}
	fr.mu.Lock()
	defer fr.mu.Unlock()
	return int64(len(fr.acked)), produceErr
}

// killLoop kills the partition's leader cfg.Kills times, each after Settle
// of undisturbed producing, and restarts it once a write was acknowledged
// after the kill (at once with one replica). It ends early when pctx does.
func (fr *failoverRun) killLoop(pctx context.Context, c *bench.LocalCluster, admin *client.Client, res *bench.FailoverResult, log io.Writer) error {
	for k := 1; k <= fr.cfg.Kills; k++ {
		if bench.SleepCtx(pctx, fr.cfg.Settle) != nil {
			return fmt.Errorf("load: the run's duration ended before kill %d", k)
		}
		leader, err := partitionLeader(pctx, admin, fr.cfg.Topic)
		if err != nil {
			return err
		}
		i := c.Index(leader)
		if i < 0 || c.Broker(i) == nil {
			return fmt.Errorf("load: the partition's leader %q is not a running local broker", leader)
		}
		first := make(chan struct{})
		fr.mu.Lock()
		fr.killAt, fr.firstAt, fr.first = time.Now(), time.Time{}, first
		kt := killTimes{at: fr.killAt}
		fr.mu.Unlock()
		fmt.Fprintf(log, "kill %d: SIGKILL leader %s\n", k, leader)
		if err := c.Kill(i); err != nil {
			return err
		}
		kill := bench.FailoverKill{Broker: leader, RecoveryMs: -1}
		restart := func() error {
			t0 := time.Now()
			err := c.Restart(pctx, i)
			kill.RestartMs = float64(time.Since(t0)) / float64(time.Millisecond)
			return err
		}
		var restartErr error
		restarted := fr.cfg.ReplicationFactor == 1
		if restarted { // no other replica: nothing is acknowledged until it is back
			restartErr = restart()
		}
		select {
		case <-first:
		case <-pctx.Done():
		}
		fr.mu.Lock()
		kt.firstAck = fr.firstAt
		fr.killAt = time.Time{}
		fr.kills = append(fr.kills, kt)
		fr.mu.Unlock()
		if !kt.firstAck.IsZero() {
			kill.RecoveryMs = float64(kt.firstAck.Sub(kt.at)) / float64(time.Millisecond)
			// Best effort, briefly: the killed broker waits for it.
			lctx, cancel := context.WithTimeout(pctx, newLeaderWait)
			if nl, err := partitionLeader(lctx, admin, fr.cfg.Topic); err == nil {
				kill.NewLeader = nl
			}
			cancel()
			fmt.Fprintf(log, "kill %d: next write acknowledged after %.0f ms\n", k, kill.RecoveryMs)
		}
		if !restarted {
			// Restarted even when the run is over, so that its data is
			// read back with the others'.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(pctx), time.Minute)
			t0 := time.Now()
			restartErr = c.Restart(rctx, i)
			kill.RestartMs = float64(time.Since(t0)) / float64(time.Millisecond)
			cancel()
		}
		res.Kills = append(res.Kills, kill)
		if restartErr != nil {
			return restartErr
		}
		if kt.firstAck.IsZero() {
			return fmt.Errorf("load: no write was acknowledged after kill %d before the run's duration ended", k)
		}
	}
	// Some undisturbed producing after the last restart, so the last spike
	// window closes.
	_ = bench.SleepCtx(pctx, fr.cfg.Settle)
	return nil
}

// partitionLeaderWait bounds the wait for metadata to name a leader before
// a kill; newLeaderWait the look-up of the new leader after one.
const (
	partitionLeaderWait = 30 * time.Second
	newLeaderWait       = 3 * time.Second
)

// partitionLeader returns the broker ID metadata names as the leader of
// partition 0 of topic, waiting until one is named.
func partitionLeader(ctx context.Context, admin *client.Client, topic string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, partitionLeaderWait)
	defer cancel()
	var last error
	for {
		tms, err := admin.ListTopics(ctx)
		last = err
		for _, tm := range tms {
			if tm.Name == topic && len(tm.Partitions) > 0 && tm.Partitions[0].Leader != "" && !tm.Partitions[0].Offline {
				return tm.Partitions[0].Leader, nil
			}
		}
		if bench.SleepCtx(ctx, 50*time.Millisecond) != nil {
			return "", fmt.Errorf("load: no leader of %s/0 named within %v (last error: %v)", topic, partitionLeaderWait, last)
		}
	}
}

// readBack reads the partition from its start to its end and fills the
// read, lost, duplicate and out-of-order counts of res.
func (fr *failoverRun) readBack(ctx context.Context, t Target, res *bench.FailoverResult) error {
	ctx, cancel := context.WithTimeout(ctx, fr.cfg.DrainTimeout)
	defer cancel()
	cl, err := client.New(ctx, t.ClientOptions()...)
	if err != nil {
		return fmt.Errorf("load: read back: %w", err)
	}
	defer cl.Close()
	end, err := cl.ListOffset(ctx, fr.cfg.Topic, 0, wire.OffsetLatest)
	if err != nil {
		return fmt.Errorf("load: read back: %w", err)
	}
	cs, err := cl.NewConsumer()
	if err != nil {
		return fmt.Errorf("load: read back: %w", err)
	}
	defer cs.Close()
	if err := cs.Assign(ctx, client.Assignment{Topic: fr.cfg.Topic, Partition: 0, Start: client.Earliest()}); err != nil {
		return fmt.Errorf("load: read back: %w", err)
	}
	fr.mu.Lock()
	acked := fr.acked
	fr.mu.Unlock()
	seen := make([]bool, len(acked))
	var maxSeq int64 = -1
	var foreign int64
	next := int64(0) // offset after the last record read
	for next < end {
		recs, err := cs.Poll(ctx)
		if err != nil {
			return fmt.Errorf("load: read back: %d of %d offsets read: %w", next, end, err)
		}
		for _, r := range recs {
			next = max(next, r.Offset+1)
			res.Read++
			if len(r.Value) < failoverHeader {
				foreign++
				continue
			}
			seq := int64(binary.LittleEndian.Uint64(r.Value[bench.StampSize:]))
			if seq < 0 || seq >= int64(len(seen)) {
				foreign++
				continue
			}
			if seen[seq] {
				res.Duplicates++
				continue
			}
			seen[seq] = true
			if seq < maxSeq {
				res.OutOfOrder++
			}
			maxSeq = max(maxSeq, seq)
		}
	}
	for i, a := range acked {
		if a && !seen[i] {
			res.Lost++
		}
	}
	if foreign > 0 {
		return fmt.Errorf("load: read back: %d records that this run did not send", foreign)
	}
	return nil
}
