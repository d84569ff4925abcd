package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pierrec/lz4/v4"
)

// testRecord is a record as a test writes it and reads it back (owned copies).
type testRecord struct {
	ts      int64
	key     []byte
	value   []byte
	headers []Header
}

func sampleRecords() []testRecord {
	return []testRecord{
		{ts: 1_700_000_000_000, key: []byte("user-1"), value: []byte("hello")},
		{ts: 1_700_000_000_005, key: nil, value: []byte("null key")},
		{ts: 1_699_999_999_000, key: []byte{}, value: []byte{}}, // earlier than the first, empty key
		{ts: 1_700_000_000_001, key: []byte("k"), value: bytes.Repeat([]byte("abc"), 100),
			headers: []Header{{Key: "trace", Value: []byte("t-1")}, {Key: "", Value: []byte{}}}},
		{ts: -5, key: []byte("negative time"), value: []byte("v")},
	}
}

func buildRecords(t testing.TB, recs []testRecord, codec Codec) []byte {
	t.Helper()
	b := NewBatchBuilder()
	for _, r := range recs {
		b.Append(r.ts, r.key, r.value, r.headers)
	}
	batch, err := b.Build(codec)
	if err != nil {
		t.Fatal(err)
	}
	return batch
}

// readRecords iterates a batch and returns owned copies of its records.
func readRecords(batch []byte) ([]testRecord, []int64, error) {
	var it RecordIter
	if err := it.Reset(batch); err != nil {
		return nil, nil, err
	}
	var out []testRecord
	var offs []int64
	var r Record
	for it.Next(&r) {
		tr := testRecord{ts: r.Timestamp, value: bytes.Clone(r.Value)}
		if r.Key != nil {
			tr.key = append([]byte{}, r.Key...)
		}
		hi := r.Headers.Iter()
		for k, v, ok := hi.Next(); ok; k, v, ok = hi.Next() {
			tr.headers = append(tr.headers, Header{Key: string(k), Value: append([]byte{}, v...)})
		}
		if len(tr.headers) != r.Headers.Len() {
			return nil, nil, fmt.Errorf("header iterator gave %d of %d", len(tr.headers), r.Headers.Len())
		}
		out = append(out, tr)
		offs = append(offs, r.Offset)
	}
	return out, offs, it.Err()
}

func sameRecords(t *testing.T, got, want []testRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ts != w.ts || !bytes.Equal(g.key, w.key) || (g.key == nil) != (w.key == nil) ||
			!bytes.Equal(g.value, w.value) || len(g.headers) != len(w.headers) {
			t.Fatalf("record %d: got %+v, want %+v", i, g, w)
		}
		for j := range w.headers {
			if g.headers[j].Key != w.headers[j].Key || !bytes.Equal(g.headers[j].Value, w.headers[j].Value) {
				t.Fatalf("record %d header %d: got %+v, want %+v", i, j, g.headers[j], w.headers[j])
			}
		}
	}
}

func TestBatchRoundTrip(t *testing.T) {
	for _, codec := range []Codec{CodecNone, CodecLZ4} {
		t.Run(codec.String(), func(t *testing.T) {
			want := sampleRecords()
			batch := buildRecords(t, want, codec)
			SetBaseOffset(batch, 1000)
			SetTerm(batch, 7)
			h, n, err := VerifyBatch(batch, 0)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(batch) || h.Codec() != codec || h.IsControl() || h.RecordCount != int32(len(want)) ||
				h.FirstTimestamp != want[0].ts || h.MaxTimestamp != 1_700_000_000_005 ||
				h.ProducerID != -1 || h.ProducerEpoch != -1 || h.BaseSequence != -1 ||
				h.BaseOffset != 1000 || h.Term != 7 || h.Version != BatchVersion {
				t.Fatalf("header %+v (size %d of %d)", h, n, len(batch))
			}
			got, offs, err := readRecords(batch)
			if err != nil {
				t.Fatal(err)
			}
			sameRecords(t, got, want)
			for i, o := range offs {
				if o != 1000+int64(i) {
					t.Fatalf("record %d has offset %d", i, o)
				}
			}
		})
	}
}

