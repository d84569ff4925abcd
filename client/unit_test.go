package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rafka/rafka/wire"
)

func TestBackoffBounds(t *testing.T) {
	base, maxDelay := 100*time.Millisecond, 5*time.Second
	for attempt := 1; attempt <= 12; attempt++ {
		want := min(base<<(attempt-1), maxDelay)
		for range 50 {
			d := backoff(attempt, base, maxDelay)
			if d < want/2 || d > want {
				t.Fatalf("attempt %d: backoff %v outside [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
}

func TestSleepCtxCancelled(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(ErrClosed)
	if err := sleepCtx(ctx, time.Hour); !errors.Is(err, ErrClosed) {
		t.Fatalf("sleepCtx = %v, want the cause", err)
	}
}

func TestRetriable(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&wire.Error{Code: wire.ErrNotLeader}, true},
		{fmt.Errorf("wrapped: %w", &wire.Error{Code: wire.ErrRequestTimedOut}), true},
		{&wire.Error{Code: wire.ErrUnknownTopicOrPartition}, false},
		{&wire.Error{Code: wire.ErrMessageTooLarge}, false},
		{transport(io.ErrUnexpectedEOF), true},
		{fmt.Errorf("ctx: %w", transport(errors.New("reset"))), true},
		{context.Canceled, false},
		{ErrClosed, false},
	}
	for _, c := range cases {
		if got := retriable(c.err); got != c.want {
			t.Errorf("retriable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestSentinelsMatchWireErrors(t *testing.T) {
	err := fmt.Errorf("client: produce: %w", &wire.Error{Code: wire.ErrNotLeader, Message: "leader is b-2"})
	if !errors.Is(err, ErrNotLeader) {
		t.Fatal("errors.Is(NOT_LEADER error, ErrNotLeader) = false")
	}
	if errors.Is(err, ErrUnknownTopicOrPartition) {
		t.Fatal("NOT_LEADER matched ErrUnknownTopicOrPartition")
	}
}

// equalTopic returns metadata with n partitions owning equal hash ranges, as
// the broker creates them.
func equalTopic(name string, n int32) *TopicMetadata {
	tm := &TopicMetadata{Name: name}
	for i := range n {
		s, e := wire.PartitionRange(i, n)
		tm.Partitions = append(tm.Partitions, PartitionMetadata{Partition: i, HashStart: s, HashEnd: e})
	}
	return tm
}

func TestHashPartitionerKeyed(t *testing.T) {
	for _, n := range []int32{1, 2, 3, 7, 16} {
		tm := equalTopic("t", n)
		hp := NewHashPartitioner()
		for i := range 200 {
			key := []byte(fmt.Sprintf("key-%d", i))
			got := hp.Partition(&Record{Key: key}, tm)
			if want := wire.PartitionForHash(wire.KeyHash(key), n); got != want {
				t.Fatalf("n=%d key %q: partition %d, want %d", n, key, got, want)
			}
		}
	}
}

func TestPartitionForHashUnevenRanges(t *testing.T) {
	// Partition 1 was split into 1 and 2; ranges are not in partition order.
	tm := &TopicMetadata{Name: "t", Partitions: []PartitionMetadata{
		{Partition: 0, HashStart: 0, HashEnd: 99},
		{Partition: 1, HashStart: 200, HashEnd: math.MaxUint64},
		{Partition: 2, HashStart: 100, HashEnd: 199},
	}}
	for h, want := range map[uint64]int32{0: 0, 99: 0, 100: 2, 150: 2, 199: 2, 200: 1, math.MaxUint64: 1} {
		if got := partitionForHash(tm, h); got != want {
			t.Errorf("hash %d: partition %d, want %d", h, got, want)
		}
	}
}

func TestHashPartitionerStickyRoundRobin(t *testing.T) {
	tm := equalTopic("t", 3)
	hp := NewHashPartitioner()
	first := hp.Partition(&Record{}, tm)
	for range 10 {
		if p := hp.Partition(&Record{}, tm); p != first {
			t.Fatalf("unkeyed record moved from %d to %d without a sealed batch", first, p)
		}
	}
	hp.BatchSealed("t", (first+1)%3) // another partition's batch: no move
	if p := hp.Partition(&Record{}, tm); p != first {
		t.Fatalf("moved to %d after another partition's batch was sealed", p)
	}
	seen := map[int32]bool{}
	p := first
	for range 6 {
		seen[p] = true
		hp.BatchSealed("t", p)
		next := hp.Partition(&Record{}, tm)
		if next != (p+1)%3 {
			t.Fatalf("after sealing %d went to %d, want %d", p, next, (p+1)%3)
		}
		p = next
	}
	if len(seen) != 3 {
		t.Fatalf("round robin visited %v", seen)
	}
}

func TestClientOptionValidation(t *testing.T) {
	_, err := New(context.Background(),
		WithBrokers(),
		WithDialTimeout(0),
		WithTLSConfig(nil),
		WithControlBackoff(time.Second, time.Millisecond),
		WithMaxFrameBytes(1))
	if !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("New = %v, want ErrInvalidOption", err)
	}
	for _, want := range []string{"no brokers", "dial timeout", "backoff", "max frame bytes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestClientTLSCombination(t *testing.T) {
	cfg := defaultConfig()
	WithTLSConfig(&tls.Config{})(&cfg)
	WithCAFile("ca.pem")(&cfg)
	if err := cfg.validate(); !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), "WithTLSConfig") {
		t.Fatalf("TLS config with CA file: %v", err)
	}
}

func TestProducerOptionValidation(t *testing.T) {
	cfg := defaultProducerConfig()
	cfg.partitioner = NewHashPartitioner()
	if err := cfg.validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, o := range []ProducerOption{
		WithLinger(-1), WithMaxBatchBytes(10), WithCompression(7), WithAcks(5),
		WithBufferBytes(1), WithMaxInFlight(0), WithRetries(-1), WithRetryBackoff(0, 0),
		WithRequestTimeout(0), WithPartitioner(nil), WithLeaderProbe(-1),
	} {
		o(&cfg)
	}
	err := cfg.validate()
	if !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("validate = %v, want ErrInvalidOption", err)
	}
	if got := strings.Count(err.Error(), "\n") + 1; got != 11 {
		t.Fatalf("validate reported %d problems, want 11:\n%v", got, err)
	}
	// Idempotence bounds the requests in flight by what brokers remember.
	cfg = defaultProducerConfig()
	cfg.partitioner = NewHashPartitioner()
	WithMaxInFlight(MaxIdempotentInFlight + 1)(&cfg)
	if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), "idempotent") {
		t.Fatalf("idempotent with %d in flight: %v", MaxIdempotentInFlight+1, err)
	}
	WithIdempotence(false)(&cfg)
	if err := cfg.validate(); err != nil {
		t.Fatalf("not idempotent with %d in flight: %v", MaxIdempotentInFlight+1, err)
	}
	// A combination: the buffer must hold one batch.
	cfg = defaultProducerConfig()
	cfg.partitioner = NewHashPartitioner()
	WithMaxBatchBytes(4 << 20)(&cfg)
	WithBufferBytes(1 << 20)(&cfg)
	if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), "buffer bytes") {
		t.Fatalf("buffer smaller than a batch: %v", err)
	}
}

