package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rafka/rafka/client"
	"github.com/rafka/rafka/node"
	"github.com/rafka/rafka/quicnet"
	"github.com/rafka/rafka/wire"
)

// These tests run the client against a real in-process broker on loopback.

type testBroker struct {
	t    testing.TB
	b    *node.Broker
	dir  string
	addr string
}

func startBroker(t testing.TB) *testBroker {
	t.Helper()
	return startBrokerAt(t, t.TempDir(), "127.0.0.1:0")
}

func startBrokerAt(t testing.TB, dir, listen string) *testBroker {
	t.Helper()
	return startBrokerWith(t, node.Config{DataDir: dir, Listen: listen})
}

func startBrokerWith(t testing.TB, cfg node.Config) *testBroker {
	t.Helper()
	dir := cfg.DataDir
	// Small segments: each partition preallocates one.
	cfg.TopicDefaults.SegmentBytes = 4 << 20
	b, err := node.New(cfg)
	if err != nil {
		t.Fatalf("node.New: %v", err)
	}
	if err := b.Start(); err != nil {
		b.Shutdown(context.Background())
		t.Fatalf("Start: %v", err)
	}
	tb := &testBroker{t: t, b: b, dir: dir, addr: b.Addr()}
	t.Cleanup(tb.stop)
	return tb
}

func (tb *testBroker) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tb.b.Shutdown(ctx); err != nil {
		tb.t.Errorf("broker shutdown: %v", err)
	}
}