func TestBatchLZ4Compresses(t *testing.T) {
	var recs []testRecord
	for i := range 200 {
		recs = append(recs, testRecord{ts: int64(i), key: []byte("key"), value: []byte(strings.Repeat("compressible ", 20))})
	}
	plain := buildRecords(t, recs, CodecNone)
	packed := buildRecords(t, recs, CodecLZ4)
	if len(packed) >= len(plain)/4 {
		t.Fatalf("lz4 batch %d bytes, plain %d", len(packed), len(plain))
	}
	h, _, _ := ParseBatchHeader(packed, 0)
	if h.Codec() != CodecLZ4 {
		t.Fatalf("codec %v", h.Codec())
	}
	// The section is a u32 uncompressed length and one lz4 block.
	body := packed[BatchHeaderSize:]
	ulen := binary.LittleEndian.Uint32(body)
	if int(ulen) != len(plain)-BatchHeaderSize {
		t.Fatalf("lz4 length prefix %d, plain records %d", ulen, len(plain)-BatchHeaderSize)
	}
	out := make([]byte, ulen)
	if n, err := lz4.UncompressBlock(body[4:], out); err != nil || n != int(ulen) || !bytes.Equal(out, plain[BatchHeaderSize:]) {
		t.Fatalf("lz4 block does not decode to the plain records: n=%d err=%v", n, err)
	}
	got, _, err := readRecords(packed)
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, got, recs)
}

func TestBatchLZ4FallsBackWhenNotSmaller(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	value := make([]byte, 500)
	for i := range value {
		value[i] = byte(rng.Uint32())
	}
	for _, recs := range [][]testRecord{
		{{ts: 1, value: value}},       // random bytes
		{{ts: 1, value: []byte("x")}}, // tiny
	} {
		batch := buildRecords(t, recs, CodecLZ4)
		h, _, err := VerifyBatch(batch, 0)
		if err != nil {
			t.Fatal(err)
		}
		if h.Codec() != CodecNone {
			t.Fatalf("incompressible batch stored as %v", h.Codec())
		}
		if !bytes.Equal(batch, buildRecords(t, recs, CodecNone)) {
			t.Fatal("fallback differs from a plain batch")
		}
	}
}

func TestBatchBuilderReuseAndProducer(t *testing.T) {
	b := NewBatchBuilder()
	b.SetProducer(42, 3, 100)
	b.Append(5, []byte("a"), []byte("1"), nil)
	b.Append(9, []byte("b"), []byte("2"), nil)
	if b.Len() != 2 {
		t.Fatalf("Len %d", b.Len())
	}
	first, err := b.Build(CodecNone)
	if err != nil {
		t.Fatal(err)
	}
	if b.Size() != len(first) {
		t.Fatalf("Size %d, batch %d bytes", b.Size(), len(first))
	}
	h, _, _ := ParseBatchHeader(first, 0)
	if h.ProducerID != 42 || h.ProducerEpoch != 3 || h.BaseSequence != 100 {
		t.Fatalf("producer fields %+v", h)
	}
	b.Reset()
	if b.Len() != 0 || b.Size() != BatchHeaderSize {
		t.Fatalf("after Reset: Len %d Size %d", b.Len(), b.Size())
	}
	b.Append(7, nil, []byte("x"), nil)
	second, err := b.AppendBatch([]byte("prefix"), CodecNone)
	if err != nil {
		t.Fatal(err)
	}
	if string(second[:6]) != "prefix" {
		t.Fatal("AppendBatch overwrote dst")
	}
	h, _, err = VerifyBatch(second[6:], 0)
	if err != nil {
		t.Fatal(err)
	}
	if h.ProducerID != NoProducerID || h.RecordCount != 1 || h.FirstTimestamp != 7 || h.MaxTimestamp != 7 {
		t.Fatalf("header after Reset %+v", h)
	}
}

func TestBatchBuilderErrors(t *testing.T) {
	b := NewBatchBuilder()
	if _, err := b.Build(CodecNone); err == nil {
		t.Fatal("empty builder built a batch")
	}
	b.Append(1, nil, nil, nil)
	if _, err := b.Build(Codec(5)); err == nil {
		t.Fatal("unknown codec accepted")
	}
}

func TestMaxRecordSizeBoundsGrowth(t *testing.T) {
	b := NewBatchBuilder()
	for i, r := range sampleRecords() {
		before := b.Size()
		b.Append(r.ts+int64(i)*1e15, r.key, r.value, r.headers)
		if grew, bound := b.Size()-before, MaxRecordSize(r.key, r.value, r.headers); grew > bound {
			t.Fatalf("record %d grew the batch by %d, bound %d", i, grew, bound)
		}
	}
}

