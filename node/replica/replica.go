package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/rafka/rafka/hotstore"
	"github.com/rafka/rafka/segment"
	"github.com/rafka/rafka/wire"
)

// Term is the term stamped on batches while a partition has one replica:
// the first leader epoch. Replication replaces it with the raft term.
const Term = 1

// Errors of a hosted partition. Log errors (package segment) pass through
// wrapped, so errors.Is with segment's sentinels works too.
var (
	// ErrClosed: the partition was closed (its topic deleted, or the broker
	// stopping).
	ErrClosed = errors.New("replica: partition closed")
	// ErrOffline: the partition's log could not be opened; the error wraps
	// the reason.
	ErrOffline = errors.New("replica: partition offline")
)

// Config describes one partition to open.
type Config struct {
	Topic     string
	Partition int32
	// Dir is the partition's log directory.
	Dir string
	// Log configures the segment log (see segment.Options).
	Log segment.Options
	// HotstoreBytes is the budget of the ring of recent batches; <= 0
	// disables the ring.
	HotstoreBytes int
	// LockFreeRing selects hotstore.LockFreeRing instead of hotstore.Ring.
	LockFreeRing bool
	// Logger receives the partition's storage state changes; nil discards.
	Logger *slog.Logger
	// MustExist refuses to open a partition whose directory is missing
	// instead of creating it empty: at start-up a missing directory means
	// lost data, and starting again at offset 0 would hide that and reuse
	// offsets consumers have seen.
	MustExist bool
}

// Partition is one topic partition hosted by this broker. See the package
// documentation for its contract. Its methods are safe for concurrent use.
//
// Lock order: appendMu, then waitMu.
type Partition struct {
	topic  string
	id     int32
	logger *slog.Logger

	// logp is the log (nil when offline); a replicated partition's storage
	// may replace it (ReplaceLog) when a snapshot resets it.
	logp atomic.Pointer[segment.Log]
	ring hotstore.Store // nil when the hotstore budget is <= 0 or offline

	// offline is why the log could not be opened (nil when it was).
	offline error
	// replicated: the log is written and owned by the partition's raft
	// storage (replicated.go).
	replicated bool

	// appendMu serialises appends: the ring has a single writer and must see
	// batches in log order.
	appendMu sync.Mutex
	spans    []segment.Span // scratch of one append; guarded by appendMu
	// producers is the idempotent producers' state of an unreplicated
	// partition (producers.go); guarded by appendMu. A replicated one
	// keeps its own in its Sequencer.
	producers *Producers

	// hwm is the offset after the last record readers may see. With one
	// replica it is the log end after each append.
	hwm    atomic.Int64
	closed atomic.Bool
	// storageErr is the storage failure (disk full, failed fsync) of the
	// latest append, nil once one succeeds.
	storageErr atomic.Pointer[error]

	waitMu  sync.Mutex
	waiters map[chan struct{}]struct{} // guarded by waitMu

	digests digestCache // digests of committed ranges in sealed segments (digest.go)
}

// Open opens (and recovers) the partition's log and starts with an empty
// ring.
func Open(cfg Config) (*Partition, error) {
	if err := CheckDir(cfg); err != nil {
		return nil, err
	}
	l, err := segment.Open(cfg.Dir, cfg.Log)
	if err != nil {
		return nil, fmt.Errorf("replica: open partition %s/%d: %w", cfg.Topic, cfg.Partition, err)
	}
	p := newPartition(cfg.Topic, cfg.Partition, cfg.Logger)
	p.logp.Store(l)
	p.producers = NewProducers(0)
	if err := p.producers.Rebuild(l, ProducerScanBytes); err != nil {
		l.Close()
		return nil, fmt.Errorf("replica: open partition %s/%d: %w", cfg.Topic, cfg.Partition, err)
	}
	switch {
	case cfg.HotstoreBytes <= 0:
	case cfg.LockFreeRing:
		p.ring = hotstore.NewLockFree(cfg.HotstoreBytes)
	default:
		p.ring = hotstore.New(cfg.HotstoreBytes)
	}
	p.hwm.Store(l.NextOffset())
	return p, nil
}

// Offline returns a partition that could not be opened, for reason: it
// answers every request with an error wrapping ErrOffline and reason.
func Offline(topic string, id int32, reason error) *Partition {
	if reason == nil {
		panic("BUG: replica: offline partition without a reason")
	}
	p := newPartition(topic, id, nil)
	p.offline = reason
	p.hwm.Store(-1)
	return p
}

