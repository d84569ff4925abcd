package replica

import (
	"fmt"
	"math"

	"github.com/rafka/rafka/segment"
	"github.com/rafka/rafka/wire"
)

// Idempotent producers (docs/replication.md, "Idempotent producers").
//
// A batch whose header names a producer (producer id >= 0) carries the
// producer's epoch and the sequence number of its first record: the count
// of records the producer sent to the partition before it. A partition
// remembers, per producer, its epoch and its last ProducerBatches batches
// (first sequence, record count, offsets), and checks every batch against
// them before storing it:
//
//   - the next sequence (the last batch's first sequence plus its count),
//     or sequence 0 from a producer it does not know or in a higher epoch:
//     stored;
//   - a batch it remembers (same first sequence and count): not stored
//     again, answered with the offsets it was stored at;
//   - a sequence beyond the next: OUT_OF_ORDER_SEQUENCE (retriable), as an
//     earlier batch is missing;
//   - a sequence before the remembered batches: DUPLICATE_SEQUENCE.
//
// The state is a function of the log: it is updated as batches are stored
// (with one replica) or as committed entries apply (replicated, on every
// replica), and rebuilt on open from the log's tail. It is bounded: at most
// MaxProducers producers per partition (the one whose last batch is oldest
// in the log is forgotten first) and ProducerBatches batches each. A
// forgotten producer is an unknown one: its next batch is refused
// (OUT_OF_ORDER_SEQUENCE) unless at sequence 0, and its client then starts
// a new epoch at 0, so a retry of a batch stored before the producer was
// forgotten is stored again.

// Bounds of a partition's producer state. They are not part of the
// protocol: a broker may remember more.
const (
	// MaxProducers is the number of producers a partition remembers. At
	// about 400 bytes each, a partition's producer state stays under
	// 400 KiB.
	MaxProducers = 1024
	// ProducerBatches is the number of a producer's latest batches a
	// partition remembers with their offsets: a retry of one of them is
	// answered with its offsets. A client keeps at most this many produce
	// requests in flight per partition for its retries to be recognised
	// (the Go client's MaxIdempotentInFlight).
	ProducerBatches = 8
	// ProducerScanBytes bounds the tail of the log read on open to rebuild
	// the producer state of an unreplicated partition: producers whose last
	// batch is older are forgotten by a restart.
	ProducerScanBytes = 16 << 20
)

// seqBatch is a remembered batch of a producer.
type seqBatch struct {
	first, count int32 // first sequence and record count
	base, last   int64 // offsets of its first and last record
}

// producerState is what a partition remembers of one producer.
type producerState struct {
	id      int64
	epoch   int16
	batches [ProducerBatches]seqBatch // a ring: n batches, the oldest at head
	n, head int
	// prev and next link the producers in the order of their last batch
	// in the log (Producers.oldest to Producers.newest).
	prev, next *producerState
}

func (s *producerState) latest() *seqBatch {
	return &s.batches[(s.head+s.n-1)%ProducerBatches]
}

// Producers is the producer state of one partition. It is not safe for
// concurrent use: its owner locks around it.
type Producers struct {
	max            int
	m              map[int64]*producerState
	oldest, newest *producerState
}

// NewProducers returns an empty state remembering at most max producers
// (MaxProducers when max <= 0).
func NewProducers(max int) *Producers {
	if max <= 0 {
		max = MaxProducers
	}
	return &Producers{max: max, m: make(map[int64]*producerState)}
}

// Len is the number of producers remembered.
func (ps *Producers) Len() int { return len(ps.m) }

// SeqVerdict is what a partition does with a batch given its producer state.
type SeqVerdict uint8

const (
	// SeqStore: store the batch (no producer id, the next sequence, or a
	// producer not remembered).
	SeqStore SeqVerdict = iota
	// SeqDuplicate: the batch was stored before; do not store it again.
	SeqDuplicate
)

// SeqCheck is the result of checking a batch against producer state: a
// verdict and, for a duplicate, the offsets of its first and last record.
type SeqCheck struct {
	Verdict    SeqVerdict
	Base, Last int64
}

