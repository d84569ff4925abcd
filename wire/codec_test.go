package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// headerCase is one header value and a fresh zero value of its type.
type headerCase struct {
	name string
	v    HeaderCodec
	zero func() HeaderCodec
}

func newOf[T any, P interface {
	*T
	HeaderCodec
}]() func() HeaderCodec {
	return func() HeaderCodec { return P(new(T)) }
}

// headerCases covers every header type with strings of every str form,
// integers at the edges of every int form, nil and empty lists and maps.
func headerCases() []headerCase {
	var cases []headerCase
	add := func(name string, v HeaderCodec, zero func() HeaderCodec) {
		cases = append(cases, headerCase{name, v, zero})
	}
	strs := []string{"", "t", strings.Repeat("a", 31), strings.Repeat("b", 32), strings.Repeat("c", 255),
		strings.Repeat("d", 256), strings.Repeat("e", 65535), strings.Repeat("f", 65536)}
	ints := []int64{0, 1, -1, 127, 128, -32, -33, 255, 256, math.MaxInt32, math.MinInt32, math.MaxInt64, math.MinInt64}
	uints := []uint64{0, 1, 127, 128, 255, 256, math.MaxUint32, math.MaxInt64, math.MaxUint64}
	for i, s := range strs {
		n := ints[i%len(ints)]
		n32 := int32(n)
		u := uints[i%len(uints)]
		add("produce_request", &ProduceRequest{Topic: s, Partition: n32, Acks: int8(n), TimeoutMs: -n32}, newOf[ProduceRequest]())
		add("produce_response", &ProduceResponse{Error: ErrorCode(n), Message: s, LeaderID: "b1", LeaderAddr: s,
			BaseOffset: n, LastOffset: -n}, newOf[ProduceResponse]())
		add("fetch_request", &FetchRequest{Topic: s, Partition: n32, Offset: n, MaxBytes: -n32, MinBytes: n32 / 2,
			MaxWaitMs: 500}, newOf[FetchRequest]())
		add("fetch_response", &FetchResponse{Error: ErrNotLeader, Message: s, LeaderID: s, HighWatermark: n,
			LogStartOffset: -n}, newOf[FetchResponse]())
		add("list_offsets_request", &ListOffsetsRequest{Topic: s, Partition: n32, Timestamp: n}, newOf[ListOffsetsRequest]())
		add("list_offsets_response", &ListOffsetsResponse{Error: ErrorCode(u), Message: s, LeaderAddr: "127.0.0.1:9092",
			Offset: n, Timestamp: -n}, newOf[ListOffsetsResponse]())
		add("subscribe_data", &SubscribeData{Topic: s, Partition: n32, Error: math.MaxUint16, Message: s, LeaderID: "x",
			LeaderAddr: "y", HighWatermark: n}, newOf[SubscribeData]())
		add("subscribe_credit", &SubscribeCredit{Bytes: n}, newOf[SubscribeCredit]())
		add("delete_topic_request", &DeleteTopicRequest{Name: s}, newOf[DeleteTopicRequest]())
		add("describe_topic_request", &DescribeTopicRequest{Name: s}, newOf[DescribeTopicRequest]())
		add("error_response", &ErrorResponse{Error: ErrorCode(u), Message: s}, newOf[ErrorResponse]())
		add("broker_info", &BrokerInfo{ID: s, Addr: "[::1]:1", Zone: s}, newOf[BrokerInfo]())
		add("partition_metadata", &PartitionMetadata{Partition: n32, Leader: s, Term: u, HashStart: ^u, HashEnd: u / 3,
			Error: ErrorCode(u)}, newOf[PartitionMetadata]())
		add("broker_heartbeat_request", &BrokerHeartbeatRequest{ClusterID: s, BrokerID: "b1", Instance: s, RaftID: u,
			Addr: "127.0.0.1:9092", Zone: s, Applied: ^u}, newOf[BrokerHeartbeatRequest]())
		add("broker_heartbeat_response", &BrokerHeartbeatResponse{Error: ErrorCode(u), Message: s, ClusterID: s,
			LeaderID: "b2", LeaderAddr: s, Epoch: u, LeaseMs: n}, newOf[BrokerHeartbeatResponse]())
		add("cluster_info_request", &ClusterInfoRequest{}, newOf[ClusterInfoRequest]())
		add("drain_broker_request", &DrainBrokerRequest{BrokerID: s, Mode: DrainFull, Undrain: i%2 == 0}, newOf[DrainBrokerRequest]())
		add("drain_broker_response", &DrainBrokerResponse{Error: ErrorCode(u), Message: s, BrokerID: "b1", Mode: DrainStateFull,
			Hosts: n32, Leads: -n32, Moves: 1}, newOf[DrainBrokerResponse]())
		add("cluster_move", &ClusterMove{Topic: s, Partition: n32, From: "b1", To: s, Source: "b2"}, newOf[ClusterMove]())
		add("cluster_drain", &ClusterDrain{ID: s, Mode: DrainStateLeadersOnly}, newOf[ClusterDrain]())
		add("cluster_broker", &ClusterBroker{ID: s, Addr: "[::1]:9092", Zone: s, State: BrokerStateFenced, LeaseAgeMs: n,
			Epoch: u, Leads: n32, Hosts: -n32, Voter: i%2 == 0, Applied: ^u}, newOf[ClusterBroker]())
		add("raft_messages", &RaftMessages{ClusterID: s, From: u, FromAddr: s, Count: uint32(u % (MaxRaftBatch + 1))},
			newOf[RaftMessages]())
		add("partition_info", &PartitionInfo{Partition: n32, Leader: s, LogStartOffset: n, LogEndOffset: -n,
			HighWatermark: n / 2, SizeBytes: n / 3, Segments: -n32}, newOf[PartitionInfo]())
		add("subscribe_partition", &SubscribePartition{Topic: s, Partition: n32, Offset: n}, newOf[SubscribePartition]())
		add("subscribe_partition_result", &SubscribePartitionResult{Error: ErrNotLeader, Message: s, LeaderID: "b2",
			LeaderAddr: "a", Offset: n}, newOf[SubscribePartitionResult]())
	}
	// Lists and maps: nil, empty, one element, and past each array/map form.
	for _, n := range []int{-1, 0, 1, 15, 16, 300} {
		var topics []string
		var pm []PartitionMetadata
		var pi []PartitionInfo
		var sp []SubscribePartition
		var sr []SubscribePartitionResult
		var brokers []BrokerInfo
		var cb []ClusterBroker
		var cm []ClusterMove
		var cd []ClusterDrain
		var configs map[string]string
		if n >= 0 {
			cm, cd = []ClusterMove{}, []ClusterDrain{}
			topics, pm, pi = []string{}, []PartitionMetadata{}, []PartitionInfo{}
			sp, sr, brokers, configs = []SubscribePartition{}, []SubscribePartitionResult{}, []BrokerInfo{}, map[string]string{}
			cb = []ClusterBroker{}
		}
		for i := range n {
			s := fmt.Sprintf("t-%d", i)
			topics = append(topics, s)
			pm = append(pm, PartitionMetadata{Partition: int32(i), Leader: "b", Term: uint64(i), HashEnd: math.MaxUint64,
				Error: ErrorCode(i % 2 * int(ErrPartitionOffline))})
			pi = append(pi, PartitionInfo{Partition: int32(i), Leader: s, LogEndOffset: int64(i) << 40, Segments: 3})
			sp = append(sp, SubscribePartition{Topic: s, Partition: int32(i), Offset: OffsetEarliest})
			sr = append(sr, SubscribePartitionResult{Error: ErrorCode(i % 3), Message: s, Offset: int64(i)})
			brokers = append(brokers, BrokerInfo{ID: s, Addr: "127.0.0.1:" + s, Zone: "z" + s})
			cb = append(cb, ClusterBroker{ID: s, Addr: "127.0.0.1:" + s, State: BrokerStateAlive, LeaseAgeMs: -1,
				Epoch: uint64(i), Leads: int32(i), Hosts: int32(2 * i), Voter: i < 3, Applied: uint64(i) << 33})
			configs["key."+s] = strings.Repeat("v", i)
			cm = append(cm, ClusterMove{Topic: s, Partition: int32(i), From: "a", To: "b", Source: "c"})
			cd = append(cd, ClusterDrain{ID: s, Mode: DrainStateFull})
		}
		var tm []TopicMetadata
		if n >= 0 {
			tm = []TopicMetadata{}
		}
		for i := range min(n, 20) {
			tm = append(tm, TopicMetadata{Error: ErrorCode(i), Name: topics[i], Partitions: pm[:i]})
		}
		add("metadata_request", &MetadataRequest{Topics: topics}, newOf[MetadataRequest]())
		add("metadata_response", &MetadataResponse{Message: "m", Brokers: brokers, Topics: tm}, newOf[MetadataResponse]())
		add("topic_metadata", &TopicMetadata{Name: "x", Partitions: pm}, newOf[TopicMetadata]())
		add("create_topic_request", &CreateTopicRequest{Name: "x", Partitions: int32(n), Configs: configs}, newOf[CreateTopicRequest]())
		add("alter_topic_config_request", &AlterTopicConfigRequest{Name: "x", Configs: configs}, newOf[AlterTopicConfigRequest]())
		add("describe_topic_response", &DescribeTopicResponse{Error: 3, Name: "x", Configs: configs, Partitions: pi},
			newOf[DescribeTopicResponse]())
		add("subscribe_request", &SubscribeRequest{Partitions: sp, Credit: int64(n) << 20}, newOf[SubscribeRequest]())
		add("subscribe_response", &SubscribeResponse{Message: "ok", Partitions: sr}, newOf[SubscribeResponse]())
		add("cluster_info_response", &ClusterInfoResponse{Error: ErrMetadataUnavailable, Message: "m", ClusterID: "c1",
			Brokers: cb, MetaLeader: "t-0", MetaTerm: uint64(n), MetaCommit: math.MaxUint64, MetaApplied: 1 << 40,
			Voters: topics, Learners: topics, Moves: cm, Drains: cd}, newOf[ClusterInfoResponse]())
	}
	return cases
}

