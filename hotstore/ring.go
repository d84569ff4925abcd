package hotstore

import (
	"fmt"
	"sync/atomic"
)

// Chunk sizing. A chunk is the unit of allocation and of eviction; see doc.go.
const (
	// chunksPerBudget is how many chunks of the default size fit in the budget.
	// More chunks mean finer-grained eviction (the ring holds between
	// (n-1)/n and all of its budget) at the price of more allocations.
	chunksPerBudget = 8
	// maxChunkSize caps the default chunk size so large budgets still evict
	// in small steps.
	maxChunkSize = 4 << 20
	// minChunkSize keeps tiny budgets from allocating tiny chunks.
	minChunkSize = 4 << 10
	// bytesPerIndexEntry sizes a chunk's entry index: one slot per this
	// many data bytes. A chunk whose index fills before its data is sealed
	// early, so entries smaller than this on average use less of the budget.
	bytesPerIndexEntry = 256
	// readAttempts bounds how often a reader restarts its search after
	// the writer moved the ring underneath it, before reporting a miss.
	readAttempts = 3
)

// Ring is a fixed byte-budget cache of the newest data appended to one
// partition. One goroutine (the partition appender) calls Append and Reset;
// any number of goroutines may call Read, Oldest, Next and Stats at the same
// time, without locks. See the package documentation for the contract.
type Ring struct {
	// Immutable after New.
	budget    int
	chunkSize int
	mask      uint64
	slots     []atomic.Pointer[chunk] // chunk with sequence s lives in slots[s&mask]

	// Published by the writer, loaded by readers.
	first     atomic.Uint64 // sequence of the oldest live chunk
	last      atomic.Uint64 // sequence of the newest live chunk + 1; == first when empty
	oldestOff atomic.Int64  // first offset held (== nextOff when empty)
	nextOff   atomic.Int64  // offset after the newest entry held
	heldBytes atomic.Int64  // data bytes of the live entries

	// Writer only: never touched by readers.
	cur       *chunk // chunk receiving appends; nil after a reset or when sealed
	nextSeq   uint64 // sequence of the next chunk to create
	gen       uint64 // bumped by every reset
	held      int    // sum of the data capacities of live chunks, <= budget
	expect    int64  // baseOffset the next Append must carry to be contiguous
	hasExpect bool   // false when empty after New or Reset: any baseOffset is accepted

	_ [64]byte // keep the reader-written counters off the writer's cache lines

	hits   atomic.Uint64
	misses atomic.Uint64
}

// chunk is one allocation of the ring. The writer appends entries to it and
// publishes each with n.Store; the bytes of published entries and their index
// slots are never written again, and a chunk's memory is never reused: it is
// dropped from its slot when evicted and freed by the garbage collector once
// no reader holds it.
type chunk struct {
	seq  uint64 // position in the ring's chunk sequence
	gen  uint64 // the ring's generation when the chunk was created
	base int64  // baseOffset of the first entry
	data []byte // entry bytes back to back; len == capacity
	ents []ent  // index, one slot per entry; len == capacity

	n atomic.Int64 // published entries: ents[:n] and data[:ents[n-1].end] are immutable

	used int // writer only: bytes of data in use
}

// ent indexes one entry of a chunk. Entry i covers offsets
// [ents[i-1].next, ents[i].next) and bytes data[ents[i-1].end:ents[i].end],
// with chunk.base and 0 standing in for i == 0.
type ent struct {
	next int64
	end  int
}

// Stats counts reads since New.
type Stats struct {
	Hits   uint64 // reads that returned data (ok == true)
	Misses uint64 // reads that returned ok == false
	Bytes  uint64 // data bytes currently held
}