func TestControlBatch(t *testing.T) {
	for _, body := range [][]byte{nil, []byte("membership change")} {
		batch, err := AppendControlBatch(nil, 1234, body)
		if err != nil {
			t.Fatal(err)
		}
		h, n, err := VerifyBatch(batch, 0)
		if err != nil {
			t.Fatal(err)
		}
		if n != len(batch) || !h.IsControl() || h.RecordCount != 0 || h.Codec() != CodecNone ||
			h.FirstTimestamp != 1234 || h.MaxTimestamp != 1234 || h.OffsetCount() != 1 {
			t.Fatalf("control header %+v", h)
		}
		got, err := ControlBody(batch)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("ControlBody = %q, %v", got, err)
		}
		var it RecordIter
		if err := it.Reset(batch); err != nil {
			t.Fatal(err)
		}
		var r Record
		if it.Next(&r) || it.Err() != nil {
			t.Fatalf("control batch yielded a record or an error: %v", it.Err())
		}
	}
	if _, err := ControlBody(buildRecords(t, sampleRecords(), CodecNone)); !errors.Is(err, ErrCorruptBatch) {
		t.Fatalf("ControlBody of a data batch: %v", err)
	}
}

func TestHeadersAll(t *testing.T) {
	batch := buildRecords(t, sampleRecords(), CodecNone)
	var it RecordIter
	if err := it.Reset(batch); err != nil {
		t.Fatal(err)
	}
	var r Record
	for range 4 {
		it.Next(&r)
	}
	var keys []string
	for k, v := range r.Headers.All() {
		keys = append(keys, string(k)+"="+string(v))
	}
	if strings.Join(keys, ",") != "trace=t-1,=" {
		t.Fatalf("headers %q", keys)
	}
	for range r.Headers.All() {
		break // stopping early must be safe
	}
}

// rawBatch wraps a hand-made records section in a valid header and checksum.
func rawBatch(records []byte, count int32, first, max int64, attrs uint8) []byte {
	b := appendBatchHeader(nil, attrs, count, first, max, NoProducerID, NoProducerEpoch, NoSequence)
	b = append(b, records...)
	finishBatch(b)
	return b
}

// rec encodes one record from raw varint fields, for building malformed input.
func rec(fields ...any) []byte {
	var body []byte
	for _, f := range fields {
		switch f := f.(type) {
		case int:
			body = binary.AppendVarint(body, int64(f))
		case string:
			body = append(body, f...)
		case []byte:
			body = append(body, f...)
		}
	}
	return append(binary.AppendVarint(nil, int64(len(body))), body...)
}

func lz4Section(ulen uint32, block []byte) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, ulen), block...)
}

