package client

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/rafka/rafka/wire"
)

// Producer batches records per partition and sends the batches to the
// partitions' leaders, one long-lived stream per broker with pipelined
// requests. It is safe for concurrent use.
//
// # Delivery and order
//
// Delivery is exactly once per acknowledged record when the producer is
// idempotent (the default, WithIdempotence): every batch carries the
// producer's id and the sequence number of its first record in its
// partition, a batch sent again carries the same ones, and the partition's
// leader stores a batch at most once, answering a retry of one it stored
// with the offsets of that first copy. Within the bounds brokers keep (the
// last MaxIdempotentInFlight batches of each producer per partition, at
// most 1024 producers per partition, docs/replication.md), no record is
// stored twice, whatever leader changes and retries happen. Without
// idempotence delivery is at least once: a retry may store a batch twice.
//
// Each record produced without error gets exactly one delivery callback:
// with its offset once the broker acknowledged its batch, or with the
// error that made the producer give up (a non-retriable broker error,
// WithRetries exhausted, or the producer closed first). Timeouts and
// broken connections are retried like retriable broker errors, within
// WithRetries; only a definite answer (the topic or partition does not
// exist, the partition is offline, the batch is rejected) fails records
// without retrying.
//
// With AcksNone the broker sends no answers: a record's callback reports
// success once its batch was written to the connection, which does not mean
// the broker read it. Close is what confirms it: it returns nil only once
// the broker has read everything the producer sent (see Close).
// Callbacks of one partition run in produce order, from a producer goroutine:
// keep them short, and do not call Flush or Close from them, nor Produce
// with a context that lets it block on a full buffer (the goroutine that
// would free the buffer is the one running the callback).
//
// Records of one partition are stored in produce order, even with several
// requests in flight and retries: when a request fails with a retriable error
// (or its stream breaks), the producer stops sending on that partition, waits
// for the answers to the requests sent after it, and sends all of them again
// in their original order, whatever their own answers were. An idempotent
// producer's leader refuses a batch whose predecessor it has not stored
// (OUT_OF_ORDER_SEQUENCE, retried) and answers the repeated ones with
// their offsets; without idempotence a request the broker had stored
// before the failure is stored twice, the second copy in order.
//
// A producer waiting for answers from a broker asks another broker, every
// WithLeaderProbe, who leads the partitions it waits for; when the leader
// moved (its broker died, or lost an election), it sends what is
// outstanding to the new leader at once rather than after
// WithRequestTimeout.
//
// # Internals
//
// A partition's records go into its open batch until the batch is full or
// its linger expires; then the batch is sealed into the partition's ready
// queue (a full batch is compressed first by the Produce call that filled
// it, outside the lock; the sink takes nothing of its partition until
// then). A sink (one per broker) owns a stream and two goroutines: the
// writer seals lingering batches, builds and sends ready batches while the
// in-flight bounds allow, and the reader matches answers (in order) to the
// sink's FIFO of sent batches. A partition that saw a retriable failure is
// "recovering": the writer skips it, and once it has nothing in flight a
// recovery goroutine backs off, refreshes metadata and attaches it to its
// (possibly new) leader's sink with the batches to redo in front.
type Producer struct {
	c   *Client
	cfg producerConfig
	// id is the producer id of an idempotent producer (random, >= 0), -1
	// otherwise.
	id int64

	// ctx ends the producer's goroutines; abort cancels it.
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup // sinks and recoveries

	// builders are batch builders whose batches completed, kept for reuse so
	// their grown buffers are not allocated again (a sync.Pool would drop
	// them at every GC). Guarded by mu; at most maxFreeBuilders.
	builders []*wire.BatchBuilder

	closeOnce sync.Once
	closeErr  error

	// mu guards the fields below and every partState, sink and batch field
	// documented as guarded by it. Never held while calling the application
	// (callbacks, partitioner) or doing network I/O.
	mu       sync.Mutex
	closing  bool                          // Close began: Produce fails
	abortErr error                         // set once by abort: everything fails with it
	parts    map[topicPartition]*partState // never removed
	lastPart *partState                    // the last one Produce used: most records go to the same one
	// freeRecs are record lists of completed batches, emptied, kept for
	// reuse like builders (see putRecsLocked for their bounds).
	freeRecs   [][]pendingRecord
	sinks      map[string]*sink // by broker address
	bufUsed    int64
	spaceFreed chan struct{} // closed and replaced when buffer bytes are released
	pending    int           // records produced and not yet completed
	idle       chan struct{} // closed and replaced when pending drops to zero
	flushing   int           // Flush calls waiting: linger is skipped
	draining   bool          // Close flushed: sinks end their streams once idle
	// unconfirmed: with AcksNone, why records reported sent may not have
	// been stored (a stream broke after they were written); Close returns it.
	unconfirmed error
}

