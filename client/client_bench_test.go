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