func TestRecordIterRejects(t *testing.T) {
	good := rec(0, 0, 1, "k", 1, "v", 0) // ts delta, offset delta, key, value, no headers
	var big [64]byte
	plain := rec(0, 0, -1, 200, strings.Repeat("a", 200), 0) // compressible
	cases := []struct {
		name  string
		batch []byte
	}{
		{"record length past end", rawBatch(append(binary.AppendVarint(nil, 50), good[1:]...), 1, 0, 0, 0)},
		{"negative record length", rawBatch(append(binary.AppendVarint(nil, -3), good[1:]...), 1, 0, 0, 0)},
		{"key length below -1", rawBatch(rec(0, 0, -2, 1, "v", 0), 1, 0, 0, 0)},
		{"key past end", rawBatch(rec(0, 0, 9, "k"), 1, 0, 0, 0)},
		{"negative value length", rawBatch(rec(0, 0, -1, -1, 0), 1, 0, 0, 0)},
		{"value past end", rawBatch(rec(0, 0, -1, 5, "v"), 1, 0, 0, 0)},
		{"negative header count", rawBatch(rec(0, 0, -1, 0, -1), 1, 0, 0, 0)},
		{"header count past end", rawBatch(rec(0, 0, -1, 0, 5, 0, 0), 1, 0, 0, 0)},
		{"negative header key length", rawBatch(rec(0, 0, -1, 0, 1, -1, 0), 1, 0, 0, 0)},
		{"header value past end", rawBatch(rec(0, 0, -1, 0, 1, 0, 3, "x"), 1, 0, 0, 0)},
		{"bytes left in record", rawBatch(rec(0, 0, -1, 0, 0, "junk"), 1, 0, 0, 0)},
		{"missing header count", rawBatch(rec(0, 0, -1, 0), 1, 0, 0, 0)},
		{"fewer records than count", rawBatch(good, 2, 0, 0, 0)},
		{"trailing bytes", rawBatch(append(bytes.Clone(good), 0), 1, 0, 0, 0)},
		{"trailing record", rawBatch(append(bytes.Clone(good), good...), 1, 0, 0, 0)},
		{"offset delta out of order", rawBatch(append(bytes.Clone(good), good...), 2, 0, 0, 0)},
		{"offset delta skips", rawBatch(rec(0, 1, -1, 0, 0), 1, 0, 0, 0)},
		{"first timestamp delta not zero", rawBatch(rec(4, 0, -1, 0, 0), 1, 0, 4, 0)},
		{"max timestamp wrong", rawBatch(good, 1, 0, 9, 0)},
		{"overlong varint", rawBatch(append([]byte{0x80 | byte(len(good)-1)<<1, 0}, good[1:]...), 1, 0, 0, 0)},
		{"truncated varint", rawBatch([]byte{0x80}, 1, 0, 0, 0)},
		{"varint overflow", rawBatch(append(bytes.Repeat([]byte{0xff}, 10), 1), 1, 0, 0, 0)},
		{"lz4 without length", rawBatch([]byte{1, 2}, 1, 0, 0, 1)},
		{"lz4 length too large", rawBatch(lz4Section(1<<30, big[:]), 1, 0, 0, 1)},
		{"lz4 length beyond ratio", rawBatch(lz4Section(1<<20, big[:8]), 1, 0, 0, 1)},
		{"lz4 garbage", rawBatch(lz4Section(100, bytes.Repeat([]byte{0xff}, 20)), 1, 0, 0, 1)},
		{"lz4 size mismatch", rawBatch(lz4Section(uint32(len(plain)+1), lz4Block(plain)), 1, 0, 0, 1)},
		{"lz4 size short", rawBatch(lz4Section(uint32(len(plain)-1), lz4Block(plain)), 1, 0, 0, 1)},
		{"reserved attribute", rawBatch(good, 1, 0, 0, 0x10)},
		{"unknown codec", rawBatch(good, 1, 0, 0, 2)},
		{"control flag with records", rawBatch(good, 1, 0, 0, AttrControl)},
		{"checksum", func() []byte { b := rawBatch(good, 1, 0, 0, 0); b[len(b)-1] ^= 1; return b }()},
		{"bytes after batch", append(rawBatch(good, 1, 0, 0, 0), 0)},
		{"short", rawBatch(good, 1, 0, 0, 0)[:40]},
	}
	if _, _, err := readRecords(rawBatch(good, 1, 0, 0, 0)); err != nil {
		t.Fatalf("the good record is rejected: %v", err)
	}
	if _, _, err := readRecords(rawBatch(lz4Section(uint32(len(plain)), lz4Block(plain)), 1, 0, 0, 1)); err != nil {
		t.Fatalf("the good lz4 record is rejected: %v", err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := readRecords(c.batch)
			if !errors.Is(err, ErrCorruptBatch) && !errors.Is(err, ErrShortBatch) {
				t.Fatalf("got %v, want a batch error", err)
			}
		})
	}
}

func lz4Block(src []byte) []byte {
	dst := make([]byte, lz4.CompressBlockBound(len(src)))
	n, err := lz4.CompressBlock(src, dst, nil)
	if err != nil || n == 0 {
		// Incompressible input: an lz4 block of literals only.
		panic(fmt.Sprintf("lz4Block: n=%d err=%v", n, err))
	}
	return dst[:n]
}

func TestBatchIter(t *testing.T) {
	a := buildRecords(t, sampleRecords(), CodecNone)
	b := buildRecords(t, sampleRecords(), CodecLZ4)
	c, _ := AppendControlBatch(nil, 5, nil)
	stream := append(append(append([]byte{}, a...), b...), c...)

	it := NewBatchIter(stream, 0)
	var sizes []int
	for batch, h, ok := it.Next(); ok; batch, h, ok = it.Next() {
		if h.Size() != len(batch) {
			t.Fatalf("header size %d, batch %d", h.Size(), len(batch))
		}
		sizes = append(sizes, len(batch))
	}
	if it.Err() != nil || len(sizes) != 3 || sizes[0] != len(a) || sizes[1] != len(b) || sizes[2] != len(c) {
		t.Fatalf("sizes %v err %v", sizes, it.Err())
	}

	it.Reset(nil, 0)
	if _, _, ok := it.Next(); ok || it.Err() != nil {
		t.Fatal("empty input yielded a batch or an error")
	}

	cases := []struct {
		name string
		in   []byte
		max  int
		want error
	}{
		{"cut last batch", stream[:len(stream)-1], 0, ErrShortBatch},
		{"cut header", stream[:len(a)+10], 0, ErrShortBatch},
		{"too large", stream, len(a) - 1, ErrBatchTooLarge},
		{"corrupt second", func() []byte { s := bytes.Clone(stream); s[len(a)+40] ^= 1; return s }(), 0, ErrCorruptBatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			it.Reset(tc.in, tc.max)
			for _, _, ok := it.Next(); ok; _, _, ok = it.Next() {
			}
			if !errors.Is(it.Err(), tc.want) {
				t.Fatalf("got %v, want %v", it.Err(), tc.want)
			}
		})
	}
}

