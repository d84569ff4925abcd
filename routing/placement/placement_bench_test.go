package placement

import (
	"fmt"
	"testing"
)

// BenchmarkReplicas places 100,000 partitions (1,000 topics of 100) over
// 100 brokers with R=3, one b.N iteration per partition, so ns/op is the
// time to place one partition. dst is reused: the caller's steady state.
func BenchmarkReplicas(b *testing.B) {
	parts := partitions(100_000)
	for _, c := range []struct {
		name string
		n, z int
		r    int
	}{
		{"brokers=100/zones=0/r=3", 100, 0, 3},
		{"brokers=100/zones=3/r=3", 100, 3, 3},
		{"brokers=100/zones=10/r=3", 100, 10, 3},
		{"brokers=10/zones=0/r=3", 10, 0, 3},
		{"brokers=1000/zones=0/r=3", 1000, 0, 3},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := mustSet(b, brokers(c.n, c.z))
			dst := make([]string, 0, c.r)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				pt := parts[i]
				dst = s.Replicas(pt.topic, pt.p, c.r, dst)
				if i++; i == len(parts) {
					i = 0
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(c.n), "ns/broker")
		})
	}
}

// BenchmarkMoves computes what moves when a 101st broker joins 100 holding
// 100,000 partitions (R=3); ns/op is for all of them.
func BenchmarkMoves(b *testing.B) {
	topics := make([]Topic, 1000)
	for i := range topics {
		topics[i] = Topic{fmt.Sprintf("topic-%d", i), 100, 3}
	}
	from := mustSet(b, brokers(100, 0))
	to := mustSet(b, append(brokers(100, 0), Broker{ID: "new"}))
	b.ReportAllocs()
	var moves int
	for b.Loop() {
		moves = len(Moves(from, to, topics, nil))
	}
	b.ReportMetric(float64(moves), "moves")
}
