package load

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/rafka/rafka/bench"
)

// startCluster starts n local brokers forming a cluster, stopped (and their
// folder checked gone) at the end of the test.
func startCluster(t *testing.T, ctx context.Context, n int) *Cluster {
	t.Helper()
	c, err := bench.StartLocalCluster(ctx, bench.LocalClusterConfig{Brokers: n, Binary: rafkaBinary(t), Fsync: "never"})
	if err != nil {
		t.Fatal(err)
	}
	dir := c.Broker(0).DataDir()
	t.Cleanup(func() {
		if _, err := c.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("data dir %s left behind: %v", dir, err)
		}
	})
	return &Cluster{C: c}
}

// TestProduceOverThreeBrokers runs a short produce of a topic of one replica
// per partition spread over three brokers, and checks every broker is
// reported.
func TestProduceOverThreeBrokers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := startCluster(t, ctx, 3)
	if got := len(cl.C.Addrs()); got != 3 {
		t.Fatalf("%d brokers running", got)
	}
	r, err := Run(ctx, cl, Config{Workload: WorkloadProduce, Count: 6000, RecordSize: 100, Partitions: 6,
		Producers: 2, Acks: "all", Linger: time.Millisecond}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Records != 6000 || r.Errors != 0 || r.ReplicationFactor != 1 {
		t.Fatalf("records %d errors %d replication factor %d", r.Records, r.Errors, r.ReplicationFactor)
	}
	if len(r.Brokers) != 3 || r.Broker == nil {
		t.Fatalf("broker use %+v / %+v", r.Broker, r.Brokers)
	}
	var sum float64
	for i, u := range r.Brokers {
		if u.ID != fmt.Sprintf("b%d", i+1) || u.PeakRSSBytes <= 0 || u.Source != "proc" {
			t.Errorf("broker %d: %+v", i, u)
		}
		sum += u.CPUSeconds
	}
	if d := sum - r.Broker.CPUSeconds; d > 1e-9 || d < -1e-9 {
		t.Errorf("summed CPU %v, per broker %v", r.Broker.CPUSeconds, sum)
	}
	if r.BrokerCPUSecPerGBPerReplica != 0 {
		t.Errorf("per replica figure for one replica: %v", r.BrokerCPUSecPerGBPerReplica)
	}
}
