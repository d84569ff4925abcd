package client

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rafka/rafka/wire"
)

// RecordHeaders are a consumed record's headers, read in place: Len counts
// them and All yields each key and value, without allocating.
type RecordHeaders = wire.RecordHeaders

// RecordView is one record of a Batch, read in place: Key, Value and the
// header values point into the batch's buffer and are valid only until the
// batch is released. Copy what must outlive it.
type RecordView struct {
	Offset    int64
	Timestamp time.Time
	Key       []byte // nil: no key
	Value     []byte
	Headers   RecordHeaders
}

// Batch is records of one partition received together (one push of its
// leader: one or more stored batches, up to about 1 MiB), in offset order,
// as PollBatch returns them. Its records are decoded and checked once, when
// they arrive, into a reusable index; reading them allocates nothing and
// copies nothing.
//
// A batch holds its bytes until Release, and they count against the
// subscription's credit (WithCreditBytes) until then: a consumer that keeps
// batches unreleased stops receiving once it holds a credit window of them.
// After Release the batch, its records and their bytes must not be used.
type Batch struct {
	Topic     string
	Partition int32

	recs  []RecordView // the records not yet handed out (a window of store)
	store []RecordView // pooled index; its entries point into buf (or lz4 scratch)
	buf   *[]byte      // pooled frame buffer the records point into, or nil
	sub   *subscription
	bytes int64 // the frame's payload size, granted back as credit once done with
	err   error // a *CorruptBatchError in the queue: recs is empty
}

// Len is the number of records.
func (b *Batch) Len() int { return len(b.recs) }

// Records returns the records, valid until Release.
func (b *Batch) Records() []RecordView { return b.recs }

// Release gives the batch's buffer back and grants its bytes back to the
// broker as credit. Call it once per batch, when done with its records.
func (b *Batch) Release() {
	if s := b.sub; s != nil {
		cs := s.cs
		cs.mu.Lock()
		s.buffered -= b.bytes
		cs.mu.Unlock()
		s.sendCredit()
	}
	b.free()
}

// free returns the batch to its pool, and its buffer, unless records Poll
// returned share it (buf nil), to the frame buffer pool.
func (b *Batch) free() {
	if b.buf != nil {
		wire.PutFrameBuffer(b.buf)
	}
	clear(b.store)
	if cap(b.store) > maxPooledIndex {
		b.store = nil
	}
	*b = Batch{store: b.store[:0]}
	batchPool.Put(b)
}

// maxPooledIndex bounds the index a pooled Batch keeps (entries): a frame of
// tiny records indexes many, and the pool should not pin that for good.
const maxPooledIndex = 1 << 15

var batchPool = sync.Pool{New: func() any { return new(Batch) }}

func newBatch(tp topicPartition, s *subscription) *Batch {
	b := batchPool.Get().(*Batch)
	b.Topic, b.Partition, b.sub = tp.topic, tp.partition, s
	return b
}

// PollBatch returns the next batch of records of one partition, blocking
// until there is one or ctx is done. Batches come in offset order per
// partition; the caller releases each (Release) once done with its records.
// It reports errors like Poll: a partition failed for good or gone offline,
// a *CorruptBatchError in the place of the batch that cannot be decoded.
// Poll and PollBatch may be mixed; a batch Poll had started on is returned
// from its first record Poll has not returned.
func (cs *Consumer) PollBatch(ctx context.Context) (*Batch, error) {
	for {
		cs.mu.Lock()
		b, err, ok := cs.nextLocked()
		if ok {
			if b != nil {
				if cs.head > 0 {
					b.recs = b.recs[cs.head:]
				}
				cs.queue[0] = nil
				cs.queue = cs.queue[1:]
				cs.head = 0
			}
			cs.mu.Unlock()
			return b, err
		}
		ready := cs.ready
		cs.mu.Unlock()
		if err := cs.wait(ctx, ready); err != nil {
			return nil, err
		}
	}
}

// nextLocked returns the batch at the head of the queue (left there) or
// the error to report now, with ok; ok is false when there is nothing yet.
func (cs *Consumer) nextLocked() (*Batch, error, bool) {
	switch {
	case cs.closed:
		return nil, ErrClosed, true
	case len(cs.errs) > 0:
		err := errors.Join(cs.errs...)
		cs.errs = nil
		return nil, err, true
	case len(cs.queue) == 0:
		return nil, nil, false
	}
	b := cs.queue[0]
	if b.err != nil {
		cs.queue[0] = nil
		cs.queue = cs.queue[1:]
		return nil, b.err, true
	}
	return b, nil, true
}

