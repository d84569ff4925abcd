package hotstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// store is the API shared by Ring and LockFreeRing.
type store interface {
	Append(baseOffset, nextOffset int64, data []byte)
	Read(offset int64, maxBytes int, dst []byte) ([]byte, int64, bool)
	Oldest() int64
	Next() int64
	Reset()
	Stats() Stats
}

var impls = []struct {
	name string
	new  func(budget int) store
}{
	{"lockfree", func(b int) store { return NewLockFree(b) }},
	{"mutex", func(b int) store { return New(b) }},
}

func forEachImpl(t *testing.T, f func(t *testing.T, newStore func(int) store)) {
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) { f(t, impl.new) })
	}
}

// Patterned entries: a 32-byte header (base, next, gen, size) followed by
// bytes derived from (base, gen, index), so any run of entries can be checked
// on its own.
const entryHeader = 32

func makeEntry(base, next int64, gen uint64, size int) []byte {
	if size < entryHeader {
		panic("entry too small")
	}
	b := make([]byte, size)
	binary.LittleEndian.PutUint64(b[0:], uint64(base))
	binary.LittleEndian.PutUint64(b[8:], uint64(next))
	binary.LittleEndian.PutUint64(b[16:], gen)
	binary.LittleEndian.PutUint64(b[24:], uint64(size))
	fillPattern(b[entryHeader:], base, gen)
	return b
}

func fillPattern(b []byte, base int64, gen uint64) {
	x := uint64(base)*0x9e3779b97f4a7c15 ^ gen*0xbf58476d1ce4e5b9
	for i := range b {
		x ^= x >> 29
		x *= 0x94d049bb133111eb
		b[i] = byte(x >> 56)
	}
}

// checkRun verifies that out is a contiguous run of well-formed entries of one
// generation, starting with the entry containing offset and ending at next.
// It returns the number of entries.
func checkRun(out []byte, offset, next int64) (int, error) {
	var gen uint64
	want := offset
	pattern := make([]byte, 0, 16<<10)
	i := 0
	for ; len(out) > 0; i++ {
		if len(out) < entryHeader {
			return 0, fmt.Errorf("entry %d: %d trailing bytes", i, len(out))
		}
		base := int64(binary.LittleEndian.Uint64(out[0:]))
		enext := int64(binary.LittleEndian.Uint64(out[8:]))
		egen := binary.LittleEndian.Uint64(out[16:])
		size := int(binary.LittleEndian.Uint64(out[24:]))
		if size < entryHeader || size > len(out) {
			return 0, fmt.Errorf("entry %d: size %d, %d bytes left", i, size, len(out))
		}
		if i == 0 {
			if base > offset || enext <= offset {
				return 0, fmt.Errorf("first entry [%d, %d) does not contain %d", base, enext, offset)
			}
			gen = egen
		} else {
			if base != want {
				return 0, fmt.Errorf("entry %d starts at %d, want %d", i, base, want)
			}
			if egen != gen {
				return 0, fmt.Errorf("entry %d: generation %d, want %d", i, egen, gen)
			}
		}
		pattern = pattern[:size-entryHeader]
		fillPattern(pattern, base, egen)
		if !bytes.Equal(out[entryHeader:size], pattern) {
			return 0, fmt.Errorf("entry %d [%d, %d): corrupt payload", i, base, enext)
		}
		want = enext
		out = out[size:]
	}
	if want != next {
		return 0, fmt.Errorf("run ends at %d, Read returned next %d", want, next)
	}
	return i, nil
}

// model is the log as appended since the last reset.
type model struct {
	ents []modelEnt
}

type modelEnt struct {
	base, next int64
	data       []byte
}

func (m *model) append(base, next int64, data []byte) {
	if len(m.ents) > 0 && m.ents[len(m.ents)-1].next != base {
		m.ents = nil
	}
	m.ents = append(m.ents, modelEnt{base, next, data})
}

// trim forgets the entries that end at or before offset.
func (m *model) trim(offset int64) {
	for len(m.ents) > 0 && m.ents[0].next <= offset {
		m.ents = m.ents[1:]
	}
}

// read returns what a hit at offset must return.
func (m *model) read(offset int64, maxBytes int) ([]byte, int64) {
	var out []byte
	var next int64
	for _, e := range m.ents {
		if e.next <= offset {
			continue
		}
		if len(out) > 0 && len(out)+len(e.data) > maxBytes {
			break
		}
		out = append(out, e.data...)
		next = e.next
	}
	return out, next
}

