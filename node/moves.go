package node

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/rafka/rafka/node/group"
	"github.com/rafka/rafka/node/meta"
)

// Replica moves (docs/replication.md, "Moves and drains").
//
// The desired replicas of a partition are the top-RF brokers by rendezvous
// hashing over the eligible brokers: alive, or fenced for less than
// DeadAfter, and not fully draining. When a partition's replicas differ
// from that, its raft leader moves one replica at a time, each step one
// pass of moveLoop (every heartbeat interval), on the metadata and the
// partition's raft configuration:
//
//  1. StartMove (metadata), with the leader's term: the target hosts the
//     partition; its reconcile opens it as an empty learner (no
//     bootstrap) whose raft term starts at the move's. A leader of an
//     earlier term, cut off since before the target last left the
//     partition, may still count the target as a voter: the fresh replica
//     refuses it rather than help it to a majority.
//  2. Add the target as a raft learner; raft sends it the log, or a
//     snapshot and the log from the leader's log start.
//  3. Once it has caught up (its match index at the commit index, or
//     close to the last index): if the leader is the replica to remove it hands its
//     leadership to another voter first; the new leader goes on from here.
//     Otherwise one joint change promotes the target and removes the old
//     replica (ConfChangeV2, automatic leave).
//  4. FinishMove (metadata): the replica list becomes the new voters, in
//     placement order; the removed broker's reconcile closes and deletes
//     its copy.
//
// Every pass starts from what is recorded, the raft configuration being
// the truth for membership, so a crash (or a leader change) at any point
// leaves a state the next leader's pass continues from: a StartMove whose
// target is not in the configuration adds it (or cancels the move if the
// target is no longer wanted), a learner that caught up is promoted, a
// configuration that already has the target as voter and not the old
// replica is recorded by FinishMove. A learner whose broker is no longer
// eligible is removed again and the move cancelled.
//
// Moves are throttled (MoveBytesPerSec): the append messages a leader sends
// to a learner being caught up pass a token bucket in peers.Send, and those
// over the budget are dropped; raft sends them again from the learner's
// match index (probing), so the catch-up traffic stays under the rate while
// heartbeats and the voters' traffic pass untouched.

// A learner is promoted once its match index reaches the commit index, or
// is within moveCatchUpEntries entries and about moveCatchUpBytes of the
// leader's last index (a steady load keeps the commit moving).
const (
	moveCatchUpEntries = 64
	moveCatchUpBytes   = 64 << 10
)

// moveStepTimeout bounds one configuration change or metadata command of a
// move step.
const moveStepTimeout = 5 * time.Second

// mover is the broker's side of replica moves.
type mover struct {
	b *Broker

	// mu guards the fields below.
	mu sync.Mutex
	// fencedSince is when this broker first saw each fenced broker fenced
	// (a broker that leads after a restart starts counting again: the
	// conservative side of dead-after).
	fencedSince map[string]time.Time
	// learners maps a hosted group to the learners of its configuration
	// (kept by confChanged as configurations are applied, so a leader
	// throttles its appends to a learner from the first one on, however
	// it came to lead).
	learners map[uint64][]uint64
	// tokens of the throttle's bucket, as of last.
	tokens float64
	last   time.Time

	inProgress atomic.Int64 // moves of partitions this broker leads
	remaining  atomic.Int64 // estimated bytes their learners lack

	done, sent, dropped *metrics.Counter
}

func newMover(b *Broker) *mover {
	m := &mover{b: b, fencedSince: make(map[string]time.Time), learners: make(map[uint64][]uint64)}
	bm := b.metrics
	bm.gauge("rafka_replica_moves_in_progress", "Replica moves in progress of partitions this broker leads.", func() float64 {
		return float64(m.inProgress.Load())
	})
	bm.gauge("rafka_replica_move_bytes_remaining", "Estimated log bytes the learners of this broker's moves in progress still lack.", func() float64 {
		return float64(m.remaining.Load())
	})
	m.done = bm.counter("rafka_replica_moves_total", "Replica moves this broker completed as leader of the partition.")
	m.sent = bm.counter("rafka_replica_move_sent_bytes_total", "Entry bytes this broker sent to learners being caught up by a move.")
	m.dropped = bm.counter("rafka_replica_move_throttled_messages_total", "Append messages to learners dropped by the move throttle (raft sends them again).")
	return m
}

// moveLoop runs moveStep every heartbeat interval until the broker stops.
func (b *Broker) moveLoop() {
	t := time.NewTicker(b.cfg.Cluster.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		b.moves.step()
		b.drainStep()
	}
}

