package replica

import (
	"testing"

	"github.com/rafka/rafka/segment"
	"github.com/rafka/rafka/wire"
)

// BenchmarkPartitionAppend appends requests of 64 batches (4 records of 32
// bytes each) to a partition with its ring, under fsync never: the broker's
// per-batch work on the produce path.
func BenchmarkPartitionAppend(b *testing.B) {
	p, err := Open(Config{Topic: "t", Dir: b.TempDir(), HotstoreBytes: 8 << 20,
		Log: segment.Options{SegmentBytes: 64 << 20, RetentionBytes: 256 << 20}})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	req := makeRequest(b, 64, 4, 32)
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, _, err := p.Append(req, wire.AcksLeader); err != nil {
			b.Fatal(err)
		}
		if i%((64<<20)/len(req)) == 0 {
			if _, err := p.EnforceRetention(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// makeRequest builds a produce payload of n batches of records records with
// values of size bytes.
func makeRequest(tb testing.TB, n, records, size int) []byte {
	tb.Helper()
	bb := wire.NewBatchBuilder()
	var req []byte
	for range n {
		bb.Reset()
		for range records {
			bb.Append(1, nil, make([]byte, size), nil)
		}
		batch, err := bb.Build(wire.CodecNone)
		if err != nil {
			tb.Fatal(err)
		}
		req = append(req, batch...)
	}
	return req
}
