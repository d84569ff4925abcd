package wire

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

// verifyCases covers the verify and replica digest headers: empty, nil and
// long lists, integers at their edges.
func verifyCases() []headerCase {
	var cases []headerCase
	add := func(name string, v HeaderCodec, zero func() HeaderCodec) {
		cases = append(cases, headerCase{name, v, zero})
	}
	for _, n := range []int{-1, 0, 1, 16, 300} {
		var parts []int32
		var vp []VerifyPartition
		var vr []VerifyReplica
		var dr []DigestRange
		var rd []RangeDigest
		if n >= 0 {
			parts, vp, vr, dr, rd = []int32{}, []VerifyPartition{}, []VerifyReplica{}, []DigestRange{}, []RangeDigest{}
		}
		for i := range n {
			parts = append(parts, int32(i)-1)
			vr = append(vr, VerifyReplica{Broker: strings.Repeat("b", i%40), Error: ErrorCode(i % 3), Message: "m",
				Ranges: int32(i), Divergent: int32(i / 2), FirstFrom: -1, FirstTo: int64(i) << 40, Bytes: math.MaxInt64})
			dr = append(dr, DigestRange{From: int64(i) << 33, To: -int64(i)})
			rd = append(rd, RangeDigest{Error: ErrorCode(i % 2 * int(ErrOffsetOutOfRange)), Batches: int64(i),
				Bytes: math.MinInt64, Sum: math.MaxUint64 - uint64(i)})
		}
		for i := range min(n, 12) {
			vp = append(vp, VerifyPartition{Partition: int32(i), Error: ErrNotLeader, Message: strings.Repeat("x", 40*i),
				Leader: "b1", From: int64(i), To: math.MaxInt64, Replicas: vr[:i]})
		}
		add("verify_request", &VerifyRequest{Topic: strings.Repeat("t", n+1), Partitions: parts, Forwarded: n%2 == 0},
			newOf[VerifyRequest]())
		add("verify_response", &VerifyResponse{Error: ErrUnknownTopicOrPartition, Message: "m", Partitions: vp},
			newOf[VerifyResponse]())
		add("verify_partition", &VerifyPartition{Partition: math.MinInt32, Replicas: vr}, newOf[VerifyPartition]())
		add("replica_digests_request", &ReplicaDigestsRequest{ClusterID: "c-1", Topic: "t", Partition: int32(n),
			Group: math.MaxUint64, Ranges: dr}, newOf[ReplicaDigestsRequest]())
		add("replica_digests_response", &ReplicaDigestsResponse{Error: ErrNotLeader, Message: "m", LogStartOffset: -2,
			HighWatermark: int64(n), Digests: rd}, newOf[ReplicaDigestsResponse]())
		if n == 1 {
			add("verify_replica", &vr[0], newOf[VerifyReplica]())
			add("digest_range", &dr[0], newOf[DigestRange]())
			add("range_digest", &rd[0], newOf[RangeDigest]())
		}
	}
	return cases
}

// TestVerifyHeadersMatchMsgpack: the hand-written codecs write what msgpack
// reflection writes, and read it back, in full and compact integer forms.
func TestVerifyHeadersMatchMsgpack(t *testing.T) {
	for _, c := range verifyCases() {
		got := c.v.AppendMsgpack(nil)
		if want := reflectEncode(t, c.v, false); !bytes.Equal(got, want) {
			t.Fatalf("%s: AppendMsgpack %x, reflection %x", c.name, trim(got), trim(want))
		}
		g, err := generic(got)
		if err != nil {
			t.Fatalf("%s: msgpack.Unmarshal: %v", c.name, err)
		}
		if want := normalize(reflect.ValueOf(c.v)); !reflect.DeepEqual(g, want) {
			t.Fatalf("%s: generic decoding %v, want %v", c.name, g, want)
		}
		z := c.zero()
		if err := z.ParseMsgpack(got); err != nil || !reflect.DeepEqual(z, c.v) {
			t.Fatalf("%s: parsed %+v (%v), want %+v", c.name, z, err, c.v)
		}
		z = c.zero()
		if err := DecodeHeader(reflectEncode(t, c.v, true), z); err != nil || !reflect.DeepEqual(z, c.v) {
			t.Fatalf("%s: compact ints: %v, %+v", c.name, err, z)
		}
	}
}