func TestEmpty(t *testing.T) {
	forEachImpl(t, func(t *testing.T, newStore func(int) store) {
		r := newStore(1 << 10)
		if got, next, ok := r.Read(0, 100, []byte("x")); ok || string(got) != "x" || next != 0 {
			t.Fatalf("Read on empty ring = %q, %d, %v", got, next, ok)
		}
		if r.Oldest() != 0 || r.Next() != 0 {
			t.Fatalf("Oldest, Next = %d, %d, want 0, 0", r.Oldest(), r.Next())
		}
		if s := r.Stats(); s != (Stats{Misses: 1}) {
			t.Fatalf("Stats = %+v", s)
		}
	})
}

func TestReadMaxBytes(t *testing.T) {
	forEachImpl(t, func(t *testing.T, newStore func(int) store) {
		r := newStore(1 << 20)
		var m model
		// Entries of 100, 200, 300, 400 bytes covering 10 offsets each from 1000.
		for i := range 4 {
			base := int64(1000 + 10*i)
			e := makeEntry(base, base+10, 0, 100*(i+1))
			r.Append(base, base+10, e)
			m.append(base, base+10, e)
		}
		tests := []struct {
			offset   int64
			maxBytes int
			next     int64
		}{
			{1000, 0, 1010},    // at least one entry
			{1000, 99, 1010},   // one entry even if larger than maxBytes
			{1000, 100, 1010},  // exactly one
			{1000, 299, 1010},  // second does not fit
			{1000, 300, 1020},  // exactly two
			{1000, 1000, 1040}, // all
			{1000, 1 << 30, 1040},
			{1005, 300, 1020}, // offset inside the first entry
			{1009, 0, 1010},
			{1010, 0, 1020},
			{1039, 1 << 20, 1040}, // last offset held
			{1025, 700, 1040},
			{1025, 699, 1030},
		}
		for _, tc := range tests {
			prefix := []byte("prefix")
			got, next, ok := r.Read(tc.offset, tc.maxBytes, prefix)
			want, wantNext := m.read(tc.offset, tc.maxBytes)
			if !ok || next != tc.next || next != wantNext {
				t.Fatalf("Read(%d, %d) next=%d ok=%v, want next=%d", tc.offset, tc.maxBytes, next, ok, tc.next)
			}
			if !bytes.Equal(got[:6], []byte("prefix")) || !bytes.Equal(got[6:], want) {
				t.Fatalf("Read(%d, %d): wrong bytes", tc.offset, tc.maxBytes)
			}
		}
		if r.Oldest() != 1000 || r.Next() != 1040 {
			t.Fatalf("Oldest, Next = %d, %d, want 1000, 1040", r.Oldest(), r.Next())
		}
	})
}

func TestMisses(t *testing.T) {
	forEachImpl(t, func(t *testing.T, newStore func(int) store) {
		r := newStore(1 << 20)
		r.Append(100, 110, makeEntry(100, 110, 0, 64))
		r.Append(110, 120, makeEntry(110, 120, 0, 64))
		for _, off := range []int64{-1, 0, 99, 120, 121, 1 << 40} {
			dst := []byte("keep")
			got, next, ok := r.Read(off, 1<<20, dst)
			if ok || string(got) != "keep" || next != off {
				t.Fatalf("Read(%d) = %q, %d, %v; want a miss", off, got, next, ok)
			}
		}
		for _, off := range []int64{100, 119} {
			if _, _, ok := r.Read(off, 0, nil); !ok {
				t.Fatalf("Read(%d) missed", off)
			}
		}
		if s := r.Stats(); s.Hits != 2 || s.Misses != 6 || s.Bytes != 128 {
			t.Fatalf("Stats = %+v, want 2 hits, 6 misses, 128 bytes", s)
		}
	})
}