type topicPartition struct {
	topic     string
	partition int32
}

type pendingRecord struct {
	r  *Record
	cb func(*Record, error)
}

// batch is a group of records of one partition sent in one request. All
// fields are guarded by Producer.mu except builder and data, which belong to
// whoever holds the batch outside the queues: Produce while it is open, then
// the sink writer that took it from the ready queue.
type batch struct {
	part     *partState
	builder  *wire.BatchBuilder // holds the records, then the built batch, until completion
	data     []byte             // the encoded batch once built: builder's memory
	recs     []pendingRecord
	bytes    int64     // buffer bytes reserved for the records
	deadline time.Time // while open: when the linger seals it
	attempts int       // times sent, plus failed attempts to route it
	corr     uint32
	sentAt   time.Time
	// Idempotence: the epoch and first sequence the batch was built with,
	// set once (sequenced) when first taken to be sent; a retry sends the
	// same bytes.
	sequenced bool
	epoch     int16
	seq       int32
	// stored: a broker answered success for it, but it waits in redo
	// behind a failed batch (to keep produce order): a new epoch leaves
	// it as it is, and its resend is answered as a duplicate.
	stored bool
	// compressing: Produce sealed it full and is compressing its records
	// (Producer.compress); until that ends the builder is Produce's, the
	// sink does not take the batch (nor any after it in its partition),
	// and a completion leaves the builder to compress to put back.
	compressing bool
}

// partState is one partition's queues; guarded by Producer.mu.
type partState struct {
	tp       topicPartition
	sink     *sink    // the leader's sink; nil while unrouted or recovering
	open     *batch   // accepting records
	ready    []*batch // sealed, to send, in order
	inflight []*batch // taken by the sink writer, in order
	redo     []*batch // to send again after recovery, in order
	lastErr  error    // the last retriable failure
	failures int      // consecutive recoveries, for the backoff
	// recovering: a retriable failure happened; send nothing new until the
	// recovery ran. recoveryRunning: its goroutine exists.
	recovering, recoveryRunning bool
	// hinted: a NOT_LEADER answer named the new leader and the metadata
	// cache holds it; the next recovery routes there without a refresh.
	hinted bool
	// busy: the last batch was sealed because it was full, so the next one
	// will likely fill too and gets a full-size buffer up front instead of
	// growing it step by step (idle partitions keep small buffers).
	busy bool
	// Idempotence: the epoch and sequence of the partition's next batch.
	// seqHole: a sequenced batch failed for good, so the partition's
	// sequence has a hole the broker would refuse every later batch for;
	// once nothing is in flight the partition starts a new epoch
	// (resequenceLocked).
	epoch   int16
	nextSeq int32
	seqHole bool
}

func (ps *partState) hasWork() bool {
	return ps.open != nil || len(ps.ready) > 0 || len(ps.inflight) > 0 || len(ps.redo) > 0
}

type completion struct {
	b    *batch
	err  error
	base int64 // offset of the first record, -1 when unknown
}

