package replica

import (
	"fmt"
	"sync"

	"github.com/rafka/rafka/segment"
	"github.com/rafka/rafka/wire"
)

// ReadResult is data read from a partition: whole batches, either copied out
// of the ring into a pooled buffer or a zero-copy view of a segment. Data is
// valid until Release.
type ReadResult struct {
	Data []byte
	Next int64 // offset after the last batch in Data: where to read next
	view *segment.View
	buf  *[]byte

	budget  Budget // charged for buf's bytes, when set
	charged int
}

// Budget is charged for the heap a read copies out of the ring until the
// result is released (wire.FrameBudget has this shape). Acquire must not
// block; when it refuses, the read is served from the segment instead,
// without a copy.
type Budget interface {
	Acquire(n int) error
	Release(n int)
}

// Release returns the buffer or view behind Data; idempotent.
func (r *ReadResult) Release() {
	if r.view != nil {
		r.view.Release()
		r.view = nil
	}
	if r.buf != nil {
		putBuf(r.buf)
		r.buf = nil
	}
	if r.budget != nil {
		r.budget.Release(r.charged)
		r.budget, r.charged = nil, 0
	}
	r.Data = nil
}

// Read returns whole batches starting with the one holding offset, at most
// maxBytes (but at least one batch), never beyond the high watermark. At the
// high watermark it returns no data; beyond it, or before the log start,
// segment.ErrOffsetOutOfRange. Tail reads are served from the ring; a miss
// falls back to the segment.
func (p *Partition) Read(offset int64, maxBytes int) (ReadResult, error) {
	return p.ReadCharged(offset, maxBytes, nil)
}

// ReadCharged is Read with the bytes copied out of the ring charged to
// budget until the result is released. A reader that does not consume what
// it asked for (a client that stops reading its responses) can thus hold no
// more heap than its budget allows: past it, reads are zero-copy views of
// the segment, which the page cache backs.
func (p *Partition) ReadCharged(offset int64, maxBytes int, budget Budget) (ReadResult, error) {
	return p.read(offset, maxBytes, budget, true)
}

// ReadChargedUnverified is ReadCharged for a reader that verifies every
// batch's checksum itself and reports a damaged one (a subscribe stream to
// a client): batches read from the segment are not checksummed again here
// (segment.Log.ReadUnverified). Batches from the ring are the bytes the
// leader verified when it appended them.
func (p *Partition) ReadChargedUnverified(offset int64, maxBytes int, budget Budget) (ReadResult, error) {
	return p.read(offset, maxBytes, budget, false)
}

func (p *Partition) read(offset int64, maxBytes int, budget Budget, checksum bool) (ReadResult, error) {
	if err := p.unavailable(); err != nil {
		return ReadResult{}, err
	}
	hwm := p.hwm.Load()
	switch {
	case offset == hwm:
		return ReadResult{Next: offset}, nil
	case offset > hwm:
		return ReadResult{}, fmt.Errorf("%w: offset %d beyond log end %d", segment.ErrOffsetOutOfRange, offset, hwm)
	}
	if p.ring != nil {
		buf := getBuf()
		out, next, ok := p.ring.Read(offset, maxBytes, (*buf)[:0])
		if ok {
			*buf = out
			if budget == nil || budget.Acquire(len(out)) == nil {
				r := ReadResult{Data: out, buf: buf, Next: next}
				if budget != nil {
					r.budget, r.charged = budget, len(out)
				}
				r.Data, r.Next = clip(r.Data, r.Next, hwm)
				return r, nil
			}
			// Over budget: drop the copy and serve a view of the segment.
		}
		putBuf(buf)
	}
	var (
		v   *segment.View
		err error
	)
	if checksum {
		v, err = p.seg().Read(offset, maxBytes)
	} else {
		v, err = p.seg().ReadUnverified(offset, maxBytes)
	}
	if err != nil {
		return ReadResult{}, err
	}
	r := ReadResult{Data: v.Bytes(), view: v, Next: v.NextOffset()}
	r.Data, r.Next = clip(r.Data, r.Next, hwm)
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

// Read buffers for ring copies, pooled; released by whoever sends them.
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
