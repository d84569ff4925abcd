package node

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/rafka/rafka/node/replica"
	"github.com/rafka/rafka/segment"
	"github.com/rafka/rafka/wire"
)

// Replica consistency checks (docs/replication.md, "Consistency checks").
//
// The leader of a replicated partition compares its committed log with
// every replica's, range by range: it asks each replica where its log
// starts and how far it has committed (APIReplicaDigests with no ranges),
// takes the committed window all of them hold, splits it at its own
// segment bases, digests each range (replica.Partition.Digest: xxhash64 of
// each batch's offset, length, term and checksum) and asks each replica
// for the digests of the same ranges. Raft gives the same entry the same
// offset and term on every replica, and the broker stores entries as they
// were proposed, so committed ranges must agree; one that does not is
// logged (one line per range) and counted in rafka_replica_divergent_ranges.
//
// The same check runs in the background (every Config.VerifyInterval, each
// partition this broker leads in turn) and on demand (APIVerify, `rafka
// verify`). Reads are throttled: a broker runs one check at a time as
// leader (checkSem) and computes one digest at a time (readSem, shared
// with the digests it computes for other leaders), and paces its reads at
// Config.VerifyBytesPerSecond. Digests of sealed segments are cached
// (package replica), so a repeated check reads only the active segments.

// Bounds of the peer calls of a check.
const (
	// digestRangesPerCall and digestBytesPerCall bound one
	// APIReplicaDigests call (by the leader's bytes in its ranges), so a
	// call's duration stays bounded at the paced rate.
	digestRangesPerCall = 64
	digestBytesPerCall  = 2 << 30
	// verifyCallTimeout bounds a forwarded verify (the leader reads every
	// replica's log at the paced rate).
	verifyCallTimeout = time.Hour
)

// digestCallTimeout bounds an APIReplicaDigests call asking for bytes of
// digests: the peer call timeout plus twice the time reading them at rate
// takes (the replica paces at its own rate, normally the same).
func digestCallTimeout(bytes, rate int64) time.Duration {
	d := peerCallTimeout
	if rate > 0 {
		d += 2 * time.Duration(float64(bytes)/float64(rate)*float64(time.Second))
	}
	return d
}

// verifier holds the consistency checks' state and metrics.
type verifier struct {
	b *Broker
	// checkSem admits one check at a time as leader; readSem one digest
	// computation at a time (for this broker's checks and other leaders'
	// requests alike). Neither is held across a peer call that waits for
	// the other side's readSem, so two leaders checking each other's
	// partitions do not deadlock: checkSem is held across calls, readSem
	// only around local reads.
	checkSem chan struct{}
	readSem  chan struct{}

	runs *metrics.Counter

	// mu guards divergent: divergent ranges found by the latest check of
	// each partition ("topic/partition"); the gauge is their sum.
	mu        sync.Mutex
	divergent map[string]int
}

func newVerifier(b *Broker) *verifier {
	v := &verifier{b: b, checkSem: make(chan struct{}, 1), readSem: make(chan struct{}, 1), divergent: make(map[string]int)}
	v.runs = b.metrics.counter("rafka_replica_verify_runs_total", "Consistency checks of a partition's replicas run by this broker as leader (background and on demand).")
	b.metrics.gauge("rafka_replica_divergent_ranges", "Ranges of committed log found to differ between a replica and the leader, summed over the latest check of each partition this broker leads. Anything above 0 needs an operator: see docs/operations.md.", func() float64 {
		v.mu.Lock()
		defer v.mu.Unlock()
		n := 0
		for _, d := range v.divergent {
			n += d
		}
		return float64(n)
	})
	return v
}

func acquire(ctx context.Context, sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// pacer spreads reads over time at a rate in bytes per second (<= 0: no
// pacing) and stops them when its context ends.
type pacer struct {
	ctx   context.Context
	rate  int64
	start time.Time
	bytes int64
}

func newPacer(ctx context.Context, rate int64) *pacer {
	return &pacer{ctx: ctx, rate: rate, start: time.Now()}
}

func (p *pacer) pace(n int) error {
	if p.ctx.Err() != nil {
		return context.Cause(p.ctx)
	}
	if p.rate <= 0 {
		return nil
	}
	p.bytes += int64(n)
	due := p.start.Add(time.Duration(float64(p.bytes) / float64(p.rate) * float64(time.Second)))
	if d := time.Until(due); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-p.ctx.Done():
			return context.Cause(p.ctx)
		case <-t.C:
		}
	}
	return nil
}

// digest computes a range's digest of p under readSem, paced.
func (v *verifier) digest(ctx context.Context, p *partition, r replica.Range) (replica.Digest, error) {
	if err := acquire(ctx, v.readSem); err != nil {
		return replica.Digest{}, err
	}
	defer func() { <-v.readSem }()
	return p.Digest(r, newPacer(ctx, v.b.cfg.VerifyBytesPerSecond).pace)
}