// reflectEncode is what a stock msgpack library writes for v: reflection
// (the types carry `as_array`) with sorted map keys.
func reflectEncode(t testing.TB, v any, compact bool) []byte {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	enc.UseCompactInts(compact)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// generic decodes b with the msgpack library into an interface value and
// normalises it: every integer as int64 (uint64 above MaxInt64), maps as
// map[string]any.
func generic(b []byte) (any, error) {
	var v any
	if err := msgpack.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	return normalize(reflect.ValueOf(v)), nil
}

func normalize(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return normalize(v.Elem())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if u := v.Uint(); u <= math.MaxInt64 {
			return int64(u)
		}
		return v.Uint()
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return v.Bool()
	case reflect.Slice:
		if v.IsNil() {
			return nil
		}
		l := make([]any, v.Len())
		for i := range l {
			l[i] = normalize(v.Index(i))
		}
		return l
	case reflect.Map:
		if v.IsNil() {
			return nil
		}
		m := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			m[fmt.Sprint(normalize(it.Key()))] = normalize(it.Value())
		}
		return m
	case reflect.Struct: // a header: its exported fields, in order
		l := []any{}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				l = append(l, normalize(v.Field(i)))
			}
		}
		return l
	}
	panic(fmt.Sprintf("normalize: %s", v.Kind()))
}

