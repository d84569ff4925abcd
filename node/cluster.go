package node

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/cespare/xxhash/v2"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/rafka/rafka/node/group"
	"github.com/rafka/rafka/node/meta"
	"github.com/rafka/rafka/node/raftlog"
	"github.com/rafka/rafka/quicnet"
	"github.com/rafka/rafka/routing/discovery"
	"github.com/rafka/rafka/wire"
)

// Every broker is a member of a cluster, a cluster of one when started
// without Join (docs/cluster.md). The cluster's metadata (its id, the
// brokers, the topics and where their partitions live) is the state machine
// of one raft group, metaGroup, replicated by the metadata voters and
// followed by every other broker as a learner; each broker applies it to its
// own meta.State and serves metadata from it.
//
//   - Forming: a broker with an empty data directory and no Join generates a
//     cluster id (DataDir/cluster.json) and bootstraps the group with itself
//     as the only voter.
//   - Joining: a broker with Join heartbeats those addresses
//     (APIBrokerHeartbeat) until one answers with the cluster id, following
//     NOT_LEADER hints to the metadata leader, which registers it (a
//     committed RegisterBroker) and adds it to the group as a learner.
//   - Liveness: every broker heartbeats the metadata leader each
//     HeartbeatInterval; the leader keeps leases in memory (meta.Leases) and
//     commits a FenceBroker for a broker whose lease expired, so every broker
//     agrees on who is alive. A fenced broker that heartbeats again is
//     registered again (a new epoch).
//   - Voters: the leader keeps the voter set at the largest odd number of
//     live brokers up to MetadataVoters, chosen by rendezvous hashing, one
//     configuration change at a time (meta.DesiredVoters).
//   - Hosting: after every change the broker opens the partitions placed on
//     it and closes those no longer there (reconcile in topic.go).
//
// Goroutines (owned by cluster, stopped by stop): the raft driver's, one link
// per peer (peer.go), the heartbeat loop, the peer liveness loop, the leader
// loop, the reconcile loop and the DHT node's.

// metaGroup is the raft group id of the cluster metadata.
const metaGroup uint64 = 1

// metaProposeTimeout bounds how long a topic change waits for the metadata
// group to commit it.
const metaProposeTimeout = 10 * time.Second

// clusterFile is DataDir/cluster.json: which cluster this data belongs to,
// and the instance id that tells this data directory from another one
// claiming the same broker id.
type clusterFile struct {
	ClusterID string `json:"cluster_id,omitempty"`
	Instance  string `json:"instance"`
}

// ErrClusterMismatch is the cause of a broker's failure when the brokers it
// was told to join belong to another cluster than its data directory.
var ErrClusterMismatch = errors.New("node: the brokers to join belong to another cluster")