// NextSequence is the sequence following a batch of count records whose
// first sequence is first: sequences wrap from math.MaxInt32 to 0.
func NextSequence(first, count int32) int32 {
	return int32((int64(first) + int64(count)) % (math.MaxInt32 + 1))
}

// seqAhead reports whether sequence a lies after b (within half the
// sequence space).
func seqAhead(a, b int32) bool {
	d := (int64(a) - int64(b) + math.MaxInt32 + 1) % (math.MaxInt32 + 1)
	return d > 0 && d < 1<<30
}

// outOfOrder and duplicateSeq are the errors of a batch a producer's state
// refuses.
func outOfOrder(h *wire.BatchHeader, next int32) error {
	return &wire.Error{Code: wire.ErrOutOfOrderSequence, Message: fmt.Sprintf(
		"producer %d: batch at sequence %d, expected %d: an earlier batch is missing", h.ProducerID, h.BaseSequence, next)}
}

func duplicateSeq(h *wire.BatchHeader, next int32) error {
	return &wire.Error{Code: wire.ErrDuplicateSequence, Message: fmt.Sprintf(
		"producer %d: batch at sequence %d is older than the batches remembered (next expected %d)", h.ProducerID, h.BaseSequence, next)}
}

// checkFields refuses producer fields that cannot be right: a producer
// id with a negative sequence or epoch, or a batch without records.
func checkFields(h *wire.BatchHeader) error {
	if h.BaseSequence < 0 || h.ProducerEpoch < 0 || h.RecordCount <= 0 {
		return &wire.Error{Code: wire.ErrInvalidRequest, Message: fmt.Sprintf(
			"producer %d: batch with epoch %d, sequence %d and %d records", h.ProducerID, h.ProducerEpoch, h.BaseSequence, h.RecordCount)}
	}
	return nil
}

// Check says what to do with batch h. A batch without a producer id is
// always stored. Errors are *wire.Error with OUT_OF_ORDER_SEQUENCE,
// DUPLICATE_SEQUENCE or INVALID_REQUEST (impossible fields, an epoch older
// than the producer's).
func (ps *Producers) Check(h *wire.BatchHeader) (SeqCheck, error) {
	if h.ProducerID < 0 || h.IsControl() {
		return SeqCheck{}, nil
	}
	if err := checkFields(h); err != nil {
		return SeqCheck{}, err
	}
	s := ps.m[h.ProducerID]
	if s == nil || h.ProducerEpoch > s.epoch {
		// Unknown, or a new epoch: a fresh start, which begins at
		// sequence 0. Anything else follows a batch this partition did
		// not store (refused, or in flight elsewhere): storing it would
		// leave a hole before it.
		if h.BaseSequence != 0 {
			return SeqCheck{}, outOfOrder(h, 0)
		}
		return SeqCheck{}, nil
	}
	if h.ProducerEpoch < s.epoch {
		return SeqCheck{}, &wire.Error{Code: wire.ErrInvalidRequest, Message: fmt.Sprintf(
			"producer %d: epoch %d is older than the partition's %d", h.ProducerID, h.ProducerEpoch, s.epoch)}
	}
	for i := range s.n {
		b := &s.batches[(s.head+i)%ProducerBatches]
		if b.first == h.BaseSequence && b.count == h.RecordCount {
			return SeqCheck{Verdict: SeqDuplicate, Base: b.base, Last: b.last}, nil
		}
	}
	l := s.latest()
	next := NextSequence(l.first, l.count)
	switch {
	case h.BaseSequence == next:
		return SeqCheck{}, nil
	case seqAhead(h.BaseSequence, next):
		return SeqCheck{}, outOfOrder(h, next)
	}
	return SeqCheck{}, duplicateSeq(h, next)
}