func TestWraparound(t *testing.T) {
	forEachImpl(t, func(t *testing.T, newStore func(int) store) {
		const budget = 64 << 10
		r := newStore(budget)
		var m model
		rng := rand.New(rand.NewPCG(1, 2))
		off := int64(0)
		prevOldest := int64(0)
		for i := range 800 {
			size := 1<<10 + rng.IntN(3<<10)
			n := int64(1 + rng.IntN(20))
			e := makeEntry(off, off+n, 0, size)
			r.Append(off, off+n, e)
			m.append(off, off+n, e)
			off += n

			oldest := r.Oldest()
			if oldest < prevOldest || oldest >= off || r.Next() != off {
				t.Fatalf("append %d: Oldest %d (was %d), Next %d, want Next %d", i, oldest, prevOldest, r.Next(), off)
			}
			prevOldest = oldest
			if s := r.Stats(); s.Bytes > budget {
				t.Fatalf("append %d: holding %d bytes, budget %d", i, s.Bytes, budget)
			}
			if _, _, ok := r.Read(oldest-1, 0, nil); ok && oldest > 0 {
				t.Fatalf("append %d: hit before Oldest", i)
			}
			// Offsets held read back exactly, from the oldest to the tail.
			m.trim(oldest)
			for j := range 8 {
				o := oldest + rng.Int64N(off-oldest)
				if j == 0 {
					o = oldest
				}
				maxBytes := rng.IntN(16 << 10)
				got, next, ok := r.Read(o, maxBytes, nil)
				want, wantNext := m.read(o, maxBytes)
				if !ok || next != wantNext || !bytes.Equal(got, want) {
					t.Fatalf("append %d: Read(%d, %d) = %d bytes, next %d, ok %v; want %d bytes, next %d",
						i, o, maxBytes, len(got), next, ok, len(want), wantNext)
				}
			}
		}
		if r.Oldest() == 0 {
			t.Fatal("ring never evicted")
		}
	})
}

func TestBudgetFill(t *testing.T) {
	const budget = 1 << 20
	r := NewLockFree(budget)
	for i := range int64(4000) {
		r.Append(i, i+1, makeEntry(i, i+1, 0, 1<<10))
		b := int(r.Stats().Bytes)
		if b > budget {
			t.Fatalf("holding %d bytes, budget %d", b, budget)
		}
		// Eviction is by chunk: once full, at most one chunk's worth is free.
		if i >= budget>>10 && b < budget-r.chunkSize {
			t.Fatalf("after %d appends holding only %d bytes of %d (chunk %d)", i+1, b, budget, r.chunkSize)
		}
		if held := (r.Next() - r.Oldest()) << 10; int(held) != b {
			t.Fatalf("Oldest..Next covers %d bytes, Stats says %d", held, b)
		}
	}
}

func TestOversized(t *testing.T) {
	forEachImpl(t, func(t *testing.T, newStore func(int) store) {
		const budget = 8 << 10
		r := newStore(budget)
		r.Append(0, 5, makeEntry(0, 5, 0, 1000))
		r.Append(5, 10, makeEntry(5, 10, 0, budget+1))
		if r.Oldest() != 10 || r.Next() != 10 || r.Stats().Bytes != 0 {
			t.Fatalf("after oversized: Oldest %d, Next %d, %d bytes; want 10, 10, 0", r.Oldest(), r.Next(), r.Stats().Bytes)
		}
		for _, off := range []int64{0, 5, 9, 10} {
			if _, _, ok := r.Read(off, 0, nil); ok {
				t.Fatalf("Read(%d) hit after oversized entry", off)
			}
		}
		// The ring continues from the oversized entry's end.
		r.Append(10, 20, makeEntry(10, 20, 0, 500))
		if got, next, ok := r.Read(10, 0, nil); !ok || next != 20 || len(got) != 500 {
			t.Fatalf("Read(10) = %d bytes, %d, %v", len(got), next, ok)
		}
		// An entry of exactly the budget is cached, alone.
		e := makeEntry(20, 30, 0, budget)
		r.Append(20, 30, e)
		if got, next, ok := r.Read(25, 0, nil); !ok || next != 30 || !bytes.Equal(got, e) {
			t.Fatalf("Read(25) of a budget-sized entry: %d bytes, %d, %v", len(got), next, ok)
		}
		if r.Oldest() != 20 || r.Stats().Bytes != budget {
			t.Fatalf("Oldest %d, %d bytes; want 20, %d", r.Oldest(), r.Stats().Bytes, budget)
		}
	})
}

