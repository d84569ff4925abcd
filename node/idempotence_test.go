package node_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rafka/rafka/client"
	"github.com/rafka/rafka/node/nodetest"
	"github.com/rafka/rafka/quicnet"
	"github.com/rafka/rafka/wire"
)

// idemBatch builds a batch of n records "<prefix>-<i>" from producer id
// with the given epoch and base sequence.
func idemBatch(t *testing.T, id int64, epoch int16, seq int32, prefix string, n int) []byte {
	t.Helper()
	bb := wire.NewBatchBuilder()
	bb.SetProducer(id, epoch, seq)
	ts := time.Now().UnixMilli()
	for i := range n {
		bb.Append(ts, nil, []byte(prefix+"-"+strconv.Itoa(i)), nil)
	}
	b, err := bb.Build(wire.CodecNone)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), b...)
}

func produceAcks(t *testing.T, rs *rawStream, topic string, partition int32, acks int8, b []byte) wire.ProduceResponse {
	t.Helper()
	var resp wire.ProduceResponse
	rs.call(wire.APIProduce, &wire.ProduceRequest{Topic: topic, Partition: partition, Acks: acks}, &resp, b)
	return resp
}

func wantOffsets(t *testing.T, what string, r wire.ProduceResponse, base, last int64) {
	t.Helper()
	if r.Error != wire.ErrNone || r.BaseOffset != base || r.LastOffset != last {
		t.Fatalf("%s: %v %q offsets %d-%d, want %d-%d", what, r.Error, r.Message, r.BaseOffset, r.LastOffset, base, last)
	}
}

func wantCode(t *testing.T, what string, r wire.ProduceResponse, code wire.ErrorCode) {
	t.Helper()
	if r.Error != code {
		t.Fatalf("%s: %v %q, want %v", what, r.Error, r.Message, code)
	}
}

// TestIdempotentProduceUnreplicated: on a partition with one replica, a
// batch sent again is answered with its first offsets and not stored
// again, a sequence gap is refused, a sequence older than what the
// partition remembers is refused, and a restart rebuilds the state from
// the log so that a retry after it is still recognised.
func TestIdempotentProduceUnreplicated(t *testing.T) {
	dir := t.TempDir()
	tb := startBrokerIn(t, dir)
	tb.createTopic("idem", 1, nil)
	rs := tb.stream()
	b0 := idemBatch(t, 7, 0, 0, "a", 3)
	b1 := idemBatch(t, 7, 0, 3, "b", 2)
	wantOffsets(t, "first batch", produce(t, rs, "idem", 0, b0), 0, 2)
	wantOffsets(t, "first batch again", produce(t, rs, "idem", 0, b0), 0, 2)
	wantOffsets(t, "second batch", produce(t, rs, "idem", 0, b1), 3, 4)
	wantCode(t, "a gap", produce(t, rs, "idem", 0, idemBatch(t, 7, 0, 10, "gap", 1)), wire.ErrOutOfOrderSequence)
	wantOffsets(t, "another producer", produce(t, rs, "idem", 0, idemBatch(t, 8, 0, 0, "x", 1)), 5, 5)
	wantOffsets(t, "first batch once more", produceAcks(t, rs, "idem", 0, wire.AcksAll, b0), 0, 2)
	wantOffsets(t, "a batch without producer", produce(t, rs, "idem", 0, batch(t, "plain", 1, wire.CodecNone)), 6, 6)
	_, _, vals := fetch(t, rs, "idem", 0, 0)
	if want := []string{"a-0", "a-1", "a-2", "b-0", "b-1", "x-0", "plain-0"}; !slices.Equal(vals, want) {
		t.Fatalf("log holds %v, want %v", vals, want)
	}

	tb.stop()
	tb = startBrokerIn(t, dir)
	rs = tb.stream()
	wantOffsets(t, "second batch after a restart", produce(t, rs, "idem", 0, b1), 3, 4)
	wantOffsets(t, "first batch after a restart", produce(t, rs, "idem", 0, b0), 0, 2)
	wantCode(t, "a gap after a restart", produce(t, rs, "idem", 0, idemBatch(t, 7, 0, 6, "gap", 1)), wire.ErrOutOfOrderSequence)
	seq := int32(5)
	next := int64(7)
	for i := range 8 { // push b0 out of the batches remembered
		wantOffsets(t, "a later batch", produce(t, rs, "idem", 0, idemBatch(t, 7, 0, seq, "c"+strconv.Itoa(i), 1)), next, next)
		seq++
		next++
	}
	wantCode(t, "a batch older than those remembered", produce(t, rs, "idem", 0, b0), wire.ErrDuplicateSequence)
	wantOffsets(t, "a new epoch starts afresh", produce(t, rs, "idem", 0, idemBatch(t, 7, 1, 0, "e", 1)), next, next)
	_, _, vals = fetch(t, rs, "idem", 0, 0)
	if len(vals) != int(next)+1 {
		t.Fatalf("log holds %d records, want %d: %v", len(vals), next+1, vals)
	}
}

