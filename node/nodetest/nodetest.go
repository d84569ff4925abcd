// Package nodetest runs clusters of real brokers inside one test process:
// each broker has its own data directory and its own QUIC listener on
// loopback, certificates come from a CA made for the cluster, and the
// brokers join each other exactly as `rafka serve --join` does.
//
//	c := nodetest.NewCluster(t, 3)
//	c.Kill(1)      // stop broker 1 at once
//	c.Restart(1)   // start it again on its data directory and address
//	cl := c.Client(t)
//
// A cluster created with WithFaultNet runs its brokers over a
// fault-injecting network (faultnet.go): c.Isolate(0), c.Partition(a, b),
// c.SetLoss(i, j, p), c.HealAll().
//
// Timings are shortened (lease, heartbeat, raft tick) so that failures are
// detected within about a second; every wait polls an observable condition
// with a deadline. Everything started is stopped by t.Cleanup.
package nodetest

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rafka/rafka/client"
	"github.com/rafka/rafka/node"
	"github.com/rafka/rafka/quicnet"
	"github.com/rafka/rafka/quicnet/faultnet"
)

// Timings of harness clusters.
const (
	LeaseTimeout      = time.Second
	HeartbeatInterval = 100 * time.Millisecond
	RaftTick          = 50 * time.Millisecond
	// WaitTimeout bounds every wait of the harness.
	WaitTimeout = 30 * time.Second
)

// Cluster is a set of in-process brokers.
type Cluster struct {
	t       testing.TB
	Dir     string
	CAFile  string
	Brokers []*Broker
	faults  *faultnet.Network // WithFaultNet; see faultnet.go
}

// Broker is one broker of a Cluster; B is nil while it is stopped.
type Broker struct {
	Index int
	B     *node.Broker
	Dir   string
	Addr  string // stays the same across restarts
	cfg   node.Config
}

// Option changes the config of every broker before it starts.
type Option func(i int, cfg *node.Config)

// NewCluster starts n brokers: the first forms the cluster, the others join
// it through the first; it returns once every broker is ready.
func NewCluster(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	c := &Cluster{t: t, Dir: t.TempDir()}
	c.CAFile = c.makeCA()
	for i := range n {
		br := &Broker{Index: i, Dir: filepath.Join(c.Dir, "b"+strconv.Itoa(i))}
		cert, key := c.issue(br.Dir)
		br.cfg = node.Config{
			DataDir: br.Dir, Listen: "127.0.0.1:0", BrokerID: "b" + strconv.Itoa(i),
			TLS:           quicnet.TLSFiles{CertFile: cert, KeyFile: key, CAFile: c.CAFile},
			TopicDefaults: node.TopicConfig{SegmentBytes: 4 << 20},
			Cluster: node.ClusterConfig{
				LeaseTimeout: LeaseTimeout, HeartbeatInterval: HeartbeatInterval, RaftTick: RaftTick,
			},
		}
		if i > 0 {
			br.cfg.Cluster.Join = []string{c.Brokers[0].Addr}
		}
		for _, o := range opts {
			o(i, &br.cfg)
		}
		c.routeFaults(br)
		c.Brokers = append(c.Brokers, br)
		c.start(br)
		br.Addr = br.B.Addr()
		br.cfg.Listen = br.Addr
	}
	t.Cleanup(c.Stop)
	c.WaitReady()
	return c
}

func (c *Cluster) makeCA() string {
	c.t.Helper()
	ca, err := quicnet.NewCA(quicnet.CertOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	dir := filepath.Join(c.Dir, "ca")
	if err := quicnet.WritePair(dir, "ca.pem", "ca-key.pem", ca, false); err != nil {
		c.t.Fatal(err)
	}
	return filepath.Join(dir, "ca.pem")
}

// issue writes a broker certificate for loopback into dir/tls.
func (c *Cluster) issue(dir string) (cert, key string) {
	c.t.Helper()
	ca, err := quicnet.LoadCA(filepath.Dir(c.CAFile))
	if err != nil {
		c.t.Fatal(err)
	}
	p, err := ca.IssueBroker(quicnet.CertOptions{Hosts: []string{"127.0.0.1", "localhost", "::1"}})
	if err != nil {
		c.t.Fatal(err)
	}
	tlsDir := filepath.Join(dir, "certs")
	if err := quicnet.WritePair(tlsDir, "cert.pem", "key.pem", p, false); err != nil {
		c.t.Fatal(err)
	}
	return filepath.Join(tlsDir, "cert.pem"), filepath.Join(tlsDir, "key.pem")
}

func (c *Cluster) start(br *Broker) {
	c.t.Helper()
	b, err := node.New(br.cfg)
	if err != nil {
		c.t.Fatalf("broker %d: New: %v", br.Index, err)
	}
	if err := b.Start(); err != nil {
		b.Shutdown(context.Background())
		c.t.Fatalf("broker %d: Start: %v", br.Index, err)
	}
	br.B = b
}

// Kill stops broker i at once: no graceful drain (its context is already
// over), as close to a crash as one process allows.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	br := c.Brokers[i]
	if br.B == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	br.B.Shutdown(ctx)
	br.B = nil
}

