package discovery

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/dht/v2/traversal"
	alog "github.com/anacrolix/log"
	"golang.org/x/time/rate"
)

// infoHashPrefix is part of the cluster's wire contract: every broker of a
// cluster must derive the same infohash from its id.
const infoHashPrefix = "rafka-cluster:"

// InfoHash is the DHT key under which the brokers of cluster clusterID
// announce themselves: SHA-1("rafka-cluster:" + clusterID).
func InfoHash(clusterID string) [20]byte {
	return sha1.Sum([]byte(infoHashPrefix + clusterID))
}

// Node is one member of the cluster's DHT: it keeps a routing table,
// answers other nodes' queries, announces this broker under the cluster's
// infohash and looks the other brokers up (Peers).
//
// Goroutines: New starts the library's read loop and one maintenance
// goroutine (join, re-join, re-announce); Close stops both and waits for
// them and for every lookup they started.
type Node struct {
	cfg      Config
	log      *slog.Logger
	srv      *dht.Server
	conn     *guardConn
	store    *peerStore
	infoHash [20]byte
	selfIPs  map[netip.Addr]bool // addresses of this host, for recognising our own announce

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the maintenance goroutine and running Peers calls

	// mu guards closed; wg.Add happens under it while !closed, so an Add
	// never races with Close's Wait.
	mu        sync.Mutex
	closed    bool
	closeOnce sync.Once

	lookups      atomic.Uint64
	announces    atomic.Uint64
	joinAttempts atomic.Uint64
	joinFailures atomic.Uint64
}

// New starts a DHT node on pc, which it owns from then on and closes on
// Close: a plain UDP socket, or a quicnet.SharedPacketConn to share the
// broker's QUIC port. Every node of a cluster must use the same kind
// (shared-port datagrams carry a prefix byte). New returns at once; the
// node joins through cfg.Join in the background and retries until a join
// address answers.
func New(pc net.PacketConn, cfg Config) (*Node, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if pc == nil {
		return nil, fmt.Errorf("%w: nil PacketConn", ErrInvalidConfig)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "discovery", "addr", pc.LocalAddr().String()),
		store:    newPeerStore(cfg.PeerTTL, cfg.MaxPeers, time.Now),
		infoHash: InfoHash(cfg.ClusterID),
		selfIPs:  localIPs(pc.LocalAddr()),
		ctx:      ctx,
		cancel:   cancel,
	}
	n.conn = newGuardConn(pc, n.log)
	id := krpc.ID(cfg.NodeID)
	if id.IsZero() {
		id = krpc.RandomNodeID()
	}
	srv, err := dht.NewServer(&dht.ServerConfig{
		NodeId:           id,
		Conn:             n.conn,
		NoSecurity:       true, // IDs are not derived from IPs in a private DHT
		StartingNodes:    n.startingNodes,
		PeerStore:        n.store,
		QueryResendDelay: func() time.Duration { return cfg.QueryTimeout },
		SendLimiter:      rate.NewLimiter(rate.Limit(cfg.SendRate), cfg.SendRate),
		Logger:           dhtLogger(n.log),
		DefaultWant:      []krpc.Want{krpc.WantNodes, krpc.WantNodes6},
	})
	if err != nil {
		cancel()
		n.conn.Close()
		return nil, fmt.Errorf("discovery: starting the DHT: %w", err)
	}
	n.srv = srv
	n.wg.Go(n.maintain)
	return n, nil
}

// Addr is the local address of the node's socket.
func (n *Node) Addr() net.Addr { return n.conn.LocalAddr() }

// ID is the node's DHT ID.
func (n *Node) ID() [20]byte { return n.srv.ID() }

// maintain joins the DHT, then re-announces every AnnounceInterval; when
// the routing table is empty (the join addresses were not up yet, or
// every known node went away) it joins again with exponential backoff.
func (n *Node) maintain() {
	backoff := n.cfg.RetryMin
	for n.ctx.Err() == nil {
		wait := n.cfg.AnnounceInterval
		if n.srv.NumNodes() == 0 {
			if err := n.join(); err != nil {
				n.joinFailures.Add(1)
				if !errors.Is(err, errNoJoin) {
					n.log.Warn("discovery: cannot join the DHT yet; retrying", "join", n.cfg.Join, "err", err, "retry_in", backoff)
				}
				if !n.sleep(backoff) {
					return
				}
				backoff = min(2*backoff, n.cfg.RetryMax)
				continue
			}
			n.log.Info("discovery: joined the DHT", "nodes", n.srv.NumNodes())
			backoff = n.cfg.RetryMin
		}
		if err := n.announce(); err != nil && n.ctx.Err() == nil {
			n.log.Warn("discovery: announce failed", "err", err)
			wait = backoff
		}
		n.store.expire()
		// ±10% so that brokers started together do not announce together.
		if !n.sleep(wait - wait/10 + rand.N(wait/5+1)) {
			return
		}
	}
}