// dialBroker opens a raw stream to a cluster broker.
func dialBroker(t *testing.T, c *nodetest.Cluster, i int) *rawStream {
	t.Helper()
	tlsConf, err := quicnet.ClientTLSConfig(quicnet.TLSFiles{CAFile: c.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := quicnet.Dial(ctx, c.Brokers[i].Addr, tlsConf, quicnet.Config{})
	if err != nil {
		t.Fatalf("dial broker %d: %v", i, err)
	}
	t.Cleanup(func() { conn.CloseWithError(0, "") })
	return openStream(t, conn)
}

// produceToLeader sends b with acks=all to whichever broker leads the
// partition, until one answers with something else than NOT_LEADER.
func produceToLeader(t *testing.T, c *nodetest.Cluster, cl *client.Client, topic string, b []byte) wire.ProduceResponse {
	t.Helper()
	var resp wire.ProduceResponse
	c.WaitFor("a leader taking "+topic, func() error {
		lead := leaderOf(t, c, cl, topic, 0)
		resp = produceAcks(t, dialBroker(t, c, lead), topic, 0, wire.AcksAll, b)
		if resp.Error == wire.ErrNotLeader {
			return fmt.Errorf("broker %d: %s", lead, resp.Message)
		}
		return nil
	})
	return resp
}

// TestIdempotentProduceReplicated: on a partition with three replicas a
// batch sent again is answered with its first offsets and stored once, to
// the same leader, to a new leader after the first was killed, and after
// every broker restarted (each replica rebuilds the state as its log
// applies again); a gap is refused.
func TestIdempotentProduceReplicated(t *testing.T) {
	c := nodetest.NewCluster(t, 3)
	cl := c.Client()
	c.WaitFor("3 metadata voters", func() error { return votersOf(c, 3) })
	if err := cl.CreateTopic(ctxT(t), "idem3", 1, nil, client.WithReplicationFactor(3)); err != nil {
		t.Fatal(err)
	}
	b0 := idemBatch(t, 11, 0, 0, "a", 3)
	b1 := idemBatch(t, 11, 0, 3, "b", 2)
	first := produceToLeader(t, c, cl, "idem3", b0)
	if first.Error != wire.ErrNone {
		t.Fatalf("first batch: %v %s", first.Error, first.Message)
	}
	base := first.BaseOffset
	wantOffsets(t, "first batch again", produceToLeader(t, c, cl, "idem3", b0), base, base+2)
	wantCode(t, "a gap", produceToLeader(t, c, cl, "idem3", idemBatch(t, 11, 0, 9, "gap", 1)), wire.ErrOutOfOrderSequence)
	// acks=leader: a retry of a batch the leader holds is recognised too.
	lead := leaderOf(t, c, cl, "idem3", 0)
	rs := dialBroker(t, c, lead)
	r1 := produceAcks(t, rs, "idem3", 0, wire.AcksLeader, b1)
	if r1.Error != wire.ErrNone {
		t.Fatalf("second batch: %v %s", r1.Error, r1.Message)
	}
	wantOffsets(t, "second batch again", produceAcks(t, rs, "idem3", 0, wire.AcksAll, b1), r1.BaseOffset, r1.BaseOffset+1)

	c.Kill(lead)
	wantOffsets(t, "first batch at a new leader", produceToLeader(t, c, cl, "idem3", b0), base, base+2)
	wantOffsets(t, "second batch at a new leader", produceToLeader(t, c, cl, "idem3", b1), r1.BaseOffset, r1.BaseOffset+1)
	c.Restart(lead)
	c.WaitReady()

	for i := range c.Brokers {
		c.Kill(i)
	}
	for i := range c.Brokers {
		c.Restart(i)
	}
	c.WaitReady()
	cl = c.Client()
	wantOffsets(t, "second batch after restarts", produceToLeader(t, c, cl, "idem3", b1), r1.BaseOffset, r1.BaseOffset+1)
	r2 := produceToLeader(t, c, cl, "idem3", idemBatch(t, 11, 0, 5, "c", 1))
	if r2.Error != wire.ErrNone {
		t.Fatalf("third batch: %v %s", r2.Error, r2.Message)
	}
	stored := readOffsets(t, cl, "idem3", 0, r2.LastOffset)
	for _, v := range []string{"a-0", "a-1", "a-2", "b-0", "b-1", "c-0"} {
		if len(stored[v]) != 1 {
			t.Errorf("%s stored at %v, want once", v, stored[v])
		}
	}
	if len(stored) != 6 {
		t.Errorf("log holds %v", stored)
	}
	waitReplicasIdentical(t, c, "idem3", 0)
}

// TestIdempotentProducerLeaderKilled: a producer with the default options
// (idempotent) writes with acks=all while the partition's leader is
// killed twice; after recovery every acknowledged record is in the log
// exactly once, at the offset its ack named, and no record is stored
// twice.
func TestIdempotentProducerLeaderKilled(t *testing.T) {
	c := nodetest.NewCluster(t, 3)
	ctx := ctxT(t)
	cl := c.Client()
	c.WaitFor("3 metadata voters", func() error { return votersOf(c, 3) })
	mustCreate(t, cl, "kill", 1, 3)
	pr, err := c.Client().NewProducer(client.WithAcks(client.AcksAll), client.WithRetries(1000),
		client.WithRequestTimeout(2*time.Second), client.WithLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[string]int64{}
	var failed []error
	produced := 0
	produceN := func(n int) {
		for range n {
			v := "k" + strconv.Itoa(produced)
			produced++
			err := pr.Produce(ctx, &client.Record{Topic: "kill", Partition: 0, Value: []byte(v)}, func(r *client.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed = append(failed, err)
					return
				}
				acked[string(r.Value)] = r.Offset
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	for kill := range 2 {
		produceN(300)
		c.WaitFor("writes acknowledged before the kill", func() error {
			if n := count(); n < produced-100 {
				return fmt.Errorf("%d of %d acknowledged", n, produced)
			}
			return nil
		})
		lead := leaderOf(t, c, cl, "kill", 0)
		// Records in flight when the leader dies: retried at the next one.
		produceN(200)
		c.Kill(lead)
		produceN(300)
		if err := pr.Flush(ctx); err != nil {
			t.Fatalf("flush after kill %d: %v", kill, err)
		}
		c.Restart(lead)
		c.WaitReady()
	}
	if err := pr.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failed) > 0 {
		t.Fatalf("%d records failed, first: %v", len(failed), failed[0])
	}
	if len(acked) != produced {
		t.Fatalf("%d of %d acknowledged", len(acked), produced)
	}
	checkAcked(t, acked, readOffsets(t, cl, "kill", 0, maxOffset(acked)))
	waitReplicasIdentical(t, c, "kill", 0)
}

// TestIsolatedLeaderConfirmsBeforeRefusingAGap: a partition leader cut off
// from the other replicas believes it leads until its election timeout,
// while a newer leader may take a producer's next batches. It must not
// refuse that producer's later batch as a gap on its own state alone (the
// producer would take the partition for one that forgot it and start over,
// storing again what it sent before): it answers OUT_OF_ORDER_SEQUENCE only
// once a quorum confirmed it leads, and NOT_LEADER (retriable) otherwise.
func TestIsolatedLeaderConfirmsBeforeRefusingAGap(t *testing.T) {
	c := nodetest.NewCluster(t, 3, nodetest.WithFaultNet())
	cl := c.Client()
	c.WaitFor("3 metadata voters", func() error { return votersOf(c, 3) })
	if err := cl.CreateTopic(ctxT(t), "stale", 1, nil, client.WithReplicationFactor(3)); err != nil {
		t.Fatal(err)
	}
	if r := produceToLeader(t, c, cl, "stale", idemBatch(t, 21, 0, 0, "a", 1)); r.Error != wire.ErrNone {
		t.Fatalf("first batch: %v %s", r.Error, r.Message)
	}
	lead := leaderOf(t, c, cl, "stale", 0)
	rs := dialBroker(t, c, lead)
	gap := idemBatch(t, 21, 0, 5, "gap", 1)
	wantCode(t, "a gap at the leader", produceAcks(t, rs, "stale", 0, wire.AcksAll, gap), wire.ErrOutOfOrderSequence)
	c.Isolate(lead)
	defer c.HealAll()
	wantCode(t, "a gap at the leader cut off", produceAcks(t, rs, "stale", 0, wire.AcksAll, gap), wire.ErrNotLeader)
}
