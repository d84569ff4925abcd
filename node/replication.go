package node

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/rafka/rafka/node/group"
	"github.com/rafka/rafka/node/meta"
	"github.com/rafka/rafka/node/raftlog"
	"github.com/rafka/rafka/node/replica"
	"github.com/rafka/rafka/wire"
)

// A partition placed on more than one broker is a raft group over its
// replicas (docs/replication.md). Its log is its segment log: each raft
// entry is one batch, stored by raftlog.PartitionStorage on every replica;
// the group runs on the cluster's raft driver and its messages ride the same
// per-broker-pair links as the metadata group's. The leader takes produce
// requests: each batch is proposed (ProposeAsync, in request order), an
// acks=leader produce is answered once the leader has saved its batches,
// an acks=all one once they are committed. The high watermark is the offset
// after the last committed batch, moved as the group applies (replicaSM).
// Other replicas answer NOT_LEADER naming the leader.

// partitionGroupID is the raft group id of a partition: derived from the
// topic's id (a topic created again gets other groups) and never the
// metadata group's.
func partitionGroupID(topicID string, partition int32) uint64 {
	id := xxhash.Sum64String("rafka/partition/" + topicID + "/" + strconv.Itoa(int(partition)))
	if id <= metaGroup {
		id += metaGroup + 1
	}
	return id
}

// raftPart is the raft side of a hosted replicated partition.
type raftPart struct {
	group  uint64
	store  *raftlog.PartitionStorage
	leader atomic.Uint64 // raft id of the leader, 0 when unknown
	term   atomic.Uint64
	// seq is the idempotent producers' state, kept by every replica as
	// entries apply, and the leader's proposals in flight.
	seq *replica.Sequencer
	// failedAt is when the group failed (unix ns, 0: it did not); reopens
	// counts the times the partition was reopened after a failure
	// (reopen.go).
	failedAt atomic.Int64
	reopens  atomic.Int32
}

// replicaSM applies a partition group's committed entries: the log already
// holds them (the storage wrote them when they were saved), so applying
// moves the high watermark and records the batch's producer sequence.
type replicaSM struct {
	p  *replica.Partition
	rp *raftPart
}

// Apply returns the offsets of the batch at index ([2]int64{base, next}).
func (sm replicaSM) Apply(index uint64, data []byte) any {
	base, next, err := sm.rp.store.EntryOffset(index)
	if err != nil {
		return err
	}
	sm.rp.seq.Applied(index, data, base, next-1)
	sm.p.Committed(next)
	return [2]int64{base, next}
}

func (sm replicaSM) Snapshot() ([]byte, error) {
	return nil, errors.New("node: a partition's log is its own snapshot")
}

// Restore follows a snapshot the storage was reset to (a replica behind the
// leader's log start): the high watermark moves to its log start.
func (sm replicaSM) Restore([]byte) error {
	l := sm.rp.store.Log()
	sm.rp.seq.Reset()
	sm.p.ReplaceLog(l)
	sm.p.Committed(l.StartOffset())
	return nil
}

