package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"
)

func TestParseFrameRoundTrip(t *testing.T) {
	fh := FrameHeader{API: APIProduce, Version: Version, Corr: 77}
	hdr, err := EncodeHeader(&ProduceRequest{Topic: "t", Partition: 2, Acks: AcksAll, TimeoutMs: 1000})
	if err != nil {
		t.Fatal(err)
	}
	payload := buildRecords(t, sampleRecords(), CodecNone)
	b := AppendFrame([]byte("x"), fh, hdr, payload)[1:]
	f, n, err := ParseFrame(append(bytes.Clone(b), "next"...), 0)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(b) || f.Size() != n || f.FrameHeader != fh || !bytes.Equal(f.Header, hdr) || !bytes.Equal(f.Payload, payload) {
		t.Fatalf("parsed %+v size %d of %d", f.FrameHeader, n, len(b))
	}
	var req ProduceRequest
	if err := DecodeHeader(f.Header, &req); err != nil || req.Topic != "t" || req.Acks != AcksAll {
		t.Fatalf("header %+v: %v", req, err)
	}
}

func TestParseFrameRejects(t *testing.T) {
	good := AppendFrame(nil, FrameHeader{API: APIFetch}, []byte{0x90}, []byte("payload"))
	mod := func(f func(b []byte)) []byte { b := bytes.Clone(good); f(b); return b }
	cases := []struct {
		name string
		b    []byte
		max  int
		want error
	}{
		{"no length", good[:3], 0, ErrShortFrame},
		{"cut", good[:len(good)-1], 0, ErrShortFrame},
		{"too large", good, len(good) - 1, ErrFrameTooLarge},
		{"too large by default", mod(func(b []byte) { binary.LittleEndian.PutUint32(b, DefaultMaxFrameSize) }), 0, ErrFrameTooLarge},
		{"below fixed fields", mod(func(b []byte) { binary.LittleEndian.PutUint32(b, 11) }), 0, ErrMalformedFrame},
		{"header past end", mod(func(b []byte) { binary.LittleEndian.PutUint32(b[12:], 100) }), 0, ErrMalformedFrame},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := ParseFrame(c.b, c.max); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	if _, n, err := ParseFrame(good, len(good)); err != nil || n != len(good) {
		t.Fatalf("exact limit: %d %v", n, err)
	}
}

func TestFrameWriterReader(t *testing.T) {
	small := buildRecords(t, sampleRecords(), CodecNone)
	large := bytes.Repeat([]byte("L"), 3*smallPayload)
	type sent struct {
		fh      FrameHeader
		header  any
		payload [][]byte
	}
	frames := []sent{
		{FrameHeader{APIProduce, 0, 1}, &ProduceRequest{Topic: "a", Partition: 1, Acks: 1, TimeoutMs: 5}, [][]byte{small}},
		{FrameHeader{APIProduce, 0, 2}, &ProduceRequest{Topic: "a", Partition: 2}, [][]byte{small, large}},
		{FrameHeader{APIFetch, 0, 3}, &FetchResponse{Error: ErrNotLeader, Message: "leader b1", HighWatermark: 4}, nil},
		{FrameHeader{APIMetadata, 0, 4}, &MetadataRequest{Topics: []string{"a", "b"}}, nil},
		{FrameHeader{APISubscribeCredit, 0, 5}, &SubscribeCredit{Bytes: 1 << 20}, nil},
	}
	var buf bytes.Buffer
	fw := NewFrameWriter(&buf)
	for _, f := range frames {
		if err := fw.WriteFrame(f.fh, f.header, f.payload...); err != nil {
			t.Fatal(err)
		}
	}
	fr := NewFrameReader(&buf, 0)
	for i, want := range frames {
		f, err := fr.Next()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if f.FrameHeader != want.fh || !bytes.Equal(f.Payload, bytes.Join(want.payload, nil)) {
			t.Fatalf("frame %d: %+v with %d payload bytes", i, f.FrameHeader, len(f.Payload))
		}
		got := reflect.New(reflect.TypeOf(want.header).Elem()).Interface()
		if err := fr.DecodeHeader(&f, got); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, want.header) {
			t.Fatalf("frame %d: header %+v, want %+v", i, got, want.header)
		}
	}
	if _, err := fr.Next(); err != io.EOF {
		t.Fatalf("end of stream: %v", err)
	}
}