// Record adds batch h, stored at offsets [base, last], to its producer's
// state. It is called in log order for every batch stored (whatever Check
// said of it: the state follows the log). Batches without a producer id
// are ignored.
func (ps *Producers) Record(h *wire.BatchHeader, base, last int64) {
	if h.ProducerID < 0 || h.IsControl() || h.RecordCount <= 0 {
		return
	}
	s := ps.m[h.ProducerID]
	switch {
	case s == nil:
		if len(ps.m) >= ps.max {
			ps.evict()
		}
		s = &producerState{id: h.ProducerID, epoch: h.ProducerEpoch}
		ps.m[s.id] = s
	case h.ProducerEpoch != s.epoch:
		s.epoch, s.n, s.head = h.ProducerEpoch, 0, 0
		ps.unlink(s)
	default:
		ps.unlink(s)
	}
	ps.pushNewest(s)
	b := seqBatch{first: h.BaseSequence, count: h.RecordCount, base: base, last: last}
	if s.n < ProducerBatches {
		s.batches[(s.head+s.n)%ProducerBatches] = b
		s.n++
		return
	}
	s.batches[s.head] = b
	s.head = (s.head + 1) % ProducerBatches
}

// Reset forgets every producer (the log was replaced).
func (ps *Producers) Reset() {
	clear(ps.m)
	ps.oldest, ps.newest = nil, nil
}

// evict forgets the producer whose last batch is the oldest.
func (ps *Producers) evict() {
	s := ps.oldest
	if s == nil {
		return
	}
	ps.unlink(s)
	delete(ps.m, s.id)
}

func (ps *Producers) unlink(s *producerState) {
	if s.prev != nil {
		s.prev.next = s.next
	} else if ps.oldest == s {
		ps.oldest = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else if ps.newest == s {
		ps.newest = s.prev
	}
	s.prev, s.next = nil, nil
}

func (ps *Producers) pushNewest(s *producerState) {
	s.prev = ps.newest
	if ps.newest != nil {
		ps.newest.next = s
	} else {
		ps.oldest = s
	}
	ps.newest = s
}

// RecordBatches records every batch of data (whole stored batches, base
// offsets set) in order.
func (ps *Producers) RecordBatches(data []byte) error {
	for len(data) > 0 {
		h, n, err := wire.ParseBatchHeader(data, math.MaxInt32)
		if err != nil {
			return err
		}
		ps.Record(&h, h.BaseOffset, h.LastOffset())
		data = data[n:]
	}
	return nil
}

// Rebuild replaces the state with the one the tail of l gives: its batches
// from about maxBytes before its end (at least its last batch). It reads
// the log through its verified reads; the start is estimated from the
// log's average batch density and moved forward when the tail turns out
// denser, so no more than about 2*maxBytes are read.
func (ps *Producers) Rebuild(l *segment.Log, maxBytes int64) error {
	ps.Reset()
	start, end := l.StartOffset(), l.NextOffset()
	if end <= start {
		return nil
	}
	from := start
	if size := l.Size(); size > maxBytes && size > 0 {
		from = end - int64(float64(end-start)*float64(maxBytes)/float64(size))
		from = min(max(from, start), end-1)
	}
	for {
		read, done, err := ps.scan(l, from, end, 2*maxBytes)
		if err != nil || done {
			return err
		}
		// Denser than estimated: start halfway between where the scan
		// stopped and the end.
		ps.Reset()
		from = read + (end-read)/2
		if from >= end-1 {
			from = end - 1
		}
	}
}

// scan records the batches from offset from to end, giving up (done
// false) after budget bytes, returning where it stopped.
func (ps *Producers) scan(l *segment.Log, from, end, budget int64) (stopped int64, done bool, err error) {
	off := from
	var read int64
	for off < end {
		if read > budget && from < end-1 {
			return off, false, nil
		}
		v, err := l.Read(off, 1<<20)
		if err != nil {
			return off, false, fmt.Errorf("replica: rebuilding producer state at offset %d: %w", off, err)
		}
		b := v.Bytes()
		next := v.NextOffset()
		err = ps.RecordBatches(b)
		read += int64(len(b))
		v.Release()
		if err != nil {
			return off, false, fmt.Errorf("replica: rebuilding producer state at offset %d: %w", off, err)
		}
		if next <= off {
			break
		}
		off = next
	}
	return off, true, nil
}
