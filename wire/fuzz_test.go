package wire

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

const fuzzMaxSize = 1 << 20

// seedBatches are real encodings: data batches with and without lz4, and
// control batches.
func seedBatches(t testing.TB) [][]byte {
	var out [][]byte
	many := make([]testRecord, 40)
	for i := range many {
		many[i] = testRecord{ts: int64(1000 + i%7), key: []byte("key"), value: []byte(strings.Repeat("value ", 10))}
	}
	for _, recs := range [][]testRecord{sampleRecords(), many, {{ts: 1, value: []byte("one")}}} {
		for _, codec := range []Codec{CodecNone, CodecLZ4} {
			out = append(out, buildRecords(t, recs, codec))
		}
	}
	c1, _ := AppendControlBatch(nil, 9, nil)
	c2, _ := AppendControlBatch(nil, 9, []byte("conf change"))
	return append(out, c1, c2)
}

func seedFrames(t testing.TB) [][]byte {
	var out [][]byte
	var buf bytes.Buffer
	fw := NewFrameWriter(&buf)
	batches := seedBatches(t)[0]
	for i, c := range hotCases()[:12] {
		buf.Reset()
		if err := fw.WriteFrame(FrameHeader{API: APIProduce, Corr: uint32(i)}, c.v, batches); err != nil {
			t.Fatal(err)
		}
		out = append(out, bytes.Clone(buf.Bytes()))
	}
	return out
}

func FuzzParseFrame(f *testing.F) {
	for _, s := range seedFrames(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, n, err := ParseFrame(data, fuzzMaxSize)
		if err != nil {
			return
		}
		if re := AppendFrame(nil, fr.FrameHeader, fr.Header, fr.Payload); !bytes.Equal(re, data[:n]) {
			t.Fatalf("re-encoded frame differs:\n%x\n%x", re, data[:n])
		}
	})
}

// FuzzFrameReader reads a stream of frames and checks each against ParseFrame
// on the same bytes.
func FuzzFrameReader(f *testing.F) {
	frames := seedFrames(f)
	f.Add(bytes.Join(frames[:3], nil))
	for _, s := range frames {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewFrameReader(bytes.NewReader(data), fuzzMaxSize)
		rest := data
		for range 1000 {
			got, err := r.Next()
			want, n, perr := ParseFrame(rest, fuzzMaxSize)
			if err != nil {
				if err == io.EOF && len(rest) == 0 {
					return
				}
				if perr == nil {
					t.Fatalf("FrameReader: %v; ParseFrame accepted the frame", err)
				}
				return
			}
			if perr != nil {
				t.Fatalf("ParseFrame: %v; FrameReader accepted the frame", perr)
			}
			if got.FrameHeader != want.FrameHeader || !bytes.Equal(got.Header, want.Header) || !bytes.Equal(got.Payload, want.Payload) {
				t.Fatal("FrameReader and ParseFrame disagree")
			}
			var v ProduceRequest
			_ = r.DecodeHeader(&got, &v) // must not panic
			rest = rest[n:]
		}
	})
}

// FuzzBatchIter walks concatenated batches, decodes every record, and rebuilds
// each valid batch from its records: a batch without compression comes back
// byte for byte; an lz4 batch comes back with the same records.
func FuzzBatchIter(f *testing.F) {
	seeds := seedBatches(f)
	f.Add(bytes.Join([][]byte{seeds[0], seeds[1], seeds[len(seeds)-1]}, nil))
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		it := NewBatchIter(data, fuzzMaxSize)
		for batch, h, ok := it.Next(); ok; batch, h, ok = it.Next() {
			checkRebuild(t, batch, h)
		}
	})
}

// FuzzVerifyBatch feeds arbitrary bytes to VerifyBatch and the record iterator.
func FuzzVerifyBatch(f *testing.F) {
	for _, s := range seedBatches(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, n, err := VerifyBatch(data, fuzzMaxSize)
		if err != nil {
			return
		}
		if n != h.Size() || n > len(data) {
			t.Fatalf("size %d, header says %d, input %d", n, h.Size(), len(data))
		}
		checkRebuild(t, data[:n], h)
	})
}

func checkRebuild(t *testing.T, batch []byte, h BatchHeader) {
	t.Helper()
	recs, _, err := readRecords(batch)
	if err != nil {
		if !errors.Is(err, ErrCorruptBatch) {
			t.Fatalf("error not classified as corrupt: %v", err)
		}
		return
	}
	var re []byte
	if h.IsControl() {
		body, err := ControlBody(batch)
		if err != nil {
			return // compressed control batch
		}
		if re, err = AppendControlBatch(nil, h.FirstTimestamp, body); err != nil {
			t.Fatal(err)
		}
		if h.ProducerID != NoProducerID || h.ProducerEpoch != NoProducerEpoch || h.BaseSequence != NoSequence ||
			h.MaxTimestamp != h.FirstTimestamp {
			return // not a control batch this package writes
		}
	} else {
		b := NewBatchBuilder()
		b.SetProducer(h.ProducerID, h.ProducerEpoch, h.BaseSequence)
		for _, r := range recs {
			b.Append(r.ts, r.key, r.value, r.headers)
		}
		if re, err = b.Build(h.Codec()); err != nil {
			t.Fatal(err)
		}
	}
	SetBaseOffset(re, h.BaseOffset)
	SetTerm(re, h.Term)
	if h.Codec() == CodecNone {
		if !bytes.Equal(re, batch) {
			t.Fatalf("rebuilt batch differs:\n%x\n%x", re, batch)
		}
		return
	}
	got, _, err := readRecords(re)
	if err != nil {
		t.Fatalf("rebuilt batch: %v", err)
	}
	if len(got) != len(recs) || (len(got) > 0 && !reflect.DeepEqual(got, recs)) {
		t.Fatalf("rebuilt batch has other records")
	}
}

