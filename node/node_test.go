package node_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rafka/rafka/node"
	"github.com/rafka/rafka/quicnet"
	"github.com/rafka/rafka/wire"
)

func produce(t *testing.T, rs *rawStream, topic string, partition int32, b []byte) wire.ProduceResponse {
	t.Helper()
	var resp wire.ProduceResponse
	rs.call(wire.APIProduce, &wire.ProduceRequest{Topic: topic, Partition: partition, Acks: wire.AcksLeader}, &resp, b)
	return resp
}

func fetch(t *testing.T, rs *rawStream, topic string, partition int32, offset int64) (wire.FetchResponse, []int64, []string) {
	t.Helper()
	var resp wire.FetchResponse
	f := rs.call(wire.APIFetch, &wire.FetchRequest{Topic: topic, Partition: partition, Offset: offset, MaxBytes: 1 << 20}, &resp)
	offs, vals := records(t, f.Payload, offset)
	return resp, offs, vals
}

func TestProduceFetch(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("events", 3, nil)
	rs := tb.stream()
	var want []string
	var next int64
	for i, codec := range []wire.Codec{wire.CodecNone, wire.CodecLZ4, wire.CodecNone} {
		b := batch(t, fmt.Sprintf("b%d", i), 10+i, codec)
		resp := produce(t, rs, "events", 1, b)
		if resp.Error != wire.ErrNone || resp.BaseOffset != next || resp.LastOffset != next+int64(10+i)-1 {
			t.Fatalf("produce %d: %+v, want base %d", i, resp, next)
		}
		next = resp.LastOffset + 1
		for j := range 10 + i {
			want = append(want, fmt.Sprintf("b%d-%d", i, j))
		}
	}
	resp, offs, vals := fetch(t, rs, "events", 1, 0)
	if resp.Error != wire.ErrNone || resp.HighWatermark != next || resp.LogStartOffset != 0 {
		t.Fatalf("fetch: %+v", resp)
	}
	if !slices.Equal(vals, want) {
		t.Fatalf("values %v, want %v", vals, want)
	}
	for i, o := range offs {
		if o != int64(i) {
			t.Fatalf("offset %d at %d", o, i)
		}
	}
	// From the middle of a batch: records below the offset are skipped by
	// the reader; the broker starts at the batch holding it.
	_, offs, _ = fetch(t, rs, "events", 1, 15)
	if offs[0] != 15 || offs[len(offs)-1] != next-1 {
		t.Fatalf("fetch from 15: offsets %v", offs)
	}
	// At the end: no data, no error. Past it: out of range.
	if resp, offs, _ := fetch(t, rs, "events", 1, next); resp.Error != wire.ErrNone || len(offs) != 0 {
		t.Fatalf("fetch at end: %+v %v", resp, offs)
	}
	if resp, _, _ := fetch(t, rs, "events", 1, next+1); resp.Error != wire.ErrOffsetOutOfRange {
		t.Fatalf("fetch past end: %+v", resp)
	}
	// Other partitions are untouched.
	if resp, offs, _ := fetch(t, rs, "events", 0, 0); resp.HighWatermark != 0 || len(offs) != 0 {
		t.Fatalf("partition 0: %+v %v", resp, offs)
	}
}

func TestFetchFromDiskAfterRingEviction(t *testing.T) {
	// A tiny ring, then none: old data must come from the segment.
	for _, hot := range []int{4096, -1} {
		t.Run(fmt.Sprint(hot), func(t *testing.T) { testFetchFromDisk(t, hot) })
	}
}

func testFetchFromDisk(t *testing.T, hotstoreBytes int) {
	tb := startBroker(t, func(c *node.Config) { c.HotstoreBytes = hotstoreBytes })
	tb.createTopic("t", 1, nil)
	rs := tb.stream()
	for i := range 20 {
		if r := produce(t, rs, "t", 0, batch(t, fmt.Sprintf("x%d", i), 20, wire.CodecNone)); r.Error != wire.ErrNone {
			t.Fatal(r.Message)
		}
	}
	var got []string
	for off := int64(0); off < 400; {
		resp, offs, vals := fetch(t, rs, "t", 0, off)
		if resp.Error != wire.ErrNone || len(offs) == 0 {
			t.Fatalf("fetch %d: %+v", off, resp)
		}
		got = append(got, vals...)
		off = offs[len(offs)-1] + 1
	}
	if len(got) != 400 || got[0] != "x0-0" || got[399] != "x19-19" {
		t.Fatalf("got %d values, first %q last %q", len(got), got[0], got[len(got)-1])
	}
}