func TestHeadersMatchMsgpack(t *testing.T) {
	for _, c := range headerCases() {
		got := c.v.AppendMsgpack(nil)
		// The bytes are what msgpack's reflection writes for the struct.
		if want := reflectEncode(t, c.v, false); !bytes.Equal(got, want) {
			t.Fatalf("%s: AppendMsgpack %x, reflection %x", c.name, trim(got), trim(want))
		}
		// A stock msgpack library decoding generically sees the fields.
		g, err := generic(got)
		if err != nil {
			t.Fatalf("%s: msgpack.Unmarshal: %v", c.name, err)
		}
		if want := normalize(reflect.ValueOf(c.v)); !reflect.DeepEqual(g, want) {
			t.Fatalf("%s: generic decoding %v, want %v", c.name, g, want)
		}
		// Values round-trip, through pointer and value receivers alike.
		z := c.zero()
		if err := z.ParseMsgpack(got); err != nil {
			t.Fatalf("%s: parse: %v", c.name, err)
		}
		if !reflect.DeepEqual(z, c.v) {
			t.Fatalf("%s: parsed %+v, want %+v", c.name, z, c.v)
		}
		if byValue, err := EncodeHeader(reflect.ValueOf(c.v).Elem().Interface()); err != nil || !bytes.Equal(byValue, got) {
			t.Fatalf("%s: EncodeHeader by value: %v", c.name, err)
		}
		// Another client may write integers in their shortest form.
		z = c.zero()
		if err := DecodeHeader(reflectEncode(t, c.v, true), z); err != nil || !reflect.DeepEqual(z, c.v) {
			t.Fatalf("%s: compact ints: %v, %+v", c.name, err, z)
		}
	}
}

