package hotstore

import (
	"bytes"
	"runtime"
	"testing"
)

// allocBytes returns the bytes f allocates on the heap.
func allocBytes(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestIdleRingHoldsLittle: a broker makes one ring per partition, so a ring
// nobody appends to must cost next to nothing whatever its budget, and one
// small entry must not cost the budget (or a budget-sized chunk).
func TestIdleRingHoldsLittle(t *testing.T) {
	const budget = 8 << 20
	forEachImpl(t, func(t *testing.T, newStore func(int) store) {
		var r store
		if n := allocBytes(func() { r = newStore(budget) }); n >= 64<<10 {
			t.Fatalf("an empty ring with a %d-byte budget allocated %d bytes", budget, n)
		}
		if n := allocBytes(func() { r.Append(0, 1, make([]byte, 1<<10)) }); n >= 256<<10 {
			t.Fatalf("one 1 KiB entry made the ring allocate %d bytes", n)
		}
		if _, next, ok := r.Read(0, 0, nil); !ok || next != 1 {
			t.Fatalf("Read(0) = %d, %v", next, ok)
		}
	})
}

// TestGrowthKeepsEntries appends entries of growing sizes, so the ring grows
// several times and then evicts, and checks after every append that every
// entry held reads back exactly as appended, from every offset.
func TestGrowthKeepsEntries(t *testing.T) {
	const budget = 2 << 20
	forEachImpl(t, func(t *testing.T, newStore func(int) store) {
		r := newStore(budget)
		var m model
		off := int64(0)
		size := entryHeader
		var total uint64
		for i := 0; total < 3*budget; i++ {
			size = min(size+size/4+1, 256<<10)
			e := makeEntry(off, off+2, 0, size)
			r.Append(off, off+2, e)
			m.append(off, off+2, e)
			off += 2
			total += uint64(size)
			m.trim(r.Oldest() - 1)
			if s := r.Stats(); s.Bytes > budget {
				t.Fatalf("append %d: holding %d bytes, budget %d", i, s.Bytes, budget)
			}
			if r.Next() != off {
				t.Fatalf("append %d: Next = %d, want %d", i, r.Next(), off)
			}
			// One entry from every offset, and everything from the oldest.
			for at := r.Oldest(); at <= off; at++ {
				o, maxBytes := at, 0
				if at == off {
					o, maxBytes = r.Oldest(), budget
				}
				got, next, ok := r.Read(o, maxBytes, nil)
				if !ok {
					t.Fatalf("append %d: Read(%d) missed inside [%d, %d)", i, o, r.Oldest(), off)
				}
				want, wantNext := m.read(o, maxBytes)
				if next != wantNext || !bytes.Equal(got, want) {
					t.Fatalf("append %d: Read(%d) = %d bytes, next %d; want %d bytes, next %d", i, o, len(got), next, len(want), wantNext)
				}
			}
		}
		if r.Oldest() == 0 {
			t.Fatal("the ring never evicted")
		}
	})
}
