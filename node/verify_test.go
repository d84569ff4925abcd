package node_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rafka/rafka/client"
	"github.com/rafka/rafka/node"
	"github.com/rafka/rafka/node/nodetest"
	"github.com/rafka/rafka/wire"
)

// produceValues produces n uncompressed records of about size bytes each to
// partition 0 with acks=all; each value starts with its number, from from.
func produceValues(t *testing.T, cl *client.Client, topic string, from, n, size int) {
	t.Helper()
	ctx := ctxT(t)
	pr, err := cl.NewProducer(client.WithAcks(client.AcksAll), client.WithRetries(100), client.WithCompression(wire.CodecNone),
		client.WithLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var failed atomic.Int64
	pad := strings.Repeat("x", size)
	for i := from; i < from+n; i++ {
		v := fmt.Sprintf("v%06d-%s", i, pad)
		if err := pr.Produce(ctx, &client.Record{Topic: topic, Partition: 0, Value: []byte(v)}, func(_ *client.Record, err error) {
			if err != nil {
				failed.Add(1)
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := pr.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d records failed", f, n)
	}
}

// corruptFirstBatch alters one byte of a record value in the first data
// batch of the partition log in dir (raft's own entries come first) and
// recomputes the batch's checksum, as a bug writing wrong bytes would: the
// batch still verifies, so recovery and reads take it. It returns the
// batch's base offset.
func corruptFirstBatch(t *testing.T, dir string) int64 {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(names) < 2 {
		t.Fatalf("want several segments in %s, got %v (%v)", dir, names, err)
	}
	slices.Sort(names)
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for pos := 0; pos+wire.BatchHeaderSize <= len(data); {
			h, n, err := wire.ParseBatchHeader(data[pos:], 0)
			if err != nil {
				break // the preallocated tail of the active segment
			}
			batch := data[pos : pos+n]
			if i := bytes.Index(batch[wire.BatchHeaderSize:], []byte("xxxx")); !h.IsControl() && i >= 0 {
				batch[wire.BatchHeaderSize+i] = 'y'
				binary.LittleEndian.PutUint64(batch[20:], wire.BatchChecksum(batch))
				if _, _, err := wire.VerifyBatch(batch, 0); err != nil {
					t.Fatalf("altered batch does not verify: %v", err)
				}
				if err := os.WriteFile(name, data, 0o644); err != nil {
					t.Fatal(err)
				}
				return h.BaseOffset
			}
			pos += n
		}
	}
	t.Fatalf("no data batch in %s", dir)
	return 0
}

// TestVerifyFindsDivergentReplica: replicas holding the same log verify
// identical, through any broker; a follower whose copy of a committed batch
// was altered on disk (checksum recomputed, so nothing below notices) is
// reported divergent in the range holding that batch, and the leader's
// divergence gauge rises, from an on-demand check and from the background
// one.
func TestVerifyFindsDivergentReplica(t *testing.T) {
	c := nodetest.NewCluster(t, 3, func(i int, cfg *node.Config) {
		cfg.VerifyInterval = 200 * time.Millisecond
		cfg.Cluster.LeaderRebalanceInterval = time.Hour // the leader stays the reference
	})
	ctx := ctxT(t)
	cl := c.Client()
	// Segments roll after a second: a few seconds of writes make several.
	cfg := map[string]string{node.ConfigSegmentMs: "1000", node.ConfigFsync: "never"}
	if err := cl.CreateTopic(ctx, "ver", 1, cfg, client.WithReplicationFactor(3)); err != nil {
		t.Fatal(err)
	}
	n := 0
	c.WaitFor("three segments on every replica", func() error {
		produceValues(t, cl, "ver", n, 20, 100)
		n += 20
		for _, br := range c.Running() {
			if logs, _ := filepath.Glob(filepath.Join(br.Dir, "topics", "ver", "0", "*.log")); len(logs) < 3 {
				return fmt.Errorf("broker %d: %d segments", br.Index, len(logs))
			}
		}
		return nil
	})
	waitReplicasIdentical(t, c, "ver", 0)
	lead := leaderOf(t, c, cl, "ver", 0)
	ctx = ctxT(t)

	checks, err := cl.Verify(ctx, "ver")
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 1 || !checks[0].Consistent() || len(checks[0].Replicas) != 3 {
		t.Fatalf("identical replicas: %+v", checks)
	}
	pc := checks[0]
	if pc.From != 0 || pc.To < int64(n) || pc.Leader != c.Brokers[lead].B.ID() {
		t.Fatalf("window [%d, %d) compared by %s", pc.From, pc.To, pc.Leader)
	}
	for _, r := range pc.Replicas {
		if r.Ranges < 3 || r.Bytes < int64(n*100) || r.FirstFrom != -1 {
			t.Fatalf("replica %s: %+v", r.Broker, r)
		}
	}
	// Through a follower: it forwards to the leader.
	follower := (lead + 1) % 3
	if resp := node.VerifyOn(ctx, c.Brokers[follower].B, "ver", 0); resp.Error != wire.ErrNone || len(resp.Partitions) != 1 ||
		resp.Partitions[0].Error != wire.ErrNone || resp.Partitions[0].Leader != pc.Leader || len(resp.Partitions[0].Replicas) != 3 {
		t.Fatalf("verify through a follower: %+v", resp)
	}
	c.WaitFor("a background check", func() error {
		if runs, _ := node.VerifyMetrics(c.Brokers[lead].B); runs < 2 {
			return fmt.Errorf("%d runs", runs)
		}
		return nil
	})
	if _, div := node.VerifyMetrics(c.Brokers[lead].B); div != 0 {
		t.Fatalf("%d divergent ranges on identical replicas", div)
	}

	// Alter the follower's copy while it is stopped.
	c.StopBroker(follower)
	bad := corruptFirstBatch(t, filepath.Join(c.Brokers[follower].Dir, "topics", "ver", "0"))
	c.Restart(follower)
	c.WaitReady()
	cl = c.Client()
	lead = leaderOf(t, c, cl, "ver", 0)
	var got client.PartitionCheck
	c.WaitFor("the divergence reported", func() error {
		checks, err := cl.Verify(ctxT(t), "ver", 0)
		if err != nil {
			return err
		}
		got = checks[0]
		for _, r := range got.Replicas {
			if r.Broker == c.Brokers[follower].B.ID() && r.Divergent > 0 {
				return nil
			}
		}
		return fmt.Errorf("not reported: %+v", got)
	})
	if got.Consistent() {
		t.Fatalf("divergent replicas reported consistent: %+v", got)
	}
	for _, r := range got.Replicas {
		switch {
		case r.Broker != c.Brokers[follower].B.ID():
			if r.Divergent != 0 || r.Err != nil {
				t.Fatalf("replica %s reported divergent: %+v", r.Broker, r)
			}
		case r.Divergent != 1 || r.FirstFrom > bad || r.FirstTo <= bad:
			t.Fatalf("altered batch at %d, replica %s reports %+v", bad, r.Broker, r)
		}
	}
	c.WaitFor("the leader's gauge at 1", func() error {
		if _, div := node.VerifyMetrics(c.Brokers[lead].B); div != 1 {
			return fmt.Errorf("%d divergent ranges", div)
		}
		return nil
	})

}

// TestVerifySingleReplica: a partition with one replica has nothing to be
// compared with; the check reports what its log holds.
func TestVerifySingleReplica(t *testing.T) {
	c := nodetest.NewCluster(t, 1)
	ctx := ctxT(t)
	cl := c.Client()
	mustCreate(t, cl, "solo", 2, 1)
	produceValues(t, cl, "solo", 0, 100, 100)
	checks, err := cl.Verify(ctx, "solo")
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 2 || !checks[0].Consistent() || len(checks[0].Replicas) != 1 || checks[0].Replicas[0].Ranges != 1 ||
		checks[0].To < 100 || checks[1].To != 0 {
		t.Fatalf("checks %+v", checks)
	}
	if _, err := cl.Verify(ctx, "nope"); !errors.Is(err, client.ErrUnknownTopicOrPartition) {
		t.Fatalf("unknown topic: %v", err)
	}
	if checks, err := cl.Verify(ctx, "solo", 7); err != nil || len(checks) != 1 || !errors.Is(checks[0].Err, client.ErrUnknownTopicOrPartition) {
		t.Fatalf("unknown partition: %+v %v", checks, err)
	}
}