func trim(b []byte) []byte { return b[:min(len(b), 64)] }

func TestHeadersAcceptOtherIntForms(t *testing.T) {
	in := []byte{0x91, 0xcf, 0, 0, 0, 0, 0, 0, 0, 5}
	var sc SubscribeCredit
	if err := sc.ParseMsgpack(in); err != nil || sc.Bytes != 5 {
		t.Fatalf("uint64 credit: %v %d", err, sc.Bytes)
	}
	in = []byte{0x94, 0xa1, 'x', 0xd1, 0xff, 0xfe, 0xd1, 0, 1, 0xd1, 0, 0}
	var pr ProduceRequest
	if err := pr.ParseMsgpack(in); err != nil || pr.Partition != -2 || pr.Acks != 1 {
		t.Fatalf("int16 fields: %v %+v", err, pr)
	}
	// A map in any key order.
	in = []byte{0x94, 0xa1, 'x', 1, 0x82, 0xa1, 'b', 0xa1, '2', 0xa1, 'a', 0xa1, '1', 3}
	var ct CreateTopicRequest
	if err := ct.ParseMsgpack(in); err != nil || ct.Configs["a"] != "1" || ct.Configs["b"] != "2" {
		t.Fatalf("unsorted map: %v %+v", err, ct)
	}
}

