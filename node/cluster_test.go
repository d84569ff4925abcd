package node_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rafka/rafka/client"
	"github.com/rafka/rafka/node"
	"github.com/rafka/rafka/node/meta"
	"github.com/rafka/rafka/node/nodetest"
	"github.com/rafka/rafka/node/replica"
	"github.com/rafka/rafka/quicnet"
	"github.com/rafka/rafka/wire"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), nodetest.WaitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// clusterInfo asks broker addr for its view of the cluster.
func clusterInfo(t *testing.T, c *nodetest.Cluster, cl *client.Client) client.ClusterInfo {
	t.Helper()
	info, err := cl.ClusterInfo(ctxT(t))
	if err != nil {
		t.Fatalf("ClusterInfo: %v", err)
	}
	return info
}

func TestClusterFormsFromJoin(t *testing.T) {
	c := nodetest.NewCluster(t, 3)
	id := c.Brokers[0].B.ClusterID()
	if id == "" {
		t.Fatal("no cluster id")
	}
	for _, br := range c.Brokers {
		if got := br.B.ClusterID(); got != id {
			t.Errorf("broker %d: cluster %q, want %q", br.Index, got, id)
		}
	}
	cl := c.Client()
	c.WaitFor("3 alive brokers and 3 voters", func() error {
		info := clusterInfo(t, c, cl)
		alive := 0
		for _, b := range info.Brokers {
			if b.State == "alive" {
				alive++
			}
		}
		if alive != 3 || len(info.Voters) != 3 || info.MetaLeader == "" {
			return fmt.Errorf("alive %d, voters %v, leader %q", alive, info.Voters, info.MetaLeader)
		}
		return nil
	})
	// Lease ages come from the metadata leader, whichever broker is asked.
	info := clusterInfo(t, c, c.Client(client.WithBrokers(c.Brokers[2].Addr)))
	for _, b := range info.Brokers {
		if !b.LeaseAgeKnown() || b.LeaseAge > nodetest.LeaseTimeout {
			t.Errorf("broker %s: lease age %v", b.ID, b.LeaseAge)
		}
	}
	// Every broker finds the others in the DHT on its QUIC port.
	c.WaitFor("DHT lookups", func() error {
		for _, br := range c.Brokers {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			peers, err := node.DHTPeers(ctx, br.B)
			cancel()
			for _, other := range c.Brokers {
				if other != br && !slices.Contains(peers, other.Addr) {
					return fmt.Errorf("broker %d found %v (%v), not broker %d at %s", br.Index, peers, err, other.Index, other.Addr)
				}
			}
		}
		return nil
	})
}

func TestClusterSpreadsTopicAndServesThroughOneAddress(t *testing.T) {
	c := nodetest.NewCluster(t, 3)
	ctx := ctxT(t)
	// Created through a broker that is not necessarily the metadata
	// leader: the proposal is forwarded.
	admin := c.Client(client.WithBrokers(c.Brokers[2].Addr))
	if err := admin.CreateTopic(ctx, "spread", 6, nil, client.WithReplicationFactor(1)); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	tm, err := admin.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leaders := map[string]int{}
	for _, tp := range tm {
		for _, p := range tp.Partitions {
			leaders[p.Leader]++
		}
	}
	if len(leaders) != 3 {
		t.Fatalf("6 partitions led by %v; want all 3 brokers", leaders)
	}

	// One bootstrap address; the client routes each partition to its
	// broker.
	cl := c.Client(client.WithBrokers(c.Brokers[1].Addr))
	const n = 3000
	p, err := cl.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := p.Produce(ctx, &client.Record{Topic: "spread", Partition: client.AnyPartition, Key: []byte(strconv.Itoa(i)), Value: []byte("v" + strconv.Itoa(i))}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("producer close: %v", err)
	}
	seen := readAll(t, cl, "spread", 6, n)
	if len(seen) != n {
		t.Fatalf("read %d distinct records, want %d", len(seen), n)
	}
}