func newPartition(topic string, id int32, logger *slog.Logger) *Partition {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Partition{topic: topic, id: id, logger: logger, waiters: make(map[chan struct{}]struct{})}
}

// Topic is the partition's topic name.
func (p *Partition) Topic() string { return p.topic }

// ID is the partition's number within its topic.
func (p *Partition) ID() int32 { return p.id }

// Offline is why the partition's log could not be opened, or nil when it is
// served.
func (p *Partition) Offline() error { return p.offline }

// unavailable is the error of an operation on an offline or closed
// partition, or nil.
func (p *Partition) unavailable() error {
	switch {
	case p.offline != nil:
		return fmt.Errorf("%w: %s/%d: %w", ErrOffline, p.topic, p.id, p.offline)
	case p.closed.Load():
		return ErrClosed
	}
	return nil
}

// AppendResult gives the offsets an append assigned.
type AppendResult struct {
	BaseOffset int64 // base offset of the first batch
	LastOffset int64 // last offset of the last batch
	NextOffset int64 // the log end after the append
}

// AckWaiter waits until an append may be acknowledged. The zero value is
// acknowledged at once. It is a value (no allocation per append) that names
// the partition and the log end the append reached.
type AckWaiter struct {
	p    *Partition // nil: nothing to wait for
	next int64
	rep  ReplicatedAck // a replicated append's (then p is nil)
}

// Wait returns nil once the append it was returned for may be acknowledged
// under the acks given to Append: today, once it is durable under the
// topic's fsync policy; with replication, once a quorum has committed it
// for acks=all. A failed fsync is returned (and stays: see
// segment.ErrSyncFailed) and marks the partition as storage failing. It
// returns early with ctx's cause.
func (w AckWaiter) Wait(ctx context.Context) error {
	if w.rep != nil {
		_, _, err := w.rep.WaitAck(ctx)
		return err
	}
	if w.p == nil {
		return nil
	}
	err := w.p.seg().WaitDurable(ctx, w.next)
	if err != nil {
		w.p.storageFailed(err)
	}
	return err
}

// Append stores one or more complete batches (stamping base offsets and the
// term in place), publishes them to readers and returns the offsets and the
// waiter for the ack that acks asks for (wire.AcksNone: a zero waiter). It
// does not wait: the caller calls Wait where it can block. Errors: ErrClosed,
// ErrOffline, and the log's (wire.ErrCorruptBatch, wire.ErrBatchTooLarge,
// segment.ErrDiskFull, segment.ErrSyncFailed, ...).
//
// Batches of idempotent producers are checked against the partition's
// producer state first (producers.go): batches stored before are not
// stored again (they must come first in the request) and the offsets
// returned are the ones they were stored at; a batch out of sequence
// refuses the whole request with a *wire.Error (OUT_OF_ORDER_SEQUENCE,
// DUPLICATE_SEQUENCE, INVALID_REQUEST).
func (p *Partition) Append(batches []byte, acks int8) (AppendResult, AckWaiter, error) {
	if p.replicated {
		panic("BUG: replica: Append on a replicated partition: batches go through its raft group")
	}
	p.appendMu.Lock()
	if err := p.unavailable(); err != nil {
		p.appendMu.Unlock()
		return AppendResult{}, AckWaiter{}, err
	}
	dups, dupRes, err := p.checkSequencesLocked(batches)
	if err != nil {
		p.appendMu.Unlock()
		return AppendResult{}, AckWaiter{}, err
	}
	if dups == len(batches) {
		// Every batch was stored before: answer with its offsets, once
		// they are durable as the first answer would have been.
		p.appendMu.Unlock()
		var w AckWaiter
		if acks != wire.AcksNone {
			w = AckWaiter{p: p, next: dupRes.NextOffset}
		}
		return dupRes, w, nil
	}
	fresh := batches[dups:]
	res, err := p.seg().AppendSpans(fresh, Term, p.spans)
	if err != nil {
		p.appendMu.Unlock()
		p.storageFailed(err)
		return AppendResult{}, AckWaiter{}, err
	}
	for _, sp := range res.Spans {
		b := fresh[sp.Start : sp.Start+sp.Len]
		if h, _, err := wire.ParseBatchHeader(b, len(b)); err == nil {
			p.producers.Record(&h, sp.BaseOffset, sp.NextOffset-1)
		}
	}
	if p.ring != nil {
		// One ring entry per batch, so a tail read starts at the batch
		// holding its offset, not at the start of the request.
		for _, sp := range res.Spans {
			p.ring.Append(sp.BaseOffset, sp.NextOffset, fresh[sp.Start:sp.Start+sp.Len])
		}
	}
	p.spans = res.Spans[:0]
	p.hwm.Store(res.NextOffset)
	p.appendMu.Unlock()
	p.storageOK()
	p.wake()
	var w AckWaiter
	if acks != wire.AcksNone {
		w = AckWaiter{p: p, next: res.NextOffset}
	}
	out := AppendResult{BaseOffset: res.BaseOffset, LastOffset: res.LastOffset, NextOffset: res.NextOffset}
	if dups > 0 {
		out.BaseOffset = dupRes.BaseOffset
	}
	return out, w, nil
}