// digestErrorCode is the code of a failed digest: a range not held is
// OFFSET_OUT_OF_RANGE, a batch failing its checksum CORRUPT_MESSAGE.
func digestErrorCode(err error) wire.ErrorCode {
	if errors.Is(err, segment.ErrCorrupt) {
		return wire.ErrCorruptMessage
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return wire.ErrRequestTimedOut
	}
	return errorCode(err)
}

// handleVerify answers APIVerify: each partition asked for (all when none)
// is checked by its leader, here or forwarded.
func (b *Broker) handleVerify(ctx context.Context, req *wire.VerifyRequest) *wire.VerifyResponse {
	resp := &wire.VerifyResponse{}
	t, ok := b.cluster.state.Topic(req.Topic)
	if !ok {
		resp.Error, resp.Message = wire.ErrUnknownTopicOrPartition, fmt.Sprintf("topic %q does not exist", req.Topic)
		if be := b.cluster.behind(); be != nil {
			resp.Error, resp.Message = be.Code, be.Message
		}
		return resp
	}
	ids := req.Partitions
	if len(ids) == 0 {
		for i := range t.Replicas {
			ids = append(ids, int32(i))
		}
	}
	for _, id := range ids {
		if id < 0 || int(id) >= len(t.Replicas) {
			e := unknownPartition(req.Topic, id)
			resp.Partitions = append(resp.Partitions, wire.VerifyPartition{Partition: id, Error: e.Code, Message: e.Message})
			continue
		}
		resp.Partitions = append(resp.Partitions, b.verifyPartition(ctx, req.Topic, id, req.Forwarded))
	}
	return resp
}

// verifyPartition checks one partition here when this broker leads it,
// else forwards the check to its leader (once more to the leader that one
// names, when it has moved), unless forwarded says the request was already
// passed on.
func (b *Broker) verifyPartition(ctx context.Context, topicName string, id int32, forwarded bool) wire.VerifyPartition {
	res := wire.VerifyPartition{Partition: id}
	t := b.topics()[topicName]
	p, rp := t.partition(id), t.raft(id)
	if p != nil && (rp == nil || rp.leader.Load() == b.cluster.raftID) {
		return b.verify.check(ctx, topicName, id, p, rp)
	}
	leader, _ := b.partitionLeader(topicName, id)
	if rp != nil {
		leader = ""
		if br, ok := b.cluster.state.BrokerByRaftID(rp.leader.Load()); ok {
			leader = br.ID
		}
	}
	for hop := 0; ; hop++ {
		if forwarded || leader == "" || leader == b.id || hop == 2 {
			res.Error, res.Leader = wire.ErrNotLeader, leader
			res.Message = fmt.Sprintf("partition %s/%d: no leader to check it (election in progress?); retry", topicName, id)
			if leader != "" && leader != b.id {
				res.Message = fmt.Sprintf("partition %s/%d is led by broker %s", topicName, id, leader)
			}
			return res
		}
		br, ok := b.cluster.state.Broker(leader)
		if !ok {
			leader = ""
			continue
		}
		var resp wire.VerifyResponse
		err := b.cluster.peers.callWithin(ctx, verifyCallTimeout, br.Addr, wire.APIVerify,
			&wire.VerifyRequest{Topic: topicName, Partitions: []int32{id}, Forwarded: true}, &resp)
		switch {
		case err != nil:
			res.Error, res.Message, res.Leader = digestErrorCode(err), fmt.Sprintf("asking leader %s: %v", leader, err), leader
			return res
		case resp.Error != wire.ErrNone:
			res.Error, res.Message, res.Leader = resp.Error, resp.Message, leader
			return res
		case len(resp.Partitions) != 1:
			res.Error, res.Message = wire.ErrUnknown, fmt.Sprintf("leader %s answered %d partitions", leader, len(resp.Partitions))
			return res
		}
		got := resp.Partitions[0]
		if got.Error != wire.ErrNotLeader || got.Leader == "" || got.Leader == leader {
			got.Partition = id
			return got
		}
		leader = got.Leader // it moved: ask the new leader
	}
}

// verifyLoop checks every partition this broker leads, one after the
// other, every VerifyInterval (negative: never).
func (b *Broker) verifyLoop() {
	if b.cfg.VerifyInterval <= 0 {
		return
	}
	t := time.NewTimer(b.cfg.VerifyInterval)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		b.verifyLed()
		t.Reset(b.cfg.VerifyInterval)
	}
}