func (tb *testBroker) client(opts ...client.Option) *client.Client {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts = append([]client.Option{client.WithBrokers(tb.addr), client.WithCAFile(quicnet.SelfSignedCertPath(tb.dir))}, opts...)
	c, err := client.New(ctx, opts...)
	if err != nil {
		tb.t.Fatalf("client.New: %v", err)
	}
	tb.t.Cleanup(func() { c.Close() })
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func createTopic(t *testing.T, c *client.Client, name string, partitions int32) {
	t.Helper()
	if err := c.CreateTopic(testCtx(t), name, partitions, nil); err != nil {
		t.Fatalf("CreateTopic %s: %v", name, err)
	}
}

func newProducer(t *testing.T, c *client.Client, opts ...client.ProducerOption) *client.Producer {
	t.Helper()
	p, err := c.NewProducer(opts...)
	if err != nil {
		t.Fatalf("NewProducer: %v", err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

// consume reads exactly n records from the given assignments.
func consume(t *testing.T, c *client.Client, n int, as ...client.Assignment) []*client.Record {
	t.Helper()
	cs, err := c.NewConsumer()
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	ctx := testCtx(t)
	if err := cs.Assign(ctx, as...); err != nil {
		t.Fatalf("Assign: %v", err)
	}
	var out []*client.Record
	for len(out) < n {
		recs, err := cs.Poll(ctx)
		if err != nil {
			t.Fatalf("Poll after %d of %d records: %v", len(out), n, err)
		}
		out = append(out, recs...)
	}
	if len(out) != n {
		t.Fatalf("consumed %d records, want %d", len(out), n)
	}
	return out
}

func values(rs []*client.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r.Value)
	}
	return out
}

func TestAdminRoundTrip(t *testing.T) {
	tb := startBroker(t)
	c := tb.client()
	ctx := testCtx(t)

	if err := c.CreateTopic(ctx, "orders", 3, map[string]string{"retention.ms": "3600000"}); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	if err := c.CreateTopic(ctx, "orders", 3, nil); !errors.Is(err, client.ErrTopicAlreadyExists) {
		t.Fatalf("second CreateTopic = %v, want ErrTopicAlreadyExists", err)
	}
	if err := c.CreateTopic(ctx, "bad", 1, map[string]string{"no.such.key": "1"}); !errors.Is(err, client.ErrInvalidConfig) {
		t.Fatalf("CreateTopic with unknown config = %v, want ErrInvalidConfig", err)
	}

	topics, err := c.ListTopics(ctx)
	if err != nil {
		t.Fatalf("ListTopics: %v", err)
	}
	if len(topics) != 1 || topics[0].Name != "orders" || len(topics[0].Partitions) != 3 {
		t.Fatalf("ListTopics = %+v", topics)
	}
	for i, p := range topics[0].Partitions {
		start, end := wire.PartitionRange(int32(i), 3)
		if p.Partition != int32(i) || p.HashStart != start || p.HashEnd != end || p.LeaderAddr != tb.addr {
			t.Fatalf("partition %d metadata %+v, want range [%d, %d] led by %s", i, p, start, end, tb.addr)
		}
	}

	d, err := c.DescribeTopic(ctx, "orders")
	if err != nil {
		t.Fatalf("DescribeTopic: %v", err)
	}
	if d.Name != "orders" || len(d.Partitions) != 3 || d.Configs["retention.ms"] != "3600000" {
		t.Fatalf("DescribeTopic = %+v", d)
	}
	if err := c.AlterTopicConfig(ctx, "orders", map[string]string{"retention.ms": "7200000"}); err != nil {
		t.Fatalf("AlterTopicConfig: %v", err)
	}
	if d, err = c.DescribeTopic(ctx, "orders"); err != nil || d.Configs["retention.ms"] != "7200000" {
		t.Fatalf("after alter: %v %+v", err, d)
	}

	if err := c.DeleteTopic(ctx, "orders"); err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	if _, err := c.DescribeTopic(ctx, "orders"); !errors.Is(err, client.ErrUnknownTopicOrPartition) {
		t.Fatalf("DescribeTopic after delete = %v, want ErrUnknownTopicOrPartition", err)
	}
	if err := c.DeleteTopic(ctx, "orders"); !errors.Is(err, client.ErrUnknownTopicOrPartition) {
		t.Fatalf("second DeleteTopic = %v, want ErrUnknownTopicOrPartition", err)
	}
}

func TestUnknownTopic(t *testing.T) {
	tb := startBroker(t)
	c := tb.client()
	ctx := testCtx(t)
	p := newProducer(t, c)

	err := p.Produce(ctx, &client.Record{Topic: "nope", Partition: client.AnyPartition, Value: []byte("x")}, nil)
	if !errors.Is(err, client.ErrUnknownTopicOrPartition) {
		t.Fatalf("Produce to unknown topic = %v, want ErrUnknownTopicOrPartition", err)
	}
	if _, err := c.ListOffset(ctx, "nope", 0, wire.OffsetLatest); !errors.Is(err, client.ErrUnknownTopicOrPartition) {
		t.Fatalf("ListOffset = %v", err)
	}
	createTopic(t, c, "two", 2)
	err = p.ProduceSync(ctx, &client.Record{Topic: "two", Partition: 5, Value: []byte("x")})
	if !errors.Is(err, client.ErrUnknownTopicOrPartition) {
		t.Fatalf("ProduceSync to partition 5 of 2 = %v", err)
	}
	cs, err := c.NewConsumer()
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if err := cs.Assign(ctx, client.Assignment{Topic: "nope", Partition: 0}); !errors.Is(err, client.ErrUnknownTopicOrPartition) {
		t.Fatalf("Assign unknown topic = %v", err)
	}
}

func TestProduceSyncAndAsync(t *testing.T) {
	tb := startBroker(t)
	c := tb.client()
	ctx := testCtx(t)
	createTopic(t, c, "events", 2)
	p := newProducer(t, c)

	var rs []*client.Record
	for i := range 10 {
		rs = append(rs, &client.Record{Topic: "events", Partition: 0, Value: fmt.Appendf(nil, "sync-%d", i),
			Headers: []client.Header{{Key: "i", Value: fmt.Appendf(nil, "%d", i)}}})
	}
	if err := p.ProduceSync(ctx, rs...); err != nil {
		t.Fatalf("ProduceSync: %v", err)
	}
	for i, r := range rs {
		if r.Offset != int64(i) || r.Partition != 0 || r.Timestamp.IsZero() {
			t.Fatalf("record %d: partition %d offset %d timestamp %v", i, r.Partition, r.Offset, r.Timestamp)
		}
	}

	const n = 200
	var (
		mu    sync.Mutex
		calls = make(map[string]int)
		order = make(map[int32][]int64)
	)
	for i := range n {
		r := &client.Record{Topic: "events", Partition: int32(i % 2), Value: fmt.Appendf(nil, "async-%d", i)}
		err := p.Produce(ctx, r, func(r *client.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("delivery of %s: %v", r.Value, err)
			}
			calls[string(r.Value)]++
			order[r.Partition] = append(order[r.Partition], r.Offset)
		})
		if err != nil {
			t.Fatalf("Produce %d: %v", i, err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	mu.Lock()
	if len(calls) != n {
		t.Fatalf("%d records delivered, want %d", len(calls), n)
	}
	for v, k := range calls {
		if k != 1 {
			t.Fatalf("%s: %d callbacks", v, k)
		}
	}
	// Partition 0 already holds the 10 sync records.
	for part, first := range map[int32]int64{0: 10, 1: 0} {
		for i, off := range order[part] {
			if off != first+int64(i) {
				t.Fatalf("partition %d: callback %d got offset %d, want %d", part, i, off, first+int64(i))
			}
		}
	}
	mu.Unlock()

	got := consume(t, c, 10+n/2, client.Assignment{Topic: "events", Partition: 0, Start: client.Earliest()})
	for i, r := range got[:10] {
		if string(r.Value) != fmt.Sprintf("sync-%d", i) || len(r.Headers) != 1 || string(r.Headers[0].Value) != fmt.Sprint(i) {
			t.Fatalf("record %d: %s headers %v", i, r.Value, r.Headers)
		}
	}
	for i, r := range got[10:] {
		if want := fmt.Sprintf("async-%d", 2*i); string(r.Value) != want {
			t.Fatalf("partition 0 record %d = %s, want %s", 10+i, r.Value, want)
		}
	}
}

func TestLZ4(t *testing.T) {
	tb := startBroker(t)
	c := tb.client()
	ctx := testCtx(t)
	createTopic(t, c, "plain", 1)
	createTopic(t, c, "packed", 1)
	value := bytes.Repeat([]byte("lz4 likes repetition. "), 50)
	const n = 300
	for topic, codec := range map[string]wire.Codec{"plain": client.CompressionNone, "packed": client.CompressionLZ4} {
		p := newProducer(t, c, client.WithCompression(codec), client.WithLinger(time.Hour))
		var rs []*client.Record
		for i := range n {
			rs = append(rs, &client.Record{Topic: topic, Partition: 0, Key: fmt.Appendf(nil, "%d", i), Value: value})
		}
		if err := p.ProduceSync(ctx, rs...); err != nil {
			t.Fatalf("ProduceSync %s: %v", topic, err)
		}
	}
	got := consume(t, c, n, client.Assignment{Topic: "packed", Partition: 0})
	for i, r := range got {
		if string(r.Key) != fmt.Sprint(i) || !bytes.Equal(r.Value, value) || r.Offset != int64(i) {
			t.Fatalf("record %d: key %s offset %d, value of %d bytes", i, r.Key, r.Offset, len(r.Value))
		}
	}
	plain, err := c.DescribeTopic(ctx, "plain")
	if err != nil {
		t.Fatal(err)
	}
	packed, err := c.DescribeTopic(ctx, "packed")
	if err != nil {
		t.Fatal(err)
	}
	if ps, zs := plain.Partitions[0].SizeBytes, packed.Partitions[0].SizeBytes; zs*4 > ps {
		t.Fatalf("lz4 topic holds %d bytes, uncompressed %d: not compressed", zs, ps)
	}
}

// Full lz4 batches are compressed by the Produce calls that fill them, on
// several goroutines at once: every record arrives once, each goroutine's
// in its produce order, and the topic holds compressed batches.
func TestLZ4FullBatchesFromManyGoroutines(t *testing.T) {
	tb := startBroker(t)
	c := tb.client()
	ctx := testCtx(t)
	createTopic(t, c, "packed", 1)
	p := newProducer(t, c, client.WithCompression(client.CompressionLZ4), client.WithLinger(time.Hour),
		client.WithMaxBatchBytes(4096), client.WithMaxInFlight(4))
	const goroutines, each = 4, 400
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				value := bytes.Repeat(fmt.Appendf(nil, "g%d-%06d;", g, i), 20)
				r := &client.Record{Topic: "packed", Partition: 0, Key: []byte{byte(g)}, Value: value}
				if err := p.Produce(ctx, r, func(r *client.Record, err error) {
					if err != nil {
						t.Errorf("delivery: %v", err)
					}
				}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	next := make([]int, goroutines)
	for _, r := range consume(t, c, goroutines*each, client.Assignment{Topic: "packed", Partition: 0}) {
		g := int(r.Key[0])
		if want := bytes.Repeat(fmt.Appendf(nil, "g%d-%06d;", g, next[g]), 20); !bytes.Equal(r.Value, want) {
			t.Fatalf("offset %d: %.20s..., want %.20s...", r.Offset, r.Value, want)
		}
		next[g]++
	}
	d, err := c.DescribeTopic(ctx, "packed")
	if err != nil {
		t.Fatal(err)
	}
	if raw := int64(goroutines * each * 200); d.Partitions[0].SizeBytes*3 > raw {
		t.Fatalf("topic holds %d bytes for %d bytes of values: not compressed", d.Partitions[0].SizeBytes, raw)
	}
}

func TestKeyedRecordsLandInHashRange(t *testing.T) {
	tb := startBroker(t)
	c := tb.client()
	ctx := testCtx(t)
	createTopic(t, c, "keyed", 4)
	p := newProducer(t, c)
	topics, err := c.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	meta := topics[0]
	owner := func(key []byte) int32 {
		h := wire.KeyHash(key)
		for _, pm := range meta.Partitions {
			if pm.HashStart <= h && h <= pm.HashEnd {
				return pm.Partition
			}
		}
		t.Fatalf("no partition owns hash %x", h)
		return -1
	}
	const n = 400
	var rs []*client.Record
	for i := range n {
		rs = append(rs, &client.Record{Topic: "keyed", Partition: client.AnyPartition, Key: fmt.Appendf(nil, "user-%d", i%40), Value: fmt.Appendf(nil, "%d", i)})
	}
	if err := p.ProduceSync(ctx, rs...); err != nil {
		t.Fatal(err)
	}
	perPartition := make(map[int32]int)
	for _, r := range rs {
		if want := owner(r.Key); r.Partition != want {
			t.Fatalf("key %s went to partition %d, its hash range is partition %d's", r.Key, r.Partition, want)
		}
		perPartition[r.Partition]++
	}
	if len(perPartition) != 4 {
		t.Fatalf("40 keys used partitions %v", perPartition)
	}
	for part, k := range perPartition {
		for _, r := range consume(t, c, k, client.Assignment{Topic: "keyed", Partition: part}) {
			if owner(r.Key) != part {
				t.Fatalf("partition %d holds key %s", part, r.Key)
			}
		}
	}
}

func TestUnkeyedRecordsSpread(t *testing.T) {
	tb := startBroker(t)
	c := tb.client()
	ctx := testCtx(t)
	createTopic(t, c, "spread", 3)
	// One record per batch: the sticky partitioner moves on after each.
	p := newProducer(t, c, client.WithMaxBatchBytes(wire.BatchHeaderSize+64))
	seen := make(map[int32]int)
	for i := range 30 {
		r := &client.Record{Topic: "spread", Partition: client.AnyPartition, Value: fmt.Appendf(nil, "value-%02d", i)}
		if err := p.ProduceSync(ctx, r); err != nil {
			t.Fatal(err)
		}
		seen[r.Partition]++
	}
	if len(seen) != 3 || seen[0] != 10 || seen[1] != 10 || seen[2] != 10 {
		t.Fatalf("unkeyed records per partition %v, want 10 each", seen)
	}
}

func TestConsumeStartPositions(t *testing.T) {
	tb := startBroker(t)
	c := tb.client()
	ctx := testCtx(t)
	createTopic(t, c, "log", 1)
	p := newProducer(t, c)
	t0 := time.UnixMilli(1_700_000_000_000)
	var rs []*client.Record
	for i := range 10 {
		rs = append(rs, &client.Record{Topic: "log", Partition: 0, Value: fmt.Appendf(nil, "v%d", i), Timestamp: t0.Add(time.Duration(i) * time.Second)})
	}
	if err := p.ProduceSync(ctx, rs...); err != nil {
		t.Fatal(err)
	}
	offsets := func(rs []*client.Record) string {
		var b []byte
		for _, r := range rs {
			b = fmt.Appendf(b, "%d ", r.Offset)
		}
		return string(b)
	}
	if got := offsets(consume(t, c, 10, client.Assignment{Topic: "log", Start: client.Earliest()})); got != "0 1 2 3 4 5 6 7 8 9 " {
		t.Fatalf("earliest: %s", got)
	}
	if got := offsets(consume(t, c, 5, client.Assignment{Topic: "log", Start: client.AtOffset(5)})); got != "5 6 7 8 9 " {
		t.Fatalf("offset 5: %s", got)
	}
	got := consume(t, c, 3, client.Assignment{Topic: "log", Start: client.AtTime(t0.Add(7 * time.Second))})
	if offsets(got) != "7 8 9 " || !got[0].Timestamp.Equal(t0.Add(7*time.Second)) {
		t.Fatalf("at time t0+7s: %s (first timestamp %v)", offsets(got), got[0].Timestamp)
	}
	if off, err := c.ListOffset(ctx, "log", 0, wire.OffsetLatest); err != nil || off != 10 {
		t.Fatalf("ListOffset latest = %d, %v", off, err)
	}
	if off, err := c.ListOffset(ctx, "log", 0, wire.OffsetEarliest); err != nil || off != 0 {
		t.Fatalf("ListOffset earliest = %d, %v", off, err)
	}

	// Latest: only records produced after the assignment.
	cs, err := c.NewConsumer()
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if err := cs.Assign(ctx, client.Assignment{Topic: "log", Start: client.Latest()}); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx,
		&client.Record{Topic: "log", Partition: 0, Value: []byte("new-0")},
		&client.Record{Topic: "log", Partition: 0, Value: []byte("new-1")}); err != nil {
		t.Fatal(err)
	}
	var tail []*client.Record
	for len(tail) < 2 {
		recs, err := cs.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tail = append(tail, recs...)
	}
	if offsets(tail) != "10 11 " || string(tail[0].Value) != "new-0" {
		t.Fatalf("latest: %s %q", offsets(tail), values(tail))
	}
	if err := cs.Assign(ctx, client.Assignment{Topic: "log", Start: client.AtOffset(99)}); !errors.Is(err, client.ErrOffsetOutOfRange) {
		t.Fatalf("Assign past the end = %v, want ErrOffsetOutOfRange", err)
	}
}

func TestOrderWithManyInFlight(t *testing.T) {
	tb := startBroker(t)
	c := tb.client()
	ctx := testCtx(t)
	createTopic(t, c, "ordered", 2)
	// Small batches and no linger: many requests in flight per partition.
	p := newProducer(t, c, client.WithLinger(0), client.WithMaxBatchBytes(512), client.WithMaxInFlight(8))
	const n = 3000
	var (
		mu   sync.Mutex
		next = map[int32]int64{}
	)
	for i := range n {
		part := int32(i % 2)
		r := &client.Record{Topic: "ordered", Partition: part, Value: fmt.Appendf(nil, "%06d", i)}
		err := p.Produce(ctx, r, func(r *client.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("delivery: %v", err)
				return
			}
			if r.Offset != next[r.Partition] {
				t.Errorf("partition %d: callback for offset %d, expected %d", r.Partition, r.Offset, next[r.Partition])
			}
			next[r.Partition] = r.Offset + 1
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for part := range int32(2) {
		got := consume(t, c, n/2, client.Assignment{Topic: "ordered", Partition: part})
		for i, r := range got {
			if want := fmt.Sprintf("%06d", 2*i+int(part)); string(r.Value) != want || r.Offset != int64(i) {
				t.Fatalf("partition %d offset %d = %s, want %s at %d", part, r.Offset, r.Value, want, i)
			}
		}
	}
}

func TestBackpressure(t *testing.T) {
	tb := startBroker(t)
	c := tb.client()
	ctx := testCtx(t)
	createTopic(t, c, "slow", 1)
	// A buffer of one small batch and a linger nothing will wait out.
	p := newProducer(t, c, client.WithBufferBytes(1024), client.WithMaxBatchBytes(1024), client.WithLinger(time.Hour))
	var delivered sync.WaitGroup
	delivered.Add(1)
	first := &client.Record{Topic: "slow", Partition: 0, Value: make([]byte, 900)}
	if err := p.Produce(ctx, first, func(_ *client.Record, err error) {
		if err != nil {
			t.Errorf("first record: %v", err)
		}
		delivered.Done()
	}); err != nil {
		t.Fatal(err)
	}
	second := &client.Record{Topic: "slow", Partition: 0, Value: make([]byte, 900)}
	blocked, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := p.Produce(blocked, second, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Produce into a full buffer = %v, want the context's error", err)
	}
	cancelled, cancelNow := context.WithCancel(ctx)
	cancelNow()
	if err := p.Produce(cancelled, second, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Produce with a cancelled context = %v", err)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	delivered.Wait()
	if err := p.ProduceSync(ctx, second); err != nil || second.Offset != 1 {
		t.Fatalf("after the flush: %v, offset %d", err, second.Offset)
	}
}

func TestAcksNone(t *testing.T) {
	tb := startBroker(t)
	c := tb.client()
	ctx := testCtx(t)
	createTopic(t, c, "fire", 1)
	p := newProducer(t, c, client.WithAcks(client.AcksNone))
	var rs []*client.Record
	for i := range 50 {
		rs = append(rs, &client.Record{Topic: "fire", Partition: 0, Value: fmt.Appendf(nil, "%d", i)})
	}
	if err := p.ProduceSync(ctx, rs...); err != nil {
		t.Fatal(err)
	}
	if rs[0].Offset != -1 {
		t.Fatalf("offset %d without acks", rs[0].Offset)
	}
	got := consume(t, c, 50, client.Assignment{Topic: "fire"})
	for i, r := range got {
		if string(r.Value) != fmt.Sprint(i) {
			t.Fatalf("record %d = %s", i, r.Value)
		}
	}
}

func TestCloseIdempotent(t *testing.T) {
	tb := startBroker(t)
	c := tb.client()
	ctx := testCtx(t)
	createTopic(t, c, "c", 1)

	p := newProducer(t, c)
	if err := p.ProduceSync(ctx, &client.Record{Topic: "c", Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := p.Produce(ctx, &client.Record{Topic: "c", Value: []byte("y")}, nil); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Produce after Close = %v", err)
	}

	cs, err := c.NewConsumer()
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.Assign(ctx, client.Assignment{Topic: "c"}); err != nil {
		t.Fatal(err)
	}
	cs.Close()
	cs.Close()
	if _, err := cs.Poll(ctx); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Poll after Close = %v", err)
	}

	// Closing the client fails what its producers still hold.
	p2 := newProducer(t, c, client.WithLinger(time.Hour))
	failed := make(chan error, 1)
	if err := p2.Produce(ctx, &client.Record{Topic: "c", Value: []byte("z")}, func(_ *client.Record, err error) { failed <- err }); err != nil {
		t.Fatal(err)
	}
	cs2, err := c.NewConsumer()
	if err != nil {
		t.Fatal(err)
	}
	if err := cs2.Assign(ctx, client.Assignment{Topic: "c"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-failed; !errors.Is(err, client.ErrClosed) {
		t.Fatalf("pending record after client Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second client Close: %v", err)
	}
	if _, err := cs2.Poll(ctx); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Poll after client Close = %v", err)
	}
	if _, err := c.NewProducer(); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("NewProducer after Close = %v", err)
	}
	if _, err := c.ListTopics(ctx); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("ListTopics after Close = %v", err)
	}
}

func TestProducerSurvivesBrokerRestart(t *testing.T) {
	dir := t.TempDir()
	tb := startBrokerAt(t, dir, "127.0.0.1:0")
	c := tb.client(client.WithControlBackoff(10*time.Millisecond, 100*time.Millisecond))
	ctx := testCtx(t)
	createTopic(t, c, "durable", 1)
	p := newProducer(t, c, client.WithRetryBackoff(10*time.Millisecond, 100*time.Millisecond), client.WithRetries(20))
	if err := p.ProduceSync(ctx, &client.Record{Topic: "durable", Value: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	tb.stop()
	tb2 := startBrokerAt(t, dir, tb.addr)
	_ = tb2
	r := &client.Record{Topic: "durable", Value: []byte("after")}
	if err := p.ProduceSync(ctx, r); err != nil {
		t.Fatalf("produce after restart: %v", err)
	}
	if r.Offset != 1 {
		t.Fatalf("offset after restart %d, want 1", r.Offset)
	}
	if got := values(consume(t, c, 2, client.Assignment{Topic: "durable"})); fmt.Sprint(got) != "[before after]" {
		t.Fatalf("log holds %v", got)
	}
}

// TestOrderAcrossBrokerRestart stops the broker while many batches are in
// flight and queued, restarts it, and checks the ordering guarantee: every
// record is stored, callbacks see increasing offsets, and the first copies
// of the records in the log are in produce order (retries may add copies).
func TestOrderAcrossBrokerRestart(t *testing.T) {
	dir := t.TempDir()
	tb := startBrokerAt(t, dir, "127.0.0.1:0")
	c := tb.client(client.WithControlBackoff(10*time.Millisecond, 100*time.Millisecond))
	ctx := testCtx(t)
	createTopic(t, c, "restart", 1)
	p := newProducer(t, c, client.WithLinger(0), client.WithMaxBatchBytes(256), client.WithMaxInFlight(8),
		client.WithRetryBackoff(10*time.Millisecond, 200*time.Millisecond), client.WithRetries(50))

	const n = 2000
	var (
		mu      sync.Mutex
		last    int64 = -1
		count   int
		halfway = make(chan struct{})
	)
	for i := range n {
		r := &client.Record{Topic: "restart", Partition: 0, Value: fmt.Appendf(nil, "%05d", i)}
		err := p.Produce(ctx, r, func(r *client.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("record %s: %v", r.Value, err)
				return
			}
			if r.Offset <= last {
				t.Errorf("record %s at offset %d after offset %d", r.Value, r.Offset, last)
			}
			last = r.Offset
			if count++; count == n/4 {
				close(halfway)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-halfway:
	case <-ctx.Done():
		t.Fatal("no deliveries before the restart")
	}
	tb.stop()
	mu.Lock()
	atStop := count
	mu.Unlock()
	startBrokerAt(t, dir, tb.addr)
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	end, err := c.ListOffset(ctx, "restart", 0, wire.OffsetLatest)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[string]bool)
	want := 0
	for _, r := range consume(t, c, int(end), client.Assignment{Topic: "restart"}) {
		v := string(r.Value)
		if seen[v] {
			continue // a retried copy
		}
		seen[v] = true
		if v != fmt.Sprintf("%05d", want) {
			t.Fatalf("first copy of %s at offset %d, expected %05d next", v, r.Offset, want)
		}
		want++
	}
	if want != n {
		t.Fatalf("log holds %d distinct records, want %d", want, n)
	}
	t.Logf("%d records delivered before the restart, %d stored as %d (duplicates from retries: %d)", atStop, n, end, int(end)-n)
}

// TestConsumerResubscribesAfterRestart breaks the subscribe stream by
// restarting the broker; the consumer subscribes again from the next offset,
// without gaps or repeats.
func TestConsumerResubscribesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	tb := startBrokerAt(t, dir, "127.0.0.1:0")
	c := tb.client(client.WithControlBackoff(10*time.Millisecond, 100*time.Millisecond))
	ctx := testCtx(t)
	createTopic(t, c, "resub", 1)
	p := newProducer(t, c, client.WithRetryBackoff(10*time.Millisecond, 100*time.Millisecond), client.WithRetries(20))
	produce := func(from, to int) {
		t.Helper()
		var rs []*client.Record
		for i := from; i < to; i++ {
			rs = append(rs, &client.Record{Topic: "resub", Partition: 0, Value: fmt.Appendf(nil, "%d", i)})
		}
		if err := p.ProduceSync(ctx, rs...); err != nil {
			t.Fatal(err)
		}
	}
	cs, err := c.NewConsumer(client.WithResubscribeBackoff(10*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if err := cs.Assign(ctx, client.Assignment{Topic: "resub"}); err != nil {
		t.Fatal(err)
	}
	var got []*client.Record
	poll := func(n int) {
		t.Helper()
		for len(got) < n {
			recs, err := cs.Poll(ctx)
			if err != nil {
				t.Fatalf("Poll: %v", err)
			}
			got = append(got, recs...)
		}
	}
	produce(0, 5)
	poll(5)
	tb.stop()
	startBrokerAt(t, dir, tb.addr)
	produce(5, 10)
	poll(10)
	for i, r := range got {
		if r.Offset != int64(i) || string(r.Value) != fmt.Sprint(i) {
			t.Fatalf("record %d: offset %d value %s", i, r.Offset, r.Value)
		}
	}
	if len(got) != 10 {
		t.Fatalf("%d records, want 10", len(got))
	}
}