// NewProducer returns a producer using the client's connections.
func (c *Client) NewProducer(opts ...ProducerOption) (*Producer, error) {
	cfg := defaultProducerConfig()
	cfg.partitioner = NewHashPartitioner()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p := &Producer{
		c:          c,
		cfg:        cfg,
		id:         -1,
		parts:      make(map[topicPartition]*partState),
		sinks:      make(map[string]*sink),
		spaceFreed: make(chan struct{}),
		idle:       make(chan struct{}),
	}
	if cfg.idempotent {
		// Random among 2^63: two producers of one partition share an id
		// with probability about n^2/2^64 for n producers (5e-8 for a
		// million). Taking ids from the cluster would cost a round trip
		// and a replicated counter for no practical gain.
		p.id = rand.Int64()
	}
	p.ctx, p.cancel = context.WithCancelCause(c.ctx)
	if err := c.register(p, nil); err != nil {
		p.cancel(err)
		return nil, err
	}
	return p, nil
}

// Produce queues r for its partition and returns; onDelivery (may be nil) is
// called once the record is stored or has definitely failed. It blocks while
// the producer's buffer is full (WithBufferBytes), until ctx is done. With
// compression, the call whose record fills a batch also compresses it
// (about a few milliseconds per MiB), so compression spreads over the
// goroutines that produce rather than delaying the network writes. An error
// means the record was not queued and onDelivery will not be called: ctx's
// error, ErrClosed, or a problem with the record or its topic (for example
// ErrUnknownTopicOrPartition, or ErrPartitionOffline for a partition the
// metadata reports offline: cached metadata saying so is fetched again when
// older than the retry backoff base, so production resumes once the
// partition is back).
func (p *Producer) Produce(ctx context.Context, r *Record, onDelivery func(*Record, error)) error {
	if r == nil || r.Topic == "" {
		return errors.New("client: produce: record without topic")
	}
	if r.Partition < AnyPartition {
		return fmt.Errorf("client: produce: partition %d", r.Partition)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	tm, err := p.c.topicMetadata(ctx, r.Topic, false)
	if err != nil {
		return opError(fmt.Sprintf("produce to %q", r.Topic), err)
	}
	part := r.Partition
	if part == AnyPartition {
		part = p.cfg.partitioner.Partition(r, tm)
	}
	pm := tm.partition(part)
	if pm != nil && pm.Offline && time.Since(tm.fetched) >= p.cfg.backoffBase {
		// It may be back: look again, at most once per backoff base, so a
		// producer of an offline partition does not ask per record.
		if tm, err = p.c.topicMetadata(ctx, r.Topic, true); err != nil {
			return opError(fmt.Sprintf("produce to %q", r.Topic), err)
		}
		if r.Partition == AnyPartition {
			part = p.cfg.partitioner.Partition(r, tm)
		}
		pm = tm.partition(part)
	}
	if pm == nil {
		return fmt.Errorf("client: produce to %s/%d: %w", r.Topic, part,
			&wire.Error{Code: wire.ErrUnknownTopicOrPartition, Message: "no such partition"})
	}
	if pm.Offline {
		return fmt.Errorf("client: produce to %s/%d: %w", r.Topic, part, offlineError())
	}
	size := int64(wire.MaxRecordSize(r.Key, r.Value, r.Headers))
	if size+wire.BatchHeaderSize > wire.DefaultMaxBatchSize {
		return fmt.Errorf("client: produce to %s/%d: record of %d bytes: %w", r.Topic, part, size,
			&wire.Error{Code: wire.ErrMessageTooLarge, Message: "record larger than the largest batch"})
	}
	if r.Timestamp.IsZero() {
		r.Timestamp = time.Now()
	}
	r.Partition, r.Offset = part, -1
	// One critical section per record: reserve buffer space (waiting
	// outside the lock while the buffer is full), then queue the record.
	if err := p.reserveAndLock(ctx, size); err != nil {
		return err
	}
	tp := topicPartition{r.Topic, part}
	ps := p.lastPart
	if ps == nil || ps.tp != tp {
		if ps = p.parts[tp]; ps == nil {
			ps = &partState{tp: tp}
			p.parts[tp] = ps
		}
		p.lastPart = ps
	}
	if ps.sink == nil && !ps.recovering {
		if pm.LeaderAddr != "" {
			p.attachLocked(ps, pm.LeaderAddr)
		} else {
			p.startRecoveryLocked(ps, &wire.Error{Code: wire.ErrNotLeader, Message: "no leader known"})
		}
	}
	var (
		sealed, wake bool
		full         [2]fullBatch // sealed full here, to compress outside the lock
	)
	if ob := ps.open; ob != nil && ob.builder.Size()+int(size) > p.cfg.maxBatchBytes {
		full[0] = p.sealFullLocked(ps)
		sealed = true
	}
	if ps.open == nil {
		b := p.getBuilderLocked()
		if ps.busy {
			b.Grow(p.cfg.maxBatchBytes - b.Size())
		}
		ps.open = &batch{part: ps, builder: b, recs: p.getRecsLocked(), deadline: time.Now().Add(p.cfg.linger)}
		wake = true // the writer's linger timer must learn of the new batch
	}
	ob := ps.open
	ob.builder.Append(r.Timestamp.UnixMilli(), r.Key, r.Value, r.Headers)
	ob.recs = append(ob.recs, pendingRecord{r: r, cb: onDelivery})
	ob.bytes += size
	p.pending++
	if ob.builder.Size() >= p.cfg.maxBatchBytes {
		full[1] = p.sealFullLocked(ps)
		sealed = true
	}
	s := ps.sink
	p.mu.Unlock()

	if sealed {
		p.cfg.partitioner.BatchSealed(tp.topic, tp.partition)
	}
	for _, f := range full {
		if f.b != nil {
			p.compress(f)
		}
	}
	if s != nil && (sealed || wake) {
		s.signal()
	}
	return nil
}

// fullBatch is a batch Produce sealed full and compresses, with its builder.
type fullBatch struct {
	b  *batch
	bl *wire.BatchBuilder
}

// sealFullLocked seals ps's open batch, which is full. With compression it
// returns the batch, marked compressing, for Produce to compress once it
// released the lock: compression (a few milliseconds per MiB) then runs on
// the goroutines that produce, in parallel with the sink writing earlier
// batches, instead of in the sink between its writes. Batches sealed by
// their linger are compressed by the sink.
func (p *Producer) sealFullLocked(ps *partState) fullBatch {
	b := ps.open
	p.sealLocked(ps)
	ps.busy = true
	if p.cfg.codec == CompressionNone {
		return fullBatch{}
	}
	b.compressing = true
	return fullBatch{b: b, bl: b.builder}
}

// compress compresses the records of a batch sealed full by Produce and
// lets the sink take it.
func (p *Producer) compress(f fullBatch) {
	f.bl.Compress(p.cfg.codec) // the builder is ours while compressing
	p.mu.Lock()
	f.b.compressing = false
	if f.b.builder == nil {
		// Completed meanwhile (abort, or a definite error): complete
		// left the builder to us.
		p.putBuilderLocked(f.bl)
	}
	s := f.b.part.sink
	p.mu.Unlock()
	if s != nil {
		s.signal()
	}
}

// ProduceSync produces rs and waits until every one of them is stored or has
// failed; it returns the records' errors joined. Partitions it wrote to send
// their open batches at once rather than after the linger. When ctx ends
// first it returns ctx's error; records already queued are still delivered.
func (p *Producer) ProduceSync(ctx context.Context, rs ...*Record) error {
	if len(rs) == 0 {
		return nil
	}
	var (
		mu        sync.Mutex
		errs      []error
		remaining = len(rs)
		done      = make(chan struct{})
	)
	finish := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, err)
		}
		if remaining--; remaining == 0 {
			close(done)
		}
	}
	cb := func(_ *Record, err error) { finish(err) }
	for _, r := range rs {
		if err := p.Produce(ctx, r, cb); err != nil {
			finish(err)
		}
	}
	p.sendNow(rs)
	select {
	case <-done:
		return errors.Join(errs...)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sendNow ends the linger of the open batches of rs's partitions.
func (p *Producer) sendNow(rs []*Record) {
	var sinks []*sink
	p.mu.Lock()
	for _, r := range rs {
		ps := p.parts[topicPartition{r.Topic, r.Partition}]
		if ps == nil || ps.open == nil || ps.open.deadline.IsZero() {
			continue
		}
		ps.open.deadline = time.Time{}
		if ps.sink != nil {
			sinks = append(sinks, ps.sink)
		}
	}
	p.mu.Unlock()
	for _, s := range sinks {
		s.signal()
	}
}

// Flush sends every buffered record at once (ignoring the linger) and waits
// until nothing is pending: every record produced before the call, and any
// produced meanwhile, has been delivered or has failed, and its callback has
// returned. With AcksNone "delivered" means written to the connection; only
// Close confirms that the broker read it.
func (p *Producer) Flush(ctx context.Context) error {
	p.mu.Lock()
	if p.pending == 0 {
		p.mu.Unlock()
		return nil
	}
	p.flushing++
	idle := p.idle
	sinks := make([]*sink, 0, len(p.sinks))
	for _, s := range p.sinks {
		sinks = append(sinks, s)
	}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.flushing--
		p.mu.Unlock()
	}()
	for _, s := range sinks {
		s.signal()
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("client: flush: %w", ctx.Err())
	case <-p.ctx.Done():
		return context.Cause(p.ctx) // abort fails what is pending
	}
}

