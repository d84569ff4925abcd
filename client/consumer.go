package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/rafka/rafka/quicnet"
	"github.com/rafka/rafka/wire"
)

// StartOffset says where consumption of a partition starts. The zero value
// is Earliest().
type StartOffset struct {
	kind   startKind
	offset int64
	time   time.Time
}

type startKind uint8

const (
	startEarliest startKind = iota
	startLatest
	startOffset
	startTime
)

// Earliest starts at the first record still in the log.
func Earliest() StartOffset { return StartOffset{kind: startEarliest} }

// Latest starts after the last record: only records produced from now on.
func Latest() StartOffset { return StartOffset{kind: startLatest} }

// AtOffset starts at offset n (n >= 0).
func AtOffset(n int64) StartOffset { return StartOffset{kind: startOffset, offset: n} }

// AtTime starts at the first record whose timestamp is at or after t (the
// log end when there is none).
func AtTime(t time.Time) StartOffset { return StartOffset{kind: startTime, time: t} }

// Assignment is one partition for a consumer to read.
type Assignment struct {
	Topic     string
	Partition int32
	Start     StartOffset
}

// Consumer reads assigned partitions through subscribe streams: each
// partition's leader pushes committed batches as they appear, within a byte
// credit the consumer grants back as the application polls (WithCreditBytes).
// A stream that breaks, or a partition whose leader moves, is subscribed
// again from the offset after the last record received. Poll and Assign may
// be called from different goroutines.
//
// Locking: Consumer.mu guards the consumer's fields and the fields of its
// partitions and subscriptions marked so; subscription.wmu serialises credit
// writes and is taken without Consumer.mu held. The client's metadata lock
// may be taken under Consumer.mu, never the reverse.
type Consumer struct {
	c   *Client
	cfg consumerConfig

	// ctx ends the consumer's goroutines; Close cancels it.
	ctx       context.Context
	cancel    context.CancelCauseFunc
	wg        sync.WaitGroup // subscription readers and resubscribers
	closeOnce sync.Once

	mu     sync.Mutex
	closed bool
	gen    uint64 // assignment generation; Assign bumps it
	parts  map[topicPartition]*consPart
	subs   map[*subscription]struct{} // streams whose reader runs
	queue  []*Batch                   // received, not yet polled, in arrival order; err set: an error in its place
	head   int                        // records of queue[0] already polled
	errs   []error                    // partition failures for Poll to report
	ready  chan struct{}              // closed and replaced when queue or errs grow
}

// consPart is one assigned partition; guarded by Consumer.mu.
type consPart struct {
	tp   topicPartition
	next int64 // offset of the next record to hand out, or wire.OffsetLatest/Earliest until resolved
	// fromTime, when set, drops records before the first one stamped at or
	// after it: a timestamp lookup resolves to the start of a batch.
	fromTime    time.Time
	hasFromTime bool
	sub         *subscription // nil while being subscribed (again) or paused
	failures    int           // consecutive subscription failures
	lastErr     error         // why the last subscription attempt failed
	// offline: the partition was reported offline (PARTITION_OFFLINE) and
	// not subscribed since. It is retried without giving up, and reported
	// to Poll once per outage.
	offline bool
	// hinted: a NOT_LEADER answer named the new leader and the metadata
	// cache holds it; the next attempt routes there without a refresh.
	hinted bool
}

// subscription is one subscribe stream to one broker.
type subscription struct {
	cs   *Consumer
	addr string
	gen  uint64
	corr uint32
	st   *quic.Stream
	slot *connSlot // released once the stream is stopped
	fr   *wire.FrameReader

	// Guarded by Consumer.mu.
	parts       map[topicPartition]*consPart
	dead        bool  // stopped: its data is dropped
	outstanding int64 // credit granted minus payload received
	buffered    int64 // payload received and not yet polled

	wmu sync.Mutex // serialises writes of credit frames
	fw  *wire.FrameWriter

	releaseOnce sync.Once
}

