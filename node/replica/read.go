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
	r.Data = nil
}

// Read returns whole batches starting with the one holding offset, at most
// maxBytes (but at least one batch), never beyond the high watermark. At the
// high watermark it returns no data; beyond it, or before the log start,
// segment.ErrOffsetOutOfRange. Tail reads are served from the ring; a miss
// falls back to the segment.
func (p *Partition) Read(offset int64, maxBytes int) (ReadResult, error) {
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
			r := ReadResult{Data: out, buf: buf, Next: next}
			r.Data, r.Next = clip(r.Data, r.Next, hwm)
			return r, nil
		}
		putBuf(buf)
	}
	v, err := p.log.Read(offset, maxBytes)
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