func TestParseBatchHeaderRejects(t *testing.T) {
	good := buildRecords(t, sampleRecords(), CodecNone)
	mod := func(f func(b []byte)) []byte { b := bytes.Clone(good); f(b); return b }
	cases := []struct {
		name string
		b    []byte
		max  int
		want error
	}{
		{"short header", good[:BatchHeaderSize-1], 0, ErrShortBatch},
		{"short body", good[:len(good)-1], 0, ErrShortBatch},
		{"length below header", mod(func(b []byte) { binary.LittleEndian.PutUint32(b[offLength:], 10) }), 0, ErrCorruptBatch},
		{"too large", good, len(good) - 1, ErrBatchTooLarge},
		{"too large by default", mod(func(b []byte) { binary.LittleEndian.PutUint32(b[offLength:], math.MaxUint32) }), 0, ErrBatchTooLarge},
		{"version", mod(func(b []byte) { b[offVersion] = 2 }), 0, ErrCorruptBatch},
		{"codec", mod(func(b []byte) { b[offAttributes] = 3 }), 0, ErrCorruptBatch},
		{"reserved bits", mod(func(b []byte) { b[offAttributes] = 0x80 }), 0, ErrCorruptBatch},
		{"negative count", mod(func(b []byte) { binary.LittleEndian.PutUint32(b[offRecordCount:], math.MaxUint32) }), 0, ErrCorruptBatch},
		{"zero count without control", mod(func(b []byte) { binary.LittleEndian.PutUint32(b[offRecordCount:], 0) }), 0, ErrCorruptBatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := ParseBatchHeader(c.b, c.max); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	if _, n, err := ParseBatchHeader(good, len(good)); err != nil || n != len(good) {
		t.Fatalf("exact limit: n=%d err=%v", n, err)
	}
	if PeekBatchSize(good) != len(good) || PeekBatchSize(good[:11]) != 0 {
		t.Fatal("PeekBatchSize")
	}
	if BaseOffset(mod(func(b []byte) { SetBaseOffset(b, 99) })) != 99 {
		t.Fatal("SetBaseOffset/BaseOffset")
	}
	// Offset and term are outside the checksum.
	if _, _, err := VerifyBatch(mod(func(b []byte) { SetBaseOffset(b, 5); SetTerm(b, 6) }), 0); err != nil {
		t.Fatal(err)
	}
}

// TestRecordIterNoAllocs proves that iteration, lz4 included, allocates
// nothing per record once the iterator's buffer has grown.
func TestRecordIterNoAllocs(t *testing.T) {
	var recs []testRecord
	for i := range 50 {
		recs = append(recs, testRecord{ts: int64(i), key: []byte("key"), value: []byte(strings.Repeat("v", 100)),
			headers: []Header{{Key: "h", Value: []byte("x")}}})
	}
	for _, codec := range []Codec{CodecNone, CodecLZ4} {
		batch := buildRecords(t, recs, codec)
		var it RecordIter
		var r Record
		n := testing.AllocsPerRun(20, func() {
			if err := it.Reset(batch); err != nil {
				t.Fatal(err)
			}
			for it.Next(&r) {
				hi := r.Headers.Iter()
				for _, _, ok := hi.Next(); ok; _, _, ok = hi.Next() {
				}
			}
		})
		if n != 0 {
			t.Fatalf("%v: %v allocs per batch", codec, n)
		}
	}
}

func TestBatchBuilderNoAllocs(t *testing.T) {
	b := NewBatchBuilder()
	key, value := []byte("key"), []byte(strings.Repeat("v", 100))
	hdrs := []Header{{Key: "h", Value: []byte("x")}}
	var dst []byte
	for _, codec := range []Codec{CodecNone, CodecLZ4} {
		n := testing.AllocsPerRun(20, func() {
			b.Reset()
			for i := range 50 {
				b.Append(int64(i), key, value, hdrs)
			}
			var err error
			if dst, err = b.AppendBatch(dst[:0], codec); err != nil {
				t.Fatal(err)
			}
		})
		if n != 0 {
			t.Fatalf("%v: %v allocs per batch", codec, n)
		}
	}
}

func TestControlBatchTooLarge(t *testing.T) {
	if _, err := AppendControlBatch(nil, 1, make([]byte, MaxRecordsSize+1)); !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("got %v, want ErrBatchTooLarge", err)
	}
}