// checkSequencesLocked checks the producer fields of the request's batches
// and returns the byte length of its leading duplicates (batches stored
// before) with their offsets (NextOffset: the offset after the last of
// them). A batch whose header cannot be read is left to the log's checks.
func (p *Partition) checkSequencesLocked(batches []byte) (int, AppendResult, error) {
	dupBytes, res := 0, AppendResult{BaseOffset: -1, LastOffset: -1}
	prefix := true
	// nexts: sequences expected next from producers with a batch earlier
	// in this request (a request may carry several batches of one).
	type expect struct {
		id   int64
		next int32
		seen bool // a batch of the producer came earlier in the request
	}
	var nextsBuf [4]expect
	nexts := nextsBuf[:0]
	for rest := batches; len(rest) > 0; {
		h, n, err := wire.ParseBatchHeader(rest, len(rest))
		if err != nil {
			return 0, AppendResult{BaseOffset: -1, LastOffset: -1}, nil // the log refuses it
		}
		rest = rest[n:]
		if h.ProducerID < 0 || h.IsControl() {
			prefix = false
			continue
		}
		seen := -1
		for i := range nexts {
			if nexts[i].id == h.ProducerID {
				seen = i
			}
		}
		if seen < 0 {
			nexts = append(nexts, expect{id: h.ProducerID})
			seen = len(nexts) - 1
		}
		c, cerr := p.producers.Check(&h)
		switch {
		case cerr == nil && c.Verdict == SeqDuplicate:
			if !prefix {
				return 0, res, &wire.Error{Code: wire.ErrInvalidRequest, Message: fmt.Sprintf(
					"producer %d: batch at sequence %d was stored before, after new batches in the same request", h.ProducerID, h.BaseSequence)}
			}
			if res.BaseOffset < 0 {
				res.BaseOffset = c.Base
			}
			res.LastOffset, res.NextOffset = c.Last, c.Last+1
			dupBytes += n
		case nexts[seen].seen:
			// Not the producer's first batch in the request: it must
			// follow the one before it.
			prefix = false
			if err := checkFields(&h); err != nil {
				return 0, res, err
			}
			if want := nexts[seen].next; h.BaseSequence != want {
				if seqAhead(h.BaseSequence, want) {
					return 0, res, outOfOrder(&h, want)
				}
				return 0, res, duplicateSeq(&h, want)
			}
		case cerr != nil:
			return 0, res, cerr
		default:
			prefix = false
		}
		nexts[seen].next, nexts[seen].seen = NextSequence(h.BaseSequence, h.RecordCount), true
	}
	return dupBytes, res, nil
}

// storageFailed records a failed append for StorageError when the disk
// caused it, logging the start of a failure episode (once, not per append).
func (p *Partition) storageFailed(err error) {
	if !errors.Is(err, segment.ErrDiskFull) && !errors.Is(err, segment.ErrSyncFailed) {
		return // a bad batch or a closed log says nothing about the disk
	}
	if old := p.storageErr.Swap(&err); old == nil {
		p.logger.Error("append failed: storage failing", "topic", p.topic, "partition", p.id, "err", err)
	}
}

