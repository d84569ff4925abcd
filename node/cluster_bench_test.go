package node_test

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/rafka/rafka/node"
	"github.com/rafka/rafka/node/nodetest"
)

// BenchmarkMetadataCommit measures a metadata change (a topic config
// alteration) from the call on one broker to its return: proposed, forwarded
// to the metadata leader when the caller is not, committed by the voters
// (each fsyncing its raft log), applied on the caller. Three in-process
// brokers on loopback; p50 and p99 are reported.
func BenchmarkMetadataCommit(b *testing.B) {
	c := nodetest.NewCluster(b, 3)
	c.WaitFor("3 voters", func() error { return votersOf(c, 3) })
	if err := c.Brokers[0].B.CreateTopic("bench", 1, nil, 1); err != nil {
		b.Fatal(err)
	}
	for _, via := range []int{0, 2} {
		b.Run("via=b"+strconv.Itoa(via), func(b *testing.B) {
			br := c.Brokers[via].B
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				if err := br.AlterTopicConfig("bench", map[string]string{node.ConfigRetentionMs: strconv.Itoa(3_600_000 + i)}); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// votersOf reports whether every running broker has applied a metadata
// configuration of n voters and names the same leader. A broker that has
// the last promotion in its log but has not learnt that it committed still
// counts the voters before it, and cannot win an election without the
// leader: a test that stops the leader must wait for this.
func votersOf(c *nodetest.Cluster, n int) error {
	var lead uint64
	for _, br := range c.Brokers {
		if br.B == nil {
			continue
		}
		st, ok := node.MetaStatus(br.B)
		switch {
		case !ok:
			return fmt.Errorf("broker %d: no metadata group", br.Index)
		case len(st.Voters) != n:
			return fmt.Errorf("broker %d: voters %v, want %d", br.Index, st.Voters, n)
		case st.Leader == 0 || lead != 0 && st.Leader != lead:
			return fmt.Errorf("broker %d names leader %x, another %x", br.Index, st.Leader, lead)
		}
		lead = st.Leader
	}
	return nil
}
