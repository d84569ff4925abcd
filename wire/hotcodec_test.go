package wire

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// Method-less copies of the hot headers: msgpack encodes them by reflection,
// which is the reference the hand-written codecs must match byte for byte.
type (
	plainProduceRequest  ProduceRequest
	plainProduceResponse ProduceResponse
	plainFetchRequest    FetchRequest
	plainFetchResponse   FetchResponse
	plainSubscribeData   SubscribeData
	plainSubscribeCredit SubscribeCredit
)

// hotCase is one hot header value, its reflection twin and a fresh zero value.
type hotCase struct {
	name  string
	v     any // pointer to a hot header
	plain any // pointer to its method-less copy
	zero  func() any
}

func hotCases() []hotCase {
	var cases []hotCase
	add := func(name string, v, plain any, zero func() any) {
		cases = append(cases, hotCase{name, v, plain, zero})
	}
	strs := []string{"", "t", strings.Repeat("a", 31), strings.Repeat("b", 32), strings.Repeat("c", 255),
		strings.Repeat("d", 256), strings.Repeat("e", 65535), strings.Repeat("f", 65536)}
	ints := []int64{0, 1, -1, 127, 128, -32, -33, 255, 256, math.MaxInt32, math.MinInt32, math.MaxInt64, math.MinInt64}
	for i, s := range strs {
		n := ints[i%len(ints)]
		n32 := int32(n)
		p := &ProduceRequest{Topic: s, Partition: n32, Acks: int8(n), TimeoutMs: -n32}
		add("produce_request", p, (*plainProduceRequest)(p), func() any { return new(ProduceRequest) })
		pr := &ProduceResponse{Error: ErrorCode(n), Message: s, BaseOffset: n, LastOffset: -n}
		add("produce_response", pr, (*plainProduceResponse)(pr), func() any { return new(ProduceResponse) })
		f := &FetchRequest{Topic: s, Partition: n32, Offset: n, MaxBytes: -n32, MinBytes: n32 / 2, MaxWaitMs: 500}
		add("fetch_request", f, (*plainFetchRequest)(f), func() any { return new(FetchRequest) })
		fr := &FetchResponse{Error: ErrNotLeader, Message: s, HighWatermark: n, LogStartOffset: -n}
		add("fetch_response", fr, (*plainFetchResponse)(fr), func() any { return new(FetchResponse) })
		sd := &SubscribeData{Topic: s, Partition: n32, Error: math.MaxUint16, Message: s, HighWatermark: n}
		add("subscribe_data", sd, (*plainSubscribeData)(sd), func() any { return new(SubscribeData) })
		sc := &SubscribeCredit{Bytes: n}
		add("subscribe_credit", sc, (*plainSubscribeCredit)(sc), func() any { return new(SubscribeCredit) })
	}
	return cases
}

// decodeWithDecoder decodes through DecodeMsgpack and checks nothing is left.
func decodeWithDecoder(b []byte, v msgpack.CustomDecoder) error {
	r := bytes.NewReader(b)
	if err := v.DecodeMsgpack(msgpack.NewDecoder(r)); err != nil {
		return err
	}
	if r.Len() != 0 {
		return ErrMalformedFrame
	}
	return nil
}

func TestHotHeadersMatchReflection(t *testing.T) {
	for _, c := range hotCases() {
		want, err := msgpack.Marshal(c.plain)
		if err != nil {
			t.Fatal(err)
		}
		viaEncoder, err := msgpack.Marshal(c.v)
		if err != nil {
			t.Fatal(err)
		}
		// A header passed by value encodes the same way.
		byValue, err := msgpack.Marshal(reflect.ValueOf(c.v).Elem().Interface())
		if err != nil || !bytes.Equal(byValue, want) {
			t.Fatalf("%s: by value %x (%v), want %x", c.name, byValue, err, want)
		}
		direct := c.v.(headerAppender).appendMsgpack(nil)
		if !bytes.Equal(viaEncoder, want) || !bytes.Equal(direct, want) {
			t.Fatalf("%s: EncodeMsgpack %x, appendMsgpack %x, reflection %x", c.name, viaEncoder, direct, want)
		}
		// Both decoders, and reflection into the plain twin, agree.
		a, b := c.zero(), c.zero()
		if err := a.(headerParser).parseMsgpack(want); err != nil {
			t.Fatalf("%s: parse: %v", c.name, err)
		}
		if err := decodeWithDecoder(want, b.(msgpack.CustomDecoder)); err != nil {
			t.Fatalf("%s: DecodeMsgpack: %v", c.name, err)
		}
		if !reflect.DeepEqual(a, c.v) || !reflect.DeepEqual(b, c.v) {
			t.Fatalf("%s: decoded %+v and %+v, want %+v", c.name, a, b, c.v)
		}
		if err := DecodeHeader(want, c.zero()); err != nil {
			t.Fatalf("%s: DecodeHeader: %v", c.name, err)
		}
	}
}

