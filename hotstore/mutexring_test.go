package hotstore

import "sync"

// MutexRing is the plain alternative to Ring: one byte buffer of exactly the
// budget, written with wraparound, and an entry deque, all guarded by one
// mutex. It has the same contract as Ring and serves as the reference in the
// differential tests and the baseline in the benchmarks.
type MutexRing struct {
	mu sync.Mutex
	// Guarded by mu.
	buf       []byte // len == budget
	ents      []mEnt // deque of live entries, oldest at ents[head]
	head      int
	count     int
	used      int // data bytes of the live entries
	wpos      int // where the next entry's first byte goes in buf
	expect    int64
	hasExpect bool
	hits      uint64
	misses    uint64
}

type mEnt struct {
	base, next int64
	pos, size  int // bytes buf[pos:pos+size], wrapping at len(buf)
}

// NewMutexRing returns an empty MutexRing with the given budget.
func NewMutexRing(budgetBytes int) *MutexRing {
	if budgetBytes <= 0 {
		panic("hotstore: budget must be > 0")
	}
	return &MutexRing{buf: make([]byte, budgetBytes), ents: make([]mEnt, 16)}
}

func (m *MutexRing) entLocked(i int) *mEnt { return &m.ents[(m.head+i)%len(m.ents)] }

// Append has the contract of Ring.Append.
func (m *MutexRing) Append(baseOffset, nextOffset int64, data []byte) {
	if nextOffset <= baseOffset || len(data) == 0 {
		panic("hotstore: invalid append")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hasExpect && baseOffset != m.expect {
		m.resetLocked()
	}
	m.expect, m.hasExpect = nextOffset, true
	if len(data) > len(m.buf) {
		m.resetLocked()
		m.expect, m.hasExpect = nextOffset, true
		return
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

func (m *MutexRing) resetLocked() {
	m.head, m.count, m.used, m.wpos = 0, 0, 0, 0
	m.expect, m.hasExpect = 0, false
}

// Reset has the contract of Ring.Reset.
func (m *MutexRing) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.resetLocked()
}

// Oldest has the contract of Ring.Oldest.
func (m *MutexRing) Oldest() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.count == 0 {
		return m.expect
	}
	return m.entLocked(0).base
}

// Next has the contract of Ring.Next.
func (m *MutexRing) Next() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.expect
}

// Stats has the contract of Ring.Stats.
func (m *MutexRing) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Stats{Hits: m.hits, Misses: m.misses, Bytes: uint64(m.used)}
}

// Read has the contract of Ring.Read.
func (m *MutexRing) Read(offset int64, maxBytes int, dst []byte) ([]byte, int64, bool) {
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
