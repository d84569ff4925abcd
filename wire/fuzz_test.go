package wire

import (
	"bytes"
	"errors"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
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
	for i, c := range headerCases()[:12] {
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
		var b fakeBudget
		r.SetBudget(&b)
		defer func() {
			r.Close()
			if b.held != 0 {
				t.Fatalf("%d bytes held after Close", b.held)
			}
		}()
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
			for _, v := range []HeaderCodec{new(ProduceRequest), new(SubscribeRequest), new(MetadataResponse)} {
				_ = r.DecodeHeader(&got, v) // must not panic
			}
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

// FuzzRecordSection wraps arbitrary bytes as the records section of a batch
// with a valid checksum, so the fuzzer works on the records themselves.
// VerifyBatch and RecordIter must agree: what the iterator reads whole, the
// broker's check accepts; what the check refuses (uncompressed), the iterator
// refuses too, after yielding only records at offsets base, base+1, ... and
// with an error that names the offset.
func FuzzRecordSection(f *testing.F) {
	for _, b := range seedBatches(f) {
		h, _, _ := ParseBatchHeader(b, 0)
		f.Add(b[BatchHeaderSize:], h.RecordCount, h.Attributes, h.FirstTimestamp, h.MaxTimestamp)
	}
	f.Add([]byte{0x0a, 0, 0, 1, 'k', 2, 'v', 0}, int32(math.MaxInt32), uint8(0), int64(0), int64(0))
	f.Fuzz(func(t *testing.T, section []byte, count int32, attrs uint8, first, maxTs int64) {
		batch := rawBatch(section, count, first, maxTs, attrs)
		SetBaseOffset(batch, 1000)
		_, _, verr := VerifyBatch(batch, fuzzMaxSize)
		if verr != nil && !errors.Is(verr, ErrCorruptBatch) && !errors.Is(verr, ErrBatchTooLarge) {
			t.Fatalf("VerifyBatch error not classified: %v", verr)
		}
		var it RecordIter
		var n int64
		rerr := it.Reset(batch)
		if rerr == nil {
			var r Record
			for it.Next(&r) {
				if r.Offset != 1000+n {
					t.Fatalf("record %d at offset %d", n, r.Offset)
				}
				n++
			}
		}
		ierr := it.Err()
		switch {
		case ierr == nil && verr != nil && !errors.Is(verr, ErrBatchTooLarge):
			t.Fatalf("RecordIter reads %d records, VerifyBatch refuses: %v", n, verr)
		case ierr != nil && !errors.Is(ierr, ErrCorruptBatch):
			t.Fatalf("RecordIter error not classified: %v", ierr)
		case rerr == nil && ierr != nil && n < int64(count) && !strings.Contains(ierr.Error(), "offset "):
			t.Fatalf("record error does not name the offset: %v", ierr)
		}
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
	// What the reader accepts, the broker's check accepts.
	if _, _, err := VerifyBatch(batch, MaxRecordsSize); err != nil {
		t.Fatalf("RecordIter reads the batch, VerifyBatch refuses it: %v", err)
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

// fuzzHeader checks one header type on arbitrary input: what the parser
// accepts, a stock msgpack library decodes generically to the same fields;
// re-encoding gives what msgpack's reflection writes, decodes to the same
// value, and equals the input byte for byte when the input used the forms
// this package writes.
func fuzzHeader(t *testing.T, data []byte, zero func() HeaderCodec) {
	v := zero()
	if err := v.ParseMsgpack(data); err != nil {
		if !errors.Is(err, ErrMalformedFrame) {
			t.Fatalf("error not classified as malformed: %v", err)
		}
		return
	}
	re := v.AppendMsgpack(nil)
	if ref := reflectEncode(t, v, false); !bytes.Equal(re, ref) {
		t.Fatalf("re-encoding %x differs from reflection %x", re, ref)
	}
	gin, err := generic(data)
	if err != nil {
		t.Fatalf("accepted %x, msgpack.Unmarshal fails: %v", data, err)
	}
	if gre, err := generic(re); err != nil || !reflect.DeepEqual(gin, gre) {
		t.Fatalf("input decodes generically to %v, re-encoding to %v (%v)", gin, gre, err)
	}
	w := zero()
	if err := w.ParseMsgpack(re); err != nil || !reflect.DeepEqual(v, w) {
		t.Fatalf("re-encoded header decodes to %+v (%v), want %+v", w, err, v)
	}
	codes := tokenCodes(data)
	if bytes.Equal(tokenCodes(re), codes) && !bytes.Equal(re, data) && !hasMap(codes) {
		t.Fatalf("decode then encode: %x, input %x", re, data)
	}
}

// tokenCodes lists the type byte of each msgpack token in b (the kinds
// headers use: arrays, maps, nil, strings, integers). Two encodings of one
// value with the same type bytes are the same bytes, up to map key order.
func tokenCodes(b []byte) []byte {
	var codes []byte
	r := mpReader{b: b}
	for len(r.b) > 0 && r.err == nil {
		c := r.b[0]
		codes = append(codes, c)
		switch {
		case c <= 0x7f || c >= 0xe0 || (c >= 0x80 && c <= 0x9f) || c == 0xc0 || c == 0xc2 || c == 0xc3:
			r.b = r.b[1:]
		case c == 0xdc || c == 0xde:
			r.b = r.b[min(len(r.b), 3):]
		case c == 0xdd || c == 0xdf:
			r.b = r.b[min(len(r.b), 5):]
		case c == 0xd9 || c == 0xda || c == 0xdb || (c >= 0xa0 && c <= 0xbf):
			r.str()
		case c == 0xcc || c == 0xd0:
			r.need(2)
		case c == 0xcd || c == 0xd1:
			r.need(3)
		case c == 0xce || c == 0xd2:
			r.need(5)
		case c == 0xcf || c == 0xd3:
			r.need(9)
		default:
			return codes
		}
	}
	return codes
}

func hasMap(codes []byte) bool {
	for _, c := range codes {
		if (c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf {
			return true
		}
	}
	return false
}

func fuzzHeaderType(f *testing.F, zero func() HeaderCodec) {
	name := reflect.TypeOf(zero()).Elem().Name()
	for _, c := range headerCases() {
		// Large seeds slow the fuzzer's minimisation to a crawl; the unit
		// tests cover the long forms.
		if reflect.TypeOf(c.v).Elem().Name() == name && len(c.v.AppendMsgpack(nil)) < 512 {
			f.Add(c.v.AppendMsgpack(nil))
			f.Add(reflectEncode(f, c.v, true))
		}
	}
	for _, c := range hostile() {
		if reflect.TypeOf(c.v()).Elem().Name() == name && len(c.in) < 512 {
			f.Add(c.in)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzHeader(t, data, zero) })
}

func FuzzParseProduceRequest(f *testing.F)      { fuzzHeaderType(f, newOf[ProduceRequest]()) }
func FuzzParseProduceResponse(f *testing.F)     { fuzzHeaderType(f, newOf[ProduceResponse]()) }
func FuzzParseFetchRequest(f *testing.F)        { fuzzHeaderType(f, newOf[FetchRequest]()) }
func FuzzParseFetchResponse(f *testing.F)       { fuzzHeaderType(f, newOf[FetchResponse]()) }
func FuzzParseListOffsetsRequest(f *testing.F)  { fuzzHeaderType(f, newOf[ListOffsetsRequest]()) }
func FuzzParseListOffsetsResponse(f *testing.F) { fuzzHeaderType(f, newOf[ListOffsetsResponse]()) }
func FuzzParseMetadataRequest(f *testing.F)     { fuzzHeaderType(f, newOf[MetadataRequest]()) }
func FuzzParseMetadataResponse(f *testing.F)    { fuzzHeaderType(f, newOf[MetadataResponse]()) }
func FuzzParseBrokerInfo(f *testing.F)          { fuzzHeaderType(f, newOf[BrokerInfo]()) }
func FuzzParsePartitionMetadata(f *testing.F)   { fuzzHeaderType(f, newOf[PartitionMetadata]()) }
func FuzzParseTopicMetadata(f *testing.F)       { fuzzHeaderType(f, newOf[TopicMetadata]()) }
func FuzzParseCreateTopicRequest(f *testing.F)  { fuzzHeaderType(f, newOf[CreateTopicRequest]()) }
func FuzzParseDeleteTopicRequest(f *testing.F)  { fuzzHeaderType(f, newOf[DeleteTopicRequest]()) }
func FuzzParseAlterTopicConfigRequest(f *testing.F) {
	fuzzHeaderType(f, newOf[AlterTopicConfigRequest]())
}
func FuzzParseErrorResponse(f *testing.F)         { fuzzHeaderType(f, newOf[ErrorResponse]()) }
func FuzzParseDescribeTopicRequest(f *testing.F)  { fuzzHeaderType(f, newOf[DescribeTopicRequest]()) }
func FuzzParsePartitionInfo(f *testing.F)         { fuzzHeaderType(f, newOf[PartitionInfo]()) }
func FuzzParseDescribeTopicResponse(f *testing.F) { fuzzHeaderType(f, newOf[DescribeTopicResponse]()) }
func FuzzParseSubscribePartition(f *testing.F)    { fuzzHeaderType(f, newOf[SubscribePartition]()) }
func FuzzParseSubscribeRequest(f *testing.F)      { fuzzHeaderType(f, newOf[SubscribeRequest]()) }
func FuzzParseSubscribeResponse(f *testing.F)     { fuzzHeaderType(f, newOf[SubscribeResponse]()) }
func FuzzParseSubscribePartitionResult(f *testing.F) {
	fuzzHeaderType(f, newOf[SubscribePartitionResult]())
}
func FuzzParseSubscribeCredit(f *testing.F) { fuzzHeaderType(f, newOf[SubscribeCredit]()) }
func FuzzParseSubscribeData(f *testing.F)   { fuzzHeaderType(f, newOf[SubscribeData]()) }
func FuzzParseBrokerHeartbeatRequest(f *testing.F) {
	fuzzHeaderType(f, newOf[BrokerHeartbeatRequest]())
}
func FuzzParseBrokerHeartbeatResponse(f *testing.F) {
	fuzzHeaderType(f, newOf[BrokerHeartbeatResponse]())
}
func FuzzParseClusterInfoRequest(f *testing.F)  { fuzzHeaderType(f, newOf[ClusterInfoRequest]()) }
func FuzzParseClusterInfoResponse(f *testing.F) { fuzzHeaderType(f, newOf[ClusterInfoResponse]()) }
func FuzzParseClusterBroker(f *testing.F)       { fuzzHeaderType(f, newOf[ClusterBroker]()) }
func FuzzParseRaftMessages(f *testing.F)        { fuzzHeaderType(f, newOf[RaftMessages]()) }
func FuzzParseDrainBrokerRequest(f *testing.F)  { fuzzHeaderType(f, newOf[DrainBrokerRequest]()) }
func FuzzParseDrainBrokerResponse(f *testing.F) { fuzzHeaderType(f, newOf[DrainBrokerResponse]()) }
func FuzzParseClusterMove(f *testing.F)         { fuzzHeaderType(f, newOf[ClusterMove]()) }
func FuzzParseClusterDrain(f *testing.F)        { fuzzHeaderType(f, newOf[ClusterDrain]()) }
