package node_test

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/rafka/rafka/client"
	"github.com/rafka/rafka/node"
	"github.com/rafka/rafka/node/nodetest"
)

// TestClusterPeerConnectTo runs brokers whose advertised addresses other
// brokers cannot reach, as behind address translation: each listens on
// 127.0.0.1:P and advertises 127.0.0.2:P, where nothing listens. With
// PeerConnectTo mapping each advertised address to the listener, the
// cluster forms (the learners get the metadata log, which only raft
// messages sent to the advertised addresses carry), a replicated topic's
// partitions elect leaders, and the metadata still gives clients the
// advertised addresses.
func TestClusterPeerConnectTo(t *testing.T) {
	const n = 3
	ports := make([]int, n)
	connectTo := make(map[string]string)
	for i := range ports {
		p, err := nodetest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
		connectTo[advertisedUnreachable(p)] = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	c := nodetest.NewCluster(t, n, func(i int, cfg *node.Config) {
		cfg.Listen = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i]))
		cfg.AdvertisedAddr = advertisedUnreachable(ports[i])
		cfg.Cluster.PeerConnectTo = connectTo
	})

	ctx := ctxT(t)
	// Clients here reach the listeners only: a client following the
	// advertised addresses would be as lost as a broker without the map.
	cl := c.Client(client.WithDialTimeout(time.Second))
	mustCreate(t, cl, "mapped", 3, 3)
	c.WaitFor("every partition of the replicated topic led", func() error {
		ci, err := cl.ClusterInfo(ctx)
		if err != nil {
			return err
		}
		var addrs []string
		leads, hosts := int32(0), int32(0)
		for _, b := range ci.Brokers {
			if b.State != "alive" {
				return fmt.Errorf("broker %s %s", b.ID, b.State)
			}
			addrs = append(addrs, b.Addr)
			leads += b.Leads
			hosts += b.Hosts
		}
		want := make([]string, n)
		for i, p := range ports {
			want[i] = advertisedUnreachable(p)
		}
		slices.Sort(addrs)
		slices.Sort(want)
		if !slices.Equal(addrs, want) {
			return fmt.Errorf("brokers at %q, want the advertised %q", addrs, want)
		}
		if leads != 3 || hosts != 9 {
			return fmt.Errorf("%d partitions led and %d replicas hosted, want 3 and 9", leads, hosts)
		}
		return nil
	})
}

// advertisedUnreachable is an address on loopback where no broker of the
// test listens: they bind 127.0.0.1 only.
func advertisedUnreachable(port int) string {
	return net.JoinHostPort("127.0.0.2", strconv.Itoa(port))
}

func TestConfigPeerConnectToValidated(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.Cluster.PeerConnectTo = map[string]string{"127.0.0.2:9092": "rafka-1"}
	if err := cfg.Validate(); err == nil {
		t.Fatal("a connect-to target without a port was accepted")
	}
	cfg.Cluster.PeerConnectTo = map[string]string{"127.0.0.2:9092": "rafka-1:9092"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}