// Close sends everything the producer holds and stops it, whatever the
// acks level. It flushes, then ends each broker stream in order: it closes
// the stream's write side and waits until the broker has read to its end
// (the broker appends every produce it reads before reading the next, and
// closes its side of the stream after the last one), so when Close returns
// nil every record whose callback reported success has reached a broker,
// with AcksNone too. Both steps are bounded by ctx; the wait for a broker
// to finish reading is also bounded by WithRequestTimeout. Records still
// pending when ctx ends fail with ErrClosed, and Close returns an error
// saying what could not be confirmed. Close is idempotent: later calls
// return the first call's result. After Client.Close it returns nil (the
// client failed what was pending with ErrClosed).
func (p *Producer) Close(ctx context.Context) error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closing = true
		p.mu.Unlock()
		err := p.Flush(ctx)
		if err == nil {
			err = p.drain(ctx)
		}
		if errors.Is(err, ErrClosed) {
			err = nil // the client closed first: nothing more to report
		}
		p.closeErr = err
		p.abort(ErrClosed)
	})
	return p.closeErr
}

// drain ends the stream of every sink once it has nothing left to send, and
// waits until each broker has read its stream to the end.
func (p *Producer) drain(ctx context.Context) error {
	p.mu.Lock()
	p.draining = true
	sinks := make([]*sink, 0, len(p.sinks))
	for _, s := range p.sinks {
		sinks = append(sinks, s)
	}
	p.mu.Unlock()
	for _, s := range sinks {
		s.signal()
	}
	var errs []error
	p.mu.Lock()
	if p.unconfirmed != nil {
		errs = append(errs, p.unconfirmed)
	}
	p.mu.Unlock()
	for _, s := range sinks {
		select {
		case <-s.done:
		case <-ctx.Done():
			return fmt.Errorf("client: close: %w before %s confirmed it read everything sent", ctx.Err(), s.addr)
		case <-p.ctx.Done():
			return context.Cause(p.ctx)
		}
		p.mu.Lock()
		err := s.drainErr
		p.mu.Unlock()
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("client: close: %w", err)
	}
	return nil
}

