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

// TestRingGrowthCarriesOnlyTheTail: when a Ring's buffer doubles, the newest
// entries (up to growKeep bytes) move to the new buffer and stay readable,
// so readers at the tail keep hitting, while the older ones are dropped
// rather than copied (the copy stalled the appender). Before the first
// growth, and once grown to the budget, nothing is dropped early.
func TestRingGrowthCarriesOnlyTheTail(t *testing.T) {
	const budget, size = 1 << 20, 1 << 10
	r := New(budget)
	var prevHeld uint64
	for i := int64(0); i < 2*budget/size; i++ {
		before := len(r.buf)
		e := makeEntry(i, i+1, 0, size)
		r.Append(i, i+1, e)
		grew := len(r.buf) != before && before > 0
		held := r.Stats().Bytes
		switch {
		case grew && held > growKeep+size:
			t.Fatalf("append %d: the buffer grew from %d to %d bytes and kept %d bytes, want at most %d", i, before, len(r.buf), held, growKeep+size)
		case !grew && len(r.buf) < budget && held != prevHeld+size:
			t.Fatalf("append %d: %d bytes held after %d, without a growth or a full buffer", i, held, prevHeld)
		}
		prevHeld = held
		// The entry before the new one survives every growth.
		if i > 0 {
			got, next, ok := r.Read(i-1, 0, nil)
			if !ok || next != i || !bytes.Equal(got, makeEntry(i-1, i, 0, size)) {
				t.Fatalf("append %d (buffer %d -> %d bytes): Read(%d) = %d bytes, next %d, hit %v", i, before, len(r.buf), i-1, len(got), next, ok)
			}
		}
	}
	if len(r.buf) != budget {
		t.Fatalf("buffer %d bytes after appending twice the budget, want %d", len(r.buf), budget)
	}
	if held := r.Stats().Bytes; held < budget-size {
		t.Fatalf("a full ring holds %d bytes of its %d-byte budget", held, budget)
	}
}
