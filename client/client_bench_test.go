package client

import (
	"fmt"
	"testing"

	"github.com/rafka/rafka/wire"
)

// BenchmarkDecodeRecords measures turning one data frame of 100-record
// batches into Records: allocations are per frame (payload copy, record slab,
// pointer slice), not per record.
func BenchmarkDecodeRecords(b *testing.B) {
	for _, codec := range []wire.Codec{wire.CodecNone, wire.CodecLZ4} {
		b.Run(codec.String(), func(b *testing.B) {
			bb := wire.NewBatchBuilder()
			value := make([]byte, 100)
			for i := range 100 {
				bb.Append(int64(1000+i), fmt.Appendf(nil, "key-%d", i), value, nil)
			}
			payload, err := bb.Build(codec)
			if err != nil {
				b.Fatal(err)
			}
			var it wire.RecordIter
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				recs, err := decodeRecords(payload, topicPartition{"t", 0}, 0, &it)
				if err != nil || len(recs) != 100 {
					b.Fatal(len(recs), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/record")
		})
	}
}

// BenchmarkDecodeBatch measures what PollBatch costs per data frame: one
// frame of ten 100-record batches indexed in place. Uncompressed frames
// allocate nothing once the pooled index has grown; an lz4 batch allocates
// the buffer it is decompressed into (one per stored batch, not per record).
func BenchmarkDecodeBatch(b *testing.B) {
	for _, codec := range []wire.Codec{wire.CodecNone, wire.CodecLZ4} {
		for _, size := range []int{100, 1024} {
			b.Run(fmt.Sprintf("%v/%dB", codec, size), func(b *testing.B) {
				const batches, perBatch = 10, 100
				var payload []byte
				value := make([]byte, size)
				for i := range batches {
					bb := wire.NewBatchBuilder()
					for j := range perBatch {
						bb.Append(int64(1000+j), fmt.Appendf(nil, "key-%d", j), value, nil)
					}
					batch, err := bb.Build(codec)
					if err != nil {
						b.Fatal(err)
					}
					wire.SetBaseOffset(batch, int64(i*perBatch))
					payload = append(payload, batch...)
				}
				var it wire.RecordIter
				b.SetBytes(int64(len(payload)))
				b.ReportAllocs()
				for b.Loop() {
					bt := newBatch(topicPartition{"t", 0}, nil)
					if err := decodeBatch(bt, payload, 0, &it); err != nil || bt.Len() != batches*perBatch {
						b.Fatal(bt.Len(), err)
					}
					var n int
					for _, r := range bt.Records() {
						n += len(r.Value)
					}
					if n != batches*perBatch*size {
						b.Fatal(n)
					}
					bt.free()
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batches*perBatch), "ns/record")
			})
		}
	}
}