// abort stops every goroutine of the producer, then fails whatever is left
// with err. It runs once; Client.Close calls it directly.
func (p *Producer) abort(err error) {
	p.mu.Lock()
	if p.abortErr != nil {
		p.mu.Unlock()
		p.wg.Wait()
		return
	}
	p.abortErr, p.closing = err, true
	close(p.spaceFreed)
	p.spaceFreed = make(chan struct{})
	p.mu.Unlock()

	p.cancel(err)
	p.wg.Wait()

	var done []completion
	p.mu.Lock()
	for _, ps := range p.parts {
		for _, q := range [][]*batch{ps.redo, ps.inflight, ps.ready} {
			for _, b := range q {
				done = append(done, completion{b: b, err: err, base: -1})
			}
		}
		if ps.open != nil {
			done = append(done, completion{b: ps.open, err: err, base: -1})
		}
		ps.redo, ps.inflight, ps.ready, ps.open = nil, nil, nil, nil
	}
	p.mu.Unlock()
	p.complete(done)
	p.c.unregister(p, nil)
}

func (p *Producer) usableLocked() error {
	if p.closing || p.abortErr != nil {
		return ErrClosed
	}
	return nil
}

// reserve takes n bytes of the buffer, waiting for space until ctx is done. A
// record is admitted into an empty buffer whatever its size, so one larger
// than the buffer cannot block forever.
// reserveAndLock reserves n bytes of the buffer, waiting while it is full,
// and returns with p.mu held; on error p.mu is not held.
func (p *Producer) reserveAndLock(ctx context.Context, n int64) error {
	p.mu.Lock()
	for {
		if err := p.usableLocked(); err != nil {
			p.mu.Unlock()
			return err
		}
		if p.bufUsed == 0 || p.bufUsed+n <= p.cfg.bufferBytes {
			p.bufUsed += n
			return nil
		}
		freed := p.spaceFreed
		p.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return ctx.Err()
		}
		p.mu.Lock()
	}
}