// openReplicated opens partition id of a replicated topic and adds its raft
// group to the driver. A learner (the target of a replica move) starts
// empty and waits for the leader: it neither bootstraps the group nor
// campaigns; the leader sends it the log, or a snapshot (its log start)
// and the log after it. Its raft term starts at start.term, the move's
// (see moves.go).
func (b *Broker) openReplicated(cfg TopicConfig, topicID string, topic string, id int32, replicas []string, mustExist, learner bool, start replicaStart) (*partition, *raftPart, error) {
	rc := b.replicaConfig(cfg, topic, id)
	rc.MustExist = mustExist
	if err := replica.CheckDir(rc); err != nil {
		return nil, nil, err
	}
	st, err := raftlog.OpenPartition(rc.Dir, raftlog.PartitionOptions{Log: rc.Log, Logger: b.log})
	if err != nil {
		return nil, nil, fmt.Errorf("node: partition %s/%d: %w", topic, id, err)
	}
	if err := raiseTerm(st, start.term); err != nil {
		st.Close()
		return nil, nil, fmt.Errorf("node: partition %s/%d: %w", topic, id, err)
	}
	p := replica.OpenOn(rc, st.Log())
	rp := &raftPart{group: partitionGroupID(topicID, id), store: st, seq: replica.NewSequencer(0)}
	rp.reopens.Store(start.reopens) // before AddGroup: a failure at once counts them
	var voters []uint64
	if !learner {
		voters = make([]uint64, len(replicas))
		for i, r := range replicas {
			voters[i] = raftIDOf(r)
		}
	}
	err = b.cluster.driver.AddGroup(group.GroupConfig{
		Group: rp.group, Storage: st, SM: replicaSM{p: p, rp: rp}, Bootstrap: voters, Joining: learner,
		Untagged: true, NoSnapshots: true,
		// Idle partitions stop ticking; their followers still elect at
		// once when the leader's broker goes silent (peer.go liveness).
		Quiesce: true,
		OnLeaderChange: func(leader, term uint64) {
			if leader == b.cluster.raftID {
				// Produce waits until the log is applied up to this
				// term's first entry (saved by now): every batch of
				// earlier terms that commits is then known.
				last, err := st.LastIndex()
				if err != nil {
					last = math.MaxUint64 // never ready: the storage failed
				}
				rp.seq.Lead(term, last)
			} else {
				rp.seq.Follow()
			}
			rp.leader.Store(leader)
			rp.term.Store(term)
		},
		// Every applied entry moves the high watermark, control entries
		// (a leader's no-op, configuration changes) included: they take
		// an offset too.
		OnApplied: func(index uint64) {
			rp.seq.AppliedIndex(index)
			if next, err := st.NextOffsetAfter(index); err == nil {
				p.Committed(next)
			}
		},
		OnConfChange: func(index uint64, cs *raftpb.ConfState) {
			if err := st.SetConfState(index, cs); err != nil {
				b.log.Error("recording a partition's raft configuration", "topic", topic, "partition", id, "err", err)
			}
			b.moves.confChanged(rp.group, cs) // learners, for the move throttle
		},
	})
	if err != nil {
		p.Close()
		st.Close()
		return nil, nil, fmt.Errorf("node: partition %s/%d: %w", topic, id, err)
	}
	if replicas[0] == b.id && !mustExist && !learner {
		// A new group: its preferred replica stands first rather than
		// waiting out an election timeout, so leadership starts spread as
		// the placement spreads first replicas.
		if err := b.cluster.driver.Campaign(rp.group); err != nil {
			b.log.Debug("campaigning for a new partition", "topic", topic, "partition", id, "err", err)
		}
	}
	return p, rp, nil
}

// replicaStart is what a replica carries into its opening: the move's term
// (a learner), and how often the partition was reopened after its group
// failed (reopen.go).
type replicaStart struct {
	term    uint64
	reopens int32
}

// raiseTerm moves a replica's raft term up to term when it is below (a new
// term, no vote: what raft does on hearing of a later term).
func raiseTerm(st *raftlog.PartitionStorage, term uint64) error {
	hs, _, err := st.InitialState()
	if err != nil || hs.GetTerm() >= term {
		return err
	}
	return st.Save(&raftpb.HardState{Term: new(term), Vote: new(uint64(0)), Commit: new(hs.GetCommit())}, nil, nil)
}

// rebalanceLeaders hands the leadership of partitions this broker leads to
// their preferred replica (the first live one of the placement) when that
// replica has caught up, so that leadership returns to where placement
// spread it after a broker came back.
func (b *Broker) rebalanceLeaders() {
	for name, t := range b.topics() {
		for i, rp := range t.rafts {
			if rp == nil || rp.leader.Load() != b.cluster.raftID {
				continue
			}
			pref, ok := b.preferredLeader(name, int32(i))
			if !ok || pref == b.id {
				continue
			}
			to := raftIDOf(pref)
			st, ok := b.cluster.driver.Status(rp.group)
			if !ok || st.Progress[to] < st.Commit {
				continue // not caught up: it would stall writes while it does
			}
			b.log.Info("handing partition leadership to its preferred replica", "topic", name, "partition", i, "to", pref)
			b.cluster.driver.TransferLeadership(rp.group, to)
		}
	}
}

// rebalanceLoop runs rebalanceLeaders every LeaderRebalanceInterval.
func (b *Broker) rebalanceLoop() {
	t := time.NewTicker(b.cfg.Cluster.LeaderRebalanceInterval)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
			b.rebalanceLeaders()
		}
	}
}

// closeReplicated removes the group and closes the partition and its log.
func (b *Broker) closeReplicated(p *partition, rp *raftPart) error {
	gerr := b.cluster.driver.RemoveGroup(rp.group)
	b.moves.forget(rp.group)
	if errors.Is(gerr, group.ErrClosed) {
		gerr = nil // shutting down: the driver stopped first
	}
	perr := p.Close()
	return errors.Join(gerr, perr, rp.store.Close())
}

// leaderHint is the NOT_LEADER answer of a replica that does not lead its
// partition, naming the leader when one is known.
func (b *Broker) leaderHint(topic string, id int32, rp *raftPart) *wire.Error {
	e := &wire.Error{Code: wire.ErrNotLeader, Message: fmt.Sprintf("partition %s/%d: this broker is a follower", topic, id)}
	if br, ok := b.cluster.state.BrokerByRaftID(rp.leader.Load()); ok {
		e.LeaderID, e.LeaderAddr = br.ID, br.Addr
		e.Message = fmt.Sprintf("partition %s/%d is led by broker %s", topic, id, br.ID)
	} else {
		e.Message = fmt.Sprintf("partition %s/%d has no leader yet (election in progress); retry", topic, id)
	}
	return e
}