// sleep waits d or until Close; it reports false on Close.
func (n *Node) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-n.ctx.Done():
		return false
	}
}

// join runs a find_node traversal for the node's own ID from the join
// addresses, which fills the routing table and makes the node known to
// its neighbours. The library's Bootstrap is not used: its queries ignore
// cancellation and would outlive Close.
func (n *Node) join() error {
	n.joinAttempts.Add(1)
	nodes, err := n.srv.TraversalStartingNodes()
	if err != nil {
		return err
	}
	self := n.srv.ID()
	op := traversal.Start(traversal.OperationInput{
		Target: self,
		K:      16,
		DoQuery: func(ctx context.Context, addr krpc.NodeAddr) traversal.QueryResult {
			return n.srv.Query(ctx, dht.NewAddr(addr.UDP()), "find_node", dht.QueryInput{
				MsgArgs: krpc.MsgArgs{Target: self, Want: []krpc.Want{krpc.WantNodes, krpc.WantNodes6}},
			}).TraversalQueryResult(addr)
		},
		NodeFilter: n.srv.TraversalNodeFilter,
	})
	op.AddNodes(nodes)
	select {
	case <-op.Stalled():
	case <-n.ctx.Done():
	}
	op.Stop()
	<-op.Stopped()
	if n.srv.NumNodes() == 0 {
		return fmt.Errorf("no DHT node answered at %d address(es)", len(nodes))
	}
	return nil
}

// startingNodes resolves the join addresses; the library calls it when its
// routing table is empty.
func (n *Node) startingNodes() ([]dht.Addr, error) {
	if len(n.cfg.Join) == 0 {
		return nil, errNoJoin
	}
	ctx, cancel := context.WithTimeout(n.ctx, DefaultResolveTimeout)
	defer cancel()
	want4, want6 := families(n.conn.LocalAddr())
	var addrs []dht.Addr
	var errs []error
	for _, j := range n.cfg.Join {
		host, portStr, _ := net.SplitHostPort(j) // checked by Validate
		port, _ := strconv.Atoi(portStr)
		ips, err := n.cfg.Resolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			errs = append(errs, fmt.Errorf("resolving %s: %w", j, err))
			continue
		}
		for _, ip := range ips {
			ip = ip.Unmap()
			if (ip.Is4() && !want4) || (ip.Is6() && !want6) {
				continue
			}
			addrs = append(addrs, dht.NewAddr(net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port)))))
		}
	}
	if len(addrs) == 0 {
		errs = append(errs, fmt.Errorf("no usable address in %v", n.cfg.Join))
		return nil, errors.Join(errs...)
	}
	return addrs, nil
}

// announce looks the cluster's infohash up and announces this node to the
// nodes closest to it.
func (n *Node) announce() error {
	a, err := n.srv.AnnounceTraversal(n.infoHash, dht.AnnouncePeer(dht.AnnouncePeerOpts{Port: n.cfg.Port}))
	if err != nil {
		return err
	}
	drain(n.ctx, a, func([]dht.Peer) {})
	n.announces.Add(1)
	return nil
}

// drain reads a's results until it finishes, closing it early when ctx is
// done. It returns only once the library's goroutines for a have exited
// (a.Peers is closed last).
func drain(ctx context.Context, a *dht.Announce, f func([]dht.Peer)) {
	stop := context.AfterFunc(ctx, a.Close)
	defer stop()
	for pv := range a.Peers {
		f(pv.Peers)
	}
	a.Close()
}

