package hotstore

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	benchBudget        = 8 << 20
	benchOffsetsPerEnt = 10 // records per entry
	benchLagEntries    = 8  // readers read within the newest entries
)

var benchEntrySizes = []int{1 << 10, 4 << 10, 16 << 10}

// BenchmarkAppend measures the writer alone.
func BenchmarkAppend(b *testing.B) {
	for _, size := range benchEntrySizes {
		for _, impl := range impls {
			b.Run(fmt.Sprintf("entry=%dKiB/%s", size>>10, impl.name), func(b *testing.B) {
				r := impl.new(benchBudget)
				data := makeEntry(0, 1, 0, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				off := int64(0)
				for b.Loop() {
					r.Append(off, off+benchOffsetsPerEnt, data)
					off += benchOffsetsPerEnt
				}
			})
		}
	}
}

// BenchmarkTailRead measures readers fetching one entry near the tail while
// one writer appends, either as fast as it can (writer=max) or paced at
// 256 MB/s (writer=256MBps, more than a partition takes on this machine's
// network). The bytes per operation are the readers' (one entry per read);
// the writer's achieved rate is reported as writer-MB/s, and reads that missed
// as miss-%.
func BenchmarkTailRead(b *testing.B) {
	// The implementations are the innermost level so that each pair runs
	// back to back, under the same load.
	for _, rate := range []int{0, 256} {
		for _, size := range benchEntrySizes {
			for _, readers := range []int{1, 4, 16} {
				for _, impl := range impls {
					w := "max"
					if rate > 0 {
						w = fmt.Sprintf("%dMBps", rate)
					}
					name := fmt.Sprintf("writer=%s/entry=%dKiB/readers=%d/%s", w, size>>10, readers, impl.name)
					b.Run(name, func(b *testing.B) { benchTailRead(b, impl.new(benchBudget), size, readers, rate) })
				}
			}
		}
	}
}

// benchTailRead runs the benchmark; rateMBps 0 means an unpaced writer.
func benchTailRead(b *testing.B, r store, size, readers, rateMBps int) {
	data := makeEntry(0, 1, 0, size)
	// Fill the ring so reads near the tail hit from the start.
	off := int64(0)
	for range 2 * benchBudget / size {
		r.Append(off, off+benchOffsetsPerEnt, data)
		off += benchOffsetsPerEnt
	}
	// The writer publishes its tail here, so choosing an offset costs both
	// implementations the same.
	var tail atomic.Int64
	tail.Store(off)

	var stop atomic.Bool
	var writerBytes atomic.Int64
	var writer sync.WaitGroup
	writer.Go(func() {
		off := tail.Load()
		began := time.Now()
		for !stop.Load() {
			if rateMBps > 0 && writerBytes.Load() > int64(time.Since(began).Seconds()*float64(rateMBps)*1e6) {
				time.Sleep(50 * time.Microsecond) // ahead of the pace
				continue
			}
			r.Append(off, off+benchOffsetsPerEnt, data)
			off += benchOffsetsPerEnt
			tail.Store(off)
			writerBytes.Add(int64(size))
		}
	})

	var misses atomic.Int64
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	written := writerBytes.Load()
	var wg sync.WaitGroup
	for i := range readers {
		reads := b.N / readers
		if i < b.N%readers {
			reads++
		}
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 3))
			buf := make([]byte, 0, size)
			missed := int64(0)
			for range reads {
				o := tail.Load() - 1 - rng.Int64N(benchLagEntries*benchOffsetsPerEnt)
				var ok bool
				buf, _, ok = r.Read(o, 0, buf[:0])
				if !ok {
					missed++
				}
			}
			misses.Add(missed)
		})
	}
	wg.Wait()
	b.StopTimer()
	elapsed := time.Since(start)
	written = writerBytes.Load() - written
	stop.Store(true)
	writer.Wait()
	b.ReportMetric(float64(written)/1e6/elapsed.Seconds(), "writer-MB/s")
	b.ReportMetric(100*float64(misses.Load())/float64(b.N), "miss-%")
}