// fuzzHeader checks one hot header type: both decoders agree on every input,
// and what they accept re-encodes to bytes that decode to the same value (the
// same bytes when the input used the fixed-width integers this package writes).
func fuzzHeader(t *testing.T, data []byte, zero func() any, plain func(any) any) {
	a, b := zero(), zero()
	errA := a.(headerParser).parseMsgpack(data)
	errB := decodeWithDecoder(data, b.(msgpack.CustomDecoder))
	if (errA == nil) != (errB == nil) {
		t.Fatalf("parse: %v; DecodeMsgpack: %v", errA, errB)
	}
	if errA != nil {
		return
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("decoders disagree: %+v vs %+v", a, b)
	}
	re := a.(headerAppender).appendMsgpack(nil)
	ref, err := msgpack.Marshal(plain(a))
	if err != nil || !bytes.Equal(re, ref) {
		t.Fatalf("re-encoding %x differs from reflection %x (%v)", re, ref, err)
	}
	c := zero()
	if err := c.(headerParser).parseMsgpack(re); err != nil || !reflect.DeepEqual(a, c) {
		t.Fatalf("re-encoded header decodes to %+v (%v), want %+v", c, err, a)
	}
	if !bytes.Equal(c.(headerAppender).appendMsgpack(nil), re) {
		t.Fatal("re-encoding is not stable")
	}
	if bytes.Equal(tokenCodes(re), tokenCodes(data)) && !bytes.Equal(re, data) {
		t.Fatalf("decode then encode: %x, input %x", re, data)
	}
}

// tokenCodes lists the type byte of each msgpack token in b (arrays, strings
// and integers only, as in the hot headers). Two encodings of one value with
// the same type bytes are the same bytes.
func tokenCodes(b []byte) []byte {
	var codes []byte
	r := mpReader{b}
	for len(r.b) > 0 {
		c := r.b[0]
		codes = append(codes, c)
		switch {
		case c <= 0x7f || c >= 0xe0 || (c >= 0x90 && c <= 0x9f):
			r.b = r.b[1:]
		case c == 0xdc || c == 0xdd:
			r.b = r.b[min(len(r.b), 1+2*int(c-0xdb)):]
		case isStrCode(c):
			if _, err := r.str(); err != nil {
				return codes
			}
		default:
			if _, err := r.int(-1<<63, 1<<63-1); err != nil {
				return codes
			}
		}
	}
	return codes
}

func addHeaderSeeds(f *testing.F, name string) {
	for _, c := range hotCases() {
		// Large seeds slow the fuzzer's minimisation to a crawl; the unit
		// tests cover the long string forms.
		if c.name == name && len(c.v.(headerAppender).appendMsgpack(nil)) < 512 {
			f.Add(c.v.(headerAppender).appendMsgpack(nil))
			var buf bytes.Buffer
			enc := msgpack.NewEncoder(&buf)
			enc.UseCompactInts(true)
			if err := enc.Encode(c.plain); err != nil {
				f.Fatal(err)
			}
			f.Add(buf.Bytes())
		}
	}
}

func FuzzDecodeProduceRequest(f *testing.F) {
	addHeaderSeeds(f, "produce_request")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzHeader(t, data, func() any { return new(ProduceRequest) },
			func(v any) any { return (*plainProduceRequest)(v.(*ProduceRequest)) })
	})
}

func FuzzDecodeProduceResponse(f *testing.F) {
	addHeaderSeeds(f, "produce_response")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzHeader(t, data, func() any { return new(ProduceResponse) },
			func(v any) any { return (*plainProduceResponse)(v.(*ProduceResponse)) })
	})
}

func FuzzDecodeFetchRequest(f *testing.F) {
	addHeaderSeeds(f, "fetch_request")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzHeader(t, data, func() any { return new(FetchRequest) },
			func(v any) any { return (*plainFetchRequest)(v.(*FetchRequest)) })
	})
}

func FuzzDecodeFetchResponse(f *testing.F) {
	addHeaderSeeds(f, "fetch_response")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzHeader(t, data, func() any { return new(FetchResponse) },
			func(v any) any { return (*plainFetchResponse)(v.(*FetchResponse)) })
	})
}

func FuzzDecodeSubscribeData(f *testing.F) {
	addHeaderSeeds(f, "subscribe_data")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzHeader(t, data, func() any { return new(SubscribeData) },
			func(v any) any { return (*plainSubscribeData)(v.(*SubscribeData)) })
	})
}

func FuzzDecodeSubscribeCredit(f *testing.F) {
	addHeaderSeeds(f, "subscribe_credit")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzHeader(t, data, func() any { return new(SubscribeCredit) },
			func(v any) any { return (*plainSubscribeCredit)(v.(*SubscribeCredit)) })
	})
}