func TestConsumerOptionValidation(t *testing.T) {
	cfg := defaultConsumerConfig()
	if err := cfg.validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	WithCreditBytes(0)(&cfg)
	WithMaxPollRecords(0)(&cfg)
	WithResubscribeRetries(-1)(&cfg)
	if err := cfg.validate(); !errors.Is(err, ErrInvalidOption) || strings.Count(err.Error(), "\n") != 2 {
		t.Fatalf("validate = %v, want three problems", err)
	}
}

// buildBatch encodes records as one batch with the given codec and base
// offset.
func buildBatch(t testing.TB, codec wire.Codec, base int64, recs ...wire.Record) []byte {
	t.Helper()
	b := wire.NewBatchBuilder()
	for _, r := range recs {
		var hs []Header
		for k, v := range r.Headers.All() {
			hs = append(hs, Header{Key: string(k), Value: v})
		}
		b.Append(r.Timestamp, r.Key, r.Value, hs)
	}
	out, err := b.Build(codec)
	if err != nil {
		t.Fatal(err)
	}
	wire.SetBaseOffset(out, base)
	return out
}

func TestDecodeRecords(t *testing.T) {
	big := []byte(strings.Repeat("compressible ", 40))
	var payload []byte
	// Batch 1 (offsets 10-12) starts before the requested offset 11.
	payload = append(payload, buildBatch(t, wire.CodecNone, 10,
		wire.Record{Timestamp: 1000, Key: []byte("a"), Value: []byte("v10")},
		wire.Record{Timestamp: 1001, Key: nil, Value: []byte("v11")},
		wire.Record{Timestamp: 1002, Key: []byte{}, Value: []byte("v12")})...)
	// A control batch at offset 13 is never handed out.
	ctl, err := wire.AppendControlBatch(nil, 1003, nil)
	if err != nil {
		t.Fatal(err)
	}
	wire.SetBaseOffset(ctl, 13)
	payload = append(payload, ctl...)
	// Batch 3 (offsets 14-15) is lz4-compressed.
	payload = append(payload, buildBatch(t, wire.CodecLZ4, 14,
		wire.Record{Timestamp: 1004, Key: []byte("k14"), Value: big},
		wire.Record{Timestamp: 1005, Key: []byte("k15"), Value: big})...)

	var it wire.RecordIter
	recs, bad := decodeRecords(payload, topicPartition{"t", 3}, 11, &it)
	if bad != nil {
		t.Fatal(bad)
	}
	// The frame buffer is reused by the reader: records must not alias it.
	clear(payload)
	var offs []int64
	for _, r := range recs {
		offs = append(offs, r.Offset)
		if r.Topic != "t" || r.Partition != 3 {
			t.Fatalf("record %d in %s/%d", r.Offset, r.Topic, r.Partition)
		}
	}
	if fmt.Sprint(offs) != "[11 12 14 15]" {
		t.Fatalf("offsets %v, want [11 12 14 15]", offs)
	}
	if recs[0].Key != nil || string(recs[0].Value) != "v11" || recs[0].Timestamp.UnixMilli() != 1001 {
		t.Fatalf("record 11 = key %q value %q ts %v", recs[0].Key, recs[0].Value, recs[0].Timestamp)
	}
	if recs[1].Key == nil || len(recs[1].Key) != 0 {
		t.Fatalf("record 12: empty key decoded as %#v", recs[1].Key)
	}
	for _, r := range recs[2:] {
		if string(r.Value) != string(big) || string(r.Key) != fmt.Sprintf("k%d", r.Offset) {
			t.Fatalf("record %d: key %q, value of %d bytes", r.Offset, r.Key, len(r.Value))
		}
	}
}