func TestFetchLongPoll(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("t", 1, nil)
	rs := tb.stream()
	corr := rs.send(wire.APIFetch, &wire.FetchRequest{Topic: "t", Offset: 0, MaxBytes: 1 << 20, MinBytes: 1, MaxWaitMs: 20000})
	// Once the fetch is parked, a produce on another stream releases it.
	awaitCondition(t, func() bool { return node.Waiters(tb.b, "t", 0) == 1 })
	if r := produce(t, tb.stream(), "t", 0, batch(t, "late", 3, wire.CodecNone)); r.Error != wire.ErrNone {
		t.Fatal(r.Message)
	}
	var resp wire.FetchResponse
	f := rs.recv(&resp)
	if f.Corr != corr || resp.Error != wire.ErrNone {
		t.Fatalf("fetch: corr %d %+v", f.Corr, resp)
	}
	if _, vals := records(t, f.Payload, 0); !slices.Equal(vals, []string{"late-0", "late-1", "late-2"}) {
		t.Fatalf("values %v", vals)
	}
}

func TestPipelinedProduceKeepsOrder(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("t", 1, map[string]string{node.ConfigFsync: "always"})
	rs := tb.stream()
	const n = 50
	for i := range n {
		rs.send(wire.APIProduce, &wire.ProduceRequest{Topic: "t", Acks: wire.AcksLeader}, batch(t, fmt.Sprintf("p%d", i), 2, wire.CodecNone))
	}
	for i := range n {
		var resp wire.ProduceResponse
		f := rs.recv(&resp)
		if f.Corr != uint32(i+1) || resp.Error != wire.ErrNone || resp.BaseOffset != int64(2*i) {
			t.Fatalf("ack %d: corr %d %+v", i, f.Corr, resp)
		}
	}
}