// proposeBatches proposes each batch of a produce payload to the
// partition's group, in order, and returns the ack waiter of the request.
// The batches are checked first: a request with one bad batch stores none.
// Batches of idempotent producers go through the partition's sequencer: a
// batch already committed is answered with its offsets, one already in
// flight waits for that proposal, and one out of sequence refuses the
// request; the leader takes none until it has applied its log up to its
// term's first entry.
func (b *Broker) proposeBatches(topic string, id int32, rp *raftPart, payload []byte, maxBatch int, acks int8) (replica.AckWaiter, int64, *wire.Error) {
	var hs []wire.BatchHeader
	var lens []int
	var records int64
	for rest := payload; len(rest) > 0; {
		h, n, err := wire.VerifyBatch(rest, maxBatch)
		if err != nil {
			return replica.AckWaiter{}, 0, &wire.Error{Code: errorCode(err), Message: err.Error()}
		}
		if h.IsControl() {
			return replica.AckWaiter{}, 0, &wire.Error{Code: wire.ErrInvalidRequest, Message: "control batches are the brokers' own"}
		}
		records += int64(h.RecordCount)
		hs = append(hs, h)
		lens = append(lens, n)
		rest = rest[n:]
	}
	starts := make([]int, len(lens))
	for i := 1; i < len(lens); i++ {
		starts[i] = starts[i-1] + lens[i-1]
	}
	term := rp.term.Load()
	slots, err := rp.seq.Propose(term, hs, func(i int, after replica.InFlight) replica.InFlight {
		// raft keeps the entry until it is saved and applied: it gets its
		// own copy, as the request buffer is reused.
		data := append([]byte(nil), payload[starts[i]:starts[i]+lens[i]]...)
		var prev *group.Proposal
		if after != nil {
			prev = after.(proposal).Proposal
		}
		return proposal{b.cluster.driver.ProposeAsync(rp.group, data, prev)}
	})
	switch {
	case errors.Is(err, replica.ErrNotReady):
		e := b.leaderHint(topic, id, rp)
		e.Message = fmt.Sprintf("partition %s/%d: the new leader is still applying its log; retry", topic, id)
		return replica.AckWaiter{}, 0, e
	case errors.Is(err, wire.ErrOutOfOrderSequence):
		if e := b.confirmLeader(topic, id, rp, term); e != nil {
			return replica.AckWaiter{}, 0, e
		}
		return replica.AckWaiter{}, 0, &wire.Error{Code: errorCode(err), Message: err.Error()}
	case err != nil:
		return replica.AckWaiter{}, 0, &wire.Error{Code: errorCode(err), Message: err.Error()}
	}
	return replica.ReplicatedWaiter(&batchAck{b: b, topic: topic, id: id, rp: rp, slots: slots, all: acks == wire.AcksAll}), records, nil
}

// confirmLeader asks a quorum whether this broker still leads the
// partition in term (nil if it does), before a batch is refused on the
// producer state alone. A leader cut off from the others goes on believing
// it leads until its election timeout, and its state misses the batches a
// newer leader took: a producer told OUT_OF_ORDER_SEQUENCE while none of its
// batches is missing would take the partition for one that forgot it and
// start its sequences over, storing again the batches whose answers it
// lost. Unconfirmed, the answer is NOT_LEADER (retriable).
func (b *Broker) confirmLeader(topic string, id int32, rp *raftPart, term uint64) *wire.Error {
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Duration(group.DefaultElectionTicks)*b.cfg.Cluster.RaftTick)
	defer cancel()
	_, err := b.cluster.driver.ReadIndex(ctx, rp.group)
	if err == nil && rp.seq.Ready(term) {
		return nil
	}
	if err == nil {
		err = errors.New("the term changed")
	}
	// No hint: this broker is the one the hint would name.
	return &wire.Error{Code: wire.ErrNotLeader, Message: fmt.Sprintf(
		"partition %s/%d: could not confirm this broker still leads it (%v); retry", topic, id, err)}
}

// proposal is a batch's raft proposal as the sequencer sees it.
type proposal struct{ *group.Proposal }

// Failed reports whether the proposal failed before its entry was saved:
// it will not be in the log in the term it was made in.
func (p proposal) Failed() bool {
	select {
	case <-p.Persisted():
		_, err := p.Saved()
		return err != nil
	default:
		return false
	}
}

// batchAck waits for a produce request's proposals.
type batchAck struct {
	b     *Broker
	topic string
	id    int32
	rp    *raftPart
	slots []replica.Slot
	all   bool // acks=all: wait until committed, not only saved
}