// eligibleFunc returns the placement eligibility of brokers now: alive or
// fenced for less than DeadAfter, and not fully draining.
func (m *mover) eligibleFunc(now time.Time) func(meta.Broker) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := make(map[string]bool)
	for _, br := range m.b.cluster.state.Brokers() {
		if br.State == meta.BrokerAlive {
			continue
		}
		seen[br.ID] = true
		if _, ok := m.fencedSince[br.ID]; !ok {
			m.fencedSince[br.ID] = now
		}
	}
	for id := range m.fencedSince {
		if !seen[id] {
			delete(m.fencedSince, id)
		}
	}
	since := maps.Clone(m.fencedSince)
	deadAfter := m.b.cfg.Cluster.DeadAfter
	return func(br meta.Broker) bool {
		if br.Drain == meta.DrainFull {
			return false
		}
		if br.State == meta.BrokerAlive {
			return true
		}
		t, ok := since[br.ID]
		return ok && now.Sub(t) < deadAfter
	}
}

// step makes one step of the move of every replicated partition this
// broker leads.
func (m *mover) step() {
	b := m.b
	c := b.cluster
	if c.driver == nil || !c.joined.Load() || b.closing.Load() {
		return
	}
	eligible := m.eligibleFunc(time.Now())
	var inProgress, remaining int64
	for name, t := range b.topics() {
		mt, ok := c.state.Topic(name)
		if !ok || mt.ID != t.id {
			continue
		}
		for i, rp := range t.rafts {
			if rp == nil || rp.leader.Load() != c.raftID || i >= len(mt.Replicas) {
				continue
			}
			ps := m.stepPartition(&mt, int32(i), rp, eligible)
			if ps.moving {
				inProgress++
			}
			remaining += ps.remaining
		}
	}
	m.inProgress.Store(inProgress)
	m.remaining.Store(remaining)
}

// partStep is what one step saw of a partition.
type partStep struct {
	moving    bool
	remaining int64 // estimated bytes the learner being caught up lacks
}

// confChanged records the learners of a hosted group's configuration, for
// the throttle. It runs on the driver's goroutine (OnConfChange).
func (m *mover) confChanged(group uint64, cs *raftpb.ConfState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l := cs.GetLearners(); len(l) > 0 {
		m.learners[group] = slices.Clone(l)
	} else {
		delete(m.learners, group)
	}
}

// forget drops a group that is no longer hosted.
func (m *mover) forget(group uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.learners, group)
}