// New returns an empty ring that holds at most budgetBytes bytes of appended
// data (its entry index adds at most 1/16 of that). It panics if budgetBytes
// is not positive.
func New(budgetBytes int) *Ring {
	if budgetBytes <= 0 {
		panic(fmt.Sprintf("hotstore: budget %d bytes, want > 0", budgetBytes))
	}
	size := (budgetBytes + chunksPerBudget - 1) / chunksPerBudget
	size = min(max(size, minChunkSize), maxChunkSize, budgetBytes)
	// Every live chunk holds at least size bytes of capacity and their sum
	// stays within the budget, so budget/size chunks are live at most; one
	// more slot keeps the count strictly below the slot count.
	maxLive := budgetBytes/size + 1
	nslots := 1
	for nslots < maxLive {
		nslots <<= 1
	}
	return &Ring{
		budget:    budgetBytes,
		chunkSize: size,
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
func (r *Ring) Append(baseOffset, nextOffset int64, data []byte) {
	if nextOffset <= baseOffset || len(data) == 0 {
		panic(fmt.Sprintf("hotstore: append of %d bytes covering offsets [%d, %d)", len(data), baseOffset, nextOffset))
	}
	if r.hasExpect && baseOffset != r.expect {
		r.Reset()
	}
	if len(data) > r.budget {
		r.Reset()
		r.expectLocked(nextOffset)
		return
	}

	c := r.cur
	fresh := c == nil || c.used+len(data) > len(c.data) || int(c.n.Load()) == len(c.ents)
	if fresh {
		c = r.newChunk(baseOffset, len(data))
	}
	k := c.n.Load()
	copy(c.data[c.used:], data)
	c.used += len(data)
	c.ents[k] = ent{next: nextOffset, end: c.used}
	// Publish: everything written above happens before any reader that
	// loads n >= k+1 (or, for a fresh chunk, the slot pointer) reads it.
	c.n.Store(k + 1)
	if fresh {
		r.slots[c.seq&r.mask].Store(c)
		r.last.Store(c.seq + 1)
		if r.first.Load() == c.seq {
			r.oldestOff.Store(c.base)
		}
	}
	r.heldBytes.Add(int64(len(data)))
	r.expectLocked(nextOffset)
}

// expectLocked records that the next contiguous Append starts at off.
// "Locked" here means: writer goroutine only.
func (r *Ring) expectLocked(off int64) {
	r.expect = off
	r.hasExpect = true
	r.nextOff.Store(off)
	if r.first.Load() == r.last.Load() {
		r.oldestOff.Store(off)
	}
}

// newChunk evicts the oldest chunks until a chunk for an entry of size bytes
// fits the budget, then returns a new unpublished chunk starting at base.
func (r *Ring) newChunk(base int64, size int) *chunk {
	capacity := max(r.chunkSize, size)
	for r.held+capacity > r.budget || r.last.Load()-r.first.Load() >= uint64(len(r.slots)) {
		r.evictOldest()
	}
	r.held += capacity
	c := &chunk{
		seq:  r.nextSeq,
		gen:  r.gen,
		base: base,
		data: make([]byte, capacity),
		ents: make([]ent, capacity/bytesPerIndexEntry+1),
	}
	r.nextSeq++
	r.cur = c
	return c
}

// evictOldest drops the oldest live chunk. Readers that already loaded it
// keep a valid, immutable copy; readers that load its slot later see nil (or
// a newer chunk) and restart or miss.
func (r *Ring) evictOldest() {
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
		r.oldestOff.Store(r.slots[(f+1)&r.mask].Load().base)
	}
}

// Reset drops every entry. The next Append may start at any offset.
// Only the writer goroutine may call Reset.
func (r *Ring) Reset() {
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
func (r *Ring) Oldest() int64 { return r.oldestOff.Load() }

// Next returns the offset after the newest entry held: the baseOffset the
// next contiguous Append carries (0 after New or Reset).
func (r *Ring) Next() int64 { return r.nextOff.Load() }

// Stats returns the read counters and the bytes currently held.
func (r *Ring) Stats() Stats {
	return Stats{Hits: r.hits.Load(), Misses: r.misses.Load(), Bytes: uint64(r.heldBytes.Load())}
}

// readResult is the outcome of one read attempt.
type readResult int

const (
	readHit readResult = iota
	readMiss
	readRetry // the writer moved the ring during the search: try again
)

// Read appends to dst the entries starting with the one whose range contains
// offset, in order and contiguous, totalling at most maxBytes bytes but always
// at least one entry, and returns the extended slice and the offset after the
// last entry copied. It reports ok == false, with dst and offset returned
// unchanged, when offset is older than the oldest entry held or at or after
// the newest one, or when the entries were evicted while it searched for
// them. Read is safe to call from any number of goroutines, concurrently with
// Append and Reset, and takes no lock.
func (r *Ring) Read(offset int64, maxBytes int, dst []byte) (out []byte, next int64, ok bool) {
	for range readAttempts {
		out, next, res := r.read(offset, maxBytes, dst)
		switch res {
		case readHit:
			r.hits.Add(1)
			return out, next, true
		case readMiss:
			r.misses.Add(1)
			return dst, offset, false
		}
	}
	r.misses.Add(1)
	return dst, offset, false
}

// chunkAt returns the chunk with sequence s, or nil if it is no longer (or
// not yet) in its slot.
func (r *Ring) chunkAt(s uint64) *chunk {
	c := r.slots[s&r.mask].Load()
	if c == nil || c.seq != s {
		return nil
	}
	return c
}

func (r *Ring) read(offset int64, maxBytes int, dst []byte) ([]byte, int64, readResult) {
	// Load first before last: first <= last at every instant and both only
	// grow, so f <= l here.
	f := r.first.Load()
	l := r.last.Load()
	if f == l {
		return nil, 0, readMiss
	}
	oldest := r.chunkAt(f)
	if oldest == nil {
		return nil, 0, readRetry
	}
	if offset < oldest.base {
		return nil, 0, readMiss
	}

	// Binary search for the newest chunk in [f, l) whose base <= offset.
	// Every chunk loaded in this search was live when loaded, and all chunks
	// live at one instant share a generation, so bases increase with seq.
	lo, hi := f, l-1 // invariant: chunk lo has base <= offset; answer in [lo, hi]
	c := oldest
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		m := r.chunkAt(mid)
		if m == nil || m.gen != oldest.gen {
			return nil, 0, readRetry
		}
		if m.base <= offset {
			lo, c = mid, m
		} else {
			hi = mid - 1
		}
	}

	// Find the entry containing offset: the first with next > offset.
	n := int(c.n.Load())
	ents := c.ents[:n]
	k := searchNext(ents, offset)
	if k == n {
		if lo == l-1 && r.last.Load() == l {
			// c is the newest chunk and offset is past its last published
			// entry: offset is at or after the newest entry.
			return nil, 0, readMiss
		}
		// A newer chunk appeared, or c was sealed with entries published
		// after our n: search again.
		return nil, 0, readRetry
	}

	// Copy runs of entries, one copy per chunk, following the chain of
	// chunks while the next one continues the same generation at the
	// offset where the previous ended.
	out := dst
	total := 0
	var next int64
	seq := lo
	for {
		start := 0
		if k > 0 {
			start = ents[k-1].end
		}
		j := k
		// Take entries while they fit; the very first always goes.
		for j < len(ents) && (total == 0 && j == k || total+ents[j].end-start <= maxBytes) {
			j++
		}
		end := ents[j-1].end
		out = append(out, c.data[start:end]...)
		total += end - start
		next = ents[j-1].next
		if j < len(ents) {
			break // the next entry does not fit
		}
		// c is exhausted as far as we loaded it: more entries may have
		// been published since.
		if n2 := int(c.n.Load()); n2 > n {
			n, ents, k = n2, c.ents[:n2], j
			if total+ents[k].end-ents[k-1].end > maxBytes {
				break
			}
			continue
		}
		seq++
		nc := r.chunkAt(seq)
		if nc == nil || nc.gen != c.gen || nc.base != next {
			break
		}
		n = int(nc.n.Load())
		ents = nc.ents[:n]
		c, k = nc, 0
		if total+ents[0].end > maxBytes {
			break
		}
	}
	return out, next, readHit
}

// searchNext returns the index of the first entry with next > offset, or
// len(ents) if there is none.
func searchNext(ents []ent, offset int64) int {
	lo, hi := 0, len(ents)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if ents[mid].next > offset {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}
