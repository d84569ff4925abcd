package hotstore

// This file holds the chunk of a LockFreeRing: a block of entries written
// once, published with an atomic count, and pinned by readers.

import "sync/atomic"

// chunk is one block of the ring's memory. The writer appends entries to it
// back to back and publishes each with n.Store. See doc.go for how readers
// and the writer share it.
//
// Fields a reader may load at any time, even while the writer recycles the
// chunk, are atomics: seq, base, gen, pins. A reader that loaded base or gen
// confirms them by loading seq afterwards (recycling stores seq first).
// Everything else is read only while pinned: n, and the published parts of
// ents and data.
type chunk struct {
	seq  atomic.Uint64 // position in the ring's chunk sequence; the chunk sits in slots[seq&mask]
	base atomic.Int64  // baseOffset of the first entry
	gen  atomic.Uint64 // the ring's generation when the chunk was (re)started
	n    atomic.Int64  // published entries: ents[:n] and data[:ents[n-1].end] are immutable

	data []byte // entry bytes back to back; len == capacity; never resized
	ents []ent  // one slot per entry; len == capacity; never resized
	used int    // writer only: bytes of data in use

	_    [64]byte     // keep pins off the line the writer stores n on
	pins atomic.Int64 // readers currently reading data or ents
}

// ent indexes one entry of a chunk. Entry i covers offsets
// [ents[i-1].next, ents[i].next) and bytes data[ents[i-1].end:ents[i].end],
// with chunk.base and 0 standing in for i == 0.
type ent struct {
	next int64
	end  int
}

func newChunk(capacity int) *chunk {
	return &chunk{
		data: make([]byte, capacity),
		ents: make([]ent, capacity/bytesPerIndexEntry+1),
	}
}

// start readies an unpublished, unpinned chunk to receive entries from base.
// Writer only. seq is stored first: a reader that loads base or gen and then
// still sees its old seq has loaded values from before this call.
func (c *chunk) start(seq, gen uint64, base int64) {
	c.seq.Store(seq)
	c.base.Store(base)
	c.gen.Store(gen)
	c.n.Store(0)
	c.used = 0
}

// pin returns the chunk with sequence s, pinned so the writer will not
// recycle it, or nil if that chunk is no longer (or not yet) in its slot. The
// caller reads it and then calls unpin.
//
// Why this is safe: the reader increments pins and then re-loads the slot;
// the writer empties the slot and then loads pins before recycling. All four
// are sequentially consistent atomics, so either the writer sees the pin (and
// keeps the chunk), or the reader's re-load comes after the writer emptied
// the slot and sees nil or another chunk (and the reader backs off without
// touching data). If the slot again holds this chunk, recycled and
// republished, its seq differs from s.
func (r *LockFreeRing) pin(s uint64) *chunk {
	slot := &r.slots[s&r.mask]
	c := slot.Load()
	if c == nil {
		return nil
	}
	c.pins.Add(1)
	if slot.Load() != c || c.seq.Load() != s {
		c.pins.Add(-1)
		return nil
	}
	return c
}

func (c *chunk) unpin() { c.pins.Add(-1) }

// peek returns the base offset and generation of the chunk with sequence s
// without pinning it, and false if it is not in its slot.
func (r *LockFreeRing) peek(s uint64) (base int64, gen uint64, ok bool) {
	c := r.slots[s&r.mask].Load()
	if c == nil {
		return 0, 0, false
	}
	base, gen = c.base.Load(), c.gen.Load()
	return base, gen, c.seq.Load() == s
}