func (a *batchAck) WaitAck(ctx context.Context) (base, next int64, err error) {
	for i, s := range a.slots {
		var b, n int64
		if s.Duplicate {
			// Committed before, under an earlier request.
			b, n = s.Base, s.Last+1
		} else {
			b, n, err = a.waitProposal(ctx, s.InFlight.(proposal).Proposal)
			if err != nil {
				return 0, 0, err
			}
		}
		if i == 0 {
			base = b
		}
		next = n
	}
	return base, next, nil
}

// waitProposal waits for one batch's proposal: applied (acks=all) or saved
// on the leader.
func (a *batchAck) waitProposal(ctx context.Context, p *group.Proposal) (base, next int64, err error) {
	if a.all {
		v, _, err := p.Wait(ctx)
		if err != nil {
			return 0, 0, a.mapErr(err)
		}
		off, ok := v.([2]int64)
		if !ok {
			return 0, 0, fmt.Errorf("node: applying a batch: %v", v)
		}
		return off[0], off[1], nil
	}
	select {
	case <-p.Persisted():
	case <-ctx.Done():
		return 0, 0, context.Cause(ctx)
	}
	index, err := p.Saved()
	if err != nil {
		return 0, 0, a.mapErr(err)
	}
	return a.rp.store.EntryOffset(index)
}

// mapErr turns a proposal's failure into the protocol's answer: a leader
// change is NOT_LEADER (retriable, naming the new leader when known).
func (a *batchAck) mapErr(err error) error {
	switch {
	case errors.Is(err, group.ErrNotLeader), errors.Is(err, group.ErrProposalDropped), errors.Is(err, group.ErrNoLeader):
		return a.b.leaderHint(a.topic, a.id, a.rp)
	case errors.Is(err, group.ErrTooManyProposals):
		return &wire.Error{Code: wire.ErrThrottled, Message: err.Error()}
	}
	return err
}

// drainLeadership hands the leadership of every group this broker leads
// (its partitions', and the metadata group's) to a caught-up follower, and
// waits until it leads none or ctx ends. Shutdown runs it first, so that a
// rolling restart moves leaders before their broker goes: clients' requests
// in flight fail over with NOT_LEADER instead of waiting for an election.
func (b *Broker) drainLeadership(ctx context.Context) {
	c := b.cluster
	if c.driver == nil {
		return
	}
	// led lists the groups this broker leads that have another voter to
	// take over (a group of one, like the metadata group of a cluster of
	// one, has nobody to hand to).
	led := func() []uint64 {
		var out []uint64
		consider := func(g uint64) {
			if st, ok := c.driver.Status(g); ok && st.Leader == c.raftID && len(st.Voters) > 1 {
				out = append(out, g)
			}
		}
		for _, t := range b.topics() {
			for _, rp := range t.rafts {
				if rp != nil && rp.leader.Load() == c.raftID {
					consider(rp.group)
				}
			}
		}
		if c.isLeader() {
			consider(metaGroup)
		}
		return out
	}
	groups := led()
	if len(groups) == 0 {
		return
	}
	b.log.Info("handing leadership to other replicas before stopping", "groups", len(groups))
	for ctx.Err() == nil {
		for _, g := range groups {
			st, ok := c.driver.Status(g)
			if !ok || st.Leader != c.raftID {
				continue
			}
			var to, best uint64
			for _, v := range st.Voters {
				if v != c.raftID && (to == 0 || st.Progress[v] > best) {
					to, best = v, st.Progress[v]
				}
			}
			if to != 0 {
				c.driver.TransferLeadership(g, to)
			}
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		if groups = led(); len(groups) == 0 {
			return
		}
	}
	b.log.Warn("stopping while still leading", "groups", len(groups))
}

// underReplicatedLag is how many entries behind the commit a follower may be
// before its partition counts as under-replicated.
const underReplicatedLag = 1000

// replicationCounts counts, over the replicated partitions this broker
// leads: led, and under-replicated (a replica's broker not alive, or its
// log more than underReplicatedLag entries behind the commit).
func (b *Broker) replicationCounts() (led, under int) {
	c := b.cluster
	for _, t := range b.topics() {
		for _, rp := range t.rafts {
			if rp == nil || rp.leader.Load() != c.raftID {
				continue
			}
			led++
			st, ok := c.driver.Status(rp.group)
			if !ok {
				continue
			}
			for _, v := range st.Voters {
				if v == c.raftID {
					continue
				}
				br, known := c.state.BrokerByRaftID(v)
				if !known || br.State != meta.BrokerAlive || st.Progress[v]+underReplicatedLag < st.Commit {
					under++
					break
				}
			}
		}
	}
	return led, under
}