func TestHeadersReject(t *testing.T) {
	produce := ProduceRequest{Topic: "t", Partition: 1, Acks: -1, TimeoutMs: 10}.AppendMsgpack(nil)
	credit := newOf[SubscribeCredit]()
	cases := []struct {
		name string
		in   []byte
		v    func() HeaderCodec
	}{
		{"empty", nil, newOf[ProduceRequest]()},
		{"nil", []byte{0xc0}, newOf[ProduceRequest]()},
		{"map", []byte{0x80}, credit},
		{"short array", []byte{0x93, 0xa1, 'x', 0, 0}, newOf[ProduceRequest]()},
		{"long array", []byte{0x92, 0, 0}, credit},
		{"array16 wrong length", []byte{0xdc, 0, 2, 0, 0}, credit},
		{"string for int", []byte{0x91, 0xa1, '1'}, credit},
		{"nil int", []byte{0x91, 0xc0}, credit},
		{"float int", []byte{0x91, 0xca, 0, 0, 0, 0}, credit},
		{"bool int", []byte{0x91, 0xc3}, credit},
		{"uint64 over int64", []byte{0x91, 0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0}, credit},
		{"int8 overflow", []byte{0x94, 0xa1, 'x', 0, 0xcc, 200, 0}, newOf[ProduceRequest]()},
		{"int32 overflow", []byte{0x94, 0xa1, 'x', 0xcf, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}, newOf[ProduceRequest]()},
		{"negative error code", []byte{0x92, 0xff, 0xa0}, newOf[ErrorResponse]()},
		{"error code overflow", []byte{0x92, 0xce, 0, 1, 0, 0, 0xa0}, newOf[ErrorResponse]()},
		{"negative uint64", []byte{0x96, 0, 0xa0, 0xff, 0, 0, 0}, newOf[PartitionMetadata]()},
		{"old partition metadata", []byte{0x95, 0, 0xa0, 0, 0, 0}, newOf[PartitionMetadata]()},
		{"int for bool", []byte{0x9a, 0xa0, 0xa0, 0xa0, 0xa0, 0, 0, 0, 0, 1, 0}, newOf[ClusterBroker]()},
		{"nil bool", []byte{0x9a, 0xa0, 0xa0, 0xa0, 0xa0, 0, 0, 0, 0, 0xc0, 0}, newOf[ClusterBroker]()},
		{"raft batch over MaxRaftBatch", RaftMessages{Count: MaxRaftBatch + 1}.AppendMsgpack(nil), newOf[RaftMessages]()},
		{"raft count over uint32", []byte{0x94, 0xa0, 0, 0xa0, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0}, newOf[RaftMessages]()},
		{"cluster info request with a field", []byte{0x91, 0}, newOf[ClusterInfoRequest]()},
		{"int for string", []byte{0x94, 1, 0, 0, 0}, newOf[ProduceRequest]()},
		{"bin for string", []byte{0x94, 0xc4, 1, 'x', 0, 0, 0}, newOf[ProduceRequest]()},
		{"nil string", []byte{0x94, 0xc0, 0, 0, 0}, newOf[ProduceRequest]()},
		{"string past end", []byte{0x94, 0xa5, 'x'}, newOf[ProduceRequest]()},
		{"trailing", append(bytes.Clone(produce), 0), newOf[ProduceRequest]()},
		{"nil list element", []byte{0x92, 0x91, 0xc0, 0}, newOf[SubscribeRequest]()},
		{"int list element", []byte{0x91, 0x91, 1}, newOf[MetadataRequest]()},
		{"map for list", []byte{0x91, 0x80}, newOf[MetadataRequest]()},
		{"list for map", []byte{0x92, 0xa1, 'x', 0x90}, newOf[AlterTopicConfigRequest]()},
		{"duplicate config key", []byte{0x92, 0xa1, 'x', 0x82, 0xa1, 'a', 0xa0, 0xa1, 'a', 0xa0}, newOf[AlterTopicConfigRequest]()},
		{"int config key", []byte{0x92, 0xa1, 'x', 0x81, 1, 0xa0}, newOf[AlterTopicConfigRequest]()},
		{"nil config value", []byte{0x92, 0xa1, 'x', 0x81, 0xa0, 0xc0}, newOf[AlterTopicConfigRequest]()},
	}
	for i := range len(produce) {
		cases = append(cases, struct {
			name string
			in   []byte
			v    func() HeaderCodec
		}{"truncated", produce[:i], newOf[ProduceRequest]()})
	}
	for _, c := range cases {
		if err := c.v().ParseMsgpack(c.in); !errors.Is(err, ErrMalformedFrame) {
			t.Errorf("%s %x: %v", c.name, c.in, err)
		}
	}
}

