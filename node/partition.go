package node

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/rafka/rafka/hotstore"
	"github.com/rafka/rafka/segment"
	"github.com/rafka/rafka/wire"
)

// singleNodeTerm is the term stamped on batches while a partition has one
// replica: the first leader epoch. Replication replaces it with the raft term.
const singleNodeTerm = 1

// errPartitionClosed is returned by a partition whose topic was deleted or
// whose broker is stopping.
var errPartitionClosed = errors.New("node: partition closed")

// partition is one topic partition hosted by this broker: its log, its ring
// of recent batches and the readers waiting for new data.
//
// Lock order: appendMu, then waitMu.
type partition struct {
	topic string
	id    int32
	log   *segment.Log
	ring  *hotstore.Ring // nil when the hotstore budget is 0

	// appendMu serialises appends: the ring has a single writer and must see
	// batches in log order.
	appendMu sync.Mutex

	// hwm is the offset after the last record readers may see. With one
	// replica it is the log end after each append.
	hwm    atomic.Int64
	closed atomic.Bool

	waitMu  sync.Mutex
	waiters map[chan struct{}]struct{} // guarded by waitMu; each gets a non-blocking send per append

	// offline is why the partition's log could not be opened at start-up
	// (log and ring are nil then): requests for it get STORAGE_ERROR while
	// the rest of the broker serves.
	offline error
}

func offlinePartition(topic string, id int32, err error) *partition {
	return &partition{topic: topic, id: id, offline: err, waiters: make(map[chan struct{}]struct{})}
}

func openPartition(topic string, id int32, dir string, opts segment.Options, hotBytes int) (*partition, error) {
	l, err := segment.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("node: open partition %s/%d: %w", topic, id, err)
	}
	p := &partition{topic: topic, id: id, log: l, waiters: make(map[chan struct{}]struct{})}
	if hotBytes > 0 {
		p.ring = hotstore.New(hotBytes)
	}
	p.hwm.Store(l.NextOffset())
	return p, nil
}

// append stores one or more batches (stamping offsets and term in place) and
// publishes them to readers. It does not wait for fsync: the caller waits
// with log.WaitDurable(result.NextOffset) when its acks need it.
func (p *partition) append(batches []byte) (segment.AppendResult, error) {
	p.appendMu.Lock()
	if p.closed.Load() {
		p.appendMu.Unlock()
		return segment.AppendResult{}, errPartitionClosed
	}
	res, err := p.log.Append(batches, singleNodeTerm)
	if err != nil {
		p.appendMu.Unlock()
		return res, err
	}
	if p.ring != nil {
		// One ring entry per batch, so a tail read starts at the batch
		// holding its offset, not at the start of the request.
		for rest := batches; len(rest) > 0; {
			n := wire.PeekBatchSize(rest)
			h, _, err := wire.ParseBatchHeader(rest[:n], n)
			if err != nil {
				panic("BUG: stored batch does not parse: " + err.Error())
			}
			p.ring.Append(h.BaseOffset, h.NextOffset(), rest[:n])
			rest = rest[n:]
		}
	}
	p.hwm.Store(res.NextOffset)
	p.appendMu.Unlock()
	p.wake()
	return res, nil
}

func (p *partition) wake() {
	p.waitMu.Lock()
	for ch := range p.waiters {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	p.waitMu.Unlock()
}

// watch registers ch (capacity >= 1) to be signalled after every append and
// when the partition closes.
func (p *partition) watch(ch chan struct{}) {
	p.waitMu.Lock()
	p.waiters[ch] = struct{}{}
	p.waitMu.Unlock()
}

func (p *partition) unwatch(ch chan struct{}) {
	p.waitMu.Lock()
	delete(p.waiters, ch)
	p.waitMu.Unlock()
}

// readResult is data read from a partition: either bytes copied out of the
// ring into a pooled buffer, or a zero-copy view of a segment.
type readResult struct {
	data []byte
	view *segment.View
	buf  *[]byte
	next int64 // offset after the last batch in data
}

func (r *readResult) release() {
	if r.view != nil {
		r.view.Release()
		r.view = nil
	}
	if r.buf != nil {
		putBuf(r.buf)
		r.buf = nil
	}
	r.data = nil
}

// read returns whole batches starting with the one holding offset, at most
// maxBytes (but at least one batch), never beyond the high watermark. At the
// high watermark it returns no data. Tail reads are served from the ring;
// a miss falls back to the segment.
func (p *partition) read(offset int64, maxBytes int) (readResult, error) {
	if p.closed.Load() {
		return readResult{}, errPartitionClosed
	}
	hwm := p.hwm.Load()
	switch {
	case offset == hwm:
		return readResult{next: offset}, nil
	case offset > hwm:
		return readResult{}, fmt.Errorf("%w: offset %d beyond log end %d", segment.ErrOffsetOutOfRange, offset, hwm)
	}
	if p.ring != nil {
		buf := getBuf()
		out, next, ok := p.ring.Read(offset, maxBytes, (*buf)[:0])
		if ok {
			*buf = out
			r := readResult{data: out, buf: buf, next: next}
			r.data, r.next = clip(r.data, r.next, hwm)
			return r, nil
		}
		putBuf(buf)
	}
	v, err := p.log.Read(offset, maxBytes)
	if err != nil {
		return readResult{}, err
	}
	r := readResult{data: v.Bytes(), view: v, next: v.NextOffset()}
	r.data, r.next = clip(r.data, r.next, hwm)
	return r, nil
}

// clip cuts data (whole batches ending at offset next) before the first
// batch at or past hwm: an append racing the read may have stored batches
// that readers may not see yet.
func clip(data []byte, next, hwm int64) ([]byte, int64) {
	if next <= hwm {
		return data, next
	}
	for pos := 0; pos < len(data); pos += wire.PeekBatchSize(data[pos:]) {
		if base := wire.BaseOffset(data[pos:]); base >= hwm {
			return data[:pos], base
		}
	}
	return data, next
}

// close stops the partition: appends fail, waiters wake and see closed.
func (p *partition) close() error {
	if p.offline != nil {
		return nil
	}
	p.appendMu.Lock()
	p.closed.Store(true)
	err := p.log.Close()
	p.appendMu.Unlock()
	p.wake()
	return err
}

// errorCode maps a partition or log error onto the protocol's codes.
func errorCode(err error) wire.ErrorCode {
	switch {
	case err == nil:
		return wire.ErrNone
	case errors.Is(err, errPartitionClosed), errors.Is(err, segment.ErrClosed):
		return wire.ErrUnknownTopicOrPartition
	case errors.Is(err, segment.ErrOffsetOutOfRange):
		return wire.ErrOffsetOutOfRange
	case errors.Is(err, wire.ErrBatchTooLarge):
		return wire.ErrMessageTooLarge
	case errors.Is(err, wire.ErrCorruptBatch), errors.Is(err, wire.ErrShortBatch):
		return wire.ErrCorruptMessage
	case errors.Is(err, segment.ErrDiskFull), errors.Is(err, segment.ErrSyncFailed), errors.Is(err, segment.ErrCorrupt):
		return wire.ErrStorage
	}
	return wire.ErrUnknown
}

// Read buffers for ring copies, pooled by the writer goroutine that sends
// them.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// getBuf returns a pooled buffer; the ring's Read grows it to what it
// copies, so a tail read of a few KiB does not hold a buffer sized for the
// largest possible read.
func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > 4<<20 {
		return // do not pin oversized buffers
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}