func TestDecodeRecordsRejectsCorruption(t *testing.T) {
	b := buildBatch(t, wire.CodecNone, 0, wire.Record{Value: []byte("x")})
	b[len(b)-1] ^= 0xff
	var it wire.RecordIter
	if _, bad := decodeRecords(b, topicPartition{"t", 0}, 0, &it); bad == nil || !errors.Is(bad, wire.ErrCorruptBatch) {
		t.Fatalf("decode corrupt batch: %v", bad)
	}
}

// withRecordCount rewrites a batch's record count and seals it again with a
// valid checksum: the batch passes every check but its records'.
func withRecordCount(b []byte, n int32) []byte {
	const offRecordCount, offChecksum = 30, 20
	b = bytes.Clone(b)
	binary.LittleEndian.PutUint32(b[offRecordCount:], uint32(n))
	binary.LittleEndian.PutUint64(b[offChecksum:], wire.BatchChecksum(b))
	return b
}

// A batch whose header claims 2^31-1 records while holding one must not
// size anything from that count, nor lose the good records before it: they
// come back with an error naming the batch and where to resume past it.
func TestDecodeRecordsHostileCount(t *testing.T) {
	good := buildBatch(t, wire.CodecNone, 0,
		wire.Record{Timestamp: 1, Value: []byte("a")},
		wire.Record{Timestamp: 2, Value: []byte("b")})
	for _, codec := range []wire.Codec{wire.CodecNone, wire.CodecLZ4} {
		bad := withRecordCount(buildBatch(t, codec, 2, wire.Record{Timestamp: 3, Value: []byte("c")}), math.MaxInt32)
		after := buildBatch(t, wire.CodecNone, 2+math.MaxInt32, wire.Record{Timestamp: 4, Value: []byte("d")})
		payload := slices.Concat(good, bad, after)

		var it wire.RecordIter
		var before, afterStats runtime.MemStats
		runtime.ReadMemStats(&before)
		recs, cerr := decodeRecords(payload, topicPartition{"t", 7}, 0, &it)
		runtime.ReadMemStats(&afterStats)
		if fmt.Sprint(values(recs)) != "[a b]" {
			t.Fatalf("%v: records before the bad batch: %q", codec, values(recs))
		}
		if cerr == nil {
			t.Fatalf("%v: no error for the bad batch", codec)
		}
		var err error = cerr
		if !errors.Is(err, wire.ErrCorruptBatch) || !errors.Is(err, ErrCorruptBatch) {
			t.Fatalf("%v: error %v does not match the corrupt-batch sentinels", codec, err)
		}
		if cerr.Topic != "t" || cerr.Partition != 7 || cerr.Offset != 2 || cerr.Next != 2+math.MaxInt32 {
			t.Fatalf("%v: error says %s/%d at %d, resume at %d", codec, cerr.Topic, cerr.Partition, cerr.Offset, cerr.Next)
		}
		if msg := err.Error(); !strings.Contains(msg, "t/7") || !strings.Contains(msg, "corrupt batch at offset 2") {
			t.Fatalf("%v: message %q", codec, msg)
		}
		// The payload is a few hundred bytes; sizing from the count would
		// take gigabytes (or panic).
		if grew := afterStats.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
			t.Fatalf("%v: decoding %d bytes allocated %d bytes", codec, len(payload), grew)
		}
	}
}

