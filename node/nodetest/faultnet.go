package nodetest

import (
	"errors"
	"net"
	"sync"

	"github.com/rafka/rafka/node"
	"github.com/rafka/rafka/quicnet/faultnet"
)

// FaultSeed seeds the random losses of a cluster created WithFaultNet.
const FaultSeed = 1

// WithFaultNet runs the brokers over a faultnet.Network of the cluster, so
// that c.Partition, c.Isolate, c.SetLoss and c.HealAll cut or degrade the
// links between them. Both a broker's listener and the connections it dials
// to other brokers go through it (node.Config.QUIC.Sockets); the faults
// apply to QUIC and to the DHT, which shares the listener's socket.
// Clients from c.Client use real loopback sockets and stay connected.
func WithFaultNet() Option {
	return func(_ int, cfg *node.Config) { cfg.QUIC.Sockets = &faultSockets{} }
}

// FaultNet is the network of a cluster created WithFaultNet, for rules the
// helpers below do not cover (delays, duplication, one-way cuts); brokers
// are named by their Addr. Nil otherwise.
func (c *Cluster) FaultNet() *faultnet.Network { return c.faults }

// Partition cuts every link between a broker of groupA and one of groupB,
// both ways; links within a group are untouched.
func (c *Cluster) Partition(groupA, groupB []int) {
	c.t.Helper()
	n := c.mustFaultNet()
	for _, i := range groupA {
		for _, j := range groupB {
			n.Cut(c.Brokers[i].Addr, c.Brokers[j].Addr)
		}
	}
}

// Isolate cuts broker i from every other broker of the cluster, both ways.
// Clients still reach it.
func (c *Cluster) Isolate(i int) {
	c.t.Helper()
	var others []int
	for _, br := range c.Brokers {
		if br.Index != i {
			others = append(others, br.Index)
		}
	}
	c.Partition([]int{i}, others)
}

// Heal lifts every fault between brokers i and j, both ways.
func (c *Cluster) Heal(i, j int) {
	c.t.Helper()
	c.mustFaultNet().Heal(c.Brokers[i].Addr, c.Brokers[j].Addr)
}

// HealAll lifts every fault of the cluster's network.
func (c *Cluster) HealAll() {
	c.t.Helper()
	c.mustFaultNet().HealAll()
}

// SetLoss drops each datagram from broker i to broker j with probability p
// (one way; call it twice for both).
func (c *Cluster) SetLoss(i, j int, p float64) {
	c.t.Helper()
	c.mustFaultNet().SetLoss(c.Brokers[i].Addr, c.Brokers[j].Addr, p)
}

func (c *Cluster) mustFaultNet() *faultnet.Network {
	c.t.Helper()
	if c.faults == nil {
		c.t.Fatal("nodetest: the cluster was not created WithFaultNet")
	}
	return c.faults
}

// routeFaults gives br a socket source of its own on the cluster's network
// when its config asks for one (WithFaultNet; AddBroker copies broker 0's
// config, so the source is never shared).
func (c *Cluster) routeFaults(br *Broker) {
	if _, ok := br.cfg.QUIC.Sockets.(*faultSockets); !ok {
		return
	}
	if c.faults == nil {
		c.faults = faultnet.New(FaultSeed)
	}
	br.cfg.QUIC.Sockets = &faultSockets{net: c.faults}
}

// faultSockets opens one broker's sockets on the cluster's network: the
// first is its listener, which names the broker's endpoint; the sockets of
// the connections it dials later belong to that endpoint, so a cut between
// two brokers applies whichever dialed the other.
type faultSockets struct {
	net *faultnet.Network

	// mu guards name.
	mu   sync.Mutex
	name string // the broker's listen address, once bound
}

// ListenPacket relies on node.Broker.Start binding its listener before it
// dials any peer. A restart binds the listener again on the same address.
func (s *faultSockets) ListenPacket(laddr string) (net.PacketConn, error) {
	if s.net == nil {
		return nil, errors.New("nodetest: WithFaultNet sockets used outside NewCluster")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.name == "" || laddr == s.name {
		c, err := s.net.Listen(laddr)
		if err != nil {
			return nil, err
		}
		s.name = c.Name()
		return c, nil
	}
	return s.net.ListenAs(s.name, laddr)
}