func TestBadInput(t *testing.T) {
	tb := startBroker(t, func(c *node.Config) { c.MaxFrameBytes = 1 << 20 })
	tb.createTopic("t", 2, map[string]string{node.ConfigMaxMessageBytes: "4096"})
	good := batch(t, "ok", 5, wire.CodecNone)

	t.Run("unknown topic and partition", func(t *testing.T) {
		rs := tb.stream()
		for _, tp := range []struct {
			topic string
			p     int32
		}{{"nope", 0}, {"t", 2}, {"t", -1}} {
			if r := produce(t, rs, tp.topic, tp.p, good); r.Error != wire.ErrUnknownTopicOrPartition {
				t.Fatalf("%s/%d: %+v", tp.topic, tp.p, r)
			}
			var fr wire.FetchResponse
			rs.call(wire.APIFetch, &wire.FetchRequest{Topic: tp.topic, Partition: tp.p}, &fr)
			if fr.Error != wire.ErrUnknownTopicOrPartition {
				t.Fatalf("fetch %s/%d: %+v", tp.topic, tp.p, fr)
			}
		}
	})
	t.Run("corrupt batch stores nothing", func(t *testing.T) {
		rs := tb.stream()
		bad := slices.Clone(good)
		bad[len(bad)-1] ^= 0xff
		two := append(slices.Clone(good), bad...)
		for _, b := range [][]byte{bad, two, good[:40], good[:len(good)-1]} {
			if r := produce(t, rs, "t", 0, b); r.Error != wire.ErrCorruptMessage {
				t.Fatalf("corrupt: %+v", r)
			}
		}
		if r, _, _ := fetch(t, rs, "t", 0, 0); r.HighWatermark != 0 {
			t.Fatalf("something was stored: %+v", r)
		}
		if r := produce(t, rs, "t", 0, good); r.Error != wire.ErrNone || r.BaseOffset != 0 {
			t.Fatalf("good after corrupt: %+v", r)
		}
	})
	t.Run("batch over max.message.bytes", func(t *testing.T) {
		big := batch(t, strings.Repeat("k", 500), 20, wire.CodecNone)
		if r := produce(t, tb.stream(), "t", 1, big); r.Error != wire.ErrMessageTooLarge {
			t.Fatalf("big: %+v", r)
		}
	})
	t.Run("unknown api and version keep the stream", func(t *testing.T) {
		rs := tb.stream()
		var er wire.ErrorResponse
		rs.call(wire.API(999), &wire.ErrorResponse{}, &er)
		if er.Error != wire.ErrUnsupportedAPI {
			t.Fatalf("unknown api: %+v", er)
		}
		rs.corr++
		rs.fw.WriteFrame(wire.FrameHeader{API: wire.APIMetadata, Version: 7, Corr: rs.corr}, &wire.MetadataRequest{})
		if f := rs.recv(&er); er.Error != wire.ErrUnsupportedVersion || f.Corr != rs.corr {
			t.Fatalf("bad version: %+v", er)
		}
		rs.call(wire.APIProduce, &wire.DeleteTopicRequest{Name: "not a produce header"}, &er, good)
		if er.Error != wire.ErrInvalidRequest {
			t.Fatalf("bad header: %+v", er)
		}
		if r := produce(t, rs, "t", 1, good); r.Error != wire.ErrNone {
			t.Fatalf("stream unusable after errors: %+v", r)
		}
	})
	t.Run("oversize frame closes only its stream", func(t *testing.T) {
		rs := tb.stream()
		var hdr [4]byte
		binary.LittleEndian.PutUint32(hdr[:], 2<<20)
		rs.s.Write(hdr[:])
		var er wire.ErrorResponse
		if f := rs.recv(&er); er.Error != wire.ErrFrameTooLargeCode || f.API != 0 {
			t.Fatalf("oversize: api %d %+v", f.API, er)
		}
		rs.expectEnd()
		if r := produce(t, tb.stream(), "t", 1, good); r.Error != wire.ErrNone {
			t.Fatalf("connection unusable: %+v", r)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		rs := tb.stream()
		rs.s.Write([]byte{5, 0, 0, 0, 'h', 'e', 'l', 'l', 'o'})
		var er wire.ErrorResponse
		if rs.recv(&er); er.Error != wire.ErrInvalidRequest {
			t.Fatalf("garbage: %+v", er)
		}
		rs.expectEnd()
		// A header length past the frame's end.
		rs = tb.stream()
		frame := wire.AppendFramePrefix(nil, wire.FrameHeader{API: wire.APIProduce}, 4, 0)
		binary.LittleEndian.PutUint32(frame[12:], 100) // header length past the frame's end
		rs.s.Write(append(frame, 1, 2, 3, 4))
		if rs.recv(&er); er.Error != wire.ErrInvalidRequest {
			t.Fatalf("bad header length: %+v", er)
		}
		rs.expectEnd()
	})
	t.Run("truncated stream", func(t *testing.T) {
		rs := tb.stream()
		full, _ := wire.NewFrameWriter(io.Discard).AppendFrame(wire.FrameHeader{API: wire.APIProduce, Corr: 1},
			&wire.ProduceRequest{Topic: "t", Acks: wire.AcksLeader}, good)
		rs.s.Write(full[:len(full)/2])
		rs.s.Close()
		var er wire.ErrorResponse
		if rs.recv(&er); er.Error != wire.ErrInvalidRequest {
			t.Fatalf("truncated: %+v", er)
		}
		rs.expectEnd()
	})
	t.Run("header claiming billions of elements", func(t *testing.T) {
		// A subscribe whose header is an array of 2 fields, the first an
		// array32 claiming 2^32-1 partitions: 18 bytes that once made the
		// broker allocate until it died.
		rs := tb.stream()
		hdr := []byte{0x92, 0xdd, 0xff, 0xff, 0xff, 0xff}
		rs.s.Write(wire.AppendFrame(nil, wire.FrameHeader{API: wire.APISubscribe, Corr: 1}, hdr, nil))
		var er wire.ErrorResponse
		if rs.recv(&er); er.Error != wire.ErrInvalidRequest {
			t.Fatalf("huge array claim: %+v", er)
		}
	})
	t.Run("records that do not match their header", func(t *testing.T) {
		rs := tb.stream()
		// restamp rewrites a copy of good with fn applied after the
		// header and a checksum that matches, as a careful attacker would.
		restamp := func(fn func(b []byte)) []byte {
			b := slices.Clone(good)
			fn(b)
			binary.LittleEndian.PutUint64(b[20:], wire.BatchChecksum(b))
			return b
		}
		for name, b := range map[string][]byte{
			"count 2^31-1": restamp(func(b []byte) { binary.LittleEndian.PutUint32(b[30:], 1<<31-1) }),
			"count 6 of 5": restamp(func(b []byte) { binary.LittleEndian.PutUint32(b[30:], 6) }),
			"garbage":      restamp(func(b []byte) { copy(b[wire.BatchHeaderSize:], strings.Repeat("\xff", 16)) }),
		} {
			if r := produce(t, rs, "t", 0, b); r.Error != wire.ErrCorruptMessage {
				t.Fatalf("%s: %+v", name, r)
			}
		}
		before, _, _ := fetch(t, rs, "t", 0, 0)
		if r := produce(t, rs, "t", 0, good); r.Error != wire.ErrNone || r.BaseOffset != before.HighWatermark {
			t.Fatalf("good after bad records: %+v (log end was %d)", r, before.HighWatermark)
		}
	})
	t.Run("broker still serves", func(t *testing.T) {
		other := openStream(t, tb.dial())
		if r := produce(t, other, "t", 1, good); r.Error != wire.ErrNone {
			t.Fatalf("after bad input: %+v", r)
		}
	})
}

func TestTopicAdmin(t *testing.T) {
	tb := startBroker(t)
	rs := tb.stream()
	call := func(api wire.API, req any) wire.ErrorResponse {
		var er wire.ErrorResponse
		rs.call(api, req, &er)
		return er
	}
	cases := []struct {
		req  wire.CreateTopicRequest
		want wire.ErrorCode
	}{
		{wire.CreateTopicRequest{Name: "a", Partitions: 2, Configs: map[string]string{node.ConfigRetentionMs: "60000", node.ConfigFsync: "interval:50"}}, wire.ErrNone},
		{wire.CreateTopicRequest{Name: "a", Partitions: 2}, wire.ErrTopicAlreadyExists},
		{wire.CreateTopicRequest{Name: "bad/name", Partitions: 1}, wire.ErrInvalidTopicName},
		{wire.CreateTopicRequest{Name: "", Partitions: 1}, wire.ErrInvalidTopicName},
		{wire.CreateTopicRequest{Name: "z", Partitions: 0}, wire.ErrInvalidPartitions},
		{wire.CreateTopicRequest{Name: "z", Partitions: 1, Configs: map[string]string{"colour": "blue"}}, wire.ErrInvalidConfig},
		{wire.CreateTopicRequest{Name: "z", Partitions: 1, Configs: map[string]string{node.ConfigFsync: "sometimes"}}, wire.ErrInvalidConfig},
		{wire.CreateTopicRequest{Name: "z", Partitions: 1, Configs: map[string]string{node.ConfigSegmentBytes: "12"}}, wire.ErrInvalidConfig},
		{wire.CreateTopicRequest{Name: "z", Partitions: 1, Configs: map[string]string{node.ConfigRetentionMs: "18446744073711"}}, wire.ErrInvalidConfig},
	}
	for _, c := range cases {
		if er := call(wire.APICreateTopic, &c.req); er.Error != c.want {
			t.Errorf("create %+v: %s %s, want %s", c.req, er.Error, er.Message, c.want)
		}
	}
	var md wire.MetadataResponse
	rs.call(wire.APIMetadata, &wire.MetadataRequest{}, &md)
	if len(md.Brokers) != 1 || md.Brokers[0].Addr != tb.b.Addr() || len(md.Topics) != 1 || md.Topics[0].Name != "a" {
		t.Fatalf("metadata: %+v", md)
	}
	ps := md.Topics[0].Partitions
	if len(ps) != 2 || ps[0].HashStart != 0 || ps[1].HashEnd != ^uint64(0) || ps[0].HashEnd+1 != ps[1].HashStart || ps[0].Leader != tb.b.ID() {
		t.Fatalf("partitions: %+v", ps)
	}
	if er := call(wire.APIAlterTopicConfig, &wire.AlterTopicConfigRequest{Name: "a", Configs: map[string]string{node.ConfigRetentionBytes: "1048576"}}); er.Error != wire.ErrNone {
		t.Fatalf("alter: %+v", er)
	}
	if er := call(wire.APIAlterTopicConfig, &wire.AlterTopicConfigRequest{Name: "a", Configs: map[string]string{node.ConfigRetentionBytes: "x"}}); er.Error != wire.ErrInvalidConfig {
		t.Fatalf("bad alter: %+v", er)
	}
	var d wire.DescribeTopicResponse
	rs.call(wire.APIDescribeTopic, &wire.DescribeTopicRequest{Name: "a"}, &d)
	if d.Error != wire.ErrNone || d.Configs[node.ConfigRetentionBytes] != "1048576" || d.Configs[node.ConfigRetentionMs] != "60000" ||
		d.Configs[node.ConfigFsync] != "interval:50" || len(d.Partitions) != 2 {
		t.Fatalf("describe: %+v", d)
	}
	if er := call(wire.APIDeleteTopic, &wire.DeleteTopicRequest{Name: "a"}); er.Error != wire.ErrNone {
		t.Fatalf("delete: %+v", er)
	}
	if er := call(wire.APIDeleteTopic, &wire.DeleteTopicRequest{Name: "a"}); er.Error != wire.ErrUnknownTopicOrPartition {
		t.Fatalf("delete again: %+v", er)
	}
	rs.call(wire.APIDescribeTopic, &wire.DescribeTopicRequest{Name: "a"}, &d)
	if d.Error != wire.ErrUnknownTopicOrPartition {
		t.Fatalf("describe deleted: %+v", d)
	}
	// The name is free again, and the new topic starts empty.
	if er := call(wire.APICreateTopic, &wire.CreateTopicRequest{Name: "a", Partitions: 1}); er.Error != wire.ErrNone {
		t.Fatalf("recreate: %+v", er)
	}
}

func TestListOffsets(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("t", 1, nil)
	rs := tb.stream()
	bb := wire.NewBatchBuilder()
	for _, ts := range []int64{1000, 2000, 3000} {
		bb.Reset()
		bb.Append(ts, nil, []byte("v"), nil)
		bb.Append(ts+10, nil, []byte("v"), nil)
		b, _ := bb.Build(wire.CodecNone)
		produce(t, rs, "t", 0, slices.Clone(b))
	}
	for _, c := range []struct{ ts, want int64 }{
		{wire.OffsetEarliest, 0}, {wire.OffsetLatest, 6}, {500, 0}, {1005, 0}, {1011, 2}, {2500, 4}, {9999, 6},
	} {
		var r wire.ListOffsetsResponse
		rs.call(wire.APIListOffsets, &wire.ListOffsetsRequest{Topic: "t", Timestamp: c.ts}, &r)
		if r.Error != wire.ErrNone || r.Offset != c.want {
			t.Errorf("ts %d: %+v, want offset %d", c.ts, r, c.want)
		}
	}
	var r wire.ListOffsetsResponse
	rs.call(wire.APIListOffsets, &wire.ListOffsetsRequest{Topic: "t", Timestamp: -7}, &r)
	if r.Error != wire.ErrInvalidTimestamp {
		t.Fatalf("bad timestamp: %+v", r)
	}
}

func TestRestartRecoversTopics(t *testing.T) {
	dir := t.TempDir()
	tb := startBrokerIn(t, dir)
	tb.createTopic("keep", 2, map[string]string{node.ConfigRetentionMs: "3600000"})
	tb.createTopic("gone", 1, nil)
	rs := tb.stream()
	for i := range 5 {
		produce(t, rs, "keep", int32(i%2), batch(t, fmt.Sprintf("r%d", i), 3, wire.CodecLZ4))
	}
	var er wire.ErrorResponse
	rs.call(wire.APIDeleteTopic, &wire.DeleteTopicRequest{Name: "gone"}, &er)
	id := tb.b.ID()
	tb.stop()

	tb2 := startBrokerIn(t, dir)
	if tb2.b.ID() != id {
		t.Fatalf("broker id changed: %s -> %s", id, tb2.b.ID())
	}
	rs = tb2.stream()
	var md wire.MetadataResponse
	rs.call(wire.APIMetadata, &wire.MetadataRequest{}, &md)
	if len(md.Topics) != 1 || md.Topics[0].Name != "keep" || len(md.Topics[0].Partitions) != 2 {
		t.Fatalf("topics after restart: %+v", md.Topics)
	}
	_, _, vals := fetch(t, rs, "keep", 0, 0)
	if want := []string{"r0-0", "r0-1", "r0-2", "r2-0", "r2-1", "r2-2", "r4-0", "r4-1", "r4-2"}; !slices.Equal(vals, want) {
		t.Fatalf("partition 0 after restart: %v", vals)
	}
	var d wire.DescribeTopicResponse
	rs.call(wire.APIDescribeTopic, &wire.DescribeTopicRequest{Name: "keep"}, &d)
	if d.Configs[node.ConfigRetentionMs] != "3600000" || d.Partitions[1].LogEndOffset != 6 {
		t.Fatalf("describe after restart: %+v", d)
	}
	if r := produce(t, rs, "keep", 1, batch(t, "new", 1, wire.CodecNone)); r.BaseOffset != 6 {
		t.Fatalf("append after restart: %+v", r)
	}
}

func TestSubscribeCreditFlow(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("t", 2, nil)
	pr := tb.stream()
	b0 := batch(t, "a", 10, wire.CodecNone)
	size := int64(len(b0))
	for range 4 {
		produce(t, pr, "t", 0, slices.Clone(b0))
	}
	sub := tb.stream()
	var sr wire.SubscribeResponse
	// Credit for one batch: the broker sends one frame, then waits.
	sub.call(wire.APISubscribe, &wire.SubscribeRequest{Credit: 1, Partitions: []wire.SubscribePartition{
		{Topic: "t", Partition: 0, Offset: wire.OffsetEarliest},
		{Topic: "t", Partition: 1, Offset: wire.OffsetLatest},
		{Topic: "t", Partition: 9, Offset: 0},
	}}, &sr)
	if sr.Error != wire.ErrNone || len(sr.Partitions) != 3 || sr.Partitions[0].Offset != 0 || sr.Partitions[1].Offset != 0 ||
		sr.Partitions[2].Error != wire.ErrUnknownTopicOrPartition {
		t.Fatalf("subscribe: %+v", sr)
	}
	var got []string
	read := func() wire.SubscribeData {
		var d wire.SubscribeData
		f := sub.recv(&d)
		if f.API != wire.APISubscribeData || d.Error != wire.ErrNone {
			t.Fatalf("data frame: api %s %+v", f.API, d)
		}
		_, vals := records(t, f.Payload, 0)
		got = append(got, vals...)
		return d
	}
	// With one byte of credit, exactly one frame (one ring entry) arrives.
	if d := read(); d.Partition != 0 || len(got) != 10 {
		t.Fatalf("first frame: %+v, %d records", d, len(got))
	}
	// Nothing more may arrive until credit is granted: after more data on
	// partition 1, the next frame is the answer to a malformed credit frame,
	// not data. Then grant credit and expect everything in order.
	produce(t, pr, "t", 1, batch(t, "b", 2, wire.CodecNone))
	sub.send(wire.APISubscribeCredit, &wire.SubscribeCredit{Bytes: -5})
	var er wire.ErrorResponse
	if f := sub.recv(&er); f.API != wire.APISubscribeCredit || er.Error != wire.ErrInvalidRequest {
		t.Fatalf("without credit: api %s %+v", f.API, er)
	}
	sub.send(wire.APISubscribeCredit, &wire.SubscribeCredit{Bytes: 10 * size})
	for len(got) < 42 {
		read()
	}
	var p0, p1 []string
	for _, v := range got {
		if strings.HasPrefix(v, "a") {
			p0 = append(p0, v)
		} else {
			p1 = append(p1, v)
		}
	}
	if len(p0) != 40 || !slices.Equal(p1, []string{"b-0", "b-1"}) {
		t.Fatalf("p0 %d records, p1 %v", len(p0), p1)
	}
	// A live push: new data arrives without asking.
	produce(t, pr, "t", 1, batch(t, "c", 1, wire.CodecNone))
	if d := read(); d.Partition != 1 || got[len(got)-1] != "c-0" || d.HighWatermark != 3 {
		t.Fatalf("live push: %+v %v", d, got[len(got)-1])
	}
	// Deleting the topic ends the partitions with an error.
	var del wire.ErrorResponse
	tb.stream().call(wire.APIDeleteTopic, &wire.DeleteTopicRequest{Name: "t"}, &del)
	seen := map[int32]bool{}
	for len(seen) < 2 {
		var d wire.SubscribeData
		sub.recv(&d)
		if d.Error != wire.ErrUnknownTopicOrPartition {
			t.Fatalf("after delete: %+v", d)
		}
		seen[d.Partition] = true
	}
}

func TestAdminHTTP(t *testing.T) {
	tb := startBroker(t, func(c *node.Config) { c.AdminListen = "127.0.0.1:0" })
	tb.createTopic("m", 1, nil)
	produce(t, tb.stream(), "m", 0, batch(t, "x", 3, wire.CodecNone))
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + tb.b.AdminAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	code, body := get("/metrics")
	for _, want := range []string{
		`rafka_node_requests_total{api="produce"} 1`,
		`rafka_node_request_duration_seconds_bucket{api="produce"`,
		`rafka_partition_log_end_offset{topic="m",partition="0"} 3`,
		`rafka_quic_open_connections 1`,
		"rafka_hotstore_hit_ratio",
		"rafka_segment_fsync_duration_seconds_bucket",
		"rafka_node_received_bytes_total",
		"process_open_fds",
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz: %d", code)
	}
	if code, _ := get("/debug/pprof/"); code != 200 {
		t.Errorf("pprof: %d", code)
	}
}

func TestInvalidConfig(t *testing.T) {
	_, err := node.New(node.Config{DataDir: t.TempDir(), MaxFrameBytes: 10, RetentionInterval: -1,
		QUIC: quicnet.Config{MaxConnReceiveWindow: 100}})
	if !errors.Is(err, node.ErrInvalidConfig) {
		t.Fatalf("want ErrInvalidConfig, got %v", err)
	}
	for _, want := range []string{"max frame bytes", "durations", "MaxConnReceiveWindow"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q not reported in %v", want, err)
		}
	}
}