func values(rs []*Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r.Value)
	}
	return out
}

// FuzzDecodeRecords: whatever the payload, decoding returns records in
// offset order at or after the requested offset, or a corrupt-batch error;
// it never panics.
func FuzzDecodeRecords(f *testing.F) {
	f.Add(buildBatch(f, wire.CodecNone, 0, wire.Record{Timestamp: 1, Key: []byte("k"), Value: []byte("v")}), int64(0))
	f.Add(buildBatch(f, wire.CodecLZ4, 5, wire.Record{Timestamp: 1, Value: []byte("v")}, wire.Record{Timestamp: 2, Value: []byte("w")}), int64(6))
	f.Add(withRecordCount(buildBatch(f, wire.CodecNone, 0, wire.Record{Value: []byte("x")}), math.MaxInt32), int64(0))
	f.Fuzz(func(t *testing.T, payload []byte, next int64) {
		next = min(max(next, 0), 1<<62)
		var it wire.RecordIter
		recs, cerr := decodeRecords(payload, topicPartition{"t", 0}, next, &it)
		last := next - 1
		for _, r := range recs {
			if r.Offset <= last {
				t.Fatalf("offset %d after %d", r.Offset, last)
			}
			last = r.Offset
		}
		if cerr != nil && (!errors.Is(cerr, wire.ErrCorruptBatch) || !errors.Is(cerr, ErrCorruptBatch)) {
			t.Fatalf("error %v does not match the corrupt-batch sentinels", cerr)
		}
		if cerr != nil && cerr.Next <= cerr.Offset {
			t.Fatalf("resume offset %d not past %d", cerr.Next, cerr.Offset)
		}
	})
}

func TestCreditWindow(t *testing.T) {
	cs := &Consumer{cfg: defaultConsumerConfig()}
	cs.cfg.creditBytes = 1000
	s := &subscription{cs: cs, outstanding: 1000}
	// Data arrives: 300 bytes, not yet polled. 700 outstanding: no grant.
	s.outstanding -= 300
	s.buffered += 300
	if g := s.creditLocked(); g != 0 {
		t.Fatalf("grant %d with 700 outstanding + 300 buffered", g)
	}
	// 400 more arrive: 300 outstanding, 700 buffered: still >= half.
	s.outstanding -= 400
	s.buffered += 400
	if g := s.creditLocked(); g != 0 {
		t.Fatalf("grant %d while the application holds the data", g)
	}
	// The application polls everything: 300 outstanding < 500: top up to 1000.
	s.buffered = 0
	if g := s.creditLocked(); g != 700 || s.outstanding != 1000 {
		t.Fatalf("grant %d, outstanding %d; want 700 and 1000", g, s.outstanding)
	}
	// A batch larger than the window drives credit negative; once polled,
	// the grant restores a full window.
	s.outstanding -= 2500
	if g := s.creditLocked(); g != 2500 || s.outstanding != 1000 {
		t.Fatalf("grant %d, outstanding %d after overshoot; want 2500 and 1000", g, s.outstanding)
	}
	s.dead = true
	s.outstanding = 0
	if g := s.creditLocked(); g != 0 {
		t.Fatalf("dead subscription granted %d", g)
	}
}

