package segment

import (
	"fmt"
	"testing"
)

// BenchmarkDigest digests a whole log of batches of each size: what a
// consistency check costs per byte when nothing is cached (the reads
// verify every checksum, as all reads do).
func BenchmarkDigest(b *testing.B) {
	for _, size := range []int{1 << 10, 16 << 10, 256 << 10} {
		b.Run(fmt.Sprintf("batch=%dKiB", size>>10), func(b *testing.B) {
			rng := newRand(b)
			l := mustOpen(b, b.TempDir(), Options{SegmentBytes: 8 << 20})
			defer l.Close()
			for l.Size() < 32<<20 {
				mustAppend(b, l, makeBatch(rng, int32(max(1, size/1024)), size, 1000, 1000))
			}
			b.SetBytes(l.Size())
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := l.Digest(0, l.NextOffset(), nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