// readAll reads every partition of topic from the start until want records
// have arrived, returning the distinct values.
func readAll(t *testing.T, cl *client.Client, topic string, parts int32, want int) map[string]bool {
	t.Helper()
	ctx := ctxT(t)
	cs, err := cl.NewConsumer()
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	var as []client.Assignment
	for i := range parts {
		as = append(as, client.Assignment{Topic: topic, Partition: i, Start: client.Earliest()})
	}
	if err := cs.Assign(ctx, as...); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for len(seen) < want {
		recs, err := cs.Poll(ctx)
		if err != nil {
			t.Fatalf("Poll after %d records: %v", len(seen), err)
		}
		for _, r := range recs {
			seen[string(r.Value)] = true
		}
	}
	return seen
}

// waitBrokerState waits until the cluster, as cl is told, has broker id in
// state.
func waitBrokerState(t *testing.T, c *nodetest.Cluster, cl *client.Client, id, state string) {
	t.Helper()
	c.WaitFor(fmt.Sprintf("broker %s %s", id, state), func() error {
		for _, b := range clusterInfo(t, c, cl).Brokers {
			if b.ID == id && b.State != state {
				return fmt.Errorf("%s is %s", id, b.State)
			}
		}
		return nil
	})
}

func TestClusterDeadBrokerIsFencedAndRejoins(t *testing.T) {
	c := nodetest.NewCluster(t, 3)
	ctx := ctxT(t)
	cl := c.Client(client.WithBrokers(c.Brokers[0].Addr))
	// One replica per partition: a dead broker's partitions go offline.
	mustCreate(t, cl, "dead", 6, 1)
	p, err := cl.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	const n = 600
	for i := range n {
		if err := p.Produce(ctx, &client.Record{Topic: "dead", Partition: int32(i % 6), Value: []byte("r" + strconv.Itoa(i))}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}

	c.Kill(2)
	waitBrokerState(t, c, cl, "b2", "fenced")
	// Its partitions are offline, the others served; topics can still be
	// created (two voters of three are up).
	tms, err := cl.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	offline := 0
	for _, tp := range tms {
		for _, pm := range tp.Partitions {
			if pm.Offline {
				offline++
			}
		}
	}
	if offline == 0 {
		t.Fatal("no partition offline after its broker died")
	}
	if err := cl.CreateTopic(ctx, "after-death", 3, nil); err != nil {
		t.Fatalf("CreateTopic with a broker dead: %v", err)
	}

	c.Restart(2)
	c.WaitReady()
	waitBrokerState(t, c, cl, "b2", "alive")
	seen := readAll(t, c.Client(), "dead", 6, n)
	if len(seen) != n {
		t.Fatalf("read %d records after restart, want %d", len(seen), n)
	}
}

func TestClusterMismatchSameCA(t *testing.T) {
	c := nodetest.NewCluster(t, 2)
	// Broker 1 leaves and forms a cluster of its own on a fresh data
	// directory... instead: make a separate one-broker cluster with the
	// same CA, then point it at c.
	lone := c.AddBroker(func(cfg *node.Config) { cfg.Cluster.Join = nil })
	if lone.B.ClusterID() == c.Brokers[0].B.ClusterID() {
		t.Fatal("a broker without --join joined the cluster")
	}
	c.Kill(lone.Index)
	lone.SetJoin(c.Brokers[0].Addr)
	b, err := node.New(lone.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown(context.Background())
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-b.Failed():
		if !errors.Is(err, node.ErrClusterMismatch) {
			t.Fatalf("failed with %v, want ErrClusterMismatch", err)
		}
	case <-time.After(nodetest.WaitTimeout):
		t.Fatal("a broker of another cluster was not refused")
	}
}

func TestClusterPeerAPIsNeedBrokerCertificate(t *testing.T) {
	c := nodetest.NewCluster(t, 1)
	tlsConf, err := quicnet.ClientTLSConfig(quicnet.TLSFiles{CAFile: c.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	conn, err := quicnet.Dial(ctx, c.Brokers[0].Addr, tlsConf, quicnet.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	for _, api := range []wire.API{wire.APIBrokerHeartbeat, wire.APIRaft} {
		s, err := conn.OpenStreamSync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		fw := wire.NewFrameWriter(s)
		var hdr any = &wire.BrokerHeartbeatRequest{BrokerID: "intruder", RaftID: 1, Instance: "x", Addr: "127.0.0.1:1"}
		if api == wire.APIRaft {
			hdr = &wire.RaftMessages{ClusterID: c.Brokers[0].B.ClusterID(), From: 1}
		}
		if err := fw.WriteFrame(wire.FrameHeader{API: api, Corr: 7}, hdr); err != nil {
			t.Fatal(err)
		}
		fr := wire.NewFrameReader(s, wire.DefaultMaxFrameSize)
		f, err := fr.Next()
		if err != nil {
			t.Fatalf("%s: %v", api, err)
		}
		var e wire.ErrorResponse
		if err := wire.DecodeHeader(f.Header, &e); err != nil {
			t.Fatal(err)
		}
		if e.Error != wire.ErrNotAuthorized {
			t.Fatalf("%s without a broker certificate: %v %q, want NOT_AUTHORIZED", api, e.Error, e.Message)
		}
		fr.Close()
	}
}

func TestClusterMetadataWritesNeedQuorumReadsDoNot(t *testing.T) {
	c := nodetest.NewCluster(t, 3)
	ctx := ctxT(t)
	cl := c.Client(client.WithBrokers(c.Brokers[0].Addr))
	c.WaitFor("3 voters", func() error {
		if info := clusterInfo(t, c, cl); len(info.Voters) != 3 {
			return fmt.Errorf("voters %v", info.Voters)
		}
		return nil
	})
	if err := cl.CreateTopic(ctx, "before", 3, nil); err != nil {
		t.Fatal(err)
	}
	c.Kill(1)
	c.Kill(2)
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	err := cl.CreateTopic(cctx, "without-quorum", 1, nil)
	if err == nil {
		t.Fatal("CreateTopic succeeded with 2 of 3 voters down")
	}
	if !errors.Is(err, client.ErrMetadataUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("CreateTopic without quorum: %v, want METADATA_UNAVAILABLE", err)
	}
	tms, err := cl.ListTopics(ctx)
	if err != nil {
		t.Fatalf("metadata read without quorum: %v", err)
	}
	if len(tms) != 1 || tms[0].Name != "before" {
		t.Fatalf("topics %v", tms)
	}
}

func TestClusterReplacesDeadVoter(t *testing.T) {
	c := nodetest.NewCluster(t, 4)
	cl := c.Client(client.WithBrokers(c.Brokers[0].Addr))
	var voters []string
	c.WaitFor("3 voters", func() error {
		info := clusterInfo(t, c, cl)
		voters = info.Voters
		if len(voters) != 3 {
			return fmt.Errorf("voters %v", voters)
		}
		return nil
	})
	// Kill a voter that is not broker 0 (the client's bootstrap).
	victim := -1
	for i := 1; i < 4 && victim < 0; i++ {
		if slices.Contains(voters, "b"+strconv.Itoa(i)) {
			victim = i
		}
	}
	c.Kill(victim)
	dead := "b" + strconv.Itoa(victim)
	c.WaitFor("the dead voter replaced", func() error {
		info := clusterInfo(t, c, cl)
		if len(info.Voters) != 3 || slices.Contains(info.Voters, dead) {
			return fmt.Errorf("voters %v with %s dead", info.Voters, dead)
		}
		return nil
	})
	// The demoted broker comes back as a learner and the cluster serves on.
	c.Restart(victim)
	c.WaitReady()
	if err := cl.CreateTopic(ctxT(t), "after-replacement", 2, nil); err != nil {
		t.Fatal(err)
	}
}

func TestClusterSurvivesRestartOfEveryBroker(t *testing.T) {
	c := nodetest.NewCluster(t, 3)
	ctx := ctxT(t)
	cl := c.Client(client.WithBrokers(c.Brokers[0].Addr))
	c.WaitFor("3 voters", func() error { return votersOf(c, 3) })
	if err := cl.CreateTopic(ctx, "kept", 3, map[string]string{node.ConfigRetentionMs: "7200000"}); err != nil {
		t.Fatal(err)
	}
	p, err := cl.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		if err := p.Produce(ctx, &client.Record{Topic: "kept", Partition: int32(i % 3), Value: []byte(strconv.Itoa(i))}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	id := c.Brokers[0].B.ClusterID()
	for i := range c.Brokers {
		c.Kill(i)
	}
	for i := range c.Brokers {
		c.Restart(i)
	}
	c.WaitReady()
	for _, br := range c.Brokers {
		if br.B.ClusterID() != id {
			t.Fatalf("broker %d: cluster %q after restart, want %q", br.Index, br.B.ClusterID(), id)
		}
	}
	cl2 := c.Client()
	desc, err := cl2.DescribeTopic(ctx, "kept")
	if err != nil {
		t.Fatal(err)
	}
	if desc.Configs[node.ConfigRetentionMs] != "7200000" {
		t.Fatalf("config after restart: %v", desc.Configs)
	}
	if seen := readAll(t, cl2, "kept", 3, 300); len(seen) != 300 {
		t.Fatalf("read %d records after restarting every broker", len(seen))
	}
}

func TestClusterRefusesDuplicateBrokerID(t *testing.T) {
	c := nodetest.NewCluster(t, 2)
	cfg := c.Brokers[1].Config()
	cfg.DataDir = t.TempDir() // another data directory claiming id b1
	cfg.Listen = "127.0.0.1:0"
	cfg.Cluster.Join = []string{c.Brokers[0].Addr}
	b, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown(context.Background())
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-b.Failed():
		if !strings.Contains(err.Error(), "already in the cluster") {
			t.Fatalf("failed with %v", err)
		}
	case <-time.After(nodetest.WaitTimeout):
		t.Fatal("a second broker with a live broker's id was not refused")
	}
	c.WaitReady() // the real b1 is undisturbed
}

// Datagrams that are neither QUIC nor well-formed DHT messages, sent to a
// broker's port, are dropped: it keeps serving and stays in its cluster.
func TestClusterGarbageOnTheSharedPort(t *testing.T) {
	c := nodetest.NewCluster(t, 2)
	conn, err := net.Dial("udp", c.Brokers[0].Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		b := make([]byte, 1+rng.IntN(1400))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		switch i % 3 {
		case 0:
			b[0] = 0x00 // the DHT prefix, then garbage
		case 1:
			b = append([]byte{0x00, 'd'}, b...) // a bencoded dict that is not KRPC
		}
		conn.Write(b)
	}
	ctx := ctxT(t)
	cl := c.Client()
	if err := cl.CreateTopic(ctx, "after-garbage", 2, nil); err != nil {
		t.Fatalf("CreateTopic after garbage datagrams: %v", err)
	}
	c.WaitReady()
}

// A data directory written by the single-broker release (a topic catalog
// of topic.json files beside the partition logs) is imported into the
// cluster the broker forms, data included.
func TestLegacyDataDirImported(t *testing.T) {
	dir := t.TempDir()
	cat, err := meta.OpenFileCatalog(filepath.Join(dir, "topics"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.Create(meta.TopicInfo{Name: "old", Partitions: 2, Configs: map[string]string{node.ConfigRetentionMs: "7200000"}, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for i := range int32(2) {
		p, err := replica.Open(replica.Config{Topic: "old", Partition: i, Dir: filepath.Join(dir, "topics", "old", strconv.Itoa(int(i)))})
		if err != nil {
			t.Fatal(err)
		}
		_, ack, err := p.Append(batch(t, "legacy", 5, wire.CodecNone), wire.AcksLeader)
		if err != nil {
			t.Fatal(err)
		}
		if err := ack.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}
	tb := startBrokerIn(t, dir)
	if ok, why := tb.b.Ready(); !ok {
		t.Fatalf("not ready after importing: %s", why)
	}
	rs := tb.stream()
	var d wire.DescribeTopicResponse
	rs.call(wire.APIDescribeTopic, &wire.DescribeTopicRequest{Name: "old"}, &d)
	if d.Error != wire.ErrNone || len(d.Partitions) != 2 || d.Configs[node.ConfigRetentionMs] != "7200000" {
		t.Fatalf("imported topic: %+v", d)
	}
	for _, p := range d.Partitions {
		if p.HighWatermark != 5 {
			t.Fatalf("partition %d: high watermark %d, want the 5 records written before", p.Partition, p.HighWatermark)
		}
	}
}

// A broker whose certificate comes from another CA cannot join: the TLS
// handshake fails both ways, it keeps retrying and says why, and the
// cluster is undisturbed.
func TestClusterRefusesCertificateOfAnotherCA(t *testing.T) {
	c := nodetest.NewCluster(t, 1)
	other := nodetest.NewCluster(t, 1) // its own CA
	cfg := other.Brokers[0].Config()
	cfg.DataDir, cfg.Listen, cfg.BrokerID = t.TempDir(), "127.0.0.1:0", "stranger"
	cfg.Cluster.Join = []string{c.Brokers[0].Addr}
	logs := &logBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	b, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown(context.Background())
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	c.WaitFor("the stranger's failure logged", func() error {
		if !strings.Contains(logs.String(), "certificate") {
			return errors.New("no certificate error in its log yet")
		}
		return nil
	})
	if ok, why := b.Ready(); ok || !strings.Contains(why, "not joined") {
		t.Fatalf("stranger ready=%v (%s)", ok, why)
	}
	info := clusterInfo(t, c, c.Client())
	if len(info.Brokers) != 1 {
		t.Fatalf("brokers %+v: the stranger got in", info.Brokers)
	}
}

// The metadata leader killed: the two others elect one of themselves and
// take topic changes.
func TestClusterMetadataLeaderLoss(t *testing.T) {
	c := nodetest.NewCluster(t, 3)
	c.WaitFor("3 voters", func() error { return votersOf(c, 3) })
	info := clusterInfo(t, c, c.Client(client.WithBrokers(c.Brokers[0].Addr)))
	lead := -1
	for _, br := range c.Brokers {
		if br.B.ID() == info.MetaLeader {
			lead = br.Index
		}
	}
	if lead < 0 {
		t.Fatalf("metadata leader %q is none of the brokers", info.MetaLeader)
	}
	deadID := info.MetaLeader
	c.Kill(lead)
	other := c.Running()[0]
	cl := c.Client(client.WithBrokers(other.Addr))
	c.WaitFor("a new metadata leader", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		info, err := cl.ClusterInfo(ctx)
		if err != nil {
			return err
		}
		if info.MetaLeader == "" || info.MetaLeader == deadID {
			return fmt.Errorf("leader %q", info.MetaLeader)
		}
		return nil
	})
	if err := cl.CreateTopic(ctxT(t), "after-leader-loss", 1, nil, client.WithReplicationFactor(1)); err != nil {
		t.Fatal(err)
	}
}

// Brokers started with the same flags, as a StatefulSet's pods are: every
// one has the same --join list. The broker advertised at its first address
// forms the cluster, the others join it; that broker, its data directory
// lost, joins the running cluster again rather than forming another.
func TestClusterFoundedByFirstJoinAddress(t *testing.T) {
	const n = 3
	addrs := make([]string, n)
	for i := range addrs {
		p, err := nodetest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		addrs[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	c := nodetest.NewCluster(t, n, func(i int, cfg *node.Config) {
		cfg.Listen = addrs[i]
		cfg.Cluster.Join = addrs
	})
	id := c.Brokers[0].B.ClusterID()
	if id == "" {
		t.Fatal("no cluster id")
	}
	for _, br := range c.Brokers {
		if got := br.B.ClusterID(); got != id {
			t.Fatalf("broker %d: cluster %q, want %q (two clusters formed)", br.Index, got, id)
		}
	}
	cl := c.Client(client.WithBrokers(addrs[1]))
	// Three voters, so that the founder's loss leaves a quorum.
	c.WaitFor("3 alive brokers and 3 voters", func() error {
		info := clusterInfo(t, c, cl)
		alive := 0
		for _, b := range info.Brokers {
			if b.State == "alive" {
				alive++
			}
		}
		if alive != n || len(info.Voters) != n || info.MetaLeader == "" {
			return fmt.Errorf("alive %d, voters %v, leader %q", alive, info.Voters, info.MetaLeader)
		}
		return votersOf(c, n)
	})

	// The founder loses its data directory (its certificate kept).
	c.Kill(0)
	waitBrokerState(t, c, cl, "b0", "fenced")
	entries, err := os.ReadDir(c.Brokers[0].Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "certs" {
			if err := os.RemoveAll(filepath.Join(c.Brokers[0].Dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.Restart(0)
	c.WaitFor("the founder back in its cluster", func() error {
		if got := c.Brokers[0].B.ClusterID(); got != id {
			return fmt.Errorf("cluster %q, want %q", got, id)
		}
		return nil
	})
	waitBrokerState(t, c, cl, "b0", "alive")
}