// TestHotHeadersAcceptCompactInts: another client may encode integers in their
// shortest form (or any other valid msgpack form); both decoders take it.
func TestHotHeadersAcceptCompactInts(t *testing.T) {
	for _, c := range hotCases() {
		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		enc.UseCompactInts(true)
		if err := enc.Encode(c.plain); err != nil {
			t.Fatal(err)
		}
		a, b := c.zero(), c.zero()
		if err := a.(headerParser).parseMsgpack(buf.Bytes()); err != nil {
			t.Fatalf("%s: parse %x: %v", c.name, buf.Bytes(), err)
		}
		if err := decodeWithDecoder(buf.Bytes(), b.(msgpack.CustomDecoder)); err != nil {
			t.Fatalf("%s: DecodeMsgpack: %v", c.name, err)
		}
		if !reflect.DeepEqual(a, c.v) || !reflect.DeepEqual(b, c.v) {
			t.Fatalf("%s: decoded %+v and %+v, want %+v", c.name, a, b, c.v)
		}
	}
	// Uint64 and int16 encodings of small values are valid too.
	in := []byte{0x91, 0xcf, 0, 0, 0, 0, 0, 0, 0, 5}
	var sc SubscribeCredit
	if err := sc.parseMsgpack(in); err != nil || sc.Bytes != 5 {
		t.Fatalf("uint64 credit: %v %d", err, sc.Bytes)
	}
	in = []byte{0x94, 0xa1, 'x', 0xd1, 0xff, 0xfe, 0xd1, 0, 1, 0xd1, 0, 0}
	var pr ProduceRequest
	if err := pr.parseMsgpack(in); err != nil || pr.Partition != -2 || pr.Acks != 1 {
		t.Fatalf("int16 fields: %v %+v", err, pr)
	}
}

func TestHotHeadersReject(t *testing.T) {
	produce := (&ProduceRequest{Topic: "t", Partition: 1, Acks: -1, TimeoutMs: 10}).appendMsgpack(nil)
	cases := []struct {
		name string
		in   []byte
		v    func() any
	}{
		{"empty", nil, func() any { return new(ProduceRequest) }},
		{"nil", []byte{0xc0}, func() any { return new(ProduceRequest) }},
		{"map", []byte{0x80}, func() any { return new(SubscribeCredit) }},
		{"short array", []byte{0x93, 0xa1, 'x', 0, 0}, func() any { return new(ProduceRequest) }},
		{"long array", []byte{0x92, 0, 0}, func() any { return new(SubscribeCredit) }},
		{"array16 wrong length", []byte{0xdc, 0, 2, 0, 0}, func() any { return new(SubscribeCredit) }},
		{"string for int", []byte{0x91, 0xa1, '1'}, func() any { return new(SubscribeCredit) }},
		{"nil int", []byte{0x91, 0xc0}, func() any { return new(SubscribeCredit) }},
		{"float int", []byte{0x91, 0xca, 0, 0, 0, 0}, func() any { return new(SubscribeCredit) }},
		{"bool int", []byte{0x91, 0xc3}, func() any { return new(SubscribeCredit) }},
		{"uint64 over int64", []byte{0x91, 0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0}, func() any { return new(SubscribeCredit) }},
		{"int8 overflow", []byte{0x94, 0xa1, 'x', 0, 0xcc, 200, 0}, func() any { return new(ProduceRequest) }},
		{"int32 overflow", []byte{0x94, 0xa1, 'x', 0xcf, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}, func() any { return new(ProduceRequest) }},
		{"negative error code", []byte{0x94, 0xff, 0xa0, 0, 0}, func() any { return new(ProduceResponse) }},
		{"error code overflow", []byte{0x94, 0xce, 0, 1, 0, 0, 0xa0, 0, 0}, func() any { return new(FetchResponse) }},
		{"int for string", []byte{0x94, 1, 0, 0, 0}, func() any { return new(ProduceRequest) }},
		{"bin for string", []byte{0x94, 0xc4, 1, 'x', 0, 0, 0}, func() any { return new(ProduceRequest) }},
		{"nil string", []byte{0x94, 0xc0, 0, 0, 0}, func() any { return new(ProduceRequest) }},
		{"string past end", []byte{0x94, 0xa5, 'x'}, func() any { return new(ProduceRequest) }},
		{"trailing", append(bytes.Clone(produce), 0), func() any { return new(ProduceRequest) }},
	}
	for i := range len(produce) {
		cases = append(cases, struct {
			name string
			in   []byte
			v    func() any
		}{"truncated", produce[:i], func() any { return new(ProduceRequest) }})
	}
	for _, c := range cases {
		if err := c.v().(headerParser).parseMsgpack(c.in); err == nil {
			t.Errorf("%s %x: parse accepted", c.name, c.in)
		}
		if err := decodeWithDecoder(c.in, c.v().(msgpack.CustomDecoder)); err == nil {
			t.Errorf("%s %x: DecodeMsgpack accepted", c.name, c.in)
		}
	}
}

// TestParseKeepsEqualStrings: decoding into a reused header does not allocate
// a new topic string when the topic is unchanged.
func TestParseKeepsEqualStrings(t *testing.T) {
	in := (&SubscribeData{Topic: "orders", Partition: 3, HighWatermark: 9}).appendMsgpack(nil)
	var sd SubscribeData
	if err := sd.parseMsgpack(in); err != nil {
		t.Fatal(err)
	}
	n := testing.AllocsPerRun(100, func() {
		if err := sd.parseMsgpack(in); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 || sd.Topic != "orders" {
		t.Fatalf("%v allocs, topic %q", n, sd.Topic)
	}
}