// verifyLed runs one background round over the partitions this broker
// leads; partitions it no longer leads leave the divergence gauge.
func (b *Broker) verifyLed() {
	checked := make(map[string]bool)
	for name, t := range b.topics() {
		for i, rp := range t.rafts {
			if b.ctx.Err() != nil {
				return
			}
			p := t.partition(int32(i))
			if rp == nil || p == nil || rp.leader.Load() != b.cluster.raftID {
				continue
			}
			b.verify.check(b.ctx, name, int32(i), p, rp)
			checked[partKey(name, int32(i))] = true
		}
	}
	b.verify.mu.Lock()
	for k := range b.verify.divergent {
		if !checked[k] {
			delete(b.verify.divergent, k)
		}
	}
	b.verify.mu.Unlock()
}

func partKey(topic string, id int32) string { return topic + "/" + strconv.Itoa(int(id)) }

// peerReplica is a replica of a partition on another broker.
type peerReplica struct {
	id, addr string
	res      wire.VerifyReplica
	ok       bool // answered the first call: compare it
}

// check compares the replicas of partition id, which this broker leads (or
// hosts alone: then there is nothing to compare it with, and the result
// says what its log holds).
func (v *verifier) check(ctx context.Context, topic string, id int32, p *partition, rp *raftPart) wire.VerifyPartition {
	b := v.b
	res := wire.VerifyPartition{Partition: id, Leader: b.id}
	if p.Offline() != nil {
		res.Error, res.Message = wire.ErrPartitionOffline, fmt.Sprintf("partition %s/%d is offline: %v", topic, id, p.Offline())
		return res
	}
	if err := acquire(ctx, v.checkSem); err != nil {
		res.Error, res.Message = wire.ErrRequestTimedOut, err.Error()
		return res
	}
	defer func() { <-v.checkSem }()
	v.runs.Inc()

	// The replicas and the window they all hold.
	var peers []*peerReplica
	if rp != nil {
		st, ok := b.cluster.driver.Status(rp.group)
		if !ok {
			res.Error, res.Message = wire.ErrNotLeader, fmt.Sprintf("partition %s/%d: raft group not running", topic, id)
			return res
		}
		for _, r := range st.Voters {
			if r == b.cluster.raftID {
				continue
			}
			pr := &peerReplica{id: strconv.FormatUint(r, 16)}
			if br, ok := b.cluster.state.BrokerByRaftID(r); ok {
				pr.id, pr.addr = br.ID, br.Addr
			}
			pr.res = wire.VerifyReplica{Broker: pr.id, FirstFrom: -1, FirstTo: -1}
			peers = append(peers, pr)
		}
	}
	from, to := p.LogStartOffset(), p.HighWatermark()
	for _, pr := range peers {
		resp, err := v.askDigests(ctx, topic, id, rp, pr, nil, peerCallTimeout)
		if err != nil {
			pr.res.Error, pr.res.Message = digestErrorCode(err), err.Error()
			continue
		}
		pr.ok = true
		from, to = max(from, resp.LogStartOffset), min(to, resp.HighWatermark)
	}
	res.From, res.To = from, to
	leader := wire.VerifyReplica{Broker: b.id, FirstFrom: -1, FirstTo: -1}
	ranges, err := p.SegmentRanges(from, to)
	if err != nil {
		res.Error, res.Message = errorCode(err), err.Error()
		return res
	}
	digests := make([]replica.Digest, 0, len(ranges))
	for _, r := range ranges {
		d, err := v.digest(ctx, p, r)
		if err != nil {
			leader.Error, leader.Message = digestErrorCode(err), err.Error()
			break
		}
		digests = append(digests, d)
		leader.Ranges++
		leader.Bytes += d.Bytes
	}
	res.Replicas = append(res.Replicas, leader)
	ranges = ranges[:len(digests)]
	for _, pr := range peers {
		if pr.ok {
			v.compare(ctx, topic, id, rp, pr, ranges, digests)
		}
		res.Replicas = append(res.Replicas, pr.res)
	}
	n, unchecked := 0, false
	for _, r := range res.Replicas {
		n += int(r.Divergent)
		unchecked = unchecked || r.Error != wire.ErrNone && r.Divergent == 0
	}
	v.mu.Lock()
	if unchecked {
		// A replica that could not be compared this time keeps what the
		// previous check found: the gauge does not clear while the
		// divergent replica is, say, down.
		n = max(n, v.divergent[partKey(topic, id)])
	}
	v.divergent[partKey(topic, id)] = n
	v.mu.Unlock()
	return res
}