// hostile are headers that claim far more than they hold.
func hostile() []struct {
	name string
	in   []byte
	v    func() HeaderCodec
} {
	u32 := func(b []byte, n uint32) []byte { return binary.BigEndian.AppendUint32(b, n) }
	// 10,001 minimal subscribe partitions: every one present, one too many.
	over := mpArray([]byte{0x92}, MaxListLen+1)
	for range MaxListLen + 1 {
		over = append(over, 0x93, 0xa0, 0, 0)
	}
	over = append(over, 0)
	// Topics of MaxListLen minimal partitions each, past MaxHeaderElements.
	many := append([]byte{0x94, 0, 0xa0, 0xc0}, mpArray(nil, 11)...)
	for range 11 {
		many = mpArray(append(many, 0x94, 0, 0xa0, 0xa0), MaxListLen)
		for range MaxListLen {
			many = append(many, 0x96, 0, 0xa0, 0, 0, 0, 0)
		}
	}
	return []struct {
		name string
		in   []byte
		v    func() HeaderCodec
	}{
		{"subscribe of 2^32-1 partitions", []byte{0x92, 0xdd, 0xff, 0xff, 0xff, 0xff}, newOf[SubscribeRequest]()},
		{"subscribe of 2^24 partitions", u32([]byte{0x92, 0xdd}, 1<<24), newOf[SubscribeRequest]()},
		{"subscribe of 2^24 partitions, some present", append(u32([]byte{0x92, 0xdd}, 1<<24),
			bytes.Repeat([]byte{0x93, 0xa0, 0, 0}, 1000)...), newOf[SubscribeRequest]()},
		{"subscribe over MaxListLen", over, newOf[SubscribeRequest]()},
		{"metadata of 2^32-1 topics", []byte{0x91, 0xdd, 0xff, 0xff, 0xff, 0xff}, newOf[MetadataRequest]()},
		{"metadata response: 2^32-1 brokers", []byte{0x94, 0, 0xa0, 0xdd, 0xff, 0xff, 0xff, 0xff}, newOf[MetadataResponse]()},
		{"metadata response: nested 2^32-1 partitions", u32([]byte{0x94, 0, 0xa0, 0xc0, 0x92,
			0x94, 0, 0xa0, 0xa0, 0x90, 0x94, 0, 0xa0, 0xa0, 0xdd}, math.MaxUint32), newOf[MetadataResponse]()},
		{"metadata response past MaxHeaderElements", many, newOf[MetadataResponse]()},
		{"describe: 2^32-1 partitions", u32([]byte{0x95, 0, 0xa0, 0xa0, 0xc0, 0xdd}, math.MaxUint32), newOf[DescribeTopicResponse]()},
		{"describe: 2^32-1 configs", u32([]byte{0x95, 0, 0xa0, 0xa0, 0xdf}, math.MaxUint32), newOf[DescribeTopicResponse]()},
		{"create: 2^24 configs", u32([]byte{0x93, 0xa1, 'x', 1, 0xdf}, 1<<24), newOf[CreateTopicRequest]()},
		{"create: configs over MaxConfigEntries", append(mpMap([]byte{0x93, 0xa1, 'x', 1}, MaxConfigEntries+1),
			bytes.Repeat([]byte{0xa0, 0xa0}, MaxConfigEntries+1)...), newOf[CreateTopicRequest]()},
		{"alter: config value of 4 GiB", u32([]byte{0x92, 0xa1, 'x', 0x81, 0xa1, 'k', 0xdb}, math.MaxUint32), newOf[AlterTopicConfigRequest]()},
		{"produce: topic of 4 GiB", u32([]byte{0x94, 0xdb}, math.MaxUint32), newOf[ProduceRequest]()},
		{"subscribe data: message of 2^24", u32([]byte{0x97, 0xa1, 't', 0, 0, 0xdb}, 1<<24), newOf[SubscribeData]()},
		{"subscribe response: 2^32-1 results", u32([]byte{0x93, 0, 0xa0, 0xdd}, math.MaxUint32), newOf[SubscribeResponse]()},
		{"cluster info: 2^32-1 brokers", u32([]byte{0x9a, 0, 0xa0, 0xa0, 0xdd}, math.MaxUint32), newOf[ClusterInfoResponse]()},
		{"cluster info: 2^24 voters", u32([]byte{0x9a, 0, 0xa0, 0xa0, 0xc0, 0xa0, 0, 0, 0, 0xdd}, 1<<24), newOf[ClusterInfoResponse]()},
		{"heartbeat: broker id of 4 GiB", u32([]byte{0x97, 0xa0, 0xdb}, math.MaxUint32), newOf[BrokerHeartbeatRequest]()},
	}
}

// TestHostileHeaders: a header that claims a huge list, map or string is
// rejected before anything is sized from the claim. The 18-byte subscribe
// frame used to end the broker with "fatal error: runtime: out of memory".
func TestHostileHeaders(t *testing.T) {
	for _, c := range hostile() {
		frame := AppendFrame(nil, FrameHeader{API: APISubscribe, Corr: 1}, c.in, nil)
		fr := NewFrameReader(bytes.NewReader(frame), 0)
		f, err := fr.Next()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var derr error
		alloc := allocBytes(func() { derr = fr.DecodeHeader(&f, c.v()) })
		if !errors.Is(derr, ErrMalformedFrame) {
			t.Fatalf("%s: %v", c.name, derr)
		}
		// At most a small multiple of what the header holds, whatever it
		// claims.
		if limit := uint64(64<<10 + 10*len(c.in)); alloc > limit {
			t.Errorf("%s: decoding allocated %d bytes (limit %d): %v", c.name, alloc, limit, derr)
		}
		t.Logf("%s (%d bytes): %d bytes allocated: %v", c.name, len(c.in), alloc, derr)
	}
}

