package hotstore

// This file holds LockFreeRing and its writer side (Append, eviction,
// Reset); its readers are in read.go.

import (
	"fmt"
	"sync/atomic"
)

// Chunk sizing. A chunk is the unit of allocation and of eviction; see doc.go.
const (
	// chunksPerBudget is how many chunks of the default size fit in the budget.
	// More chunks mean finer-grained eviction (the ring holds between
	// (n-1)/n and all of its budget) at the price of more bookkeeping.
	chunksPerBudget = 8
	// maxChunkSize caps the default chunk size so large budgets still evict
	// in small steps.
	maxChunkSize = 4 << 20
	// minChunkSize keeps tiny budgets from using tiny chunks.
	minChunkSize = 4 << 10
	// firstChunkSize is the capacity of a ring's first chunk when its
	// default chunk size is larger; each new chunk doubles it until the
	// default is reached, so a ring's memory follows what is appended.
	firstChunkSize = 64 << 10
	// bytesPerIndexEntry sizes a chunk's entry index: one 16-byte slot per
	// this many data bytes, so the index adds 1/16 to the data. A chunk
	// whose index fills before its data is sealed early: entries smaller
	// than this on average use less of the budget.
	bytesPerIndexEntry = 256
	// maxRetired bounds the evicted chunks kept for reuse while readers
	// still pin them; beyond that they are left to the garbage collector.
	maxRetired = 2
	// readAttempts bounds how often a reader restarts its search after
	// the writer moved the ring underneath it, before reporting a miss.
	readAttempts = 3
)

// LockFreeRing has the contract of Ring, with readers that take no lock and
// never wait for the writer or for each other. The package documentation
// walks through its design and says why Ring is the default.
type LockFreeRing struct {
	// Immutable after NewLockFree.
	budget    int
	chunkSize int
	mask      uint64
	slots     []atomic.Pointer[chunk] // chunk with sequence s lives in slots[s&mask]

	// Published by the writer when a chunk starts or is evicted, loaded by
	// every read.
	first atomic.Uint64 // sequence of the oldest live chunk
	last  atomic.Uint64 // sequence of the newest live chunk + 1; == first when empty

	_ [64]byte // the writer stores the fields below on every append

	oldestOff atomic.Int64 // first offset held (== nextOff when empty)
	nextOff   atomic.Int64 // offset after the newest entry held
	heldBytes atomic.Int64 // data bytes of the live entries

	// Writer only: never touched by readers.
	cur       *chunk   // chunk receiving appends; nil after a reset
	growCap   int      // capacity of the next chunk allocated, up to chunkSize
	retired   []*chunk // evicted chunks of chunkSize, reusable once unpinned
	nextSeq   uint64   // sequence of the next chunk to start
	gen       uint64   // bumped by every reset
	held      int      // sum of the data capacities of live chunks, <= budget
	expect    int64    // baseOffset the next Append must carry to be contiguous
	hasExpect bool     // false when empty after New or Reset: any baseOffset is accepted

	_ [64]byte // keep the reader-written counters off the writer's cache lines

	hits   atomic.Uint64
	misses atomic.Uint64
}

// NewLockFree returns an empty LockFreeRing that holds at most budgetBytes
// bytes of appended data. It allocates no chunk until the first Append; the
// first chunk holds 64 KiB (or the entry, if larger) and each new one doubles
// that up to the default chunk size, so memory follows what is appended. Once
// full, its memory is the budget plus an entry index of 1/16 of it, plus up
// to two evicted chunks of budget/8 kept while slow readers finish with them.
// It panics if budgetBytes is not positive.
func NewLockFree(budgetBytes int) *LockFreeRing {
	if budgetBytes <= 0 {
		panic(fmt.Sprintf("hotstore: budget %d bytes, want > 0", budgetBytes))
	}
	size := (budgetBytes + chunksPerBudget - 1) / chunksPerBudget
	size = min(max(size, minChunkSize), maxChunkSize, budgetBytes)
	// Every live chunk holds at least size bytes of capacity and their sum
	// stays within the budget, so budget/size chunks are live at most; one
	// more slot keeps the count strictly below the slot count.
	// The smaller chunks allocated while the ring grows add one each.
	first := min(firstChunkSize, size)
	maxLive := budgetBytes/size + 1
	for c := first; c < size; c *= 2 {
		maxLive++
	}
	nslots := 1
	for nslots < maxLive {
		nslots <<= 1
	}
	return &LockFreeRing{
		budget:    budgetBytes,
		chunkSize: size,
		growCap:   first,
		mask:      uint64(nslots - 1),
		slots:     make([]atomic.Pointer[chunk], nslots),
	}
}

