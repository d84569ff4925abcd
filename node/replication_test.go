package node_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rafka/rafka/client"
	"github.com/rafka/rafka/node"
	"github.com/rafka/rafka/node/nodetest"
)

// leaderOf returns the index of the broker leading a partition, as the
// cluster's metadata reports it through broker 0.
func leaderOf(t *testing.T, c *nodetest.Cluster, cl *client.Client, topic string, p int32) int {
	t.Helper()
	idx := -1
	c.WaitFor(fmt.Sprintf("a leader of %s/%d", topic, p), func() error {
		tms, err := cl.ListTopics(ctxT(t))
		if err != nil {
			return err
		}
		for _, tm := range tms {
			if tm.Name != topic {
				continue
			}
			for _, pm := range tm.Partitions {
				if pm.Partition != p {
					continue
				}
				for _, br := range c.Running() {
					if br.B.ID() == pm.Leader && node.LeadsPartition(br.B, topic, p) {
						idx = br.Index
						return nil
					}
				}
				return fmt.Errorf("leader %q not confirmed", pm.Leader)
			}
		}
		return fmt.Errorf("no partition %s/%d", topic, p)
	})
	return idx
}

// readOffsets reads partition p of topic from the start until a record at
// or past upTo, and returns every offset at which each value is stored (a
// producer's retry may store a value twice).
func readOffsets(t *testing.T, cl *client.Client, topic string, p int32, upTo int64) map[string][]int64 {
	t.Helper()
	ctx := ctxT(t)
	cs, err := cl.NewConsumer()
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if err := cs.Assign(ctx, client.Assignment{Topic: topic, Partition: p, Start: client.Earliest()}); err != nil {
		t.Fatal(err)
	}
	out := map[string][]int64{}
	for last := int64(-1); last < upTo; {
		recs, err := cs.Poll(ctx)
		if err != nil {
			t.Fatalf("poll after offset %d, reading to %d: %v", last, upTo, err)
		}
		for _, r := range recs {
			out[string(r.Value)] = append(out[string(r.Value)], r.Offset)
			last = r.Offset
		}
	}
	return out
}

func maxOffset(acked map[string]int64) int64 {
	m := int64(-1)
	for _, o := range acked {
		m = max(m, o)
	}
	return m
}

// checkAcked fails unless every acknowledged value is stored at the offset
// its ack named, and no value is stored more than once (the producers are
// idempotent).
func checkAcked(t *testing.T, acked map[string]int64, stored map[string][]int64) {
	t.Helper()
	for v, off := range acked {
		if !slices.Contains(stored[v], off) {
			t.Fatalf("acknowledged %s at offset %d, stored at %v", v, off, stored[v])
		}
	}
	for v, offs := range stored {
		if len(offs) > 1 {
			t.Errorf("%s stored %d times, at %v", v, len(offs), offs)
		}
	}
}

// waitReplicasIdentical waits until every running replica of a partition
// holds the same, non-empty bytes below its high watermark.
func waitReplicasIdentical(t *testing.T, c *nodetest.Cluster, topic string, p int32) {
	t.Helper()
	c.WaitFor(fmt.Sprintf("replicas of %s/%d identical", topic, p), func() error {
		var ref []byte
		for _, br := range c.Running() {
			b, err := node.CommittedLog(br.B, topic, p)
			if err != nil {
				return err
			}
			if ref == nil {
				ref = b
			} else if !bytes.Equal(ref, b) {
				return fmt.Errorf("broker %d's log differs (%d vs %d bytes)", br.Index, len(b), len(ref))
			}
		}
		if len(ref) == 0 {
			return fmt.Errorf("empty logs")
		}
		return nil
	})
}

// mustCreate creates a topic of n partitions with rf replicas each.
func mustCreate(t *testing.T, cl *client.Client, name string, n, rf int32) {
	t.Helper()
	if err := cl.CreateTopic(ctxT(t), name, n, nil, client.WithReplicationFactor(rf)); err != nil {
		t.Fatal(err)
	}
}

