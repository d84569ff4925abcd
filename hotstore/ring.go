package hotstore

// This file holds Ring, the mutex-guarded ring the broker uses by default.

import (
	"fmt"
	"sync"
)

// Ring is a fixed byte-budget cache of the newest entries appended to one
// partition's log. One goroutine (the partition appender) calls Append and
// Reset; any number of goroutines may call Read, Oldest, Next and Stats at
// the same time. See the package documentation for the contract.
//
// Ring is one byte buffer written with wraparound, and a deque of entries,
// all behind one mutex held for the length of a copy. The buffer is
// allocated by the first Append and doubles as entries need the room, up to
// the budget, so a partition nobody writes to costs a few hundred bytes.
// LockFreeRing has the same contract without locks; see the package
// documentation for how they compare.
type Ring struct {
	mu sync.Mutex
	// Guarded by mu.
	budget    int
	buf       []byte // nil until the first Append; grows to at most budget bytes
	ents      []mEnt // deque of live entries, oldest at ents[head]
	head      int
	count     int
	used      int // data bytes of the live entries
	wpos      int // where the next entry's first byte goes in buf
	expect    int64
	hasExpect bool // false when empty after New or Reset: any baseOffset is accepted
	hits      uint64
	misses    uint64
}

// Stats counts reads since the ring was made, and the data held now.
type Stats struct {
	Hits   uint64 // reads that returned data (ok == true)
	Misses uint64 // reads that returned ok == false
	Bytes  uint64 // data bytes currently held
}

type mEnt struct {
	base, next int64
	pos, size  int // bytes buf[pos:pos+size], wrapping at len(buf)
}

// minRingBuffer is the first buffer a Ring allocates, unless its budget is
// smaller or the first entry larger.
const minRingBuffer = 64 << 10

// New returns an empty Ring that holds at most budgetBytes bytes of
// appended data. It allocates nothing for data until the first Append; then
// its buffer is a power of two of at least 64 KiB that doubles while the
// entries held need more room, up to the budget. Its memory is that buffer
// plus 32 bytes per entry held. It panics if budgetBytes is not positive.
func New(budgetBytes int) *Ring {
	if budgetBytes <= 0 {
		panic(fmt.Sprintf("hotstore: budget %d bytes, want > 0", budgetBytes))
	}
	return &Ring{budget: budgetBytes, ents: make([]mEnt, 16)}
}

func (m *Ring) entLocked(i int) *mEnt { return &m.ents[(m.head+i)%len(m.ents)] }