func (p *Producer) releaseLocked(n int64) {
	if n == 0 {
		return
	}
	p.bufUsed -= n
	close(p.spaceFreed)
	p.spaceFreed = make(chan struct{})
}

// complete runs the delivery callbacks of finished batches in order, then
// releases their buffer bytes (so Flush returns only after the callbacks).
func (p *Producer) complete(cs []completion) {
	if len(cs) == 0 {
		return
	}
	for _, c := range cs {
		for i, pr := range c.b.recs {
			if c.err == nil && c.base >= 0 {
				pr.r.Offset = c.base + int64(i)
			}
			if pr.cb != nil {
				pr.cb(pr.r, c.err)
			}
		}
	}
	p.mu.Lock()
	for _, c := range cs {
		p.releaseLocked(c.b.bytes)
		p.pending -= len(c.b.recs)
		if c.b.builder != nil {
			if !c.b.compressing { // else compress puts it back
				p.putBuilderLocked(c.b.builder)
			}
			c.b.builder = nil
		}
		p.putRecsLocked(c.b.recs)
		c.b.recs, c.b.data = nil, nil
	}
	if p.pending == 0 {
		close(p.idle)
		p.idle = make(chan struct{})
	}
	p.mu.Unlock()
}

// maxFreeBuilders bounds the builders kept for reuse: enough for the
// batches of a busy producer in flight at once.
const maxFreeBuilders = 256

func (p *Producer) getBuilderLocked() *wire.BatchBuilder {
	n := len(p.builders)
	if n == 0 {
		b := wire.NewBatchBuilder()
		b.Grow(min(p.cfg.maxBatchBytes, 64<<10))
		return b
	}
	b := p.builders[n-1]
	p.builders = p.builders[:n-1]
	b.Reset()
	return b
}

func (p *Producer) putBuilderLocked(b *wire.BatchBuilder) {
	// Oversized builders (a batch that grew past the limit with one large
	// record) are left to the GC.
	if len(p.builders) < maxFreeBuilders && b.Cap() <= 2*p.cfg.maxBatchBytes {
		p.builders = append(p.builders, b)
	}
}

// maxFreeRecs bounds the record lists kept for reuse, and maxRecsPerMiB the
// length of one relative to the batch size (a list of 100-byte records
// fills about half of that): together at most 16 MiB with 1 MiB batches.
const (
	maxFreeRecs   = 64
	maxRecsPerMiB = 16 << 10
)