func (m *mover) stepPartition(mt *meta.Topic, p int32, rp *raftPart, eligible func(meta.Broker) bool) partStep {
	b, c := m.b, m.b.cluster
	log := b.log.With("topic", mt.Name, "partition", p)
	st, ok := c.driver.Status(rp.group)
	if !ok || st.Leader != c.raftID || st.Err != nil {
		return partStep{}
	}
	_, cs, err := rp.store.InitialState()
	if err != nil {
		return partStep{}
	}
	mv, moving := mt.MoveOf(p)
	if len(cs.GetVotersOutgoing()) > 0 || len(st.Voters) == 0 {
		// A joint configuration: raft leaves it by itself (auto leave).
		// (No voters: the group's first entries are not applied yet.)
		return partStep{moving: moving}
	}
	// settled: every committed entry is applied, so the configuration
	// seen is the one raft has committed. Metadata records derived from
	// it wait for that (a new leader may not have applied a committed
	// change yet); configuration changes need not, raft refuses one
	// proposed before the previous is applied.
	settled := st.Applied >= st.Commit
	voter := func(id string) bool { return slices.Contains(st.Voters, raftIDOf(id)) }
	learner := func(id string) bool { return slices.Contains(st.Learners, raftIDOf(id)) }
	ctx, cancel := context.WithTimeout(b.ctx, moveStepTimeout)
	defer cancel()
	change := func(what string, cc *raftpb.ConfChangeV2) {
		if _, err := c.driver.ProposeConfChange(ctx, rp.group, cc); err != nil {
			log.Warn("replica move: configuration change failed; retrying", "step", what, "err", err)
		}
	}
	// A leader cut off from the partition's other replicas goes on
	// believing it leads (until CheckQuorum) while it may still reach the
	// metadata group: its view of the configuration may be stale, and a
	// metadata change made from it (a move cancelled or recorded) would
	// tell a broker to delete a copy the real leader still counts. Every
	// metadata change of a move is therefore made only once a quorum
	// confirmed this broker's leadership in the term st was read in.
	confirmed := func() bool {
		if _, err := c.driver.ReadIndex(ctx, rp.group); err != nil {
			log.Info("replica move: leadership not confirmed; not changing the metadata", "err", err)
			return false
		}
		now, ok := c.driver.Status(rp.group)
		return ok && now.Term == st.Term && now.Leader == c.raftID
	}
	propose := func(what string, cmd meta.Command) bool {
		if !confirmed() {
			return false
		}
		if err := c.propose(ctx, cmd); err != nil {
			log.Warn("replica move: metadata change failed; retrying", "step", what, "err", err)
			return false
		}
		return true
	}
	brokerOf := func(id string) meta.Broker {
		br, _ := c.state.Broker(id)
		return br
	}

	if moving {
		ps := partStep{moving: true}
		switch {
		case voter(mv.Add) && !voter(mv.Remove):
			reps := m.votersOf(mt.Name, p, st.Voters)
			if reps == nil || !settled {
				return ps
			}
			if propose("finish", meta.FinishMove{Topic: mt.Name, Partition: p, Replicas: reps}) {
				m.done.Inc()
				log.Info("replica move done", "added", mv.Add, "removed", mv.Remove, "replicas", reps)
			}
		case voter(mv.Add) && voter(mv.Remove):
			// Promoted but the old replica not removed (a change not made
			// here): remove it, handing leadership over first if it is us.
			if mv.Remove == b.id {
				m.handOff(rp.group, st, mv.Remove)
				return ps
			}
			change("remove", confChange(raftpb.ConfChangeRemoveNode, raftIDOf(mv.Remove)))
		case learner(mv.Add):
			target := raftIDOf(mv.Add)
			ps.remaining = m.bytesBehind(rp, st, target)
			if !eligible(brokerOf(mv.Add)) {
				log.Info("replica move: the target is no longer eligible; removing it", "target", mv.Add)
				change("remove learner", confChange(raftpb.ConfChangeRemoveNode, target))
				return ps
			}
			// Caught up: it has everything committed, or is a few
			// entries and bytes short (a batch is one entry, so entries
			// alone say little).
			match := st.Progress[target]
			if match < st.Commit && (match+moveCatchUpEntries < st.LastIndex || ps.remaining > moveCatchUpBytes) {
				return ps // catching up
			}
			if !voter(mv.Remove) {
				// The replica to remove left already: promote only.
				change("promote", confChange(raftpb.ConfChangeAddNode, target))
				return ps
			}
			if mv.Remove == b.id {
				m.handOff(rp.group, st, mv.Remove)
				return ps
			}
			cc := &raftpb.ConfChangeV2{
				Transition: raftpb.ConfChangeTransitionJointImplicit.Enum(),
				Changes: []*raftpb.ConfChangeSingle{
					{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: new(target)},
					{Type: raftpb.ConfChangeRemoveNode.Enum(), NodeId: new(raftIDOf(mv.Remove))},
				},
			}
			log.Info("replica move: promoting the caught-up learner and removing the old replica", "target", mv.Add, "removed", mv.Remove)
			change("promote and remove", cc)
		default: // the target is not a member
			if !eligible(brokerOf(mv.Add)) || !voter(mv.Remove) {
				if !settled {
					return ps
				}
				if propose("cancel", meta.CancelMove{Topic: mt.Name, Partition: p}) {
					log.Info("replica move cancelled", "target", mv.Add, "remove", mv.Remove)
				}
				return ps
			}
			log.Info("replica move: adding the target as a learner", "target", mv.Add)
			change("add learner", confChange(raftpb.ConfChangeAddLearnerNode, raftIDOf(mv.Add)))
		}
		return ps
	}

	// No move recorded. A learner no move names (a cancel that did not get
	// as far as removing it) leaves first.
	for _, l := range st.Learners {
		change("remove stray learner", confChange(raftpb.ConfChangeRemoveNode, l))
		return partStep{}
	}
	reps := mt.Replicas[p]
	if !sameMembers(reps, st.Voters) {
		// The configuration changed without the metadata knowing (a move
		// finished in raft whose record was lost with its leader):
		// the metadata follows raft.
		if vs := m.votersOf(mt.Name, p, st.Voters); vs != nil && settled {
			propose("record voters", meta.FinishMove{Topic: mt.Name, Partition: p, Replicas: vs})
		}
		return partStep{}
	}
	desired := meta.DesiredReplicas(c.state, mt.Name, p, len(reps), eligible)
	var add, remove string
	for _, id := range desired {
		if !slices.Contains(reps, id) {
			add = id
			break
		}
	}
	if add == "" {
		return partStep{}
	}
	// Remove an ineligible replica first, else the one placement ranks
	// lowest among those it no longer wants.
	for i := len(reps) - 1; i >= 0; i-- {
		if slices.Contains(desired, reps[i]) {
			continue
		}
		if remove == "" || !eligible(brokerOf(reps[i])) {
			remove = reps[i]
		}
	}
	if remove == "" {
		return partStep{}
	}
	for _, other := range c.state.Moves() {
		if other.Involves(add) || other.Involves(remove) || other.Involves(b.id) {
			return partStep{} // one move at a time per broker
		}
	}
	// The term goes with the move: the target's empty replica starts at it
	// (openReplicated), deaf to leaders of earlier terms.
	mv = meta.Move{Partition: p, Add: add, Remove: remove, Source: b.id, Term: st.Term}
	if !confirmed() {
		return partStep{}
	}
	if err := c.propose(ctx, meta.StartMove{Topic: mt.Name, Move: mv}); err != nil {
		if !errors.Is(err, meta.ErrMoveConflict) {
			log.Warn("replica move: could not start", "target", add, "remove", remove, "err", err)
		}
		return partStep{}
	}
	log.Info("replica move started", "target", add, "remove", remove)
	return partStep{moving: true}
}