func TestDiscontinuityResets(t *testing.T) {
	forEachImpl(t, func(t *testing.T, newStore func(int) store) {
		r := newStore(1 << 20)
		r.Append(0, 10, makeEntry(0, 10, 0, 100))
		r.Append(10, 20, makeEntry(10, 20, 0, 100))
		// The log was truncated at 15 and rewritten by a new leader.
		e := makeEntry(15, 25, 1, 300)
		r.Append(15, 25, e)
		if r.Oldest() != 15 || r.Next() != 25 {
			t.Fatalf("Oldest, Next = %d, %d, want 15, 25", r.Oldest(), r.Next())
		}
		for _, off := range []int64{0, 10, 14, 25} {
			if _, _, ok := r.Read(off, 1<<20, nil); ok {
				t.Fatalf("Read(%d) hit after reset", off)
			}
		}
		if got, next, ok := r.Read(15, 1<<20, nil); !ok || next != 25 || !bytes.Equal(got, e) {
			t.Fatalf("Read(15) = %d bytes, %d, %v", len(got), next, ok)
		}
		// A jump forward resets too.
		r.Append(100, 101, makeEntry(100, 101, 2, 50))
		if r.Oldest() != 100 || r.Next() != 101 {
			t.Fatalf("Oldest, Next = %d, %d, want 100, 101", r.Oldest(), r.Next())
		}
		if _, _, ok := r.Read(20, 0, nil); ok {
			t.Fatal("Read(20) hit after forward jump")
		}
	})
}

func TestReset(t *testing.T) {
	forEachImpl(t, func(t *testing.T, newStore func(int) store) {
		r := newStore(1 << 20)
		for i := range int64(10) {
			r.Append(i*10, i*10+10, makeEntry(i*10, i*10+10, 0, 200))
		}
		r.Reset()
		if r.Oldest() != 0 || r.Next() != 0 || r.Stats().Bytes != 0 {
			t.Fatalf("after Reset: Oldest %d, Next %d, %d bytes", r.Oldest(), r.Next(), r.Stats().Bytes)
		}
		if _, _, ok := r.Read(50, 0, nil); ok {
			t.Fatal("hit after Reset")
		}
		// Any offset may follow a Reset.
		r.Append(7, 8, makeEntry(7, 8, 1, 40))
		if _, next, ok := r.Read(7, 0, nil); !ok || next != 8 || r.Oldest() != 7 {
			t.Fatalf("Read(7) after Reset: next %d, ok %v, Oldest %d", next, ok, r.Oldest())
		}
	})
}

func TestReadAcrossChunks(t *testing.T) {
	// Chunks of 4 KiB; entries of 1000 bytes: four per chunk.
	r := NewLockFree(32 << 10)
	var m model
	for i := range int64(30) {
		e := makeEntry(i*3, i*3+3, 0, 1000)
		r.Append(i*3, i*3+3, e)
		m.append(i*3, i*3+3, e)
	}
	if r.last.Load()-r.first.Load() < 5 {
		t.Fatalf("want several chunks, have %d", r.last.Load()-r.first.Load())
	}
	for off := r.Oldest(); off < r.Next(); off++ {
		got, next, ok := r.Read(off, 1<<20, nil)
		want, wantNext := m.read(off, 1<<20)
		if !ok || next != wantNext || next != r.Next() || !bytes.Equal(got, want) {
			t.Fatalf("Read(%d): %d bytes, next %d, ok %v; want %d bytes, next %d", off, len(got), next, ok, len(want), wantNext)
		}
	}
}

func TestIndexFullSealsChunk(t *testing.T) {
	// 4 KiB chunks index 4096/256+1 = 17 entries; 64-byte entries fill the
	// index first.
	r := NewLockFree(32 << 10)
	var m model
	for i := range int64(1000) {
		e := makeEntry(i, i+1, 0, 64)
		r.Append(i, i+1, e)
		m.append(i, i+1, e)
	}
	for off := r.Oldest(); off < r.Next(); off++ {
		got, next, ok := r.Read(off, 1<<20, nil)
		want, wantNext := m.read(off, 1<<20)
		if !ok || next != wantNext || !bytes.Equal(got, want) {
			t.Fatalf("Read(%d): %d bytes, next %d, ok %v", off, len(got), next, ok)
		}
	}
}