// allocBytes is the heap allocated while f runs.
func allocBytes(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestHotHeadersNoAllocs: the data-path headers encode and decode without
// allocating, a reused header keeping its topic string.
func TestHotHeadersNoAllocs(t *testing.T) {
	for _, v := range []HeaderCodec{
		&ProduceRequest{Topic: "orders", Partition: 3, Acks: AcksAll, TimeoutMs: 100},
		&ProduceResponse{BaseOffset: 4, LastOffset: 9},
		&FetchRequest{Topic: "orders", Partition: 3, Offset: 7, MaxBytes: 1 << 20},
		&FetchResponse{HighWatermark: 9},
		&SubscribeData{Topic: "orders", Partition: 3, HighWatermark: 9},
		&SubscribeCredit{Bytes: 1 << 20},
	} {
		in := v.AppendMsgpack(nil)
		got := reflect.New(reflect.TypeOf(v).Elem()).Interface().(HeaderCodec)
		if err := got.ParseMsgpack(in); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 0, 256)
		n := testing.AllocsPerRun(100, func() {
			buf = v.AppendMsgpack(buf[:0])
			if err := got.ParseMsgpack(in); err != nil {
				t.Fatal(err)
			}
		})
		if n != 0 || !reflect.DeepEqual(got, v) {
			t.Fatalf("%T: %v allocs, decoded %+v", v, n, got)
		}
	}
}

func TestNoCodec(t *testing.T) {
	type other struct{ A int }
	if err := DecodeHeader([]byte{0x91, 1}, &other{}); !errors.Is(err, ErrNoCodec) {
		t.Fatalf("DecodeHeader: %v", err)
	}
	if _, err := EncodeHeader(other{}); !errors.Is(err, ErrNoCodec) {
		t.Fatalf("EncodeHeader: %v", err)
	}
	if err := NewFrameWriter(&bytes.Buffer{}).WriteFrame(FrameHeader{}, &other{}); !errors.Is(err, ErrNoCodec) {
		t.Fatalf("WriteFrame: %v", err)
	}
}

// TestLeaderHint: every per-partition error carries the leader as fields,
// and Err hands them to the client as an *Error.
func TestLeaderHint(t *testing.T) {
	errs := []error{
		(&ProduceResponse{Error: ErrNotLeader, LeaderID: "b2", LeaderAddr: "10.0.0.2:9092"}).Err(),
		(&FetchResponse{Error: ErrNotLeader, LeaderID: "b2", LeaderAddr: "10.0.0.2:9092"}).Err(),
		(&ListOffsetsResponse{Error: ErrNotLeader, LeaderID: "b2", LeaderAddr: "10.0.0.2:9092"}).Err(),
		(&SubscribePartitionResult{Error: ErrNotLeader, LeaderID: "b2", LeaderAddr: "10.0.0.2:9092"}).Err(),
		(&SubscribeData{Error: ErrNotLeader, LeaderID: "b2", LeaderAddr: "10.0.0.2:9092"}).Err(),
	}
	for _, err := range errs {
		var we *Error
		if !errors.As(err, &we) || !errors.Is(err, ErrNotLeader) || we.LeaderID != "b2" || we.LeaderAddr != "10.0.0.2:9092" {
			t.Fatalf("%v", err)
		}
		if !strings.Contains(err.Error(), "b2") {
			t.Fatalf("message %q lacks the leader", err)
		}
	}
	if (&ProduceResponse{}).Err() != nil || (&SubscribeData{}).Err() != nil {
		t.Fatal("no error gives nil")
	}
}
