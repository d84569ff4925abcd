package raftlog

import (
	"fmt"
	"testing"

	"github.com/rafka/rafka/segment"
	"github.com/rafka/rafka/wire"
	pb "go.etcd.io/raft/v3/raftpb"
)

// BenchmarkPartitionSave compares a Save of one entry holding a batch with a
// plain segment Append of the same batch (plus WaitDurable), for batch sizes
// and fsync policies: the cost of keeping the raft log in the segment log.
func BenchmarkPartitionSave(b *testing.B) {
	for _, size := range []int{16 << 10, 1 << 20} {
		for _, mode := range []segment.FsyncMode{segment.FsyncNever, segment.FsyncAlways} {
			lo := segment.Options{SegmentBytes: 256 << 20, Fsync: segment.FsyncPolicy{Mode: mode}, RetentionBytes: 64 << 20}
			batch := benchBatch(b, size)
			name := fmt.Sprintf("batch=%dKiB/fsync=%s", size>>10, lo.Fsync)
			b.Run(name+"/partition", func(b *testing.B) {
				s := openP(b, b.TempDir(), PartitionOptions{Log: lo})
				defer s.Close()
				b.SetBytes(int64(size))
				b.ReportAllocs()
				ents := []*pb.Entry{{Term: new(uint64(1)), Type: pb.EntryNormal.Enum(), Data: batch}}
				var index uint64
				for b.Loop() {
					index++
					ents[0].Index = &index
					if err := s.Save(nil, ents, nil); err != nil {
						b.Fatal(err)
					}
					if index%256 == 0 {
						s.Log().EnforceRetention()
					}
				}
			})
			b.Run(name+"/segment", func(b *testing.B) {
				l, err := segment.Open(b.TempDir(), lo)
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				b.SetBytes(int64(size))
				b.ReportAllocs()
				buf := make([]byte, len(batch))
				var spans []segment.Span
				n := 0
				for b.Loop() {
					copy(buf, batch) // Save copies too: raft shares the entry
					r, err := l.AppendSpans(buf, 1, spans)
					if err != nil {
						b.Fatal(err)
					}
					spans = r.Spans
					if err := l.WaitDurable(b.Context(), r.NextOffset); err != nil {
						b.Fatal(err)
					}
					if n++; n%256 == 0 {
						l.EnforceRetention()
					}
				}
			})
		}
	}
}

func benchBatch(b *testing.B, size int) []byte {
	bb := wire.NewBatchBuilder()
	val := make([]byte, 1000)
	for bb.Size()+len(val)+32 < size {
		bb.Append(1, nil, val, nil)
	}
	out, err := bb.Build(wire.CodecNone)
	if err != nil {
		b.Fatal(err)
	}
	return out
}