// votersOf returns raft voters as broker ids in placement order, or nil
// when one is not a registered broker.
func (m *mover) votersOf(topic string, p int32, voters []uint64) []string {
	ids := make([]string, 0, len(voters))
	for _, v := range voters {
		br, ok := m.b.cluster.state.BrokerByRaftID(v)
		if !ok {
			return nil
		}
		ids = append(ids, br.ID)
	}
	return meta.OrderReplicas(m.b.cluster.state, topic, p, ids)
}

// handOff asks the group's leadership to move from this broker to the
// most caught-up other voter, preferring brokers that are alive and not
// draining.
func (m *mover) handOff(g uint64, st group.Status, leaving string) {
	to := m.b.handOffTarget(st, raftIDOf(leaving))
	if to == 0 {
		return
	}
	m.b.log.Info("replica move: handing leadership over before leaving the partition", "group", g, "to", to)
	m.b.cluster.driver.TransferLeadership(g, to)
}

// handOffTarget picks the voter to hand a group's leadership to: not
// `except`, alive, not draining when possible, most caught up; 0 if none.
func (b *Broker) handOffTarget(st group.Status, except uint64) uint64 {
	var to, best uint64
	var toDraining bool
	for _, v := range st.Voters {
		if v == except || v == b.cluster.raftID {
			continue
		}
		br, ok := b.cluster.state.BrokerByRaftID(v)
		if !ok || br.State != meta.BrokerAlive {
			continue
		}
		draining := br.Drain != meta.DrainNone
		better := to == 0 || toDraining && !draining || toDraining == draining && st.Progress[v] > best
		if better {
			to, best, toDraining = v, st.Progress[v], draining
		}
	}
	return to
}

// bytesBehind estimates the log bytes learner lacks: the log's size times
// the share of the retained entries past its match index.
func (m *mover) bytesBehind(rp *raftPart, st group.Status, learner uint64) int64 {
	match := st.Progress[learner]
	if st.LastIndex <= match || st.LastIndex < st.FirstIndex {
		return 0
	}
	entries := st.LastIndex - st.FirstIndex + 1
	behind := min(st.LastIndex-match, entries)
	return int64(float64(rp.store.Log().Size()) * float64(behind) / float64(entries))
}

// throttle filters a batch of raft messages for peer `to`: append and
// snapshot messages to a learner this broker is catching up pass a token
// bucket of MoveBytesPerSec, and those over it are dropped. It counts the
// entry bytes sent to learners.
func (m *mover) throttle(to uint64, msgs []group.Envelope) []group.Envelope {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.learners) == 0 {
		return msgs
	}
	rate := float64(m.b.cfg.Cluster.MoveBytesPerSec)
	out := msgs[:0]
	for _, e := range msgs {
		if !isCatchUp(e.Msg) || !slices.Contains(m.learners[e.Group], to) {
			out = append(out, e)
			continue
		}
		n := 0
		for _, ent := range e.Msg.GetEntries() {
			n += len(ent.GetData())
		}
		if rate > 0 && n > 0 {
			// A message goes while the bucket is not in debt and takes
			// its size from it, so one larger than the bucket still goes
			// and the average stays at the rate.
			now := time.Now()
			burst := max(rate/4, moveBurstBytes)
			m.tokens = min(burst, m.tokens+rate*now.Sub(m.last).Seconds())
			m.last = now
			if m.tokens <= 0 {
				m.dropped.Inc()
				continue
			}
			m.tokens -= float64(n)
		}
		m.sent.Add(n)
		out = append(out, e)
	}
	clear(msgs[len(out):])
	return out
}

// moveBurstBytes is the throttle's smallest bucket (else a quarter
// second of the rate).
const moveBurstBytes = 64 << 10

func isCatchUp(msg *raftpb.Message) bool {
	t := msg.GetType()
	return t == raftpb.MsgApp || t == raftpb.MsgSnap
}

// sameMembers reports whether ids (broker ids) and voters (raft ids) name
// the same brokers.
func sameMembers(ids []string, voters []uint64) bool {
	if len(ids) != len(voters) {
		return false
	}
	for _, id := range ids {
		if !slices.Contains(voters, raftIDOf(id)) {
			return false
		}
	}
	return true
}