// Peers looks up the brokers announced under the cluster's infohash and
// returns their addresses (the announced port, the IP the announce came
// from), deduplicated and sorted, this node excluded, including those that
// announced to this node directly. It waits for the lookup to finish or
// ctx to be done; the slice holds what was found even when the error is
// not nil. Errors: ErrClosed, ErrNoContacts, or ctx's error.
//
// An entry outlives its broker by up to PeerTTL: the DHT finds brokers,
// it does not tell whether they are alive.
func (n *Node) Peers(ctx context.Context) ([]netip.AddrPort, error) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, ErrClosed
	}
	n.wg.Add(1)
	n.mu.Unlock()
	defer n.wg.Done()
	n.lookups.Add(1)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(n.ctx, cancel)
	defer stop()

	found := make(map[netip.AddrPort]bool)
	add := func(ap netip.AddrPort) {
		if ap.IsValid() && ap.Port() != 0 && !n.isSelf(ap) {
			found[ap] = true
		}
	}
	for _, ap := range n.store.live(n.infoHash) {
		add(ap)
	}
	var err error
	if a, aerr := n.srv.AnnounceTraversal(n.infoHash); aerr != nil {
		err = fmt.Errorf("%w: %w", ErrNoContacts, aerr)
	} else {
		drain(ctx, a, func(ps []dht.Peer) {
			for _, p := range ps {
				if ip, ok := netip.AddrFromSlice(p.IP); ok && p.Port > 0 && p.Port <= 65535 {
					add(netip.AddrPortFrom(ip.Unmap(), uint16(p.Port)))
				}
			}
		})
	}
	if n.ctx.Err() != nil {
		err = ErrClosed
	} else if ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	out := make([]netip.AddrPort, 0, len(found))
	for ap := range found {
		out = append(out, ap)
	}
	slices.SortFunc(out, func(a, b netip.AddrPort) int { return a.Compare(b) })
	return out, err
}

// isSelf reports whether ap is this node's own announce: the announced
// port at an address of this host.
func (n *Node) isSelf(ap netip.AddrPort) bool {
	return int(ap.Port()) == n.cfg.Port && (ap.Addr().IsLoopback() || n.selfIPs[ap.Addr()])
}

// Stats is a snapshot of a node's counters.
type Stats struct {
	Nodes          int    // nodes in the routing table
	GoodNodes      int    // of which answered recently
	Lookups        uint64 // Peers calls
	Announces      uint64 // announce rounds completed
	AnnounceAcks   int64  // announce_peer queries other nodes accepted
	JoinAttempts   uint64 // join traversals started
	JoinFailures   uint64 // join attempts that left the routing table empty
	StoredPeers    int    // announces held for other nodes
	DroppedPackets uint64 // datagrams dropped as malformed
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	ss := n.srv.Stats()
	return Stats{
		Nodes:          ss.Nodes,
		GoodNodes:      ss.GoodNodes,
		Lookups:        n.lookups.Load(),
		Announces:      n.announces.Load(),
		AnnounceAcks:   ss.SuccessfulOutboundAnnouncePeerQueries,
		JoinAttempts:   n.joinAttempts.Load(),
		JoinFailures:   n.joinFailures.Load(),
		StoredPeers:    n.store.len(),
		DroppedPackets: n.conn.dropped.Load(),
	}
}

// Close stops the node: it ends lookups in flight (Peers returns
// ErrClosed), waits for its goroutines, closes the DHT and the socket, and
// waits for a read in progress to return. Idempotent.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.mu.Lock()
		n.closed = true
		n.mu.Unlock()
		n.cancel()
		n.wg.Wait()
		n.srv.Close()
		n.conn.Close()
	})
	return nil
}

// localIPs lists the addresses of this host: the socket's own when it is
// bound to one, and every interface address.
func localIPs(local net.Addr) map[netip.Addr]bool {
	ips := make(map[netip.Addr]bool)
	if ua, ok := asUDPAddr(local); ok && !ua.IP.IsUnspecified() {
		ip, _ := netip.AddrFromSlice(ua.IP)
		ips[ip.Unmap()] = true
	}
	ifaddrs, _ := net.InterfaceAddrs()
	for _, a := range ifaddrs {
		if pfx, err := netip.ParsePrefix(a.String()); err == nil {
			ips[pfx.Addr().Unmap()] = true
		}
	}
	return ips
}

// families reports which address families a socket bound to local can
// reach: a socket bound to one address reaches that family only.
func families(local net.Addr) (v4, v6 bool) {
	ua, ok := asUDPAddr(local)
	if !ok || ua.IP.IsUnspecified() {
		return true, true
	}
	is4 := ua.IP.To4() != nil
	return is4, !is4
}

// dhtLogger routes the library's logs to log: its warnings and errors as
// warnings, the rest at debug level (not even formatted when log does not
// take debug records).
func dhtLogger(log *slog.Logger) alog.Logger {
	l := alog.NewLogger("dht")
	l.SetHandlers(slogHandler{log})
	if log.Enabled(context.Background(), slog.LevelDebug) {
		return l.WithFilterLevel(alog.NotSet)
	}
	return l.WithFilterLevel(alog.Warning)
}

type slogHandler struct{ log *slog.Logger }

func (h slogHandler) Handle(r alog.Record) {
	level := slog.LevelDebug
	switch r.Level {
	case alog.Warning, alog.Error, alog.Critical:
		level = slog.LevelWarn
	}
	h.log.Log(context.Background(), level, "discovery: dht: "+r.Msg.String())
}