func TestShutdownDrainsSubscribers(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("t", 1, nil)
	sub := tb.stream()
	var sr wire.SubscribeResponse
	sub.call(wire.APISubscribe, &wire.SubscribeRequest{Credit: 1 << 20, Partitions: []wire.SubscribePartition{{Topic: "t", Offset: 0}}}, &sr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := tb.b.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with an idle subscriber: %v", err)
	}
}

// awaitCondition polls cond until it holds, failing the test after 10 s.
func awaitCondition(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// A partition whose log cannot be opened at start-up (here a segment file
// removed from the middle of the log) is kept offline: its requests get
// PARTITION_OFFLINE, the rest of the broker serves, and /readyz says why.
func TestOfflinePartitionAtStart(t *testing.T) {
	dir := t.TempDir()
	tb := startBrokerIn(t, dir)
	tb.createTopic("t", 2, map[string]string{node.ConfigSegmentBytes: "1048576", node.ConfigMaxMessageBytes: "1048576"})
	rs := tb.stream()
	big := batch(t, strings.Repeat("x", 100<<10), 1, wire.CodecNone)
	for range 30 {
		if r := produce(t, rs, "t", 0, slices.Clone(big)); r.Error != wire.ErrNone {
			t.Fatalf("produce: %+v", r)
		}
	}
	tb.stop()
	pdir := filepath.Join(dir, "topics", "t", "0")
	var logs []string
	ents, _ := os.ReadDir(pdir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".log") {
			logs = append(logs, e.Name())
		}
	}
	if len(logs) < 3 {
		t.Fatalf("want at least 3 segments, have %v", logs)
	}
	if err := os.Remove(filepath.Join(pdir, logs[1])); err != nil {
		t.Fatal(err)
	}

	tb2 := startBrokerIn(t, dir, func(c *node.Config) { c.AdminListen = "127.0.0.1:0" })
	rs = tb2.stream()
	// Every data request for it is refused at once with PARTITION_OFFLINE
	// (not retriable) and the reason.
	if r := produce(t, rs, "t", 0, batch(t, "k", 1, wire.CodecNone)); r.Error != wire.ErrPartitionOffline || !strings.Contains(r.Message, "corrupt") {
		t.Fatalf("produce to the offline partition: %+v", r)
	}
	if r, _, _ := fetch(t, rs, "t", 0, 0); r.Error != wire.ErrPartitionOffline || !strings.Contains(r.Message, "corrupt") {
		t.Fatalf("fetch from the offline partition: %+v", r)
	}
	var lo wire.ListOffsetsResponse
	rs.call(wire.APIListOffsets, &wire.ListOffsetsRequest{Topic: "t", Partition: 0, Timestamp: wire.OffsetLatest}, &lo)
	if lo.Error != wire.ErrPartitionOffline || !strings.Contains(lo.Message, "corrupt") {
		t.Fatalf("list offsets of the offline partition: %+v", lo)
	}
	var sr wire.SubscribeResponse
	tb2.stream().call(wire.APISubscribe, &wire.SubscribeRequest{Credit: 1 << 20, Partitions: []wire.SubscribePartition{
		{Topic: "t", Partition: 0, Offset: 0}}}, &sr)
	if len(sr.Partitions) != 1 || sr.Partitions[0].Error != wire.ErrPartitionOffline || !strings.Contains(sr.Partitions[0].Message, "corrupt") {
		t.Fatalf("subscribe to the offline partition: %+v", sr)
	}
	if wire.ErrPartitionOffline.Retriable() {
		t.Fatal("PARTITION_OFFLINE must not be retriable")
	}
	if r := produce(t, rs, "t", 1, batch(t, "k", 1, wire.CodecNone)); r.Error != wire.ErrNone {
		t.Fatalf("produce to the healthy partition: %+v", r)
	}
	var d wire.DescribeTopicResponse
	rs.call(wire.APIDescribeTopic, &wire.DescribeTopicRequest{Name: "t"}, &d)
	if d.Error != wire.ErrNone || d.Partitions[0].LogEndOffset != -1 || d.Partitions[1].LogEndOffset != 1 {
		t.Fatalf("describe: %+v", d)
	}
	resp, err := http.Get("http://" + tb2.b.AdminAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "t/0") {
		t.Fatalf("/readyz: %d %q", resp.StatusCode, body)
	}
	// The operator can still delete the broken topic.
	var er wire.ErrorResponse
	rs.call(wire.APIDeleteTopic, &wire.DeleteTopicRequest{Name: "t"}, &er)
	if er.Error != wire.ErrNone {
		t.Fatalf("delete: %+v", er)
	}
}