func TestDifferential(t *testing.T) {
	forEachImpl(t, func(t *testing.T, newStore func(int) store) {
		for seed := range uint64(20) {
			rng := rand.New(rand.NewPCG(seed, 99))
			budget := 1<<10 + rng.IntN(64<<10)
			r := newStore(budget)
			var m model
			off := int64(rng.IntN(1000))
			gen := uint64(0)
			for range 3000 {
				switch p := rng.IntN(100); {
				case p < 2:
					r.Reset()
					m.ents = nil
					off = int64(rng.IntN(1000))
					gen++
				case p < 5:
					// Truncate (or jump) and continue from elsewhere.
					off += int64(rng.IntN(40)) - 30
					gen++
				case p < 55:
					n := int64(1 + rng.IntN(5))
					size := entryHeader + rng.IntN(min(4<<10, budget+budget/8))
					e := makeEntry(off, off+n, gen, size)
					r.Append(off, off+n, e)
					if size > budget {
						m.ents = nil
					} else {
						m.append(off, off+n, e)
					}
					off += n
				default:
					o := off - int64(rng.IntN(200))
					maxBytes := rng.IntN(8 << 10)
					got, next, ok := r.Read(o, maxBytes, nil)
					if !ok {
						if o >= r.Oldest() && o < r.Next() {
							t.Fatalf("seed %d: Read(%d) missed inside [%d, %d)", seed, o, r.Oldest(), r.Next())
						}
						continue
					}
					want, wantNext := m.read(o, maxBytes)
					if next != wantNext || !bytes.Equal(got, want) {
						t.Fatalf("seed %d: Read(%d, %d) = %d bytes, next %d; want %d bytes, next %d",
							seed, o, maxBytes, len(got), next, len(want), wantNext)
					}
				}
				if s := r.Stats(); s.Bytes > uint64(budget) {
					t.Fatalf("seed %d: holding %d bytes, budget %d", seed, s.Bytes, budget)
				}
			}
		}
	})
}

func TestAppendRejectsEmptyEntries(t *testing.T) {
	forEachImpl(t, func(t *testing.T, newStore func(int) store) {
		for _, tc := range []struct {
			base, next int64
			data       []byte
		}{{5, 5, []byte("x")}, {5, 4, []byte("x")}, {5, 6, nil}} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("Append(%d, %d, %d bytes) did not panic", tc.base, tc.next, len(tc.data))
					}
				}()
				newStore(100).Append(tc.base, tc.next, tc.data)
			}()
		}
	})
}

func TestAppendCopies(t *testing.T) {
	forEachImpl(t, func(t *testing.T, newStore func(int) store) {
		r := newStore(1 << 10)
		data := []byte("hello")
		r.Append(0, 1, data)
		copy(data, "XXXXX")
		if got, _, _ := r.Read(0, 0, nil); string(got) != "hello" {
			t.Fatalf("Read = %q, want the bytes as appended", got)
		}
	})
}

func TestNewPanicsOnBadBudget(t *testing.T) {
	for name, f := range map[string]func(){
		"New":         func() { New(0) },
		"NewLockFree": func() { NewLockFree(-1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s with a bad budget did not panic", name)
				}
			}()
			f()
		}()
	}
}

func TestAppendDoesNotAllocate(t *testing.T) {
	forEachImpl(t, func(t *testing.T, newStore func(int) store) {
		r := newStore(1 << 20)
		data := makeEntry(0, 1, 0, 1000)
		off := int64(0)
		appendOne := func() {
			r.Append(off, off+1, data)
			off++
		}
		for range 4 << 10 { // fill the ring and wrap it several times
			appendOne()
		}
		if allocs := testing.AllocsPerRun(5000, appendOne); allocs != 0 {
			t.Fatalf("Append allocates %v times per call once the ring is full", allocs)
		}
	})
}

func TestPinnedChunkIsNotReused(t *testing.T) {
	const size = 1000
	r := NewLockFree(32 << 10) // 4 KiB chunks, four entries each
	for i := range int64(4) {
		r.Append(i, i+1, makeEntry(i, i+1, 0, size))
	}
	f := r.first.Load()
	c := r.pin(f)
	if c == nil {
		t.Fatal("cannot pin the oldest chunk")
	}
	want := bytes.Clone(c.data[:c.used])
	// Wrap the ring many times: the pinned chunk is evicted but must not be
	// written again while pinned.
	for i := int64(4); i < 400; i++ {
		r.Append(i, i+1, makeEntry(i, i+1, 0, size))
		if c.seq.Load() != f {
			t.Fatalf("pinned chunk restarted as chunk %d", c.seq.Load())
		}
	}
	if r.pin(f) != nil {
		t.Fatal("evicted chunk pinned again")
	}
	if !bytes.Equal(c.data[:len(want)], want) || c.seq.Load() != f {
		t.Fatal("pinned chunk was recycled")
	}
	c.unpin()
	// Once unpinned, it is reused again eventually... or left to the GC:
	// either way the ring keeps working.
	for i := int64(400); i < 500; i++ {
		r.Append(i, i+1, makeEntry(i, i+1, 0, size))
	}
	if _, next, ok := r.Read(499, 0, nil); !ok || next != 500 {
		t.Fatalf("Read(499) = %d, %v", next, ok)
	}
}