// Restart starts a stopped broker i again on its data directory and address.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.start(c.Brokers[i])
}

// Stop stops every broker; idempotent.
func (c *Cluster) Stop() {
	for _, br := range c.Brokers {
		if br.B != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := br.B.Shutdown(ctx); err != nil {
				c.t.Errorf("broker %d: Shutdown: %v", br.Index, err)
			}
			cancel()
			br.B = nil
		}
	}
}

// Running returns the brokers that are started.
func (c *Cluster) Running() []*Broker {
	var out []*Broker
	for _, br := range c.Brokers {
		if br.B != nil {
			out = append(out, br)
		}
	}
	return out
}

// WaitReady waits until every running broker is ready.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	c.WaitFor("every broker ready", func() error {
		for _, br := range c.Running() {
			if ok, why := br.B.Ready(); !ok {
				return fmt.Errorf("broker %d: %s", br.Index, why)
			}
		}
		return nil
	})
}

// WaitFor polls cond until it returns nil, failing the test with its last
// error after WaitTimeout.
func (c *Cluster) WaitFor(what string, cond func() error) {
	c.t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond) // polling an observable condition
	}
	c.t.Fatalf("timed out waiting for %s: %v", what, err)
}

// Addrs lists the addresses of the running brokers.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, br := range c.Running() {
		out = append(out, br.Addr)
	}
	return out
}

// Client returns a client bootstrapped from every running broker; it is
// closed by t.Cleanup.
func (c *Cluster) Client(opts ...client.Option) *client.Client {
	c.t.Helper()
	opts = append([]client.Option{client.WithBrokers(c.Addrs()...), client.WithCAFile(c.CAFile)}, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	cl, err := client.New(ctx, opts...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

// FreePort reserves nothing: it returns a UDP port free at the moment of
// the call, for tests that need to know an address before a broker binds it.
func FreePort() (int, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port, nil
}

// Config returns the config broker br starts with.
func (br *Broker) Config() node.Config { return br.cfg }

// SetJoin sets the brokers br joins on its next start.
func (br *Broker) SetJoin(addrs ...string) { br.cfg.Cluster.Join = addrs }

// AddBroker starts one more broker that joins the cluster (unless mutate
// says otherwise) and waits until it is ready.
func (c *Cluster) AddBroker(mutate ...func(*node.Config)) *Broker {
	c.t.Helper()
	i := len(c.Brokers)
	br := &Broker{Index: i, Dir: filepath.Join(c.Dir, "b"+strconv.Itoa(i))}
	cert, key := c.issue(br.Dir)
	br.cfg = c.Brokers[0].cfg
	br.cfg.DataDir, br.cfg.Listen, br.cfg.BrokerID = br.Dir, "127.0.0.1:0", "b"+strconv.Itoa(i)
	br.cfg.TLS.CertFile, br.cfg.TLS.KeyFile = cert, key
	br.cfg.Cluster.Join = c.Addrs()
	for _, m := range mutate {
		m(&br.cfg)
	}
	c.routeFaults(br)
	c.Brokers = append(c.Brokers, br)
	c.start(br)
	br.Addr = br.B.Addr()
	br.cfg.Listen = br.Addr
	c.WaitReady()
	return br
}

// StopBroker stops broker i gracefully (as SIGTERM does: leadership handed
// over, in-flight requests answered); Restart starts it again.
func (c *Cluster) StopBroker(i int) {
	c.t.Helper()
	br := c.Brokers[i]
	if br.B == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := br.B.Shutdown(ctx); err != nil {
		c.t.Errorf("broker %d: Shutdown: %v", i, err)
	}
	br.B = nil
}
