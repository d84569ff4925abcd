package discovery

import (
	"context"
	"crypto/sha1"
	"crypto/tls"
	"errors"

	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/rafka/rafka/quicnet"
)

// waitLimit bounds every wait in these tests; it is generous so that a
// loaded machine does not fail them, and never asserted as a latency.
const waitLimit = 30 * time.Second

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return nil
}

// testConfig is a config with intervals short enough for tests.
func testConfig(t *testing.T, cluster string, port int, join ...string) Config {
	return Config{
		ClusterID:        cluster,
		Port:             port,
		Join:             join,
		AnnounceInterval: 200 * time.Millisecond,
		QueryTimeout:     500 * time.Millisecond,
		RetryMin:         20 * time.Millisecond,
		RetryMax:         200 * time.Millisecond,
		Logger:           testLogger(t),
	}
}

func listenUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

func addrPort(a net.Addr) netip.AddrPort { return a.(*net.UDPAddr).AddrPort() }

// startNode starts a node of cluster on its own loopback socket, joined to
// join; cleanup closes it.
func startNode(t *testing.T, cluster string, join ...*Node) *Node {
	t.Helper()
	return startNodeOn(t, listenUDP(t), cluster, join...)
}

func startNodeOn(t *testing.T, pc net.PacketConn, cluster string, join ...*Node) *Node {
	t.Helper()
	var joins []string
	for _, j := range join {
		joins = append(joins, j.Addr().String())
	}
	n, err := New(pc, testConfig(t, cluster, int(addrPort(pc.LocalAddr()).Port()), joins...))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// await polls cond until it holds, failing the test after waitLimit.
func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v", what, waitLimit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// awaitPeers polls n.Peers until it returns exactly want.
func awaitPeers(t *testing.T, n *Node, want ...*Node) {
	t.Helper()
	var wantAPs []netip.AddrPort
	for _, w := range want {
		wantAPs = append(wantAPs, addrPort(w.Addr()))
	}
	slices.SortFunc(wantAPs, func(a, b netip.AddrPort) int { return a.Compare(b) })
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	var got []netip.AddrPort
	var err error
	for ctx.Err() == nil {
		got, err = n.Peers(ctx)
		if slices.Equal(got, wantAPs) {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("node %v: Peers = %v (last error %v), want %v", n.Addr(), got, err, wantAPs)
}

func awaitAllSeeAll(t *testing.T, nodes []*Node) {
	t.Helper()
	var wg sync.WaitGroup
	for i, n := range nodes {
		others := slices.Concat(nodes[:i], nodes[i+1:])
		wg.Go(func() { awaitPeers(t, n, others...) })
	}
	wg.Wait()
}

func TestThreeThenFiveNodesFindEachOther(t *testing.T) {
	seed := startNode(t, "c")
	nodes := []*Node{seed, startNode(t, "c", seed), startNode(t, "c", seed)}
	awaitAllSeeAll(t, nodes)

	nodes = append(nodes, startNode(t, "c", seed), startNode(t, "c", seed))
	awaitAllSeeAll(t, nodes)

	for _, n := range nodes {
		st := n.Stats()
		if st.Nodes < 1 || st.Announces < 1 || st.Lookups < 1 {
			t.Errorf("node %v: Stats = %+v, want a routing table, announces and lookups", n.Addr(), st)
		}
	}
}

// TestJoinTargetStartsLater: the join target's socket exists but nobody
// reads it yet, so the joiner's queries go unanswered; it keeps retrying and
// joins once the target runs.
func TestJoinTargetStartsLater(t *testing.T) {
	seedConn := listenUDP(t)
	late := startNodeOnAddrs(t, listenUDP(t), "c", seedConn.LocalAddr().String())
	await(t, "a failed join attempt", func() bool { return late.Stats().JoinFailures >= 2 })

	seed := startNodeOn(t, seedConn, "c")
	awaitAllSeeAll(t, []*Node{seed, late})
}

func startNodeOnAddrs(t *testing.T, pc net.PacketConn, cluster string, join ...string) *Node {
	t.Helper()
	n, err := New(pc, testConfig(t, cluster, int(addrPort(pc.LocalAddr()).Port()), join...))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// TestJoinByHostName joins through a name that resolves to several
// addresses, only one of which runs a node.
func TestJoinByHostName(t *testing.T) {
	seed := startNode(t, "c")
	port := strconv.Itoa(int(addrPort(seed.Addr()).Port()))
	// "localhost" resolves to 127.0.0.1 and often ::1; the IPv4 socket
	// skips the latter.
	n := startNodeOnAddrs(t, listenUDP(t), "c", net.JoinHostPort("localhost", port))
	awaitAllSeeAll(t, []*Node{seed, n})
}

func TestOtherClusterIsNotListed(t *testing.T) {
	seed := startNode(t, "a")
	member := startNode(t, "a", seed)
	stranger := startNode(t, "b", seed)
	// The stranger shares the DHT and has announced under its own cluster.
	await(t, "the other cluster's announce", func() bool {
		st := stranger.Stats()
		return st.Announces >= 1 && st.AnnounceAcks >= 1
	})
	awaitAllSeeAll(t, []*Node{seed, member})
	awaitPeers(t, stranger) // alone in cluster b
	if got := InfoHash("a"); got == InfoHash("b") {
		t.Fatal("two clusters share an infohash")
	}
}

func TestInfoHash(t *testing.T) {
	if got, want := InfoHash("prod"), sha1.Sum([]byte("rafka-cluster:prod")); got != want {
		t.Fatalf("InfoHash = %x, want %x", got, want)
	}
}

// TestGarbageDatagrams sends malformed datagrams to a node: they are dropped
// before the DHT library sees them, and the node keeps working.
func TestGarbageDatagrams(t *testing.T) {
	seed := startNode(t, "c")
	member := startNode(t, "c", seed)
	awaitAllSeeAll(t, []*Node{seed, member})

	garbage := [][]byte{
		{},
		[]byte("x"),
		[]byte("d"),
		[]byte("d1:t134217727:"),             // claims a 128 MiB string
		[]byte("d1:ti5e1:y1:qe"),             // well-formed bencode, wrong KRPC types
		[]byte("d1:y1:q1:q4:pinge trailing"), // trailing bytes
		[]byte(strings.Repeat("l", 10_000)),
		{0x00, 'd', 'e'}, // a shared-port frame on a plain socket
	}
	sender := listenUDP(t)
	defer sender.Close()
	for _, g := range garbage {
		if _, err := sender.WriteTo(g, seed.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	await(t, "garbage dropped", func() bool { return seed.Stats().DroppedPackets >= uint64(len(garbage)) })

	late := startNode(t, "c", seed)
	awaitAllSeeAll(t, []*Node{seed, member, late})
}

// TestSharedQUICPort runs the DHT of three nodes on the UDP ports of their
// QUIC listeners, and a QUIC connection to one of them at the same time.
func TestSharedQUICPort(t *testing.T) {
	dir := t.TempDir()
	serverTLS, err := quicnet.ServerTLSConfig(quicnet.TLSFiles{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	clientTLS, err := quicnet.ClientTLSConfig(quicnet.TLSFiles{CAFile: quicnet.SelfSignedCertPath(dir)})
	if err != nil {
		t.Fatal(err)
	}
	echo := quicnet.HandlerFunc(func(ctx context.Context, conn *quic.Conn, s *quic.Stream) {
		b := make([]byte, 5)
		n, _ := s.Read(b)
		s.Write(b[:n])
	})
	var nodes []*Node
	for range 3 {
		srv := startQUIC(t, serverTLS, echo)
		n := startNodeOn(t, quicnet.NewSharedPacketConn(srv.Transport()), "c", nodes[:min(len(nodes), 1)]...)
		nodes = append(nodes, n)
	}
	awaitAllSeeAll(t, nodes)

	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	conn, err := quicnet.Dial(ctx, nodes[1].Addr().String(), clientTLS, quicnet.Config{})
	if err != nil {
		t.Fatalf("Dial the shared port: %v", err)
	}
	defer conn.CloseWithError(quicnet.CodeNormal, "")
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("hello"))
	s.Close()
	buf, err := io.ReadAll(s)
	if err != nil || string(buf) != "hello" {
		t.Fatalf("QUIC round trip on the shared port: %q, %v", buf, err)
	}
}

// startQUIC runs a quicnet server on loopback until cleanup.
func startQUIC(t *testing.T, tlsConf *tls.Config, h quicnet.Handler) *quicnet.Server {
	t.Helper()
	srv, err := quicnet.Listen("127.0.0.1:0", tlsConf, quicnet.Config{}, h)
	if err != nil {
		t.Fatal(err)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve() }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-serveErr; !errors.Is(err, quicnet.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv
}

// TestTransportClosedUnderNode: when the QUIC transport under a shared-port
// node closes first, the node stops taking part without crashing the
// process, and Close still returns.
func TestTransportClosedUnderNode(t *testing.T) {
	serverTLS, err := quicnet.ServerTLSConfig(quicnet.TLSFiles{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := quicnet.Listen("127.0.0.1:0", serverTLS, quicnet.Config{}, quicnet.HandlerFunc(func(context.Context, *quic.Conn, *quic.Stream) {}))
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(quicnet.NewSharedPacketConn(srv.Transport()), testConfig(t, "c", int(addrPort(srv.Addr()).Port())))
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCloseWhileJoining closes a node whose join target never answers.
func TestCloseWhileJoining(t *testing.T) {
	silent := listenUDP(t)
	defer silent.Close()
	n := startNodeOnAddrs(t, listenUDP(t), "c", silent.LocalAddr().String())
	await(t, "a join attempt", func() bool { return n.Stats().JoinAttempts >= 1 })
	done := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		_, err := n.Peers(ctx)
		if err == nil {
			t.Error("Peers on an unjoined node returned no error")
		}
		close(done)
	}()
	n.Close()
	<-done
	if _, err := n.Peers(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Peers after Close: %v, want ErrClosed", err)
	}
	n.Close() // idempotent
}

func TestSeedAloneHasNoPeers(t *testing.T) {
	seed := startNode(t, "c")
	got, err := seed.Peers(context.Background())
	if len(got) != 0 || !errors.Is(err, ErrNoContacts) {
		t.Fatalf("Peers = %v, %v; want none and ErrNoContacts", got, err)
	}
}

func TestConfigValidateReportsAll(t *testing.T) {
	pc := listenUDP(t)
	defer pc.Close()
	_, err := New(pc, Config{Join: []string{"nohost", "h:0", ":5"}, PeerTTL: time.Second, AnnounceInterval: time.Minute, SendRate: -1})
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New: %v, want ErrInvalidConfig", err)
	}
	for _, want := range []string{"ClusterID", "Port", `"nohost"`, `"h:0"`, `":5"`, "PeerTTL", "SendRate"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if _, err := New(nil, Config{ClusterID: "c", Port: 1}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New(nil conn): %v, want ErrInvalidConfig", err)
	}
	if err := (Config{ClusterID: "c", Port: 1}).withDefaults().Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}