// wait blocks until ready is closed, ctx is done or the consumer closed.
func (cs *Consumer) wait(ctx context.Context, ready <-chan struct{}) error {
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-cs.ctx.Done():
		return ErrClosed
	}
}

// decodeBatch indexes into b the records of a data frame's stored batches at
// or after next, skipping control batches. The index points into payload
// (and, for compressed batches, into buffers of their own): payload must
// stay untouched while b is in use.
//
// Each batch's checksum is verified once, and its records checked as they
// are indexed. A batch that cannot be decoded ends the decoding: the records
// of the batches before it stay in b, and a *CorruptBatchError names it. No
// count read from the payload sizes an allocation before the bytes behind it
// have been checked.
func decodeBatch(b *Batch, payload []byte, next int64, it *wire.RecordIter) *CorruptBatchError {
	tp := topicPartition{b.Topic, b.Partition}
	if want := min(countRecords(payload), len(payload)/minRecordBytes); cap(b.store) < want {
		b.store = make([]RecordView, 0, want)
	}
	recs := b.store[:0]
	defer func() { b.store, b.recs = recs, recs }()
	// at is the first offset not delivered: after the last good batch.
	at := next
	corrupt := func(h wire.BatchHeader, headerOK bool, err error) *CorruptBatchError {
		// Where to resume: after the batch as its header says (a
		// corrupt batch may get that wrong), and at least one offset on.
		skip := at + 1
		if headerOK && h.NextOffset() > at {
			skip = h.NextOffset()
		}
		return &CorruptBatchError{Topic: tp.topic, Partition: tp.partition, Offset: at, Next: skip, Err: err}
	}
	var wr wire.Record
	for rest := payload; len(rest) > 0; {
		h, size, err := wire.ParseBatchHeader(rest, len(rest))
		if err != nil {
			return corrupt(h, false, err)
		}
		batch := rest[:size:size]
		rest = rest[size:]
		if h.IsControl() || h.LastOffset() < next {
			// Not handed out, but checked all the same: a damaged
			// batch is reported wherever it is.
			if _, _, err := wire.VerifyBatchChecksum(batch, size); err != nil {
				return corrupt(h, true, err)
			}
			at = max(at, h.NextOffset())
			continue
		}
		// Reset verifies the checksum; the iterator checks the records as
		// it decodes them, so the good ones before a bad one are delivered.
		if err := it.Reset(batch); err != nil {
			return corrupt(h, true, err)
		}
		first := len(recs)
		for it.Next(&wr) {
			if wr.Offset < next {
				continue
			}
			recs = append(recs, RecordView{
				Offset:    wr.Offset,
				Timestamp: time.UnixMilli(wr.Timestamp),
				Key:       wr.Key,
				Value:     wr.Value,
				Headers:   wr.Headers,
			})
		}
		if err := it.Err(); err != nil {
			// All of the batch or none of it.
			clear(recs[first:])
			recs = recs[:first]
			return corrupt(h, true, err)
		}
		if h.Codec() != wire.CodecNone {
			// The records point into the iterator's decompression
			// buffer: it goes with them.
			it.DetachScratch()
		}
		at = max(at, h.NextOffset())
	}
	return nil
}

// toRecords returns recs as Records of tp, which share recs' buffers.
func toRecords(tp topicPartition, recs []RecordView) []*Record {
	rs := make([]Record, len(recs))
	out := make([]*Record, len(recs))
	for i := range recs {
		v := &recs[i]
		r := &rs[i]
		*r = Record{Topic: tp.topic, Partition: tp.partition, Key: v.Key, Value: v.Value, Timestamp: v.Timestamp, Offset: v.Offset}
		if n := v.Headers.Len(); n > 0 {
			r.Headers = make([]Header, 0, min(n, maxHeadersHint))
			for k, hv := range v.Headers.All() {
				r.Headers = append(r.Headers, Header{Key: string(k), Value: hv})
			}
		}
		out[i] = r
	}
	return out
}