// A client cannot make the broker host more partitions than MaxPartitions,
// nor make one metadata answer repeat a topic: the all-topics answer always
// fits the protocol's header limits, and a request naming one topic 10,000
// times gets it once.
func TestPartitionLimitAndMetadataSize(t *testing.T) {
	tb := startBroker(t, func(c *node.Config) { c.MaxPartitions = 5; c.HotstoreBytes = -1 })
	tb.createTopic("a", 3, nil)
	if err := tb.b.CreateTopic("b", 3, nil, 0); !errors.Is(err, wire.ErrInvalidPartitions) {
		t.Fatalf("past the broker's partition limit: %v", err)
	}
	tb.createTopic("b", 2, nil)

	names := make([]string, wire.MaxListLen)
	for i := range names {
		names[i] = "a"
	}
	var md wire.MetadataResponse
	tb.stream().call(wire.APIMetadata, &wire.MetadataRequest{Topics: names}, &md)
	if md.Error != wire.ErrNone || len(md.Topics) != 1 || len(md.Topics[0].Partitions) != 3 {
		t.Fatalf("metadata for one topic asked %d times: %d topics, %+v", len(names), len(md.Topics), md.Error)
	}
}

// A partition whose directory has gone missing while the broker was down is
// offline at start-up, not recreated empty: starting again at offset 0 would
// hide the loss and hand consumers offsets they have already seen.
func TestMissingPartitionDirIsOffline(t *testing.T) {
	dir := t.TempDir()
	tb := startBrokerIn(t, dir)
	tb.createTopic("t", 2, nil)
	rs := tb.stream()
	for p := range int32(2) {
		if r := produce(t, rs, "t", p, batch(t, "k", 3, wire.CodecNone)); r.Error != wire.ErrNone {
			t.Fatalf("produce: %+v", r)
		}
	}
	tb.stop()
	if err := os.RemoveAll(filepath.Join(dir, "topics", "t", "1")); err != nil {
		t.Fatal(err)
	}
	tb2 := startBrokerIn(t, dir)
	rs = tb2.stream()
	if r := produce(t, rs, "t", 1, batch(t, "k", 1, wire.CodecNone)); r.Error != wire.ErrPartitionOffline || !strings.Contains(r.Message, "missing") {
		t.Fatalf("produce to the partition whose directory is gone: %+v", r)
	}
	if r := produce(t, rs, "t", 0, batch(t, "k", 1, wire.CodecNone)); r.Error != wire.ErrNone || r.BaseOffset != 3 {
		t.Fatalf("produce to the intact partition: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "topics", "t", "1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the missing directory was recreated: %v", err)
	}
}