// NewConsumer returns a consumer with nothing assigned.
func (c *Client) NewConsumer(opts ...ConsumerOption) (*Consumer, error) {
	cfg := defaultConsumerConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cs := &Consumer{
		c:     c,
		cfg:   cfg,
		parts: make(map[topicPartition]*consPart),
		subs:  make(map[*subscription]struct{}),
		ready: make(chan struct{}),
	}
	cs.ctx, cs.cancel = context.WithCancelCause(c.ctx)
	if err := c.register(nil, cs); err != nil {
		cs.cancel(err)
		return nil, err
	}
	return cs, nil
}

// Assign replaces the consumer's assignment with as: records of partitions
// no longer assigned are dropped, even if already received but not polled.
// It resolves the start offsets and opens one subscribe stream per leader
// broker before returning. Partitions that fail for good (unknown topic or
// partition, offset out of range) are left out and reported in the error;
// the others stay assigned. An offline partition (ErrPartitionOffline) is
// reported in the error too but stays assigned: it is subscribed again, with
// fresh metadata and backoff up to WithResubscribeBackoff's maximum and
// without giving up, until it is back, and resumes where it stopped.
func (cs *Consumer) Assign(ctx context.Context, as ...Assignment) error {
	seen := make(map[topicPartition]bool, len(as))
	starts := make([]int64, len(as))
	for i, a := range as {
		tp := topicPartition{a.Topic, a.Partition}
		switch {
		case a.Topic == "" || a.Partition < 0:
			return fmt.Errorf("client: assign %s/%d: invalid partition", a.Topic, a.Partition)
		case seen[tp]:
			return fmt.Errorf("client: assign %s/%d: assigned twice", a.Topic, a.Partition)
		}
		seen[tp] = true
		switch a.Start.kind {
		case startEarliest:
			starts[i] = wire.OffsetEarliest
		case startLatest:
			starts[i] = wire.OffsetLatest
		case startOffset:
			if a.Start.offset < 0 {
				return fmt.Errorf("client: assign %s/%d: offset %d", a.Topic, a.Partition, a.Start.offset)
			}
			starts[i] = a.Start.offset
		case startTime:
			off, err := cs.c.ListOffset(ctx, a.Topic, a.Partition, a.Start.time.UnixMilli())
			if err != nil {
				return err
			}
			starts[i] = off
		}
	}

	cs.mu.Lock()
	if cs.closed {
		cs.mu.Unlock()
		return ErrClosed
	}
	cs.gen++
	gen := cs.gen
	old := cs.stopAllLocked()
	cs.parts = make(map[topicPartition]*consPart, len(as))
	cs.freeQueueLocked()
	cs.errs = nil
	parts := make([]*consPart, len(as))
	for i, a := range as {
		p := &consPart{tp: topicPartition{a.Topic, a.Partition}, next: starts[i]}
		if a.Start.kind == startTime {
			p.fromTime, p.hasFromTime = a.Start.time, true
		}
		cs.parts[p.tp] = p
		parts[i] = p
	}
	cs.mu.Unlock()
	for _, s := range old {
		s.stop()
	}

	var errs []error
	var later []*consPart
	groups := make(map[string][]*consPart)
	for _, p := range parts {
		addr, err := cs.c.leaderAddr(ctx, p.tp.topic, p.tp.partition, false)
		switch {
		case err == nil:
			groups[addr] = append(groups[addr], p)
		case retriable(err) && ctx.Err() == nil:
			later = append(later, p)
		case errors.Is(err, ErrPartitionOffline):
			cs.mu.Lock()
			p.offline, p.lastErr = true, err
			cs.mu.Unlock()
			later = append(later, p)
			errs = append(errs, fmt.Errorf("%s/%d: %w", p.tp.topic, p.tp.partition, err))
		default:
			cs.drop(p, nil)
			errs = append(errs, fmt.Errorf("%s/%d: %w", p.tp.topic, p.tp.partition, err))
		}
	}
	for addr, group := range groups {
		l, err := cs.open(ctx, gen, addr, group)
		later = append(later, l...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(later) > 0 {
		cs.mu.Lock()
		if cs.gen == gen {
			cs.resubscribeLocked(gen, later)
		}
		cs.mu.Unlock()
	}
	return opError("assign", errors.Join(errs...))
}

// stopAllLocked marks every subscription dead and returns them for stopping.
func (cs *Consumer) stopAllLocked() []*subscription {
	subs := make([]*subscription, 0, len(cs.subs))
	for s := range cs.subs {
		s.dead = true
		subs = append(subs, s)
	}
	for _, p := range cs.parts {
		p.sub = nil
	}
	return subs
}

// drop removes a partition from the assignment; err (if any) goes to Poll.
func (cs *Consumer) drop(p *consPart, err error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.dropLocked(p, err)
}

func (cs *Consumer) dropLocked(p *consPart, err error) {
	if cs.parts[p.tp] != p {
		return
	}
	delete(cs.parts, p.tp)
	if err != nil {
		cs.errs = append(cs.errs, err)
		cs.notifyLocked()
	}
}

func (cs *Consumer) notifyLocked() {
	close(cs.ready)
	cs.ready = make(chan struct{})
}

// open subscribes parts at addr and starts the stream's reader. It returns
// the partitions to try again later (retriable failures) and the errors of
// partitions dropped for good.
func (cs *Consumer) open(ctx context.Context, gen uint64, addr string, parts []*consPart) ([]*consPart, error) {
	cs.mu.Lock()
	offsets := make([]wire.SubscribePartition, len(parts))
	for i, p := range parts {
		offsets[i] = wire.SubscribePartition{Topic: p.tp.topic, Partition: p.tp.partition, Offset: p.next}
	}
	cs.mu.Unlock()
	s, results, err := cs.subscribe(ctx, addr, gen, offsets)
	if err != nil {
		if retriable(err) && cs.ctx.Err() == nil {
			cs.mu.Lock()
			for _, p := range parts {
				p.lastErr = err
			}
			cs.mu.Unlock()
			return parts, nil
		}
		for _, p := range parts {
			cs.drop(p, nil)
		}
		return nil, err
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.gen != gen || cs.closed {
		s.stop()
		return nil, nil
	}
	var later []*consPart
	var errs []error
	for i, p := range parts {
		if cs.parts[p.tp] != p {
			continue
		}
		r := &results[i]
		if err := r.Err(); err != nil {
			p.hinted = cs.c.meta.leaderHint(p.tp.topic, p.tp.partition, err)
			err = fmt.Errorf("subscribe %s/%d: %w", p.tp.topic, p.tp.partition, err)
			switch {
			case retriable(err):
				p.lastErr = err
				later = append(later, p)
			case errors.Is(err, ErrPartitionOffline):
				if !p.offline {
					errs = append(errs, err)
				}
				p.offline, p.lastErr = true, err
				later = append(later, p)
			default:
				cs.dropLocked(p, nil)
				errs = append(errs, err)
			}
			continue
		}
		if p.offline {
			p.offline, p.failures = false, 0
		}
		p.sub, p.next = s, r.Offset
		s.parts[p.tp] = p
	}
	if len(s.parts) == 0 {
		s.dead = true
		s.stop()
	} else {
		cs.subs[s] = struct{}{}
		cs.wg.Add(1)
		go s.readLoop()
	}
	return later, errors.Join(errs...)
}

// subscribe opens a stream to addr and runs the subscribe handshake.
func (cs *Consumer) subscribe(ctx context.Context, addr string, gen uint64, ps []wire.SubscribePartition) (*subscription, []wire.SubscribePartitionResult, error) {
	ctx, cancelCall := cs.c.callContext(ctx)
	defer cancelCall()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopClose := context.AfterFunc(cs.ctx, func() { cancel(ErrClosed) })
	defer stopClose()
	st, slot, err := cs.c.openStream(ctx, addr)
	if err != nil {
		return nil, nil, err
	}
	st.SetPriority(2, false) // credit frames ahead of bulk produce data
	s := &subscription{
		cs:          cs,
		addr:        addr,
		gen:         gen,
		corr:        cs.c.corr.Add(1),
		st:          st,
		slot:        slot,
		fr:          wire.NewFrameReader(st, cs.c.cfg.maxFrameBytes),
		fw:          wire.NewFrameWriter(st),
		parts:       make(map[topicPartition]*consPart, len(ps)),
		outstanding: cs.cfg.creditBytes,
	}
	stopCancel := context.AfterFunc(ctx, s.stop)
	defer stopCancel()
	fail := func(err error) (*subscription, []wire.SubscribePartitionResult, error) {
		s.stop()
		if c := context.Cause(ctx); c != nil {
			return nil, nil, c
		}
		return nil, nil, err
	}
	start := time.Now()
	failIO := func(op string, err error) (*subscription, []wire.SubscribePartitionResult, error) {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// No answer in time: the connection may be dead without
			// knowing it yet (a broker killed and restarted).
			cs.c.markSuspect(slot)
			err = &noAnswerError{what: "subscribe to " + addr, d: time.Since(start)}
			s.stop()
			return nil, nil, transport(err)
		}
		return fail(transport(fmt.Errorf("subscribe to %s: %s: %w", addr, op, err)))
	}
	req := &wire.SubscribeRequest{Partitions: ps, Credit: cs.cfg.creditBytes}
	if err := s.fw.WriteFrame(wire.FrameHeader{API: wire.APISubscribe, Version: wire.Version, Corr: s.corr}, req); err != nil {
		return failIO("write", err)
	}
	f, err := s.fr.Next()
	if err != nil {
		return failIO("read", err)
	}
	if f.API != wire.APISubscribe || f.Corr != s.corr {
		return fail(protocolErrorf("%s answered subscribe with api %d corr %d", addr, f.API, f.Corr))
	}
	var resp wire.SubscribeResponse
	if err := decodeAnswer(s.fr, &f, &resp); err != nil {
		return fail(fmt.Errorf("subscribe to %s: %w", addr, err))
	}
	if err := wire.AsError(resp.Error, resp.Message); err != nil {
		return fail(fmt.Errorf("subscribe to %s: %w", addr, err))
	}
	if len(resp.Partitions) != len(ps) {
		return fail(protocolErrorf("%s answered %d partitions of %d", addr, len(resp.Partitions), len(ps)))
	}
	return s, resp.Partitions, nil
}

// stop ends the stream; its reader then exits. It may be called more than
// once.
func (s *subscription) stop() {
	s.st.CancelRead(quicnet.StreamCodeDone)
	s.st.CancelWrite(quicnet.StreamCodeDone)
	s.releaseOnce.Do(func() { s.cs.c.release(s.slot) })
}

// resubscribeLocked starts a goroutine that subscribes parts again after a
// backoff.
func (cs *Consumer) resubscribeLocked(gen uint64, parts []*consPart) {
	if cs.closed || len(parts) == 0 {
		return
	}
	cs.wg.Add(1)
	go cs.resubscribe(gen, parts)
}

func (cs *Consumer) resubscribe(gen uint64, parts []*consPart) {
	defer cs.wg.Done()
	for len(parts) > 0 {
		cs.mu.Lock()
		attempt := 0
		kept := parts[:0]
		for _, p := range parts {
			if cs.gen != gen || cs.parts[p.tp] != p {
				continue
			}
			p.failures++
			if p.failures > cs.cfg.retries && !p.offline {
				last := p.lastErr
				if last == nil {
					last = &detailError{sentinel: ErrNoBrokers, msg: "no broker reachable"}
				}
				cs.dropLocked(p, fmt.Errorf("client: consume %s/%d: gave up after %d subscription failures, the last: %w",
					p.tp.topic, p.tp.partition, p.failures, last))
				continue
			}
			attempt = max(attempt, p.failures)
			kept = append(kept, p)
		}
		parts = kept
		cs.mu.Unlock()
		if len(parts) == 0 {
			return
		}
		if sleepCtx(cs.ctx, backoff(attempt, cs.cfg.backoffBase, cs.cfg.backoffMax)) != nil {
			return
		}
		ctx, cancel := context.WithTimeout(cs.ctx, cs.c.cfg.requestTimeout)
		var later []*consPart
		groups := make(map[string][]*consPart)
		for _, p := range parts {
			cs.mu.Lock()
			refresh := !p.hinted
			p.hinted = false
			cs.mu.Unlock()
			addr, err := cs.c.leaderAddr(ctx, p.tp.topic, p.tp.partition, refresh)
			switch {
			case err == nil:
				groups[addr] = append(groups[addr], p)
			case !definite(err):
				cs.mu.Lock()
				p.lastErr = fmt.Errorf("finding the leader: %w", err)
				cs.mu.Unlock()
				later = append(later, p)
			case errors.Is(err, ErrPartitionOffline):
				err = fmt.Errorf("client: consume %s/%d: %w", p.tp.topic, p.tp.partition, err)
				cs.mu.Lock()
				if cs.gen == gen && cs.parts[p.tp] == p && !p.offline {
					cs.errs = append(cs.errs, err)
					cs.notifyLocked()
				}
				p.offline, p.lastErr = true, err
				cs.mu.Unlock()
				later = append(later, p)
			default:
				cs.drop(p, fmt.Errorf("client: consume %s/%d: %w", p.tp.topic, p.tp.partition, err))
			}
		}
		for addr, group := range groups {
			l, err := cs.open(ctx, gen, addr, group)
			later = append(later, l...)
			if err != nil {
				cs.mu.Lock()
				cs.errs = append(cs.errs, opError("consume", err))
				cs.notifyLocked()
				cs.mu.Unlock()
			}
		}
		cancel()
		parts = later
	}
}

func (s *subscription) readLoop() {
	cs := s.cs
	defer cs.wg.Done()
	defer func() {
		s.stop()
		cs.mu.Lock()
		delete(cs.subs, s)
		cs.mu.Unlock()
	}()
	var (
		it  wire.RecordIter
		hdr wire.SubscribeData
	)
	for {
		f, err := s.fr.Next()
		if err != nil {
			s.failed(transport(fmt.Errorf("subscription at %s: %w", s.addr, err)))
			return
		}
		if f.API != wire.APISubscribeData {
			s.failed(protocolErrorf("%s sent api %d on a subscribe stream", s.addr, f.API))
			return
		}
		hdr = wire.SubscribeData{}
		if err := s.fr.DecodeHeader(&f, &hdr); err != nil {
			s.failed(fmt.Errorf("subscription at %s: %w", s.addr, err))
			return
		}
		tp := topicPartition{hdr.Topic, hdr.Partition}
		n := int64(len(f.Payload))
		cs.mu.Lock()
		s.outstanding -= n
		p := s.parts[tp]
		next := int64(0)
		if p != nil {
			next = p.next
		}
		dead := s.dead
		cs.mu.Unlock()
		if dead {
			return
		}
		if err := hdr.Err(); err != nil {
			s.partitionFailed(p, fmt.Errorf("client: consume %s/%d: %w", tp.topic, tp.partition, err))
			s.sendCredit()
			continue
		}
		var (
			b       *Batch
			corrupt *CorruptBatchError
		)
		if p != nil {
			// The records are indexed in place: the batch takes the
			// frame's pooled buffer, or a copy of a small frame.
			payload, buf := f.Payload, s.fr.TakeBuffer()
			if buf == nil {
				payload = bytes.Clone(payload)
			}
			b = newBatch(tp, s)
			b.buf, b.bytes = buf, n
			corrupt = decodeBatch(b, payload, next, &it)
		}
		cs.mu.Lock()
		current := p != nil && !s.dead && s.parts[tp] == p
		if b != nil && len(b.recs) > 0 && current {
			p.next = b.recs[len(b.recs)-1].Offset + 1
			p.failures = 0
			if p.hasFromTime {
				i := 0
				for i < len(b.recs) && b.recs[i].Timestamp.Before(p.fromTime) {
					i++
				}
				b.recs = b.recs[i:]
				p.hasFromTime = len(b.recs) == 0
			}
			if len(b.recs) > 0 {
				cs.queue = append(cs.queue, b)
				s.buffered += n
				cs.notifyLocked()
				b = nil
			}
		}
		if corrupt != nil && current {
			s.pauseCorruptLocked(p, corrupt)
		}
		dead = s.dead
		cs.mu.Unlock()
		if b != nil {
			b.free() // nothing of it queued
		}
		if dead {
			return
		}
		s.sendCredit()
	}
}

// pauseCorruptLocked stops delivering p, whose stream brought a batch that
// cannot be decoded: Poll returns err after the records before the batch,
// and the partition stays assigned, paused at the batch, until Seek. The
// data the broker still pushes for it is dropped (its credit returned).
func (s *subscription) pauseCorruptLocked(p *consPart, err *CorruptBatchError) {
	cs := s.cs
	cs.c.log.Warn("corrupt batch: partition paused", "topic", err.Topic, "partition", err.Partition,
		"offset", err.Offset, "broker", s.addr, "err", err.Err)
	delete(s.parts, p.tp)
	p.sub, p.next = nil, err.Offset
	cs.queue = append(cs.queue, &Batch{Topic: p.tp.topic, Partition: p.tp.partition, err: err})
	cs.notifyLocked()
	if len(s.parts) == 0 {
		s.dead = true
		s.stop()
	}
}

// creditLocked returns the credit to grant now, and counts it as granted:
// when the bytes the broker may still send plus those waiting to be polled
// fall below half the window, grant what brings them back to the window.
func (s *subscription) creditLocked() int64 {
	w := s.cs.cfg.creditBytes
	if s.dead || s.outstanding+s.buffered >= w/2 {
		return 0
	}
	g := w - s.outstanding - s.buffered
	s.outstanding += g
	return g
}

// sendCredit grants credit if due. A failed write is ignored here: the
// reader sees the stream fail.
func (s *subscription) sendCredit() {
	s.cs.mu.Lock()
	g := s.creditLocked()
	s.cs.mu.Unlock()
	if g == 0 {
		return
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	fh := wire.FrameHeader{API: wire.APISubscribeCredit, Version: wire.Version, Corr: s.corr}
	s.fw.WriteFrame(fh, &wire.SubscribeCredit{Bytes: g})
}

// partitionFailed handles a data frame carrying an error: the broker ended
// that partition's part of the stream.
func (s *subscription) partitionFailed(p *consPart, err error) {
	cs := s.cs
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if p == nil || s.dead || s.parts[p.tp] != p {
		return
	}
	delete(s.parts, p.tp)
	p.sub = nil
	p.hinted = cs.c.meta.leaderHint(p.tp.topic, p.tp.partition, err)
	switch {
	case retriable(err):
		p.lastErr = err
		cs.resubscribeLocked(s.gen, []*consPart{p})
	case errors.Is(err, ErrPartitionOffline):
		// Kept assigned: reported once, then subscribed again (with fresh
		// metadata) until its broker is back.
		p.offline, p.lastErr = true, err
		cs.errs = append(cs.errs, err)
		cs.notifyLocked()
		cs.resubscribeLocked(s.gen, []*consPart{p})
	default:
		cs.dropLocked(p, err)
	}
	if len(s.parts) == 0 {
		s.dead = true
		s.stop()
	}
}

// failed handles the end of the stream: its partitions are subscribed again.
func (s *subscription) failed(err error) {
	cs := s.cs
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if s.dead {
		return
	}
	s.dead = true
	s.stop()
	parts := make([]*consPart, 0, len(s.parts))
	for _, p := range s.parts {
		p.sub, p.lastErr = nil, err
		parts = append(parts, p)
	}
	s.parts = nil
	if cs.closed || cs.ctx.Err() != nil {
		return
	}
	cs.c.log.Debug("subscription ended", "broker", s.addr, "err", err)
	cs.resubscribeLocked(s.gen, parts)
}

const (
	// minRecordBytes is the smallest encoded record (six one-byte
	// varints): no payload of n bytes holds more than n/6 uncompressed
	// records, whatever its batch headers claim.
	minRecordBytes = 6
	// maxHeadersHint bounds the headers slice sized up front from a
	// record's header count; more headers grow it as they are decoded.
	maxHeadersHint = 16
)

// countRecords sums the record counts of the batches in b from their headers
// (unverified: it only sizes an allocation, and callers bound it by the
// payload's size; decoding checks everything).
func countRecords(b []byte) int {
	n := 0
	for len(b) >= wire.BatchHeaderSize {
		size := wire.PeekBatchSize(b)
		if size < wire.BatchHeaderSize || size > len(b) {
			break
		}
		if h, _, err := wire.ParseBatchHeader(b, size); err == nil {
			n += int(h.RecordCount)
		}
		b = b[size:]
	}
	return n
}

// Poll returns the next records, up to WithMaxPollRecords, in offset order
// per partition; it blocks until there are some or ctx is done. A partition
// that failed for good is reported once, as an error, and is no longer
// assigned; one that went offline is reported once per outage
// (ErrPartitionOffline) and stays assigned (see Assign). A batch that cannot be decoded is reported in its place, after
// the records before it, as a *CorruptBatchError (errors.Is ErrCorruptBatch);
// its partition stays assigned but paused until Seek moves it past the batch
// (to the error's Next) or back to it.
func (cs *Consumer) Poll(ctx context.Context) ([]*Record, error) {
	for {
		cs.mu.Lock()
		b, err, ok := cs.nextLocked()
		if ok {
			if err != nil || b == nil {
				cs.mu.Unlock()
				return nil, err
			}
			out, credit := cs.takeLocked()
			cs.mu.Unlock()
			for _, s := range credit {
				s.sendCredit()
			}
			return out, nil
		}
		ready := cs.ready
		cs.mu.Unlock()
		if err := cs.wait(ctx, ready); err != nil {
			return nil, err
		}
	}
}

// takeLocked removes up to maxPollRecords records from the queue and returns
// them, with the subscriptions whose buffered bytes went down. The records
// share their batch's buffer, which the batch then leaves to them (it is not
// pooled again).
func (cs *Consumer) takeLocked() ([]*Record, []*subscription) {
	limit := cs.cfg.maxPollRecords
	var out []*Record
	var credit []*subscription
	for len(cs.queue) > 0 && len(out) < limit && cs.queue[0].err == nil {
		b := cs.queue[0]
		k := min(len(b.recs)-cs.head, limit-len(out))
		b.buf = nil // the records share it from now on
		recs := toRecords(topicPartition{b.Topic, b.Partition}, b.recs[cs.head:cs.head+k])
		if out == nil {
			out = recs
		} else {
			out = append(out, recs...)
		}
		cs.head += k
		if cs.head == len(b.recs) {
			cs.queue[0] = nil
			cs.queue = cs.queue[1:]
			cs.head = 0
			b.sub.buffered -= b.bytes
			credit = append(credit, b.sub)
			b.free()
		}
	}
	return out, credit
}

// Seek makes the next records Poll returns for topic/partition start at
// offset: records of it received and not yet polled are dropped, and the
// partition is subscribed again from offset (its leader's log start or end
// when offset is out of range gives ErrOffsetOutOfRange, like Assign). It
// resumes a partition paused at a corrupt batch (see CorruptBatchError). A
// partition not assigned yet is added to the assignment; the others are
// left as they are.
func (cs *Consumer) Seek(ctx context.Context, topic string, partition int32, offset int64) error {
	op := fmt.Sprintf("seek %s/%d to %d", topic, partition, offset)
	if topic == "" || partition < 0 || offset < 0 {
		return opError(op, errors.New("invalid partition or offset"))
	}
	tp := topicPartition{topic, partition}
	var stop *subscription
	cs.mu.Lock()
	if cs.closed {
		cs.mu.Unlock()
		return ErrClosed
	}
	gen := cs.gen
	if old := cs.parts[tp]; old != nil && old.sub != nil {
		s := old.sub
		delete(s.parts, tp)
		if len(s.parts) == 0 {
			s.dead = true
			stop = s
		}
	}
	p := &consPart{tp: tp, next: offset}
	cs.parts[tp] = p
	credit := cs.dropQueuedLocked(tp)
	cs.mu.Unlock()
	if stop != nil {
		stop.stop()
	}
	for _, s := range credit {
		s.sendCredit()
	}

	addr, err := cs.c.leaderAddr(ctx, topic, partition, false)
	var later []*consPart
	switch {
	case err == nil:
		later, err = cs.open(ctx, gen, addr, []*consPart{p})
	case !definite(err) && ctx.Err() == nil:
		later, err = []*consPart{p}, nil
	case errors.Is(err, ErrPartitionOffline):
		cs.mu.Lock()
		p.offline, p.lastErr = true, err
		cs.mu.Unlock()
		later = []*consPart{p}
	default:
		cs.drop(p, nil)
	}
	if len(later) > 0 {
		cs.mu.Lock()
		if cs.gen == gen {
			cs.resubscribeLocked(gen, later)
		}
		cs.mu.Unlock()
	}
	return opError(op, err)
}

// dropQueuedLocked removes the queued records and errors of tp and returns
// the subscriptions whose buffered bytes went down.
func (cs *Consumer) dropQueuedLocked(tp topicPartition) []*subscription {
	var credit []*subscription
	kept := cs.queue[:0]
	for i, b := range cs.queue {
		if b.Topic != tp.topic || b.Partition != tp.partition {
			kept = append(kept, b)
			continue
		}
		if i == 0 {
			cs.head = 0
		}
		if b.sub != nil {
			b.sub.buffered -= b.bytes
			credit = append(credit, b.sub)
		}
		if b.err == nil {
			b.free()
		}
	}
	clear(cs.queue[len(kept):])
	cs.queue = kept
	return credit
}

// freeQueueLocked drops every queued batch; their subscriptions are stopped
// (dead) or about to be, so no credit is granted back.
func (cs *Consumer) freeQueueLocked() {
	for _, b := range cs.queue {
		if b.err == nil {
			b.free()
		}
	}
	clear(cs.queue)
	cs.queue, cs.head = nil, 0
}

// Close ends every subscription and waits for the consumer's goroutines. It
// is idempotent.
func (cs *Consumer) Close() error {
	cs.closeOnce.Do(func() {
		cs.mu.Lock()
		cs.closed = true
		cs.gen++
		subs := cs.stopAllLocked()
		cs.freeQueueLocked()
		cs.mu.Unlock()
		cs.cancel(ErrClosed)
		for _, s := range subs {
			s.stop()
		}
		cs.wg.Wait()
		cs.c.unregister(nil, cs)
	})
	return nil
}