// getRecsLocked returns an empty record list for a new batch.
func (p *Producer) getRecsLocked() []pendingRecord {
	n := len(p.freeRecs)
	if n == 0 {
		return nil
	}
	rs := p.freeRecs[n-1]
	p.freeRecs[n-1] = nil
	p.freeRecs = p.freeRecs[:n-1]
	return rs
}

// putRecsLocked keeps the list of a completed batch for reuse, dropping its
// records and callbacks so that they can be collected.
func (p *Producer) putRecsLocked(rs []pendingRecord) {
	if cap(rs) == 0 || len(p.freeRecs) >= maxFreeRecs || cap(rs) > max(64, int(int64(p.cfg.maxBatchBytes)*maxRecsPerMiB>>20)) {
		return
	}
	clear(rs)
	p.freeRecs = append(p.freeRecs, rs[:0])
}

// sealLocked closes ps's open batch to new records and queues it.
func (p *Producer) sealLocked(ps *partState) {
	ps.ready = append(ps.ready, ps.open)
	ps.open = nil
}

// attachLocked routes ps to the sink of addr, starting the sink if needed.
func (p *Producer) attachLocked(ps *partState, addr string) {
	s := p.sinks[addr]
	if s == nil {
		s = newSink(p, addr)
		p.sinks[addr] = s
		p.wg.Add(1)
		go s.run()
	}
	s.parts = append(s.parts, ps)
	ps.sink = s
	s.signal()
}

func (p *Producer) detachLocked(ps *partState) {
	s := ps.sink
	if s == nil {
		return
	}
	for i, q := range s.parts {
		if q == ps {
			s.parts = append(s.parts[:i], s.parts[i+1:]...)
			break
		}
	}
	ps.sink = nil
}

// startRecoveryLocked marks ps as recovering from err and, once it has
// nothing in flight, starts its recovery goroutine.
func (p *Producer) startRecoveryLocked(ps *partState, err error) {
	ps.recovering = true
	if err != nil {
		ps.lastErr = err
	}
	if ps.recoveryRunning || len(ps.inflight) > 0 || p.abortErr != nil {
		return
	}
	p.detachLocked(ps)
	ps.recoveryRunning = true
	p.wg.Add(1)
	go p.recover(ps)
}

// recover waits out the backoff, finds the partition's leader again and
// resumes sending there, redo batches first (to the leader a NOT_LEADER
// answer named, when it named one, else after a metadata refresh). Routing failures count as
// attempts of the first batch, so recovery ends after at most
// WithRetries+1 rounds per batch. Only a definite answer (the topic or
// partition is gone) fails the queued batches at once: a metadata request
// that timed out or could not reach a broker is one more failed attempt.
func (p *Producer) recover(ps *partState) {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		ps.failures++
		attempt := ps.failures
		p.mu.Unlock()
		if err := sleepCtx(p.ctx, backoff(attempt, p.cfg.backoffBase, p.cfg.backoffMax)); err != nil {
			return // aborted: abort fails the batches
		}
		p.mu.Lock()
		refresh := !ps.hinted
		ps.hinted = false
		p.mu.Unlock()
		ctx, cancel := context.WithTimeout(p.ctx, p.cfg.requestTimeout)
		addr, err := p.c.leaderAddr(ctx, ps.tp.topic, ps.tp.partition, refresh)
		cancel()
		if err == nil && p.c.isDown(addr) {
			// The metadata still names a leader that just gave no
			// answer (its broker died and no election has finished
			// yet, or the answer is stale): look again after the
			// backoff rather than wait out a dial.
			err = &wire.Error{Code: wire.ErrNotLeader, Message: "the leader named, " + addr + ", gave no answer recently"}
		}

		p.mu.Lock()
		if p.abortErr != nil {
			p.mu.Unlock()
			return
		}
		ps.ready = append(ps.redo, ps.ready...)
		ps.redo = nil
		var done []completion
		switch {
		case err == nil:
			done = p.dropExhaustedLocked(ps)
			p.resequenceLocked(ps)
			ps.recovering, ps.recoveryRunning = false, false
			if ps.hasWork() {
				p.attachLocked(ps, addr)
			}
			p.mu.Unlock()
			p.complete(done)
			return
		case definite(err):
			// The topic or partition is gone: nothing queued can succeed.
			err = recordError(ps, err)
			for _, b := range ps.ready {
				ps.seqHole = ps.seqHole || b.sequenced
				done = append(done, completion{b: b, err: err, base: -1})
			}
			if ps.open != nil {
				done = append(done, completion{b: ps.open, err: err, base: -1})
			}
			ps.ready, ps.open = nil, nil
			ps.recovering, ps.recoveryRunning, ps.failures = false, false, 0
			p.mu.Unlock()
			p.complete(done)
			return
		}
		ps.lastErr = fmt.Errorf("finding the leader: %w", err)
		p.c.log.Debug("produce recovery failed, retrying", "topic", ps.tp.topic, "partition", ps.tp.partition, "err", err)
		if len(ps.ready) == 0 && ps.open != nil {
			p.sealLocked(ps)
		}
		if len(ps.ready) > 0 {
			ps.ready[0].attempts++
		}
		done = p.dropExhaustedLocked(ps)
		if !ps.hasWork() {
			ps.recovering, ps.recoveryRunning = false, false
			p.mu.Unlock()
			p.complete(done)
			return
		}
		p.mu.Unlock()
		p.complete(done)
	}
}