// TestVerifyHeadersReject: counts beyond the bytes present or the limits
// are refused before anything is allocated for them.
func TestVerifyHeadersReject(t *testing.T) {
	u32 := func(prefix []byte, n uint32) []byte {
		return append(prefix, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	cases := []struct {
		name string
		in   []byte
		v    func() HeaderCodec
	}{
		{"verify: 2^32-1 partitions", u32([]byte{0x93, 0xa1, 't', 0xdd}, math.MaxUint32), newOf[VerifyRequest]()},
		{"verify: partitions past MaxListLen", u32([]byte{0x93, 0xa1, 't', 0xdd}, MaxListLen+1), newOf[VerifyRequest]()},
		{"verify: int64 partition", []byte{0x93, 0xa1, 't', 0x91, 0xd3, 0, 0, 0, 1, 0, 0, 0, 0, 0xc2}, newOf[VerifyRequest]()},
		{"verify: nil forwarded", []byte{0x93, 0xa1, 't', 0xc0, 0xc0}, newOf[VerifyRequest]()},
		{"verify response: 2^24 partitions", u32([]byte{0x93, 0, 0xa0, 0xdd}, 1<<24), newOf[VerifyResponse]()},
		{"verify partition: 2^24 replicas", u32([]byte{0x97, 0, 0, 0xa0, 0xa0, 0, 0, 0xdd}, 1<<24), newOf[VerifyPartition]()},
		{"digests: 2^32-1 ranges", u32([]byte{0x95, 0xa0, 0xa0, 0, 0, 0xdd}, math.MaxUint32), newOf[ReplicaDigestsRequest]()},
		{"digests: negative group", []byte{0x95, 0xa0, 0xa0, 0, 0xff, 0xc0}, newOf[ReplicaDigestsRequest]()},
		{"digests response: 2^24 digests", u32([]byte{0x95, 0, 0xa0, 0, 0, 0xdd}, 1<<24), newOf[ReplicaDigestsResponse]()},
		{"range digest: short", []byte{0x94, 0, 0xa0, 0, 0}, newOf[RangeDigest]()},
		{"trailing", append(VerifyRequest{Topic: "t"}.AppendMsgpack(nil), 0), newOf[VerifyRequest]()},
	}
	for _, c := range cases {
		if err := c.v().ParseMsgpack(c.in); !errors.Is(err, ErrMalformedFrame) {
			t.Fatalf("%s: %v, want ErrMalformedFrame", c.name, err)
		}
	}
}

func fuzzVerifyHeader(f *testing.F, zero func() HeaderCodec) {
	name := reflect.TypeOf(zero()).Elem().Name()
	for _, c := range verifyCases() {
		if reflect.TypeOf(c.v).Elem().Name() == name && len(c.v.AppendMsgpack(nil)) < 512 {
			f.Add(c.v.AppendMsgpack(nil))
			f.Add(reflectEncode(f, c.v, true))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzHeader(t, data, zero) })
}

func FuzzParseVerifyRequest(f *testing.F)   { fuzzVerifyHeader(f, newOf[VerifyRequest]()) }
func FuzzParseVerifyResponse(f *testing.F)  { fuzzVerifyHeader(f, newOf[VerifyResponse]()) }
func FuzzParseVerifyPartition(f *testing.F) { fuzzVerifyHeader(f, newOf[VerifyPartition]()) }
func FuzzParseVerifyReplica(f *testing.F)   { fuzzVerifyHeader(f, newOf[VerifyReplica]()) }
func FuzzParseReplicaDigestsRequest(f *testing.F) {
	fuzzVerifyHeader(f, newOf[ReplicaDigestsRequest]())
}
func FuzzParseReplicaDigestsResponse(f *testing.F) {
	fuzzVerifyHeader(f, newOf[ReplicaDigestsResponse]())
}
func FuzzParseDigestRange(f *testing.F) { fuzzVerifyHeader(f, newOf[DigestRange]()) }
func FuzzParseRangeDigest(f *testing.F) { fuzzVerifyHeader(f, newOf[RangeDigest]()) }
