package node_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/rafka/rafka/client"
	"github.com/rafka/rafka/node"
	"github.com/rafka/rafka/node/nodetest"
)

// TestLeaderKilledWithManyQuiescedPartitions: idle partitions quiesce on
// every broker; when the broker leading most of them is killed, the
// survivors notice its silence and every partition it led gets a new
// leader, which takes writes.
func TestLeaderKilledWithManyQuiescedPartitions(t *testing.T) {
	const topic, parts = "many", 24
	c := nodetest.NewCluster(t, 3)
	ctx := ctxT(t)
	cl := c.Client()
	c.WaitFor("3 metadata voters", func() error { return votersOf(c, 3) })
	if err := cl.CreateTopic(ctx, topic, parts, nil, client.WithReplicationFactor(3)); err != nil {
		t.Fatal(err)
	}
	leaders := func() (map[int32]int, error) {
		m := map[int32]int{}
		for p := range int32(parts) {
			for _, br := range c.Running() {
				if node.LeadsPartition(br.B, topic, p) {
					m[p] = br.Index
				}
			}
			if _, ok := m[p]; !ok {
				return m, fmt.Errorf("partition %d has no leader", p)
			}
		}
		return m, nil
	}
	var before map[int32]int
	c.WaitFor("a leader of every partition", func() (err error) {
		before, err = leaders()
		return err
	})
	c.WaitFor("every partition quiesced on every broker", func() error {
		for _, br := range c.Running() {
			// The metadata group never quiesces.
			if st := node.RaftStats(br.B); st.Groups != parts+1 || st.Quiesced != parts {
				return fmt.Errorf("broker %d: %d groups, %d quiesced", br.Index, st.Groups, st.Quiesced)
			}
		}
		return nil
	})
	led := map[int]int{}
	for _, i := range before {
		led[i]++
	}
	victim := -1
	for i, n := range led {
		if victim < 0 || n > led[victim] {
			victim = i
		}
	}
	start := time.Now()
	c.Kill(victim)
	var after map[int32]int
	c.WaitFor("every partition led by a survivor", func() (err error) {
		after, err = leaders()
		return err
	})
	t.Logf("broker %d led %d of %d partitions; all led again %v after the kill", victim, led[victim], parts, time.Since(start))
	for p := range int32(parts) {
		if after[p] == victim {
			t.Fatalf("partition %d still led by the killed broker", p)
		}
	}
	cl2 := c.Client()
	for p := range int32(parts) {
		if got := produceAll(t, cl2, topic, p, 0, 1); len(got) != 1 {
			t.Fatalf("partition %d: %d of 1 acknowledged after the failover", p, len(got))
		}
	}
}
