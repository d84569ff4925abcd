package wire

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// benchBatchBytes is the target size of one benchmark batch (before
// compression), about what a producer lingering a few ms collects.
const benchBatchBytes = 64 << 10

// benchValue returns a value that compresses roughly like JSON events: a
// fixed structure with random digits.
func benchValue(rng *rand.Rand, size int) []byte {
	v := make([]byte, 0, size)
	for len(v) < size {
		v = fmt.Appendf(v, `{"id":%d,"user":"u%04d","amount":%d.%02d},`,
			rng.Uint32(), rng.IntN(10000), rng.IntN(1000), rng.IntN(100))
	}
	return v[:size]
}

type benchShape struct {
	name      string
	valueSize int
	codec     Codec
}

func benchShapes() []benchShape {
	var s []benchShape
	for _, c := range []Codec{CodecNone, CodecLZ4} {
		s = append(s, benchShape{"100B/" + c.String(), 100, c}, benchShape{"1KiB/" + c.String(), 1024, c})
	}
	return s
}

type benchInput struct {
	keys, values [][]byte
	headers      []Header
}

func newBenchInput(valueSize int) benchInput {
	rng := rand.New(rand.NewPCG(1, uint64(valueSize)))
	n := benchBatchBytes / valueSize
	in := benchInput{headers: []Header{{Key: "trace-id", Value: []byte("4bf92f3577b34da6")}}}
	for i := range n {
		in.keys = append(in.keys, fmt.Appendf(nil, "user-%d", i%97))
		in.values = append(in.values, benchValue(rng, valueSize))
	}
	return in
}

func (in benchInput) valueBytes() int64 {
	var n int
	for _, v := range in.values {
		n += len(v)
	}
	return int64(n)
}