// Append copies data, the entry covering offsets [baseOffset, nextOffset),
// into the ring, evicting the oldest entries to stay within the budget.
// Only one goroutine may call Append and Reset.
//
// If the ring is not empty and baseOffset differs from the previous
// nextOffset, the ring is reset first (the log was truncated or moved).
// An entry larger than the budget is not cached: the ring is emptied and
// expects nextOffset next. Append panics if nextOffset <= baseOffset or
// data is empty, which no log entry can be.
func (m *Ring) Append(baseOffset, nextOffset int64, data []byte) {
	if nextOffset <= baseOffset || len(data) == 0 {
		panic(fmt.Sprintf("hotstore: append of %d bytes covering offsets [%d, %d)", len(data), baseOffset, nextOffset))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hasExpect && baseOffset != m.expect {
		m.resetLocked()
	}
	m.expect, m.hasExpect = nextOffset, true
	if len(data) > m.budget {
		m.resetLocked()
		m.expect, m.hasExpect = nextOffset, true
		return
	}
	if m.used+len(data) > len(m.buf) && len(m.buf) < m.budget {
		m.growLocked(m.used + len(data))
	}
	for m.used+len(data) > len(m.buf) {
		m.used -= m.entLocked(0).size
		m.head = (m.head + 1) % len(m.ents)
		m.count--
	}
	if m.count == len(m.ents) {
		grown := make([]mEnt, 2*len(m.ents))
		for i := range m.count {
			grown[i] = *m.entLocked(i)
		}
		m.ents, m.head = grown, 0
	}
	pos := m.wpos
	n := copy(m.buf[pos:], data)
	copy(m.buf, data[n:])
	m.wpos = (pos + len(data)) % len(m.buf)
	m.used += len(data)
	*m.entLocked(m.count) = mEnt{base: baseOffset, next: nextOffset, pos: pos, size: len(data)}
	m.count++
}

// growKeep bounds what a growing Ring carries over: the newest entries that
// fit in it are copied into the new buffer, older ones are dropped (reads
// of them miss, and the caller reads the segment).
//
// Copying everything held made each doubling stall the partition's
// appender: the copy is the first write to the new buffer's pages, and
// first touches are slow on virtual machines that hand freed memory back to
// the host (measured on the 2-core development VM at 5,000 records/s: a
// stall of 25-55 ms at the 4 to 8 MiB step, the largest latencies of the
// run). With the copy bounded, the new pages are first touched by the
// appends that fill them, one entry at a time, as LockFreeRing's chunks
// are. Readers at the tail, a few entries behind, keep hitting.
const growKeep = 64 << 10

// growLocked replaces buf with one of at least need bytes (doubling, at
// least minRingBuffer, at most the budget) and lays the newest live
// entries, up to growKeep bytes of them, out from its start, oldest first;
// the older ones are dropped.
func (m *Ring) growLocked(need int) {
	size := 2 * len(m.buf)
	if size == 0 {
		size = minRingBuffer
	}
	for size < need {
		size *= 2
	}
	size = min(size, m.budget)
	kept, keptBytes := 0, 0
	for kept < m.count {
		e := m.entLocked(m.count - 1 - kept)
		if keptBytes+e.size > growKeep {
			break
		}
		keptBytes += e.size
		kept++
	}
	m.head = (m.head + m.count - kept) % len(m.ents)
	m.count, m.used = kept, keptBytes
	grown := make([]byte, size)
	pos := 0
	for i := range m.count {
		e := m.entLocked(i)
		end := e.pos + e.size
		if end <= len(m.buf) {
			copy(grown[pos:], m.buf[e.pos:end])
		} else {
			n := copy(grown[pos:], m.buf[e.pos:])
			copy(grown[pos+n:], m.buf[:end-len(m.buf)])
		}
		e.pos = pos
		pos += e.size
	}
	m.buf, m.wpos = grown, pos%size
}

func (m *Ring) resetLocked() {
	m.head, m.count, m.used, m.wpos = 0, 0, 0, 0
	m.expect, m.hasExpect = 0, false
}

// Reset drops every entry. The next Append may start at any offset.
func (m *Ring) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.resetLocked()
}

// Oldest returns the first offset held. It equals Next when the ring is
// empty. Under concurrent appends the value may be stale by the time it is
// used; Read decides hits by itself.
func (m *Ring) Oldest() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.count == 0 {
		return m.expect
	}
	return m.entLocked(0).base
}

// Next returns the offset after the newest entry held: the baseOffset the
// next contiguous Append carries (0 after New or Reset).
func (m *Ring) Next() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.expect
}

// Stats returns the read counters and the bytes currently held.
func (m *Ring) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Stats{Hits: m.hits, Misses: m.misses, Bytes: uint64(m.used)}
}

// Read appends to dst the entries starting with the one whose range contains
// offset, in order and contiguous, totalling at most maxBytes bytes but always
// at least one entry, and returns the extended slice and the offset after the
// last entry copied. It reports ok == false, with dst and offset returned
// unchanged, when offset is older than the oldest entry held or at or after
// the newest one. Read is safe to call from any number of goroutines,
// concurrently with Append and Reset.
func (m *Ring) Read(offset int64, maxBytes int, dst []byte) ([]byte, int64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.count == 0 || offset < m.entLocked(0).base || offset >= m.expect {
		m.misses++
		return dst, offset, false
	}
	lo, hi := 0, m.count
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if m.entLocked(mid).next > offset {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	total := 0
	var next int64
	for i := lo; i < m.count; i++ {
		e := m.entLocked(i)
		if i > lo && total+e.size > maxBytes {
			break
		}
		end := e.pos + e.size
		if end <= len(m.buf) {
			dst = append(dst, m.buf[e.pos:end]...)
		} else {
			dst = append(dst, m.buf[e.pos:]...)
			dst = append(dst, m.buf[:end-len(m.buf)]...)
		}
		total += e.size
		next = e.next
	}
	m.hits++
	return dst, next, true
}