// Unkeyed records skip offline partitions while another is online; keyed
// records keep their partition.
func TestHashPartitionerSkipsOffline(t *testing.T) {
	tm := equalTopic("t", 4)
	tm.Partitions[1].Offline, tm.Partitions[2].Offline = true, true
	hp := NewHashPartitioner()
	p := hp.Partition(&Record{}, tm)
	for range 8 {
		if p == 1 || p == 2 {
			t.Fatalf("unkeyed record went to offline partition %d", p)
		}
		hp.BatchSealed("t", p)
		p = hp.Partition(&Record{}, tm)
	}
	for i := range 100 {
		key := []byte(fmt.Sprintf("key-%d", i))
		if got, want := hp.Partition(&Record{Key: key}, tm), wire.PartitionForHash(wire.KeyHash(key), 4); got != want {
			t.Fatalf("key %q: partition %d, want %d", key, got, want)
		}
	}
	for i := range tm.Partitions {
		tm.Partitions[i].Offline = true
	}
	if p := hp.Partition(&Record{}, tm); p < 0 || p > 3 {
		t.Fatalf("all offline: partition %d", p)
	}
}

// A leader hint replaces the cached partition's leader without touching
// the metadata a caller already holds.
func TestLeaderHintCopyOnWrite(t *testing.T) {
	var m metadataCache
	m.init(nil)
	m.update(&wire.MetadataResponse{
		Brokers: []wire.BrokerInfo{{ID: "a", Addr: "127.0.0.1:1", Zone: "z"}},
		Topics: []wire.TopicMetadata{{Name: "t", Partitions: []wire.PartitionMetadata{
			{Partition: 0, Leader: "a"}, {Partition: 1, Leader: "a", Error: wire.ErrPartitionOffline}}}},
	})
	old := m.topics["t"]
	if old.Partitions[0].LeaderAddr != "127.0.0.1:1" || old.Partitions[0].Offline || !old.Partitions[1].Offline {
		t.Fatalf("converted %+v", old.Partitions)
	}
	hint := &wire.Error{Code: wire.ErrNotLeader, LeaderID: "b", LeaderAddr: "127.0.0.1:2"}
	if !m.leaderHint("t", 0, fmt.Errorf("via x: %w", hint)) {
		t.Fatal("hint not applied")
	}
	if pm := m.topics["t"].partition(0); pm.Leader != "b" || pm.LeaderAddr != "127.0.0.1:2" {
		t.Fatalf("after the hint %+v", pm)
	}
	if old.Partitions[0].Leader != "a" {
		t.Fatal("the hint modified metadata a caller holds")
	}
	if bs := m.brokerList(); len(bs) != 2 || bs[0].Zone != "z" || bs[1].Addr != "127.0.0.1:2" {
		t.Fatalf("brokers %+v", bs)
	}
	for _, err := range []error{
		&wire.Error{Code: wire.ErrNotLeader},                // no address
		&wire.Error{Code: wire.ErrStorage, LeaderAddr: "x"}, // not NOT_LEADER
		hint, // unknown topic below
	} {
		topic := "t"
		if err == hint {
			topic = "other"
		}
		if m.leaderHint(topic, 0, err) {
			t.Fatalf("hint applied for %v on %s", err, topic)
		}
	}
}

// decodeRecords is decodeBatch as Poll sees it: records that own their bytes.
func decodeRecords(payload []byte, tp topicPartition, next int64, it *wire.RecordIter) ([]*Record, *CorruptBatchError) {
	b := newBatch(tp, nil)
	bad := decodeBatch(b, bytes.Clone(payload), next, it)
	recs := toRecords(tp, b.recs)
	b.free()
	return recs, bad
}