// produceAll produces n records with acks=all, retrying, and returns the
// value -> offset of every acknowledged one.
func produceAll(t *testing.T, cl *client.Client, topic string, p int32, from, n int) map[string]int64 {
	t.Helper()
	ctx := ctxT(t)
	pr, err := cl.NewProducer(client.WithAcks(client.AcksAll), client.WithRetries(100))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[string]int64{}
	for i := from; i < from+n; i++ {
		v := "v" + strconv.Itoa(i)
		err := pr.Produce(ctx, &client.Record{Topic: topic, Partition: p, Value: []byte(v)}, func(r *client.Record, err error) {
			if err == nil {
				mu.Lock()
				acked[string(r.Value)] = r.Offset
				mu.Unlock()
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := pr.Close(ctx); err != nil {
		t.Logf("producer close: %v", err)
	}
	return acked
}

// TestReplicatedPartitionSurvivesLeaderLoss: an RF 3 partition keeps every
// acks=all record when its leader is killed; a new leader takes over and
// the replicas' logs are identical up to the high watermark.
func TestReplicatedPartitionSurvivesLeaderLoss(t *testing.T) {
	c := nodetest.NewCluster(t, 3)
	ctx := ctxT(t)
	cl := c.Client()
	c.WaitFor("3 metadata voters", func() error { return votersOf(c, 3) })
	if err := cl.CreateTopic(ctx, "rep", 1, map[string]string{node.ConfigFsync: "always"}, client.WithReplicationFactor(3)); err != nil {
		t.Fatal(err)
	}
	acked := produceAll(t, cl, "rep", 0, 0, 500)
	if len(acked) != 500 {
		t.Fatalf("%d of 500 acknowledged before any failure", len(acked))
	}
	lead := leaderOf(t, c, cl, "rep", 0)
	c.Kill(lead)
	more := produceAll(t, c.Client(), "rep", 0, 500, 500)
	for k, v := range more {
		acked[k] = v
	}
	if len(acked) < 1000 {
		t.Fatalf("%d of 1000 acknowledged across the failover", len(acked))
	}
	c.WaitFor("the partition reported under-replicated", func() error {
		var counts []string
		for _, br := range c.Running() {
			led, under := node.ReplicationCounts(br.B)
			if under > 0 {
				return nil
			}
			counts = append(counts, fmt.Sprintf("b%d led %d under %d", br.Index, led, under))
		}
		return fmt.Errorf("no broker reports it: %v", counts)
	})
	c.Restart(lead)
	c.WaitReady()
	c.WaitFor("fully replicated again", func() error {
		led := 0
		for _, br := range c.Running() {
			l, under := node.ReplicationCounts(br.B)
			if under > 0 {
				return fmt.Errorf("broker %d: %d under-replicated", br.Index, under)
			}
			led += l
		}
		if led != 1 {
			return fmt.Errorf("%d leaders", led)
		}
		return nil
	})

	// Every acknowledged record is there at its offset, once.
	checkAcked(t, acked, readOffsets(t, c.Client(), "rep", 0, maxOffset(acked)))
	// The replicas hold the same bytes up to the high watermark.
	waitReplicasIdentical(t, c, "rep", 0)
	_ = time.Second
}

// TestReplicatedLeaderIsolated: a partition leader cut off from the other
// replicas stops acknowledging; the majority elects a leader that takes the
// writes; after the heal the old leader follows and every replica holds the
// same log, with every acknowledged record once.
func TestReplicatedLeaderIsolated(t *testing.T) {
	c := nodetest.NewCluster(t, 3, nodetest.WithFaultNet())
	cl := c.Client()
	mustCreate(t, cl, "iso", 1, 3)
	acked := produceAll(t, cl, "iso", 0, 0, 200)
	lead := leaderOf(t, c, cl, "iso", 0)
	c.Isolate(lead)
	// The majority elects another leader of the partition.
	var majority []string
	for _, br := range c.Running() {
		if br.Index != lead {
			majority = append(majority, br.Addr)
		}
	}
	c.WaitFor("a leader in the majority", func() error {
		for _, br := range c.Running() {
			if br.Index != lead && node.LeadsPartition(br.B, "iso", 0) {
				return nil
			}
		}
		return fmt.Errorf("no leader among the majority yet")
	})
	if node.LeadsPartition(c.Brokers[lead].B, "iso", 0) {
		// CheckQuorum: within an election timeout it must step down.
		c.WaitFor("the isolated leader to step down", func() error {
			if node.LeadsPartition(c.Brokers[lead].B, "iso", 0) {
				return fmt.Errorf("still leading")
			}
			return nil
		})
	}
	more := produceAll(t, c.Client(client.WithBrokers(majority...)), "iso", 0, 200, 200)
	for k, v := range more {
		acked[k] = v
	}
	if len(acked) != 400 {
		t.Fatalf("%d of 400 acknowledged", len(acked))
	}
	c.HealAll()
	waitReplicasIdentical(t, c, "iso", 0)
	checkAcked(t, acked, readOffsets(t, c.Client(client.WithBrokers(majority...)), "iso", 0, maxOffset(acked)))
}

func TestRollingRestartLosesNothing(t *testing.T) {
	logs := []*logBuffer{{}, {}, {}}
	c := nodetest.NewCluster(t, 3, func(i int, cfg *node.Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(logs[i], nil))
	})
	cl := c.Client()
	mustCreate(t, cl, "roll", 3, 3)
	load := startSteadyLoad(t, cl, "roll", 3)
	count := load.count
	for i := range c.Brokers {
		before := count()
		c.WaitFor("writes before the restart", func() error {
			if count() < before+200 {
				return fmt.Errorf("%d acknowledged", count())
			}
			return nil
		})
		c.StopBroker(i)
		// It handed over what it led before it stopped, rather than
		// leaving the others to find out by election.
		if l := logs[i].String(); strings.Contains(l, "stopping while still leading") {
			t.Fatalf("broker %d stopped while leading:\n%s", i, l)
		}
		c.Restart(i)
		c.WaitReady()
	}
	handed := 0
	for _, l := range logs {
		if strings.Contains(l.String(), "handing leadership to other replicas before stopping") {
			handed++
		}
	}
	if handed == 0 {
		t.Fatal("no broker handed over leadership when stopped: every one led nothing?")
	}
	load.finish(c, "across a rolling restart")
}

// steadyLoad produces acks=all records to every partition of a topic, a
// steady stream with retries, until finish; it records what was
// acknowledged and what failed.
type steadyLoad struct {
	t          *testing.T
	topic      string
	partitions int32
	pr         *client.Producer
	mu         sync.Mutex
	acked      map[string]int64
	failed     []error
	stop, done chan struct{}
}

// startSteadyLoad starts the load: at most 200,000 records, about 50 a
// millisecond, to partition i%partitions.
func startSteadyLoad(t *testing.T, cl *client.Client, topic string, partitions int32) *steadyLoad {
	t.Helper()
	pr, err := cl.NewProducer(client.WithAcks(client.AcksAll), client.WithRetries(1000), client.WithLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	l := &steadyLoad{t: t, topic: topic, partitions: partitions, pr: pr, acked: map[string]int64{},
		stop: make(chan struct{}), done: make(chan struct{})}
	ctx := ctxT(t)
	go func() {
		defer close(l.done)
		for i := 0; i < 200_000; i++ { // bounded; stopped long before
			select {
			case <-l.stop:
				return
			default:
			}
			v := topic + "-" + strconv.Itoa(i)
			err := pr.Produce(ctx, &client.Record{Topic: topic, Partition: int32(i) % partitions, Value: []byte(v)}, func(r *client.Record, err error) {
				l.mu.Lock()
				defer l.mu.Unlock()
				if err != nil {
					l.failed = append(l.failed, err)
					return
				}
				l.acked[string(r.Value)] = r.Offset
			})
			if err != nil {
				l.mu.Lock()
				l.failed = append(l.failed, err)
				l.mu.Unlock()
				return
			}
			if i%50 == 49 {
				time.Sleep(time.Millisecond) // a steady load, not a flood
			}
		}
	}()
	return l
}

// count is how many records were acknowledged so far.
func (l *steadyLoad) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// finish stops the load and fails the test if a produce call failed or an
// acknowledged record cannot be read back; it returns how many were
// acknowledged.
func (l *steadyLoad) finish(c *nodetest.Cluster, during string) int {
	t := l.t
	t.Helper()
	close(l.stop)
	<-l.done
	if err := l.pr.Close(ctxT(t)); err != nil {
		t.Fatalf("producer close: %v", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failed) > 0 {
		t.Fatalf("%d produce calls failed %s, first: %v", len(l.failed), during, l.failed[0])
	}
	seen := readAll(t, c.Client(), l.topic, l.partitions, len(l.acked))
	for v := range l.acked {
		if !seen[v] {
			t.Fatalf("acknowledged %s is missing", v)
		}
	}
	return len(l.acked)
}

// TestFailedGroupReopens: a follower's partition group that fails (raft
// panics on a message it cannot take) is reopened from its log after a
// pause and catches up; the partition takes writes meanwhile.
func TestFailedGroupReopens(t *testing.T) {
	c := nodetest.NewCluster(t, 3)
	cl := c.Client()
	mustCreate(t, cl, "fg", 1, 3)
	acked := produceAll(t, cl, "fg", 0, 0, 100)
	lead := leaderOf(t, c, cl, "fg", 0)
	f := c.Brokers[(lead+1)%3]
	waitReplicasIdentical(t, c, "fg", 0)
	before := node.RaftGroupsFailed(f.B)
	if err := node.StepBadHeartbeat(f.B, "fg", 0); err != nil {
		t.Fatal(err)
	}
	c.WaitFor("the follower's group to fail", func() error {
		if n := node.RaftGroupsFailed(f.B); n != before+1 {
			return fmt.Errorf("%d groups failed", n-before)
		}
		return nil
	})
	for k, v := range produceAll(t, cl, "fg", 0, 100, 100) {
		acked[k] = v
	}
	waitReplicasIdentical(t, c, "fg", 0)
	if n := node.PartitionReopens(f.B, "fg", 0); n != 1 {
		t.Fatalf("reopened %d times, want 1", n)
	}
	checkAcked(t, acked, readOffsets(t, cl, "fg", 0, maxOffset(acked)))
}