func reportRecords(b *testing.B, perOp int) {
	b.ReportMetric(float64(b.N)*float64(perOp)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkBatchBuild(b *testing.B) {
	for _, s := range benchShapes() {
		b.Run(s.name, func(b *testing.B) {
			in := newBenchInput(s.valueSize)
			bb := NewBatchBuilder()
			var dst []byte
			b.SetBytes(in.valueBytes())
			b.ReportAllocs()
			for b.Loop() {
				bb.Reset()
				for i := range in.values {
					bb.Append(int64(i), in.keys[i], in.values[i], in.headers)
				}
				var err error
				if dst, err = bb.AppendBatch(dst[:0], s.codec); err != nil {
					b.Fatal(err)
				}
			}
			reportRecords(b, len(in.values))
			b.ReportMetric(float64(len(dst))/float64(bb.Size()), "ratio")
		})
	}
}

// BenchmarkBatchFinish is what a producer's sink pays per lz4 batch once
// the records are appended: "finish" compresses in Finish (as the sink did
// for every batch), "finish-after-compress" is Finish of a batch whose
// records Compress already compressed (as Produce now does for full
// batches, outside the producer's lock): only the header and checksum.
func BenchmarkBatchFinish(b *testing.B) {
	for _, s := range benchShapes() {
		if s.codec != CodecLZ4 {
			continue
		}
		in := newBenchInput(s.valueSize)
		bb := NewBatchBuilder()
		for i := range in.values {
			bb.Append(int64(i), in.keys[i], in.values[i], in.headers)
		}
		for _, mode := range []string{"finish", "finish-after-compress"} {
			b.Run(s.name+"/"+mode, func(b *testing.B) {
				bb.Compress(s.codec)
				b.SetBytes(in.valueBytes())
				b.ReportAllocs()
				seq := int32(0)
				for b.Loop() {
					if mode == "finish" {
						bb.packed = false // as if records were appended since
					}
					seq++
					bb.SetProducer(1, 0, seq)
					if _, err := bb.Finish(s.codec); err != nil {
						b.Fatal(err)
					}
				}
				reportRecords(b, len(in.values))
			})
		}
	}
}

func BenchmarkBatchIterate(b *testing.B) {
	for _, s := range benchShapes() {
		b.Run(s.name, func(b *testing.B) {
			in := newBenchInput(s.valueSize)
			bb := NewBatchBuilder()
			for i := range in.values {
				bb.Append(int64(i), in.keys[i], in.values[i], in.headers)
			}
			batch, err := bb.Build(s.codec)
			if err != nil {
				b.Fatal(err)
			}
			var it RecordIter
			var r Record
			want := int(in.valueBytes())
			b.SetBytes(int64(want))
			b.ReportAllocs()
			for b.Loop() {
				if err := it.Reset(batch); err != nil {
					b.Fatal(err)
				}
				n := 0
				for it.Next(&r) {
					n += len(r.Value)
				}
				if it.Err() != nil || n != want {
					b.Fatalf("%v, %d value bytes", it.Err(), n)
				}
			}
			reportRecords(b, len(in.values))
		})
	}
}

// produceFrame is a produce request with a 1 KiB batch, as a producer sends it.
func produceFrame(b *testing.B) (*ProduceRequest, []byte) {
	req := &ProduceRequest{Topic: "orders", Partition: 3, Acks: AcksAll, TimeoutMs: 30000}
	bb := NewBatchBuilder()
	bb.Append(1, []byte("k"), benchValue(rand.New(rand.NewPCG(5, 6)), 1000), nil)
	batch, err := bb.Build(CodecNone)
	if err != nil {
		b.Fatal(err)
	}
	return req, batch
}

func BenchmarkFrameEncodeProduce(b *testing.B) {
	req, batch := produceFrame(b)
	fw := NewFrameWriter(io.Discard)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if err := fw.WriteFrame(FrameHeader{API: APIProduce, Corr: 1}, req, batch); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFrameDecodeProduce(b *testing.B) {
	req, batch := produceFrame(b)
	frame := AppendFrame(nil, FrameHeader{API: APIProduce}, req.AppendMsgpack(nil), batch)
	src := bytes.NewReader(frame)
	fr := NewFrameReader(src, 0)
	var got ProduceRequest
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(frame)
		f, err := fr.Next()
		if err != nil {
			b.Fatal(err)
		}
		if err := fr.DecodeHeader(&f, &got); err != nil {
			b.Fatal(err)
		}
		if _, _, err := VerifyBatch(f.Payload, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHeaderCodec compares the hand-written produce request codec with
// msgpack's reflection on the same struct.
func BenchmarkHeaderCodec(b *testing.B) {
	req := &ProduceRequest{Topic: "orders", Partition: 3, Acks: AcksAll, TimeoutMs: 30000}
	enc := req.AppendMsgpack(nil)
	b.Run("encode/hand", func(b *testing.B) {
		b.ReportAllocs()
		var dst []byte
		for b.Loop() {
			dst = req.AppendMsgpack(dst[:0])
		}
	})
	b.Run("encode/reflect", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		e := msgpack.NewEncoder(&buf)
		for b.Loop() {
			buf.Reset()
			if err := e.Encode(req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/hand", func(b *testing.B) {
		b.ReportAllocs()
		var got ProduceRequest
		for b.Loop() {
			if err := got.ParseMsgpack(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/reflect", func(b *testing.B) {
		b.ReportAllocs()
		var got ProduceRequest
		r := bytes.NewReader(enc)
		d := msgpack.NewDecoder(r)
		for b.Loop() {
			r.Reset(enc)
			d.ResetReader(r)
			if err := d.Decode(&got); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkVerifyBatch measures what a broker runs on every batch it stores:
// header, checksum and record framing of a 1 MiB batch. checksum-only is the
// part without the record walk, for comparison.
func BenchmarkVerifyBatch(b *testing.B) {
	for _, shape := range benchShapes() {
		rng := rand.New(rand.NewPCG(3, uint64(shape.valueSize)))
		bb := NewBatchBuilder()
		key := []byte("user-1234")
		for bb.Size()+shape.valueSize+64 <= 1<<20 {
			bb.Append(int64(bb.Len()), key, benchValue(rng, shape.valueSize), nil)
		}
		batch, err := bb.Build(shape.codec)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(shape.name, func(b *testing.B) {
			b.SetBytes(int64(bb.Size()))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := VerifyBatch(batch, 0); err != nil {
					b.Fatal(err)
				}
			}
			reportRecords(b, bb.Len())
		})
		if shape.codec == CodecNone {
			b.Run(shape.name+"/checksum-only", func(b *testing.B) {
				b.SetBytes(int64(bb.Size()))
				b.ReportAllocs()
				for b.Loop() {
					if _, _, err := verifyChecksum(batch, 0); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
