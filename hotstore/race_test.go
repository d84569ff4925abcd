package hotstore

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// TestConcurrentReadersSeeExactBytes runs one writer appending patterned
// entries (with truncations and resets along the way) against readers that
// check every hit byte for byte. Run it with -race: the readers share memory
// with the writer through the ring only. The larger budget makes the rings
// grow while readers read.
func TestConcurrentReadersSeeExactBytes(t *testing.T) {
	for _, budget := range []int{64 << 10, 4 << 20} {
		t.Run(fmt.Sprintf("budget=%dKiB", budget>>10), func(t *testing.T) { testConcurrentReaders(t, budget) })
	}
}

func testConcurrentReaders(t *testing.T, budget int) {
	const (
		minAppends = 5000
		maxAppends = 1 << 20 // the writer keeps going while readers read
		readers    = 4
		reads      = 6000 // per reader
	)
	forEachImpl(t, func(t *testing.T, newStore func(int) store) {
		r := newStore(budget)
		start := make(chan struct{}) // closed after the first append
		var wg, readersWG sync.WaitGroup
		var readersDone atomic.Bool
		var hits, misses atomic.Int64

		wg.Go(func() {
			rng := rand.New(rand.NewPCG(7, 7))
			off := int64(0)
			gen := uint64(0)
			for i := range maxAppends {
				if i == 1 {
					close(start)
				}
				if i >= minAppends && readersDone.Load() {
					break
				}
				switch {
				case i%997 == 996:
					r.Reset()
					gen++
				case i%331 == 330:
					off -= int64(rng.IntN(50)) // truncation: rewrite a suffix
					gen++
				}
				n := int64(1 + rng.IntN(10))
				r.Append(off, off+n, makeEntry(off, off+n, gen, entryHeader+rng.IntN(4<<10)))
				off += n
			}
		})
		for i := range readers {
			readersWG.Go(func() {
				<-start
				rng := rand.New(rand.NewPCG(uint64(i), 1))
				buf := make([]byte, 0, 64<<10)
				for range reads {
					var o int64
					if rng.IntN(4) == 0 {
						o = r.Oldest() + rng.Int64N(5) // races with eviction
					} else {
						o = r.Next() - 1 - rng.Int64N(60) // near the tail
					}
					maxBytes := rng.IntN(16 << 10)
					out, next, ok := r.Read(o, maxBytes, buf[:0])
					if !ok {
						misses.Add(1)
						continue
					}
					hits.Add(1)
					entries, err := checkRun(out, o, next)
					if err != nil {
						t.Errorf("Read(%d, %d) -> next %d: %v", o, maxBytes, next, err)
						return
					}
					if entries > 1 && len(out) > maxBytes {
						t.Errorf("Read(%d, %d) returned %d entries, %d bytes", o, maxBytes, entries, len(out))
						return
					}
				}
			})
		}
		readersWG.Wait()
		readersDone.Store(true)
		wg.Wait()
		s := r.Stats()
		if s.Hits != uint64(hits.Load()) || s.Misses != uint64(misses.Load()) {
			t.Errorf("Stats = %+v, readers counted %d hits, %d misses", s, hits.Load(), misses.Load())
		}
		if hits.Load() == 0 {
			t.Error("no read hit")
		}
		t.Logf("%d hits, %d misses", hits.Load(), misses.Load())
	})
}