type cluster struct {
	b        *Broker
	cfg      ClusterConfig
	raftID   uint64
	instance string
	file     string // path of cluster.json

	state      *meta.State
	store      *raftlog.FileStorage
	driver     *group.Driver
	peers      *peers
	dht        atomic.Pointer[discovery.Node]
	dhtMu      sync.Mutex // serialises starting and stopping the DHT node
	dhtStopped bool       // guarded by dhtMu
	metrics    clusterMetrics

	id     atomic.Pointer[string] // cluster id, once known
	epoch  atomic.Uint64          // our registration epoch, from the last heartbeat answer
	joined atomic.Bool            // registered and the group added
	// bootCommit is the commit index in storage at start: partitions of
	// topics created at or before it existed before this start.
	bootCommit uint64

	changed chan struct{} // the state changed: reconcile
	failed  chan error    // a fatal condition (another cluster, duplicate id)
	failOne sync.Once

	next     atomic.Uint64 // round robin over candidates
	lastWarn atomic.Int64  // unix ns of the last failed-heartbeat warning

	barrier metaBarrier // syncMeta's rounds

	regMu  sync.Mutex // serialises registrations in handleHeartbeat
	formMu sync.Mutex // a founder forming the cluster vs. a heartbeat answer joining one

	// mu guards the leader's bookkeeping.
	mu         sync.Mutex
	leases     *meta.Leases
	leaderTerm uint64 // the term in which leases were last reset

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type clusterMetrics struct {
	raftSent, raftReceived, raftDropped, raftGroupsFailed *metrics.Counter
	heartbeatsFailed, fenced                              *metrics.Counter
	dhtLookups, dhtAnnounces, dhtDrops                    *metrics.Counter // copied from the DHT node's counters per scrape
}

// syncDHTMetrics copies the DHT node's counters into the broker's metrics.
func (c *cluster) syncDHTMetrics() {
	d := c.dhtNode()
	if d == nil {
		return
	}
	st := d.Stats()
	c.metrics.dhtLookups.Set(st.Lookups)
	c.metrics.dhtAnnounces.Set(st.Announces)
	c.metrics.dhtDrops.Set(st.DroppedPackets)
}

// raftIDOf maps a broker id to its raft node id.
func raftIDOf(brokerID string) uint64 {
	id := xxhash.Sum64String("rafka/broker/" + brokerID)
	if id == 0 {
		id = 1
	}
	return id
}

func newCluster(b *Broker) (*cluster, error) {
	c := &cluster{
		b: b, cfg: b.cfg.Cluster, raftID: raftIDOf(b.id),
		file:    filepath.Join(b.cfg.DataDir, "cluster.json"),
		state:   meta.NewState(),
		changed: make(chan struct{}, 1),
		failed:  make(chan error, 1),
		leases:  meta.NewLeases(b.cfg.Cluster.LeaseTimeout),
	}
	cf, err := c.loadFile()
	if err != nil {
		return nil, err
	}
	c.instance = cf.Instance
	if cf.ClusterID != "" {
		c.id.Store(&cf.ClusterID)
	}
	c.store, err = raftlog.Open(filepath.Join(b.cfg.DataDir, "meta"), raftlog.Options{Logger: b.log})
	if err != nil {
		return nil, fmt.Errorf("node: metadata log: %w", err)
	}
	hs, _, err := c.store.InitialState()
	if err != nil {
		c.store.Close()
		return nil, fmt.Errorf("node: metadata log: %w", err)
	}
	c.bootCommit = hs.GetCommit()
	c.registerMetrics(b.metrics)
	return c, nil
}

func (c *cluster) loadFile() (clusterFile, error) {
	var cf clusterFile
	switch data, err := os.ReadFile(c.file); {
	case err == nil:
		if err := json.Unmarshal(data, &cf); err != nil || cf.Instance == "" {
			return cf, fmt.Errorf("node: %s is corrupt (%v); restore it from a backup", c.file, err)
		}
		return cf, nil
	case !errors.Is(err, os.ErrNotExist):
		return cf, fmt.Errorf("node: %w", err)
	}
	cf.Instance = randomHex(8)
	return cf, c.saveFile(cf)
}

func (c *cluster) saveFile(cf clusterFile) error {
	data, _ := json.Marshal(cf)
	if err := writeFileSync(c.file, data); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (c *cluster) clusterID() string {
	if p := c.id.Load(); p != nil {
		return *p
	}
	return ""
}

// fail records a fatal condition: the broker reports it (Broker.Failed) and
// its owner shuts it down.
func (c *cluster) fail(err error) {
	c.failOne.Do(func() {
		c.b.log.Error("cluster membership failed; stopping", "err", err)
		c.failed <- err
	})
}

// start begins membership once the listener is bound: it forms the
// cluster, rejoins it from the data directory, or joins it through Join.
func (c *cluster) start(tlsFiles quicnet.TLSFiles) error {
	c.ctx, c.cancel = context.WithCancel(c.b.ctx)
	peerTLS, err := peerTLSConfig(tlsFiles)
	if err != nil {
		return err
	}
	c.peers = newPeers(c.b, c, peerTLS)
	c.driver, err = group.New(group.Config{
		ID: c.raftID, TickInterval: c.cfg.RaftTick, Transport: c.peers, Logger: c.b.log.With("group", "meta"),
		OnGroupFailed: func(g uint64, err error) {
			c.metrics.raftGroupsFailed.Inc()
			if g != metaGroup {
				c.b.groupFailed(g, err)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	switch {
	case c.clusterID() != "":
		if err := c.addGroup(nil); err != nil {
			return err
		}
		c.waitReplay()
	case len(c.cfg.Join) == 0:
		if err := c.form(); err != nil {
			return err
		}
	case c.founder():
		c.b.log.Info("joining a cluster, or forming it if no other --join address answers as a member", "join", c.cfg.Join)
		c.wg.Go(c.foundUnlessJoined)
	default:
		c.b.log.Info("joining a cluster", "join", c.cfg.Join)
	}
	c.startDHT(c.clusterID())
	c.wg.Go(c.heartbeatLoop)
	c.wg.Go(c.leaderLoop)
	c.wg.Go(c.livenessLoop)
	if c.joined.Load() && len(c.cfg.Join) > 0 {
		c.wg.Go(c.checkJoin)
	}
	return nil
}

// form makes this broker a new cluster of one, unless it joined one
// meanwhile.
func (c *cluster) form() error {
	c.formMu.Lock()
	defer c.formMu.Unlock()
	if c.joined.Load() {
		return nil
	}
	id := "c-" + randomHex(8)
	if err := c.saveFile(clusterFile{ClusterID: id, Instance: c.instance}); err != nil {
		return err
	}
	c.id.Store(&id)
	if err := c.addGroup([]uint64{c.raftID}); err != nil {
		return err
	}
	c.b.log.Info("formed a new cluster", "cluster", id)
	return nil
}

// founder tells whether this broker, with no cluster in its data
// directory, is the one to form the cluster when nobody else has: the
// broker advertised at the first Join address. Brokers started with the
// same flags (a StatefulSet's pods) can so agree on one founder without a
// flag of its own; docs/cluster.md, "Forming a cluster".
func (c *cluster) founder() bool {
	return strings.EqualFold(c.cfg.Join[0], c.b.advertised())
}

// foundWait is how long a founder looks for a cluster at the other Join
// addresses before it forms one (at least this, and at least three
// heartbeat intervals).
const foundWait = 3 * time.Second

// foundUnlessJoined forms the cluster when no other Join address has
// answered as a member of one for foundWait (the heartbeat loop joins a
// cluster that answers). A founder whose data directory was lost therefore
// rejoins its running cluster rather than forming another; only when every
// other broker is unreachable too does it form a new one, and those
// brokers then refuse it (CLUSTER_MISMATCH) rather than merge two clusters.
func (c *cluster) foundUnlessJoined() {
	deadline := time.Now().Add(max(foundWait, 3*c.cfg.HeartbeatInterval))
	for !c.joined.Load() {
		if addr, ok := c.memberAnswers(); ok {
			c.b.log.Info("a member of a cluster answers at a --join address: joining it rather than forming one", "at", addr)
			return
		}
		if time.Now().After(deadline) {
			if err := c.form(); err != nil {
				c.fail(err)
			}
			return
		}
		t := time.NewTimer(c.cfg.HeartbeatInterval)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// memberAnswers asks the Join addresses (this broker's own excluded) for a
// heartbeat and reports the first whose answer names a cluster.
func (c *cluster) memberAnswers() (string, bool) {
	for _, addr := range c.joinAddrs() {
		req := c.heartbeatRequest()
		var resp wire.BrokerHeartbeatResponse
		if err := c.peers.callWithin(c.ctx, c.cfg.HeartbeatInterval, addr, wire.APIBrokerHeartbeat, &req, &resp); err != nil {
			continue
		}
		if resp.ClusterID != "" {
			return addr, true
		}
	}
	return "", false
}

// checkJoin asks the Join brokers, once one answers, whether they belong to
// this broker's cluster: a data directory of one cluster must not join
// another (its heartbeats would otherwise go to its own old members only).
func (c *cluster) checkJoin() {
	backoff := c.cfg.HeartbeatInterval
	for {
		for _, addr := range c.joinAddrs() {
			req := c.heartbeatRequest()
			var resp wire.BrokerHeartbeatResponse
			if err := c.peers.call(c.ctx, addr, wire.APIBrokerHeartbeat, &req, &resp); err != nil {
				continue // not reachable: try the next
			}
			if resp.Error == wire.ErrClusterMismatch {
				c.fail(fmt.Errorf("%w: %s", ErrClusterMismatch, resp.Message))
				c.cancel()
			}
			return // answered: same cluster (or the answer says nothing else)
		}
		t := time.NewTimer(backoff)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// joinAddrs resolves the Join addresses (a name may stand for several).
func (c *cluster) joinAddrs() []string {
	var out []string
	for _, j := range c.cfg.Join {
		host, port, err := net.SplitHostPort(j)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(c.ctx, time.Second)
		ips, err := net.DefaultResolver.LookupHost(ctx, host)
		cancel()
		if err != nil || len(ips) == 0 {
			out = append(out, j)
			continue
		}
		for _, ip := range ips {
			out = append(out, net.JoinHostPort(ip, port))
		}
	}
	self := c.b.advertised()
	return slices.DeleteFunc(out, func(a string) bool { return a == self || a == c.b.Addr() })
}

// addGroup starts the metadata group from storage (bootstrap names the
// voters of a brand-new cluster).
func (c *cluster) addGroup(bootstrap []uint64) error {
	// A broker joining with an empty metadata log joins as a new member,
	// perhaps under the raft id of an earlier copy of itself (same broker
	// id, data directory lost): it does not vote before it caught up.
	last, err := c.store.LastIndex()
	if err != nil {
		return fmt.Errorf("node: metadata group: %w", err)
	}
	err = c.driver.AddGroup(group.GroupConfig{
		Group: metaGroup, Storage: c.store, SM: metaSM{c}, Bootstrap: bootstrap,
		Joining: bootstrap == nil && last == 0,
	})
	if err != nil {
		return fmt.Errorf("node: metadata group: %w", err)
	}
	c.joined.Store(true)
	return nil
}

// waitReplay waits (briefly) until the entries committed before this start
// have been applied, so topics are opened from an up-to-date state.
func (c *cluster) waitReplay() {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if st, ok := c.driver.Status(metaGroup); ok && st.Applied >= c.bootCommit {
			return
		}
		select {
		case <-c.changed:
			c.notify() // keep the signal for the reconcile loop
		case <-time.After(5 * time.Millisecond):
		}
	}
	c.b.log.Warn("metadata replay still running; serving what has been applied", "commit", c.bootCommit)
}

// metaSM applies metadata entries to the broker's state.
type metaSM struct{ c *cluster }

func (m metaSM) Apply(index uint64, data []byte) any {
	r := m.c.state.Apply(index, data)
	m.c.notify()
	return r
}

func (m metaSM) Snapshot() ([]byte, error) { return m.c.state.Snapshot() }

func (m metaSM) Restore(data []byte) error {
	err := m.c.state.Restore(data)
	m.c.notify()
	return err
}

func (c *cluster) notify() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

func (c *cluster) reportUnreachable(peer uint64) {
	if c.driver != nil {
		c.driver.ReportUnreachable(peer)
	}
}

// status is the metadata group's raft status; ok is false before the group
// exists (a broker still joining).
func (c *cluster) status() (group.Status, bool) {
	if c.driver == nil || !c.joined.Load() {
		return group.Status{}, false
	}
	return c.driver.Status(metaGroup)
}

// raftStats are the raft driver's counters; zero before it starts.
func (b *Broker) raftStats() group.Stats {
	if b.cluster == nil || b.cluster.driver == nil {
		return group.Stats{}
	}
	return b.cluster.driver.Stats()
}

func (c *cluster) isLeader() bool {
	st, ok := c.status()
	return ok && st.Leader == c.raftID
}

// leaderAddr is the metadata leader's broker id and address, when known.
func (c *cluster) leaderAddr() (id, addr string) {
	st, ok := c.status()
	if !ok || st.Leader == 0 {
		return "", ""
	}
	if br, ok := c.state.BrokerByRaftID(st.Leader); ok {
		return br.ID, br.Addr
	}
	return "", c.peers.addr(st.Leader)
}

// ready reports whether the broker has joined and applied what the
// metadata leader committed, with the reason when not.
func (c *cluster) ready() (bool, string) {
	if c.clusterID() == "" || !c.joined.Load() {
		return false, "not joined to a cluster yet (see the log for why)"
	}
	st, ok := c.status()
	switch {
	case !ok:
		return false, "metadata group not started"
	case st.Leader == 0:
		return false, "no metadata leader known"
	case st.Applied < st.Commit:
		return false, fmt.Sprintf("metadata catching up: applied %d of %d", st.Applied, st.Commit)
	}
	if br, ok := c.state.Broker(c.b.id); !ok || br.State != meta.BrokerAlive {
		return false, "not registered as alive in the cluster yet"
	}
	return true, ""
}

// behind is the retriable answer for a topic this broker does not know
// while its copy of the metadata may not be complete (starting, joining,
// catching up): the topic may exist. Nil once it is caught up, when an
// unknown topic is really unknown.
func (c *cluster) behind() *wire.Error {
	if ok, why := c.ready(); !ok {
		return &wire.Error{Code: wire.ErrMetadataUnavailable, Message: "this broker's metadata is not caught up (" + why + "); retry"}
	}
	return nil
}

// propose commits a metadata command and returns its result once this
// broker has applied it. No leader (or no quorum) is METADATA_UNAVAILABLE,
// which clients retry.
func (c *cluster) propose(ctx context.Context, cmd meta.Command) error {
	data, err := meta.EncodeCommand(cmd)
	if err != nil {
		return err
	}
	if !c.joined.Load() {
		return &wire.Error{Code: wire.ErrMetadataUnavailable, Message: "this broker has not joined a cluster yet"}
	}
	ctx, cancel := context.WithTimeout(ctx, metaProposeTimeout)
	defer cancel()
	res, _, err := c.driver.Propose(ctx, metaGroup, data)
	switch {
	case errors.Is(err, group.ErrNoLeader), errors.Is(err, group.ErrProposalDropped), errors.Is(err, context.DeadlineExceeded):
		return &wire.Error{Code: wire.ErrMetadataUnavailable, Message: fmt.Sprintf("metadata group cannot commit now (%v); retry", err)}
	case err != nil:
		return err
	}
	if r, ok := res.(meta.Result); ok && r.Err != nil {
		return r.Err
	}
	return nil
}

// livenessLoop checks every raft tick which peers went silent on their
// raft links or were heard from again, and tells the raft driver (see
// peer.go).
func (c *cluster) livenessLoop() {
	t := time.NewTicker(c.cfg.RaftTick)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			c.peers.checkLiveness(c.cfg.RaftTick)
		}
	}
}

// heartbeatLoop renews this broker's lease at the metadata leader (and, the
// first time, registers it or joins the cluster) every heartbeat interval.
func (c *cluster) heartbeatLoop() {
	t := time.NewTicker(c.cfg.HeartbeatInterval)
	defer t.Stop()
	hint := ""
	for {
		hint = c.heartbeatOnce(hint)
		if hint != "" {
			continue // NOT_LEADER named the leader: go there now
		}
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// heartbeatOnce sends one heartbeat: to target when set, else to the known
// leader, else to the next candidate. It returns the leader address of a
// NOT_LEADER answer, to be tried next.
func (c *cluster) heartbeatOnce(target string) (hint string) {
	if target == "" {
		_, target = c.leaderAddr()
	}
	if target == "" && !c.joined.Load() {
		if cands := c.candidates(); len(cands) > 0 {
			target = cands[int(c.next.Add(1))%len(cands)]
		}
	}
	req := c.heartbeatRequest()
	var resp *wire.BrokerHeartbeatResponse
	var err error
	switch {
	case c.joined.Load() && (target == "" || c.isLeader()):
		resp = c.handleHeartbeat(c.ctx, &req)
	case target == "":
		err = errors.New("no broker to contact: give --join addresses")
	default:
		resp = new(wire.BrokerHeartbeatResponse)
		err = c.peers.call(c.ctx, target, wire.APIBrokerHeartbeat, &req, resp)
	}
	if err == nil {
		err = resp.Err()
	}
	if c.ctx.Err() != nil {
		return ""
	}
	if err == nil {
		c.heartbeatDone(resp, target)
		return ""
	}
	c.metrics.heartbeatsFailed.Inc()
	var we *wire.Error
	switch {
	case errors.As(err, &we) && we.Code == wire.ErrNotLeader && resp != nil && resp.LeaderAddr != "" && resp.LeaderAddr != target:
		return resp.LeaderAddr
	case errors.As(err, &we) && we.Code == wire.ErrClusterMismatch:
		c.fail(fmt.Errorf("%w: %s", ErrClusterMismatch, we.Message))
		c.cancel()
		return ""
	case errors.As(err, &we) && we.Code == wire.ErrDuplicateBrokerID:
		c.fail(fmt.Errorf("node: %s", we.Message))
		c.cancel()
		return ""
	}
	if now := time.Now().UnixNano(); now-c.lastWarn.Load() > int64(10*c.cfg.HeartbeatInterval) {
		c.b.log.Warn("heartbeat to the metadata leader failed; retrying", "target", target, "err", err)
		c.lastWarn.Store(now)
	}
	return ""
}

func (c *cluster) heartbeatRequest() wire.BrokerHeartbeatRequest {
	var applied uint64
	if st, ok := c.status(); ok {
		applied = st.Applied
	}
	return wire.BrokerHeartbeatRequest{
		ClusterID: c.clusterID(), BrokerID: c.b.id, Instance: c.instance, RaftID: c.raftID,
		Addr: c.b.advertised(), Zone: c.cfg.Zone, Applied: applied,
	}
}

// heartbeatDone takes a successful answer: the first one of a joining
// broker gives it the cluster id and starts its copy of the metadata.
func (c *cluster) heartbeatDone(resp *wire.BrokerHeartbeatResponse, from string) {
	c.epoch.Store(resp.Epoch)
	if c.joined.Load() {
		return
	}
	c.formMu.Lock() // a founder may be forming the cluster right now
	defer c.formMu.Unlock()
	if c.joined.Load() {
		return
	}
	id := resp.ClusterID
	if err := c.saveFile(clusterFile{ClusterID: id, Instance: c.instance}); err != nil {
		c.fail(err)
		return
	}
	c.id.Store(&id)
	if from != "" {
		// The leader's messages name their sender; until then, this is
		// where the leader is.
		if br, ok := c.state.Broker(resp.LeaderID); ok {
			c.peers.setAddr(br.RaftID, br.Addr)
		} else if resp.LeaderID != "" {
			c.peers.setAddr(raftIDOf(resp.LeaderID), from)
		}
	}
	if err := c.addGroup(nil); err != nil {
		c.fail(err)
		return
	}
	c.startDHT(id)
	c.b.log.Info("joined the cluster", "cluster", id, "via", from)
}

// candidates are the addresses to try when the leader is unknown: the
// known brokers, the Join addresses (resolved) and the DHT's peers.
func (c *cluster) candidates() []string {
	var out []string
	for _, br := range c.state.Brokers() {
		if br.ID != c.b.id && br.Addr != "" {
			out = append(out, br.Addr)
		}
	}
	out = append(out, c.joinAddrs()...)
	if d := c.dhtNode(); d != nil {
		ctx, cancel := context.WithTimeout(c.ctx, time.Second)
		aps, _ := d.Peers(ctx)
		cancel()
		for _, ap := range aps {
			out = append(out, ap.String())
		}
	}
	self := c.b.advertised()
	out = slices.DeleteFunc(out, func(a string) bool { return a == self || a == c.b.Addr() })
	slices.Sort(out)
	return slices.Compact(out)
}

// handleHeartbeat is the metadata leader's side of a heartbeat: it checks the
// cluster, registers a new or returning broker, adds it to the group, and
// renews its lease.
func (c *cluster) handleHeartbeat(ctx context.Context, req *wire.BrokerHeartbeatRequest) *wire.BrokerHeartbeatResponse {
	resp := &wire.BrokerHeartbeatResponse{ClusterID: c.clusterID()}
	resp.LeaderID, resp.LeaderAddr = c.leaderAddr()
	fail := func(code wire.ErrorCode, format string, args ...any) *wire.BrokerHeartbeatResponse {
		resp.Error, resp.Message = code, fmt.Sprintf(format, args...)
		return resp
	}
	if req.ClusterID != "" && resp.ClusterID != "" && req.ClusterID != resp.ClusterID {
		return fail(wire.ErrClusterMismatch, "broker %s belongs to cluster %s, this is cluster %s: a data directory of one cluster cannot join another",
			req.BrokerID, req.ClusterID, resp.ClusterID)
	}
	if !c.isLeader() {
		if resp.LeaderAddr == "" {
			return fail(wire.ErrMetadataUnavailable, "no metadata leader known")
		}
		return fail(wire.ErrNotLeader, "the metadata leader is %s at %s", resp.LeaderID, resp.LeaderAddr)
	}
	if err := c.ensureInit(ctx); err != nil {
		return errHeartbeat(resp, err)
	}
	if req.BrokerID == "" || req.RaftID != raftIDOf(req.BrokerID) || req.Instance == "" || req.Addr == "" {
		return fail(wire.ErrInvalidRequest, "heartbeat needs broker id, its raft id, instance and address")
	}
	br, known := c.state.Broker(req.BrokerID)
	if known && br.Instance != req.Instance && br.State == meta.BrokerAlive && br.ID != c.b.id {
		if age, ok := c.leaseAge(br.ID); ok && age < c.cfg.LeaseTimeout {
			return fail(wire.ErrDuplicateBrokerID, "broker id %s is already in the cluster, held by another data directory at %s; give this broker another --broker-id, or wait until the other is declared dead", req.BrokerID, br.Addr)
		}
	}
	needsRegistration := func() bool {
		br, known = c.state.Broker(req.BrokerID)
		return !known || br.State != meta.BrokerAlive || br.Instance != req.Instance || br.Addr != req.Addr || br.Zone != req.Zone
	}
	if needsRegistration() {
		// One registration at a time, checked again under the lock: two
		// heartbeats of one broker in flight (a retried join, the first
		// heartbeat racing the loop's) must not register it twice. Lease
		// renewals of registered brokers do not wait for it.
		c.regMu.Lock()
		defer c.regMu.Unlock()
	}
	if needsRegistration() {
		cmd := meta.RegisterBroker{ID: req.BrokerID, RaftID: req.RaftID, Instance: req.Instance, Addr: req.Addr, Zone: req.Zone}
		if err := c.propose(ctx, cmd); err != nil {
			return errHeartbeat(resp, err)
		}
		br, _ = c.state.Broker(req.BrokerID)
		c.b.log.Info("broker registered", "registered", br.ID, "addr", br.Addr, "zone", br.Zone, "epoch", br.Epoch)
	}
	c.peers.setAddr(req.RaftID, req.Addr)
	if st, ok := c.status(); ok && !slices.Contains(st.Voters, req.RaftID) && !slices.Contains(st.Learners, req.RaftID) {
		cctx, cancel := context.WithTimeout(ctx, metaProposeTimeout)
		_, err := c.driver.ProposeConfChange(cctx, metaGroup, confChange(raftpb.ConfChangeAddLearnerNode, req.RaftID))
		cancel()
		if err != nil {
			return errHeartbeat(resp, err)
		}
		c.b.log.Info("broker added to the metadata group as a learner", "broker", req.BrokerID)
	}
	c.mu.Lock()
	c.leases.Renew(br.ID, br.Epoch, time.Now())
	c.mu.Unlock()
	resp.Epoch = br.Epoch
	resp.LeaseMs = c.cfg.LeaseTimeout.Milliseconds()
	return resp
}

// ensureInit commits the cluster's first entry, naming its id, if the
// metadata has none yet (the leader of a new cluster does it once).
func (c *cluster) ensureInit(ctx context.Context) error {
	if c.state.ClusterID() != "" {
		return nil
	}
	if c.clusterID() == "" {
		return &wire.Error{Code: wire.ErrMetadataUnavailable, Message: "the cluster is still forming"}
	}
	err := c.propose(ctx, meta.InitCluster{ClusterID: c.clusterID()})
	if c.state.ClusterID() != "" {
		return nil // committed, possibly by a concurrent call
	}
	return err
}

func errHeartbeat(resp *wire.BrokerHeartbeatResponse, err error) *wire.BrokerHeartbeatResponse {
	var we *wire.Error
	if errors.As(err, &we) {
		resp.Error, resp.Message = we.Code, we.Message
		return resp
	}
	resp.Error, resp.Message = wire.ErrMetadataUnavailable, err.Error()
	if errors.Is(err, meta.ErrDuplicateBrokerID) {
		resp.Error = wire.ErrDuplicateBrokerID
	}
	return resp
}

func (c *cluster) leaseAge(id string) (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leases.Age(id, time.Now())
}

// leaderLoop runs the metadata leader's duties every heartbeat interval:
// the cluster's first entry, fencing expired leases, voter changes.
func (c *cluster) leaderLoop() {
	t := time.NewTicker(c.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		st, ok := c.status()
		if !ok || st.Leader != c.raftID {
			continue
		}
		c.mu.Lock()
		if st.Term != c.leaderTerm {
			// A new leader has no heartbeats yet: everyone alive gets a
			// full lease rather than being fenced on stale data.
			c.leaderTerm = st.Term
			c.leases.Reset(time.Now())
		}
		expired := c.leases.Expired(c.state, time.Now())
		c.mu.Unlock()
		if err := c.ensureInit(c.ctx); err != nil {
			c.b.log.Warn("initialising the cluster", "err", err)
			continue
		}
		for _, br := range expired {
			if br.ID == c.b.id {
				continue
			}
			if err := c.propose(c.ctx, meta.FenceBroker{ID: br.ID, Epoch: br.Epoch}); err != nil {
				c.b.log.Warn("fencing a broker", "broker", br.ID, "err", err)
				continue
			}
			c.metrics.fenced.Inc()
			c.b.log.Warn("broker fenced: its lease expired", "broker", br.ID, "addr", br.Addr, "lease", c.cfg.LeaseTimeout)
		}
		c.changeVoters(st)
	}
}

// changeVoters makes one step towards the desired voter set.
func (c *cluster) changeVoters(st group.Status) {
	desired := meta.DesiredVoters(c.state, st.Voters, c.cfg.MetadataVoters)
	caughtUp := func(id uint64) bool {
		match, ok := st.Progress[id]
		return ok && match+100 >= st.Commit
	}
	// Growing an odd voter set one voter at a time passes through an even
	// one (1, 2, 3): with two voters, losing either stops the metadata. So
	// two caught-up learners are promoted together (joint consensus), and
	// the set goes from 1 to 3 (or 3 to 5) in one change.
	if len(st.Voters)%2 == 1 && len(desired) >= len(st.Voters)+2 {
		var pair []uint64
		for _, id := range desired {
			if slices.Contains(st.Learners, id) && caughtUp(id) && len(pair) < 2 {
				pair = append(pair, id)
			}
		}
		if len(pair) == 2 {
			cc := &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{
				{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: new(pair[0])},
				{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: new(pair[1])},
			}}
			ctx, cancel := context.WithTimeout(c.ctx, metaProposeTimeout)
			defer cancel()
			if _, err := c.driver.ProposeConfChange(ctx, metaGroup, cc); err != nil {
				c.b.log.Warn("promoting two metadata voters", "err", err)
				return
			}
			c.b.log.Info("metadata voters changed", "promoted", pair)
			return
		}
	}
	ch := meta.NextVoterChange(st.Voters, st.Learners, desired)
	var cc *raftpb.ConfChangeV2
	switch ch.Kind {
	case meta.AddLearner:
		cc = confChange(raftpb.ConfChangeAddLearnerNode, ch.RaftID)
	case meta.PromoteVoter:
		if !caughtUp(ch.RaftID) {
			return // promote only a learner that has caught up
		}
		if len(st.Voters)%2 == 1 && len(desired) > len(st.Voters) {
			return // wait for a second learner: see above
		}
		cc = confChange(raftpb.ConfChangeAddNode, ch.RaftID)
	case meta.RemoveVoter:
		// A dead voter is replaced by a live broker, never just dropped,
		// or losing brokers would shrink the group towards one copy of the
		// metadata: the group keeps as many voters as the registered
		// brokers (dead or alive) allow.
		floor := min(c.cfg.MetadataVoters, len(c.state.Brokers()))
		if floor%2 == 0 {
			floor--
		}
		if len(st.Voters)-1 < floor {
			return
		}
		// Demote rather than remove: the broker keeps following as a
		// learner and serves metadata reads when it comes back.
		cc = confChange(raftpb.ConfChangeAddLearnerNode, ch.RaftID)
	default:
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, metaProposeTimeout)
	defer cancel()
	if _, err := c.driver.ProposeConfChange(ctx, metaGroup, cc); err != nil {
		c.b.log.Warn("changing metadata voters", "change", ch, "err", err)
		return
	}
	c.b.log.Info("metadata voters changed", "change", ch)
}

// startDHT runs the discovery node on the QUIC port once the cluster id is
// known: brokers announce themselves under it and list each other there,
// which the heartbeat loop uses when neither the leader nor Join answers.
func (c *cluster) startDHT(id string) {
	c.dhtMu.Lock()
	defer c.dhtMu.Unlock()
	if id == "" || c.dhtNode() != nil || c.dhtStopped || c.ctx.Err() != nil {
		return
	}
	tr := c.b.srv.Transport()
	if tr == nil {
		return
	}
	_, portStr, _ := net.SplitHostPort(c.b.advertised())
	port, _ := strconv.Atoi(portStr)
	// The DHT speaks UDP to the Join addresses itself, so it needs them
	// where this broker reaches them (PeerConnectTo), as peers.conn does.
	join := make([]string, len(c.cfg.Join))
	for i, j := range c.cfg.Join {
		join[i] = c.cfg.peerDialAddr(j)
	}
	n, err := discovery.New(quicnet.NewSharedPacketConn(tr), discovery.Config{
		ClusterID: id, Port: port, Join: join, Logger: c.b.log.With("component", "dht"),
	})
	if err != nil {
		c.b.log.Warn("DHT discovery not started; brokers are found through --join and metadata only", "err", err)
		return
	}
	c.dht.Store(n)
}

func (c *cluster) dhtNode() *discovery.Node { return c.dht.Load() }

// stopDHT closes the DHT node, if any; later starts do nothing. Idempotent.
func (c *cluster) stopDHT() error {
	c.dhtMu.Lock()
	defer c.dhtMu.Unlock()
	c.dhtStopped = true
	if d := c.dhtNode(); d != nil {
		return d.Close()
	}
	return nil
}

// stop ends membership: loops, links, the driver and the log.
func (c *cluster) stop() error {
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
	var errs []error
	errs = append(errs, c.stopDHT())
	if c.driver != nil {
		errs = append(errs, c.driver.Close())
	}
	if c.peers != nil {
		c.peers.close()
	}
	errs = append(errs, c.store.Close())
	return errors.Join(errs...)
}

func (c *cluster) registerMetrics(m *brokerMetrics) {
	c.metrics.raftSent = m.counter("rafka_raft_messages_sent_total", "Raft messages handed to peer links, all groups.")
	c.metrics.raftReceived = m.counter("rafka_raft_messages_received_total", "Raft messages received from peers, all groups.")
	c.metrics.raftGroupsFailed = m.counter("rafka_raft_groups_failed_total", "Raft groups failed on this broker: their storage or state machine failed, or raft panicked on their state (a peer's message it cannot take); such a group stops, the broker and its other groups go on, the log names it, and a partition's group is reopened from its log after a pause (1 s, doubling per failure up to 1 min).")
	c.metrics.raftDropped = m.counter("rafka_raft_messages_dropped_total", "Raft messages dropped: a peer unreachable, a queue full, or a message for another cluster (raft retransmits).")
	c.metrics.heartbeatsFailed = m.counter("rafka_cluster_heartbeat_failures_total", "Heartbeats to the metadata leader that failed (no leader, unreachable, refused).")
	c.metrics.fenced = m.counter("rafka_cluster_brokers_fenced_total", "Brokers this broker fenced as metadata leader after their lease expired.")
	for _, s := range []meta.BrokerState{meta.BrokerAlive, meta.BrokerFenced} {
		m.gauge(fmt.Sprintf(`rafka_cluster_brokers{state=%q}`, s), "Brokers of the cluster by state, as this broker's copy of the metadata has them.", func() float64 {
			n := 0
			for _, br := range c.state.Brokers() {
				if br.State == s {
					n++
				}
			}
			return float64(n)
		})
	}
	stat := func(f func(group.Status) float64) func() float64 {
		return func() float64 {
			st, ok := c.status()
			if !ok {
				return 0
			}
			return f(st)
		}
	}
	m.gauge("rafka_meta_term", "Raft term of the metadata group.", stat(func(s group.Status) float64 { return float64(s.Term) }))
	m.gauge("rafka_meta_leader", "1 if this broker leads the metadata group.", stat(func(s group.Status) float64 {
		if s.Leader == c.raftID {
			return 1
		}
		return 0
	}))
	m.gauge("rafka_meta_has_leader", "1 if this broker knows a metadata leader.", stat(func(s group.Status) float64 {
		if s.Leader != 0 {
			return 1
		}
		return 0
	}))
	m.gauge("rafka_meta_applied_index", "Metadata log index this broker has applied.", stat(func(s group.Status) float64 { return float64(s.Applied) }))
	m.gauge("rafka_meta_commit_lag_entries", "Committed metadata entries this broker has not applied yet.", stat(func(s group.Status) float64 { return float64(s.Commit - min(s.Applied, s.Commit)) }))
	m.gauge("rafka_meta_voters", "Voters of the metadata group.", stat(func(s group.Status) float64 { return float64(len(s.Voters)) }))
	m.gauge("rafka_partitions_led", "Replicated partitions this broker leads.", func() float64 {
		led, _ := c.b.replicationCounts()
		return float64(led)
	})
	m.gauge("rafka_partitions_under_replicated", "Replicated partitions this broker leads with a replica whose broker is not alive or whose log is over 1000 entries behind the commit.", func() float64 {
		_, under := c.b.replicationCounts()
		return float64(under)
	})
	m.gauge("rafka_dht_nodes", "Nodes in this broker's DHT routing table.", func() float64 {
		if d := c.dhtNode(); d != nil {
			return float64(d.Stats().Nodes)
		}
		return 0
	})
	c.metrics.dhtLookups = m.counter("rafka_dht_lookups_total", "Peer lookups this broker made in the DHT (when neither the metadata leader nor --join answered).")
	c.metrics.dhtAnnounces = m.counter("rafka_dht_announces_total", "Announce rounds this broker completed in the DHT.")
	c.metrics.dhtDrops = m.counter("rafka_dht_dropped_datagrams_total", "Datagrams on the QUIC port taken for the DHT but dropped as malformed.")
}

// peerTLSConfig is the client side of broker-to-broker connections: this
// broker's certificate, and the cluster CA to check the peer's. A broker
// without them forms a cluster of one that nobody can join (nil).
func peerTLSConfig(f quicnet.TLSFiles) (*tls.Config, error) {
	if f.CAFile == "" || f.CertFile == "" {
		return nil, nil
	}
	_, client, err := quicnet.PeerTLSConfigs(quicnet.TLSFiles{CertFile: f.CertFile, KeyFile: f.KeyFile, CAFile: f.CAFile})
	if err != nil {
		return nil, fmt.Errorf("node: broker-to-broker TLS: %w", err)
	}
	return client, nil
}

// settle waits, bounded by a few election timeouts, until a metadata leader
// is known and this broker's first heartbeat has registered it, so that a
// broker of a cluster of one (or with a quorum up) is usable when Start
// returns.
func (c *cluster) settle() {
	deadline := time.Now().Add(30 * c.cfg.RaftTick)
	for time.Now().Before(deadline) && c.ctx.Err() == nil {
		if st, ok := c.status(); ok && st.Leader != 0 && st.Applied >= c.bootCommit {
			break
		}
		c.waitChange(5 * time.Millisecond)
	}
	if c.ctx.Err() != nil {
		return
	}
	if ok, _ := c.ready(); !ok {
		c.heartbeatOnce("")
	}
}

// waitChange waits for a metadata change or d, whichever comes first, and
// keeps the change signal for the reconcile loop.
func (c *cluster) waitChange(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.changed:
		c.notify()
	case <-t.C:
	case <-c.ctx.Done():
	}
}

// Failed delivers the error that made the broker's membership fail for
// good (its data belongs to another cluster, its id is taken). The broker
// keeps serving what it can; its owner should shut it down and report the
// error.
func (b *Broker) Failed() <-chan error { return b.cluster.failed }

// reconcileLoop reconciles hosted partitions after every metadata change.
func (b *Broker) reconcileLoop() {
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-b.cluster.changed:
			b.reconcile()
		}
	}
}

// importLegacyTopics adds the topics of a data directory written by a
// single-broker release to the cluster this broker has just formed, placed
// on this broker, keeping their data.
func (b *Broker) importLegacyTopics() {
	infos, err := b.legacyTopics()
	if err != nil {
		b.log.Error("reading topics of an earlier release", "err", err)
		return
	}
	for _, info := range infos {
		reps := make([][]string, info.Partitions)
		parts := make([]int32, info.Partitions)
		for i := range reps {
			reps[i] = []string{b.id}
			parts[i] = int32(i)
		}
		t := meta.Topic{TopicInfo: info, ID: randomHex(8), Replicas: reps}
		if err := b.writeMarker(info.Name, topicMarker{ID: t.ID, Partitions: parts}); err != nil {
			b.log.Error("importing a topic", "topic", info.Name, "err", err)
			continue
		}
		if err := b.cluster.propose(b.ctx, meta.CreateTopic{Topic: t}); err != nil {
			b.log.Error("importing a topic", "topic", info.Name, "err", err)
			continue
		}
		b.log.Info("imported a topic of an earlier release", "topic", info.Name, "partitions", info.Partitions)
	}
}

// notHere is the answer for a partition of a known topic that this broker
// does not host: NOT_LEADER naming its leader, or PARTITION_OFFLINE when its
// broker is dead.
func (b *Broker) notHere(topic string, id int32) *wire.Error {
	leader, ok := b.preferredLeader(topic, id)
	if !ok {
		return &wire.Error{Code: wire.ErrPartitionOffline, Message: fmt.Sprintf(
			"partition %s/%d is offline: its broker is not alive", topic, id)}
	}
	if leader == b.id {
		return &wire.Error{Code: wire.ErrNotLeader, Message: fmt.Sprintf(
			"partition %s/%d is being opened on this broker; retry", topic, id)}
	}
	e := &wire.Error{Code: wire.ErrNotLeader, LeaderID: leader,
		Message: fmt.Sprintf("partition %s/%d is led by broker %s", topic, id, leader)}
	if br, ok := b.cluster.state.Broker(leader); ok {
		e.LeaderAddr = br.Addr
	}
	return e
}

// confChange is a one-step configuration change of the metadata group.
func confChange(typ raftpb.ConfChangeType, node uint64) *raftpb.ConfChangeV2 {
	return &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{Type: typ.Enum(), NodeId: new(node)}}}
}
