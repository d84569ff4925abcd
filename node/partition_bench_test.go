package node

import (
	"testing"

	"github.com/rafka/rafka/segment"
	"github.com/rafka/rafka/wire"
)

// BenchmarkPartitionAppend appends requests of 64 batches (4 records of 32
// bytes each) to a partition with its ring, under fsync never: the broker's
// per-batch work on the produce path.
func BenchmarkPartitionAppend(b *testing.B) {
	p, err := openPartition("t", 0, b.TempDir(), segment.Options{SegmentBytes: 64 << 20, RetentionBytes: 256 << 20}, 8<<20)
	if err != nil {
		b.Fatal(err)
	}
	defer p.close()
	bb := wire.NewBatchBuilder()
	var req []byte
	for range 64 {
		bb.Reset()
		for range 4 {
			bb.Append(1, nil, make([]byte, 32), nil)
		}
		batch, err := bb.Build(wire.CodecNone)
		if err != nil {
			b.Fatal(err)
		}
		req = append(req, batch...)
	}
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := p.append(req); err != nil {
			b.Fatal(err)
		}
		if i%((64<<20)/len(req)) == 0 {
			if _, err := p.log.EnforceRetention(); err != nil {
				b.Fatal(err)
			}
		}
	}
}
