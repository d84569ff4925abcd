package node_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/rafka/rafka/client"
	"github.com/rafka/rafka/node"
	"github.com/rafka/rafka/node/nodetest"
	"github.com/rafka/rafka/wire"
)

// BenchmarkPartitionFailover measures how long the partitions of a dead
// leader stay leaderless, with the default raft tick (100 ms): three
// in-process brokers over the fault-injecting network, a topic of 12
// partitions, idle and quiesced; each op isolates the broker leading most of
// them (it sends and receives nothing, as if killed) and polls every 2 ms
// until every partition it led is led by a survivor, then heals and waits
// for the groups to quiesce again. Reported: p50 and max over the
// partitions of the time from the isolation to their new leader.
func BenchmarkPartitionFailover(b *testing.B) {
	const topic, parts = "fo", 12
	c := nodetest.NewCluster(b, 3, nodetest.WithFaultNet(), func(_ int, cfg *node.Config) {
		cfg.Cluster.RaftTick = 0 // the default
	})
	c.WaitFor("3 metadata voters", func() error { return votersOf(c, 3) })
	ctx, cancel := context.WithTimeout(context.Background(), nodetest.WaitTimeout)
	defer cancel()
	if err := c.Client().CreateTopic(ctx, topic, parts, nil, client.WithReplicationFactor(3)); err != nil {
		b.Fatal(err)
	}
	// leaderOf is a broker other than but that leads partition p, -1 if
	// none. (A leader cut off believes it leads until CheckQuorum deposes
	// it, an election timeout or two later.)
	leaderOf := func(p int32, but int) int {
		for _, br := range c.Running() {
			if br.Index != but && node.LeadsPartition(br.B, topic, p) {
				return br.Index
			}
		}
		return -1
	}
	settle := func() map[int32]int {
		var leads map[int32]int
		c.WaitFor("every partition led and quiesced", func() error {
			leads = map[int32]int{}
			for p := range int32(parts) {
				if leads[p] = leaderOf(p, -1); leads[p] < 0 {
					return fmt.Errorf("partition %d has no leader", p)
				}
			}
			for _, br := range c.Running() {
				if st := node.RaftStats(br.B); st.Quiesced != parts {
					return fmt.Errorf("broker %d: %d of %d quiesced", br.Index, st.Quiesced, parts)
				}
			}
			return nil
		})
		return leads
	}
	var times []time.Duration
	for b.Loop() {
		b.StopTimer()
		leads := settle()
		count := map[int]int{}
		for _, i := range leads {
			count[i]++
		}
		victim := leads[0]
		for i, n := range count {
			if n > count[victim] {
				victim = i
			}
		}
		b.StartTimer()
		start := time.Now()
		c.Isolate(victim)
		pending := map[int32]bool{}
		for p, i := range leads {
			if i == victim {
				pending[p] = true
			}
		}
		deadline := start.Add(nodetest.WaitTimeout)
		for len(pending) > 0 {
			if time.Now().After(deadline) {
				b.Fatalf("partitions %v still without a new leader", pending)
			}
			for p := range pending {
				if i := leaderOf(p, victim); i >= 0 {
					times = append(times, time.Since(start))
					delete(pending, p)
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
		b.StopTimer()
		c.HealAll()
		b.StartTimer()
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(times[len(times)-1].Milliseconds()), "max-ms")
}

// BenchmarkIdlePartitions measures what idle replicated partitions cost
// over the real transport: three in-process brokers at the default raft
// tick, one topic of that many partitions with 3 replicas (so every broker
// holds a replica of each), nothing produced. Once every partition group is
// quiesced, each op is one raft tick of wall time; per-broker-% is the
// process's user+system CPU time over wall time, divided by 3 (it includes
// the metadata group, leases, the DHT and the liveness frames).
func BenchmarkIdlePartitions(b *testing.B) {
	for _, parts := range []int32{100, 1000} {
		b.Run(fmt.Sprintf("partitions=%d", parts), func(b *testing.B) {
			c := nodetest.NewCluster(b, 3, func(_ int, cfg *node.Config) {
				cfg.Cluster.RaftTick = 0 // the default
			})
			c.WaitFor("3 metadata voters", func() error { return votersOf(c, 3) })
			ctx, cancel := context.WithTimeout(context.Background(), 10*nodetest.WaitTimeout)
			defer cancel()
			// Creating a thousand partitions can outlast the client's
			// request timeout; its retry then finds the topic there.
			var we *wire.Error
			if err := c.Client().CreateTopic(ctx, "idle", parts, nil, client.WithReplicationFactor(3)); err != nil &&
				!(errors.As(err, &we) && we.Code == wire.ErrTopicAlreadyExists) {
				b.Fatal(err)
			}
			deadline := time.Now().Add(10 * nodetest.WaitTimeout)
			for {
				quiesced := 0
				for _, br := range c.Running() {
					quiesced += node.RaftStats(br.B).Quiesced
				}
				if quiesced == 3*int(parts) {
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("%d of %d partition replicas quiesced", quiesced, 3*parts)
				}
				time.Sleep(50 * time.Millisecond)
			}
			before := cpuTime()
			start := time.Now()
			b.ResetTimer()
			for b.Loop() {
				time.Sleep(100 * time.Millisecond)
			}
			b.StopTimer()
			b.ReportMetric(100*float64(cpuTime()-before)/float64(time.Since(start))/3, "per-broker-%")
		})
	}
}

// cpuTime is the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