// Append copies data, the entry covering offsets [baseOffset, nextOffset),
// into the ring, evicting the oldest entries to stay within the budget.
// Only one goroutine may call Append and Reset.
//
// If the ring is not empty and baseOffset differs from the previous
// nextOffset, the ring is reset first (the log was truncated or moved).
// An entry larger than the budget is not cached: the ring is emptied and
// expects nextOffset next. Append panics if nextOffset <= baseOffset or
// data is empty, which no log entry can be.
func (r *LockFreeRing) Append(baseOffset, nextOffset int64, data []byte) {
	if nextOffset <= baseOffset || len(data) == 0 {
		panic(fmt.Sprintf("hotstore: append of %d bytes covering offsets [%d, %d)", len(data), baseOffset, nextOffset))
	}
	if r.hasExpect && baseOffset != r.expect {
		r.Reset()
	}
	if len(data) > r.budget {
		r.Reset()
		r.expectNext(nextOffset)
		return
	}

	c := r.cur
	fresh := c == nil || c.used+len(data) > len(c.data) || int(c.n.Load()) == len(c.ents)
	if fresh {
		c = r.startChunk(baseOffset, len(data))
	}
	k := c.n.Load()
	copy(c.data[c.used:], data)
	c.used += len(data)
	c.ents[k] = ent{next: nextOffset, end: c.used}
	// Publish: the writes above happen before the reads of any reader that
	// loads n >= k+1 (or, for a fresh chunk, the slot pointer).
	c.n.Store(k + 1)
	if fresh {
		r.slots[c.seq.Load()&r.mask].Store(c)
		r.last.Store(c.seq.Load() + 1)
		if r.first.Load() == c.seq.Load() {
			r.oldestOff.Store(baseOffset)
		}
	}
	r.heldBytes.Add(int64(len(data)))
	r.expectNext(nextOffset)
}

// expectNext records that the next contiguous Append starts at off.
// Writer only.
func (r *LockFreeRing) expectNext(off int64) {
	r.expect = off
	r.hasExpect = true
	r.nextOff.Store(off)
	if r.first.Load() == r.last.Load() {
		r.oldestOff.Store(off)
	}
}

// startChunk evicts the oldest chunks until a chunk for an entry of size
// bytes fits the budget, and returns a started, unpublished chunk, reused
// when one is free.
func (r *LockFreeRing) startChunk(base int64, size int) *chunk {
	capacity := r.growCap
	for capacity < size && capacity < r.chunkSize {
		capacity *= 2
	}
	capacity = max(min(capacity, r.chunkSize), size)
	if capacity < r.chunkSize {
		// Still growing: the next chunk gets twice this one.
		r.growCap = min(2*capacity, r.chunkSize)
	} else {
		r.growCap = r.chunkSize
	}
	for r.held+capacity > r.budget || r.last.Load()-r.first.Load() >= uint64(len(r.slots)) {
		r.evictOldest()
	}
	r.held += capacity
	c := r.reusable(capacity)
	if c == nil {
		c = newChunk(capacity)
	}
	c.start(r.nextSeq, r.gen, base)
	r.nextSeq++
	r.cur = c
	return c
}

// reusable takes a retired chunk of the given capacity that no reader pins,
// or returns nil.
func (r *LockFreeRing) reusable(capacity int) *chunk {
	if capacity != r.chunkSize {
		return nil
	}
	for i, c := range r.retired {
		// The slot was emptied before this load (see pin): a reader that
		// pins c from now on fails its check and never reads data.
		if c.pins.Load() == 0 {
			r.retired = append(r.retired[:i], r.retired[i+1:]...)
			return c
		}
	}
	return nil
}

// evictOldest drops the oldest live chunk from its slot and retires it.
// Readers that pinned it keep reading it; readers that load its slot later
// see nil (or a newer chunk) and restart or miss.
func (r *LockFreeRing) evictOldest() {
	f := r.first.Load()
	if f == r.last.Load() {
		panic("BUG: hotstore: evicting from an empty ring")
	}
	slot := &r.slots[f&r.mask]
	old := slot.Load()
	slot.Store(nil)
	r.first.Store(f + 1)
	r.held -= len(old.data)
	r.heldBytes.Add(-int64(old.used))
	if old == r.cur {
		r.cur = nil
	}
	if f+1 == r.last.Load() {
		r.oldestOff.Store(r.nextOff.Load())
	} else {
		r.oldestOff.Store(r.slots[(f+1)&r.mask].Load().base.Load())
	}
	if len(old.data) == r.chunkSize {
		if len(r.retired) == maxRetired {
			// Still pinned by slow readers: let the garbage collector have
			// the oldest once they are done.
			r.retired = append(r.retired[:0], r.retired[1:]...)
		}
		r.retired = append(r.retired, old)
	}
}

// Reset drops every entry. The next Append may start at any offset.
// Only the writer goroutine may call Reset.
func (r *LockFreeRing) Reset() {
	for r.first.Load() != r.last.Load() {
		r.evictOldest()
	}
	r.gen++
	r.cur = nil
	r.hasExpect = false
	r.expect = 0
	r.nextOff.Store(0)
	r.oldestOff.Store(0)
}

// Oldest returns the first offset held. It equals Next when the ring is
// empty. Under concurrent appends the value may be stale by the time it is
// used; Read decides hits by itself.
func (r *LockFreeRing) Oldest() int64 { return r.oldestOff.Load() }

// Next returns the offset after the newest entry held: the baseOffset the
// next contiguous Append carries (0 after New or Reset).
func (r *LockFreeRing) Next() int64 { return r.nextOff.Load() }

// Stats returns the read counters and the bytes currently held.
func (r *LockFreeRing) Stats() Stats {
	return Stats{Hits: r.hits.Load(), Misses: r.misses.Load(), Bytes: uint64(r.heldBytes.Load())}
}
