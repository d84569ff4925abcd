package node_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/rafka/rafka/client"
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

// votersOf reports whether the metadata group has n voters, as broker 0
// sees it.
func votersOf(c *nodetest.Cluster, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := c.Client(client.WithBrokers(c.Brokers[0].Addr)).ClusterInfo(ctx)
	if err != nil {
		return err
	}
	if len(info.Voters) != n {
		return fmt.Errorf("voters %v, want %d", info.Voters, n)
	}
	return nil
}