// compare asks pr for the digests of ranges, in calls of bounded size, and
// records in pr.res how many it compared and which differ from the
// leader's digests. A range pr does not hold (retention moved its log
// start since the first call) is skipped; one failing its checksum there
// counts as divergent.
func (v *verifier) compare(ctx context.Context, topic string, id int32, rp *raftPart, pr *peerReplica, ranges []replica.Range, digests []replica.Digest) {
	for start := 0; start < len(ranges); {
		end, bytes := start, int64(0)
		for end < len(ranges) && end-start < digestRangesPerCall && (end == start || bytes+digests[end].Bytes <= digestBytesPerCall) {
			bytes += digests[end].Bytes
			end++
		}
		resp, err := v.askDigests(ctx, topic, id, rp, pr, ranges[start:end], digestCallTimeout(bytes, v.b.cfg.VerifyBytesPerSecond))
		if err == nil && len(resp.Digests) != end-start {
			err = fmt.Errorf("node: broker %s answered %d digests for %d ranges", pr.id, len(resp.Digests), end-start)
		}
		if err != nil {
			pr.res.Error, pr.res.Message = digestErrorCode(err), err.Error()
			return
		}
		for k, got := range resp.Digests {
			r, want := ranges[start+k], digests[start+k]
			switch got.Error {
			case wire.ErrNone:
				pr.res.Ranges++
				pr.res.Bytes += want.Bytes
				if got.Sum == want.Sum && got.Batches == want.Batches && got.Bytes == want.Bytes {
					continue
				}
			case wire.ErrOffsetOutOfRange:
				continue
			default:
				pr.res.Ranges++
				if pr.res.Error == wire.ErrNone {
					pr.res.Error, pr.res.Message = got.Error, got.Message
				}
			}
			pr.res.Divergent++
			if pr.res.FirstFrom < 0 {
				pr.res.FirstFrom, pr.res.FirstTo = r.From, r.To
			}
			v.b.log.Warn("replica diverges from the leader", "topic", topic, "partition", id, "replica", pr.id,
				"from", r.From, "to", r.To, "leader_batches", want.Batches, "replica_batches", got.Batches,
				"leader_bytes", want.Bytes, "replica_bytes", got.Bytes, "replica_error", got.Message)
		}
		start = end
	}
}

// askDigests calls APIReplicaDigests on pr.
func (v *verifier) askDigests(ctx context.Context, topic string, id int32, rp *raftPart, pr *peerReplica, ranges []replica.Range, timeout time.Duration) (*wire.ReplicaDigestsResponse, error) {
	if pr.addr == "" {
		return nil, fmt.Errorf("node: replica %s: address unknown", pr.id)
	}
	req := &wire.ReplicaDigestsRequest{ClusterID: v.b.cluster.clusterID(), Topic: topic, Partition: id, Group: rp.group}
	for _, r := range ranges {
		req.Ranges = append(req.Ranges, wire.DigestRange{From: r.From, To: r.To})
	}
	resp := &wire.ReplicaDigestsResponse{}
	if err := v.b.cluster.peers.callWithin(ctx, timeout, pr.addr, wire.APIReplicaDigests, req, resp); err != nil {
		return nil, err
	}
	if resp.Error != wire.ErrNone {
		return nil, &wire.Error{Code: resp.Error, Message: resp.Message}
	}
	return resp, nil
}

// replicaDigests answers a leader's APIReplicaDigests from this replica.
func (b *Broker) replicaDigests(ctx context.Context, req *wire.ReplicaDigestsRequest) *wire.ReplicaDigestsResponse {
	resp := &wire.ReplicaDigestsResponse{}
	if id := b.cluster.clusterID(); req.ClusterID != id {
		resp.Error, resp.Message = wire.ErrClusterMismatch, fmt.Sprintf("cluster %q, this broker is in %q", req.ClusterID, id)
		return resp
	}
	t := b.topics()[req.Topic]
	p, rp := t.partition(req.Partition), t.raft(req.Partition)
	if p == nil || rp == nil || rp.group != req.Group {
		e := unknownPartition(req.Topic, req.Partition)
		resp.Error, resp.Message = e.Code, e.Message+" (no replica of that raft group here)"
		return resp
	}
	if p.Offline() != nil {
		resp.Error, resp.Message = wire.ErrPartitionOffline, p.Offline().Error()
		return resp
	}
	resp.LogStartOffset, resp.HighWatermark = p.LogStartOffset(), p.HighWatermark()
	for _, r := range req.Ranges {
		var d wire.RangeDigest
		if r.From > r.To {
			d.Error, d.Message = wire.ErrInvalidRequest, fmt.Sprintf("range [%d, %d)", r.From, r.To)
		} else if got, err := b.verify.digest(ctx, p, replica.Range{From: r.From, To: r.To}); err != nil {
			d.Error, d.Message = digestErrorCode(err), err.Error()
		} else {
			d.Batches, d.Bytes, d.Sum = got.Batches, got.Bytes, got.Sum
		}
		resp.Digests = append(resp.Digests, d)
	}
	return resp
}