// storageOK records a successful append, logging the end of a failure
// episode. It costs one atomic load when there was none (the hot path). A
// failed fsync is not cleared: the log refuses appends until it is reopened,
// and an append that succeeded just before the failure must not hide it.
func (p *Partition) storageOK() {
	cur := p.storageErr.Load()
	if cur == nil || errors.Is(*cur, segment.ErrSyncFailed) {
		return
	}
	if p.storageErr.CompareAndSwap(cur, nil) {
		p.logger.Info("appends succeed again", "topic", p.topic, "partition", p.id, "after", *cur)
	}
}

// StorageError is the disk-full or fsync error of the latest append, or nil
// when it succeeded (or none failed that way).
func (p *Partition) StorageError() error {
	if e := p.storageErr.Load(); e != nil {
		return *e
	}
	return nil
}

// HighWatermark is the offset after the last record readers may see; -1
// when offline.
func (p *Partition) HighWatermark() int64 { return p.hwm.Load() }

// LogStartOffset is the first offset the log holds; -1 when offline.
func (p *Partition) LogStartOffset() int64 {
	if p.seg() == nil {
		return -1
	}
	return p.seg().StartOffset()
}

// OffsetForTimestamp returns the offset of the first batch whose max
// timestamp is at or after tsMs, never beyond the high watermark.
func (p *Partition) OffsetForTimestamp(tsMs int64) (int64, error) {
	if err := p.unavailable(); err != nil {
		return 0, err
	}
	off, err := p.seg().OffsetForTimestamp(tsMs)
	if err != nil {
		return 0, err
	}
	return min(off, p.hwm.Load()), nil
}

// Closed reports whether the partition was closed.
func (p *Partition) Closed() bool { return p.closed.Load() }

// Watch registers ch (capacity >= 1) to get a non-blocking send after every
// append and when the partition closes.
func (p *Partition) Watch(ch chan struct{}) {
	p.waitMu.Lock()
	p.waiters[ch] = struct{}{}
	p.waitMu.Unlock()
}

// Unwatch removes ch registered by Watch.
func (p *Partition) Unwatch(ch chan struct{}) {
	p.waitMu.Lock()
	delete(p.waiters, ch)
	p.waitMu.Unlock()
}

// Watchers is how many channels are registered (readers waiting for data).
func (p *Partition) Watchers() int {
	p.waitMu.Lock()
	defer p.waitMu.Unlock()
	return len(p.waiters)
}

func (p *Partition) wake() {
	p.waitMu.Lock()
	for ch := range p.waiters {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	p.waitMu.Unlock()
}

// Stats describes the partition's log; every field is -1 when offline.
type Stats struct {
	LogStartOffset int64
	LogEndOffset   int64
	HighWatermark  int64
	SizeBytes      int64 // bytes of batches stored
	Segments       int
}

// Stats returns the partition's offsets and size.
func (p *Partition) Stats() Stats {
	if p.seg() == nil {
		return Stats{-1, -1, -1, -1, -1}
	}
	return Stats{
		LogStartOffset: p.seg().StartOffset(),
		LogEndOffset:   p.seg().NextOffset(),
		HighWatermark:  p.hwm.Load(),
		SizeBytes:      p.seg().Size(),
		Segments:       p.seg().Segments(),
	}
}

// RingStats returns the ring's hit and miss counts; ok is false without a
// ring.
func (p *Partition) RingStats() (st hotstore.Stats, ok bool) {
	if p.ring == nil {
		return hotstore.Stats{}, false
	}
	return p.ring.Stats(), true
}

// SetLogOptions applies changed topic settings to the open log.
func (p *Partition) SetLogOptions(o segment.Options) error {
	if err := p.unavailable(); err != nil {
		return err
	}
	return p.seg().SetOptions(o)
}

// EnforceRetention deletes the segments retention allows and returns how
// many. An offline partition has nothing to do.
func (p *Partition) EnforceRetention() (int, error) {
	if p.offline != nil {
		return 0, nil
	}
	return p.seg().EnforceRetention()
}

// Close stops the partition: appends fail with ErrClosed, watchers wake and
// see Closed, and the log is closed (fsynced). Idempotent; an offline
// partition has nothing to close.
func (p *Partition) Close() error {
	if p.offline != nil {
		return nil
	}
	p.appendMu.Lock()
	p.closed.Store(true)
	var err error
	if !p.replicated {
		err = p.seg().Close() // a replicated log is closed by its storage
	}
	p.appendMu.Unlock()
	p.wake()
	return err
}

// seg is the partition's log, nil when offline.
func (p *Partition) seg() *segment.Log { return p.logp.Load() }