func TestFrameReaderRejects(t *testing.T) {
	good := AppendFrame(nil, FrameHeader{API: APIFetch}, []byte{0x90}, []byte("payload"))
	cases := []struct {
		name string
		in   []byte
		max  int
		want error
	}{
		{"cut in length", good[:2], 0, ErrShortFrame},
		{"cut in body", good[:len(good)-1], 0, ErrShortFrame},
		{"cut after length", good[:4], 0, ErrShortFrame},
		{"too large", good, len(good) - 1, ErrFrameTooLarge},
		{"below fixed fields", binary.LittleEndian.AppendUint32(nil, 3), 0, ErrMalformedFrame},
		{"header past end", func() []byte {
			b := bytes.Clone(good)
			binary.LittleEndian.PutUint32(b[12:], 1000)
			return b
		}(), 0, ErrMalformedFrame},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := NewFrameReader(bytes.NewReader(c.in), c.max).Next(); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	// A malformed header is reported by DecodeHeader, for hot and cold types.
	f, _, _ := ParseFrame(AppendFrame(nil, FrameHeader{}, []byte{0x91, 0xc3}, nil), 0)
	fr := NewFrameReader(nil, 0)
	for _, v := range []any{new(SubscribeCredit), new(MetadataRequest)} {
		if err := fr.DecodeHeader(&f, v); !errors.Is(err, ErrMalformedFrame) {
			t.Fatalf("%T: %v", v, err)
		}
	}
	f.Header = []byte{0x91, 0x90, 0x00} // valid MetadataRequest, then a trailing byte
	if err := fr.DecodeHeader(&f, new(MetadataRequest)); !errors.Is(err, ErrMalformedFrame) {
		t.Fatalf("trailing byte: %v", err)
	}
}

// TestFrameCodecNoAllocs: encoding and decoding a hot header through the
// stream codecs allocates nothing.
func TestFrameCodecNoAllocs(t *testing.T) {
	fw := NewFrameWriter(io.Discard)
	req := &ProduceRequest{Topic: "orders", Partition: 1, Acks: AcksAll, TimeoutMs: 1000}
	payload := make([]byte, 1024)
	frame, err := fw.AppendFrame(FrameHeader{API: APIProduce}, req, payload)
	if err != nil {
		t.Fatal(err)
	}
	frame = bytes.Clone(frame)
	src := bytes.NewReader(frame)
	fr := NewFrameReader(src, 0)
	var got ProduceRequest
	n := testing.AllocsPerRun(100, func() {
		if _, err := fw.AppendFrame(FrameHeader{API: APIProduce}, req, payload); err != nil {
			t.Fatal(err)
		}
		src.Reset(frame)
		f, err := fr.Next()
		if err != nil {
			t.Fatal(err)
		}
		if err := fr.DecodeHeader(&f, &got); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 || got != *req {
		t.Fatalf("%v allocs; decoded %+v", n, got)
	}
}

func TestFrameReaderDropsLargeBuffers(t *testing.T) {
	var stream bytes.Buffer
	fw := NewFrameWriter(&stream)
	big := make([]byte, 3<<20)
	small := []byte("small")
	for _, p := range [][]byte{small, big, small} {
		if err := fw.WriteFrame(FrameHeader{API: APIProduce}, &ProduceRequest{Topic: "t"}, p); err != nil {
			t.Fatal(err)
		}
	}
	fr := NewFrameReader(&stream, 4<<20)
	for i, want := range []int{len(small), len(big), len(small)} {
		f, err := fr.Next()
		if err != nil || len(f.Payload) != want {
			t.Fatalf("frame %d: %d bytes, %v", i, len(f.Payload), err)
		}
		if cap(fr.buf) > smallFrameBuffer {
			t.Fatalf("frame %d: reader keeps a %d-byte buffer", i, cap(fr.buf))
		}
	}
}

// fakeBudget is a FrameBudget that records what is held.
type fakeBudget struct {
	held, peak, limit int
}

func (b *fakeBudget) Acquire(n int) error {
	if n < 0 {
		panic("negative acquire")
	}
	if b.limit > 0 && b.held+n > b.limit {
		return fmt.Errorf("%d held, %d asked, limit %d", b.held, n, b.limit)
	}
	b.held += n
	b.peak = max(b.peak, b.held)
	return nil
}

func (b *fakeBudget) Release(n int) {
	if b.held -= n; b.held < 0 || n < 0 {
		panic(fmt.Sprintf("released %d, held now %d", n, b.held))
	}
}

func TestFrameReaderBudgetBalances(t *testing.T) {
	var stream bytes.Buffer
	fw := NewFrameWriter(&stream)
	sizes := []int{10, 1 << 20, 5, 6 << 20, 100 << 10, 0, 4 << 20, 7, 40 << 10, 3}
	for i, n := range sizes {
		if err := fw.WriteFrame(FrameHeader{API: APIProduce, Corr: uint32(i)}, &ProduceRequest{Topic: "t"}, make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	var b fakeBudget
	fr := NewFrameReader(&stream, 8<<20)
	fr.SetBudget(&b)
	for i, n := range sizes {
		f, err := fr.Next()
		if err != nil || len(f.Payload) != n || f.Corr != uint32(i) {
			t.Fatalf("frame %d: %d bytes, %v", i, len(f.Payload), err)
		}
		// What is held covers the frame just returned and what is kept.
		big := 0
		if fr.big != nil {
			big = cap(*fr.big)
		}
		if b.held != cap(fr.buf)+big || b.held < f.Size()-frameLengthSize {
			t.Fatalf("frame %d: budget holds %d, reader %d+%d, frame %d", i, b.held, cap(fr.buf), big, f.Size())
		}
		if b.held > smallFrameBuffer+f.Size()*5/4 {
			t.Fatalf("frame %d: %d bytes held for a %d-byte frame", i, b.held, f.Size())
		}
	}
	if _, err := fr.Next(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	fr.Close()
	fr.Close()
	if b.held != 0 {
		t.Fatalf("%d bytes still held after Close", b.held)
	}
}

// TestFrameReaderMemoryFollowsBytes: a peer announcing the largest frame and
// sending 4 KiB costs about 4 KiB, not the 16 MiB announced.
func TestFrameReaderMemoryFollowsBytes(t *testing.T) {
	prefix := AppendFramePrefix(nil, FrameHeader{API: APIProduce}, 0, DefaultMaxFrameSize-FrameFixedSize)
	in := append(prefix, make([]byte, 4<<10)...)
	var b fakeBudget
	fr := NewFrameReader(bytes.NewReader(in), 0)
	fr.SetBudget(&b)
	var err error
	alloc := allocBytes(func() { _, err = fr.Next() })
	if !errors.Is(err, ErrShortFrame) {
		t.Fatalf("cut frame: %v", err)
	}
	if b.peak > 16<<10 || alloc > 64<<10 {
		t.Fatalf("4 KiB received: budget peaked at %d bytes, %d bytes allocated", b.peak, alloc)
	}
	if b.held != cap(fr.buf) {
		t.Fatalf("after the error the budget holds %d, the reader keeps %d", b.held, cap(fr.buf))
	}
	fr.Close()
	if b.held != 0 {
		t.Fatalf("%d bytes held after Close", b.held)
	}

	// 200 streams stalled that way hold a few MiB between them, not 3 GiB.
	var total uint64
	readers := make([]*FrameReader, 200)
	for i := range readers {
		readers[i] = NewFrameReader(bytes.NewReader(in), 0)
		total += allocBytes(func() { _, err = readers[i].Next() })
	}
	if total > 200*64<<10 {
		t.Fatalf("200 stalled streams allocated %d bytes", total)
	}
}

func TestFrameReaderBudgetRefusal(t *testing.T) {
	var stream bytes.Buffer
	fw := NewFrameWriter(&stream)
	for _, n := range []int{100, 1 << 20} {
		if err := fw.WriteFrame(FrameHeader{API: APIProduce}, &ProduceRequest{Topic: "t"}, make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	b := fakeBudget{limit: 256 << 10}
	fr := NewFrameReader(&stream, 0)
	fr.SetBudget(&b)
	if _, err := fr.Next(); err != nil {
		t.Fatal(err)
	}
	_, err := fr.Next()
	if !errors.Is(err, ErrFrameBudget) {
		t.Fatalf("over budget: %v", err)
	}
	if b.held != cap(fr.buf) || b.held > b.limit {
		t.Fatalf("budget holds %d, reader keeps %d", b.held, cap(fr.buf))
	}
	fr.Close()
	if b.held != 0 {
		t.Fatalf("%d bytes held after Close", b.held)
	}
}

// BenchmarkFrameDecode1MiB reads produce frames carrying 1 MiB batches, the
// Go client's default batch limit, as a broker receives them.
func BenchmarkFrameDecode1MiB(b *testing.B) {
	frame := AppendFrame(nil, FrameHeader{API: APIProduce}, (&ProduceRequest{Topic: "t"}).AppendMsgpack(nil), make([]byte, 1<<20))
	src := bytes.NewReader(frame)
	fr := NewFrameReader(src, 0)
	var budget fakeBudget
	fr.SetBudget(&budget)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(frame)
		if _, err := fr.Next(); err != nil {
			b.Fatal(err)
		}
	}
	fr.Close()
}

// A large frame's buffer taken from the reader keeps its bytes through the
// next frames, and leaves the reader's budget; a small frame has none to take.
func TestFrameReaderTakeBuffer(t *testing.T) {
	var stream bytes.Buffer
	fw := NewFrameWriter(&stream)
	sizes := []int{1 << 20, 10, 300 << 10, 1 << 20}
	for i, n := range sizes {
		if err := fw.WriteFrame(FrameHeader{API: APIProduce, Corr: uint32(i)}, &ProduceRequest{Topic: "t"}, bytes.Repeat([]byte{byte(i + 1)}, n)); err != nil {
			t.Fatal(err)
		}
	}
	var b fakeBudget
	fr := NewFrameReader(&stream, 8<<20)
	fr.SetBudget(&b)
	var taken []*[]byte
	var payloads [][]byte
	var fill []byte
	for i, n := range sizes {
		f, err := fr.Next()
		if err != nil || len(f.Payload) != n {
			t.Fatalf("frame %d: %d bytes, %v", i, len(f.Payload), err)
		}
		p := fr.TakeBuffer()
		if (p == nil) != (n <= smallFrameBuffer) {
			t.Fatalf("frame %d of %d bytes: took %v", i, n, p != nil)
		}
		if p == nil {
			continue
		}
		if b.held != cap(fr.buf) {
			t.Fatalf("frame %d: budget holds %d after the take, reader keeps %d", i, b.held, cap(fr.buf))
		}
		taken, payloads, fill = append(taken, p), append(payloads, f.Payload), append(fill, byte(i+1))
	}
	for i, pl := range payloads {
		if !bytes.Equal(pl, bytes.Repeat([]byte{fill[i]}, len(pl))) {
			t.Fatalf("taken frame %d changed", i)
		}
	}
	for _, p := range taken {
		PutFrameBuffer(p)
	}
	fr.Close()
	if b.held != 0 {
		t.Fatalf("%d bytes still held after Close", b.held)
	}
}