// dropExhaustedLocked removes the ready batches that used up their retries.
func (p *Producer) dropExhaustedLocked(ps *partState) []completion {
	var done []completion
	kept := ps.ready[:0]
	for _, b := range ps.ready {
		if b.attempts > p.cfg.retries {
			if b.sequenced {
				ps.seqHole = true
			}
			err := fmt.Errorf("client: produce to %s/%d: gave up after %d attempts, the last: %w",
				ps.tp.topic, ps.tp.partition, b.attempts, ps.lastErr)
			done = append(done, completion{b: b, err: err, base: -1})
			continue
		}
		kept = append(kept, b)
	}
	clear(ps.ready[len(kept):])
	ps.ready = kept
	return done
}

// nextSequence is the sequence after a batch of count records from first;
// sequences wrap from math.MaxInt32 to 0, as brokers expect.
func nextSequence(first int32, count int) int32 {
	return int32((int64(first) + int64(count)) % (math.MaxInt32 + 1))
}

// sequenceLocked gives b, about to be sent for the first time, the next
// sequence of its partition. Sequences are given in send order, which is
// produce order.
func (p *Producer) sequenceLocked(ps *partState, b *batch) {
	if p.id < 0 || b.sequenced {
		return
	}
	b.sequenced, b.epoch, b.seq = true, ps.epoch, ps.nextSeq
	ps.nextSeq = nextSequence(b.seq, len(b.recs))
}

// resequenceLocked starts a new epoch of ps's sequences after a hole (a
// sequenced batch failed for good), when nothing is in flight: the
// batches waiting to be sent again were refused (or are retried
// duplicates, which a new epoch stores once more only if their first
// copy's answer was lost as well), and are rebuilt with sequences from 0
// under the new epoch, which brokers take as a fresh start.
func (p *Producer) resequenceLocked(ps *partState) {
	if !ps.seqHole || len(ps.inflight) > 0 {
		return
	}
	ps.seqHole = false
	ps.epoch = (ps.epoch + 1) & math.MaxInt16
	ps.nextSeq = 0
	renumbered := false
	for _, q := range [][]*batch{ps.redo, ps.ready} {
		for _, b := range q {
			if !b.sequenced || b.stored && !renumbered {
				// Stored under the old epoch, ahead of every batch
				// renumbered: sent again as it was, it is answered
				// with its offsets before the new epoch begins.
				continue
			}
			b.sequenced, b.stored, b.data = false, false, nil
			p.sequenceLocked(ps, b)
			renumbered = true
		}
	}
}

// recordError is the error a record of ps's gets for err.
func recordError(ps *partState, err error) error {
	return opError(fmt.Sprintf("produce to %s/%d", ps.tp.topic, ps.tp.partition), err)
}
