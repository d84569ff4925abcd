package segment

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

const (
	benchBatch    = 16 << 10
	benchSegment  = 64 << 20
	benchRetained = 4 * benchSegment
)

func benchOptions(p FsyncPolicy) Options {
	return Options{SegmentBytes: benchSegment, RetentionBytes: benchRetained, Fsync: p}
}

// BenchmarkAppend appends 16 KiB batches from one goroutine under each fsync
// policy (AppendSync under always). Compare with BenchmarkPwriteLoop.
func BenchmarkAppend(b *testing.B) {
	for _, p := range []string{"never", "interval:100", "always"} {
		b.Run(p, func(b *testing.B) {
			pol, _ := ParseFsyncPolicy(p)
			l := mustOpen(b, b.TempDir(), benchOptions(pol))
			defer l.Close()
			batch := makeBatch(rand.New(rand.NewPCG(1, 1)), 16, benchBatch-64, 1, 1)
			ctx := context.Background()
			spans := make([]Span, 0, 1)
			b.SetBytes(benchBatch)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				var err error
				if pol.Mode == FsyncAlways {
					_, err = l.AppendSync(ctx, batch, 1)
				} else {
					_, err = l.AppendSpans(batch, 1, spans)
				}
				if err != nil {
					b.Fatal(err)
				}
				if i%(benchSegment/benchBatch) == 0 {
					if _, err := l.EnforceRetention(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkPwriteLoop is the baseline for BenchmarkAppend/never: a plain
// sequential pwrite of the same batches into preallocated files of the same
// size, with the same retention, and nothing else.
func BenchmarkPwriteLoop(b *testing.B) {
	b.Run("plain", func(b *testing.B) { pwriteLoop(b, false) })
	// fsync-at-roll also fsyncs each file when it is full, as Log does when
	// it seals a segment under fsync always (the other policies do it in the
	// background): it isolates the cost of that fsync.
	b.Run("fsync-at-roll", func(b *testing.B) { pwriteLoop(b, true) })
}

func pwriteLoop(b *testing.B, syncAtRoll bool) {
	dir := b.TempDir()
	batch := makeBatch(rand.New(rand.NewPCG(1, 1)), 16, benchBatch-64, 1, 1)
	var files []string
	var f *os.File
	var pos int64
	newFile := func() {
		if f != nil {
			if syncAtRoll {
				unix.Fdatasync(int(f.Fd()))
			}
			f.Truncate(pos)
			f.Close()
		}
		name := filepath.Join(dir, fmt.Sprintf("%020d.log", len(files)))
		var err error
		if f, err = os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644); err != nil {
			b.Fatal(err)
		}
		if err := unix.Fallocate(int(f.Fd()), 0, 0, benchSegment); err != nil {
			b.Fatal(err)
		}
		files = append(files, name)
		if len(files) > benchRetained/benchSegment {
			os.Remove(files[0])
			files = files[1:]
		}
		pos = 0
	}
	newFile()
	defer func() { f.Close() }()
	b.SetBytes(benchBatch)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if pos+benchBatch > benchSegment {
			newFile()
		}
		if _, err := f.WriteAt(batch, pos); err != nil {
			b.Fatal(err)
		}
		pos += benchBatch
	}
}

// BenchmarkConcurrentAlways runs 16 appenders of 16 KiB batches under fsync
// always: group commit (AppendSync) against one fsync per batch (Append, then
// an fsync of the segment serialised by a mutex, as a log without group
// commit would do).
func BenchmarkConcurrentAlways(b *testing.B) {
	par := (16 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0)
	for _, mode := range []string{"group-commit", "fsync-per-batch"} {
		b.Run(mode, func(b *testing.B) {
			pol := FsyncPolicy{Mode: FsyncAlways}
			if mode != "group-commit" {
				pol = FsyncPolicy{Mode: FsyncNever}
			}
			l := mustOpen(b, b.TempDir(), benchOptions(pol))
			defer l.Close()
			var syncMu sync.Mutex
			b.SetBytes(benchBatch)
			b.ReportAllocs()
			b.SetParallelism(par)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				batch := makeBatch(rand.New(rand.NewPCG(1, 1)), 16, benchBatch-64, 1, 1)
				ctx := context.Background()
				for pb.Next() {
					if mode == "group-commit" {
						if _, err := l.AppendSync(ctx, batch, 1); err != nil {
							b.Fatal(err)
						}
						continue
					}
					if _, err := l.Append(batch, 1); err != nil {
						b.Fatal(err)
					}
					l.mu.Lock()
					s := l.active
					s.acquire()
					l.mu.Unlock()
					syncMu.Lock()
					err := s.logF.Sync()
					syncMu.Unlock()
					s.release()
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkRead reads by random offset from 64 MiB of 16 KiB batches, one
// batch or up to 1 MiB per read (verifying every checksum served).
func BenchmarkRead(b *testing.B) {
	l := mustOpen(b, b.TempDir(), Options{SegmentBytes: benchSegment / 2})
	defer l.Close()
	batch := makeBatch(rand.New(rand.NewPCG(1, 1)), 16, benchBatch-64, 1, 1)
	for range benchSegment / benchBatch {
		if _, err := l.Append(batch, 1); err != nil {
			b.Fatal(err)
		}
	}
	for _, max := range []int{1, 1 << 20} {
		b.Run(fmt.Sprintf("max=%d", max), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(2, 2))
			var n int64
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				v, err := l.Read(rng.Int64N(l.NextOffset()), max)
				if err != nil {
					b.Fatal(err)
				}
				n += int64(len(v.Bytes()))
				v.Release()
			}
			b.SetBytes(n / int64(b.N))
		})
	}
}

// BenchmarkAppendSmallBatches appends 64 batches of 256 bytes per call under
// fsync never: the per-batch work (header checks, stamping, indexing)
// dominates over the pwrite.
func BenchmarkAppendSmallBatches(b *testing.B) {
	l := mustOpen(b, b.TempDir(), benchOptions(FsyncPolicy{Mode: FsyncNever}))
	defer l.Close()
	rng := rand.New(rand.NewPCG(1, 1))
	var req []byte
	for range 64 {
		req = append(req, makeBatch(rng, 4, 256-64, 1, 1)...)
	}
	spans := make([]Span, 0, 64)
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := l.AppendSpans(req, 1, spans); err != nil {
			b.Fatal(err)
		}
		if i%(benchSegment/len(req)) == 0 {
			if _, err := l.EnforceRetention(); err != nil {
				b.Fatal(err)
			}
		}
	}
}
