package group

import (
	"math"
	"slices"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
)

// Quiescing (GroupConfig.Quiesce) and peer liveness. The package
// documentation states the protocol; this file holds its pieces, all run on
// the loop goroutine.

// quiesceIndex marks the heartbeat with which a leader quiesces its
// followers: raft's own heartbeats leave Index 0, and a follower's raft
// reads only their term and commit (their context belongs to raft's
// ReadIndex protocol, so it cannot carry the mark).
const quiesceIndex = math.MaxUint64

// isQuiesceHeartbeat reports whether m is a quiescing heartbeat.
func isQuiesceHeartbeat(m *pb.Message) bool {
	return m.GetType() == pb.MsgHeartbeat && m.GetIndex() == quiesceIndex
}

// wakes reports whether m wakes a quiesced group: every message does but
// a quiescing heartbeat and a heartbeat's answer (a quiesced leader sent
// no heartbeat but the quiescing one; stepping the answers marks the
// followers recently active, so that the leader's first quorum check
// after waking does not depose it).
func wakes(m *pb.Message) bool {
	return !isQuiesceHeartbeat(m) && m.GetType() != pb.MsgHeartbeatResp
}

// tick is one TickInterval: every awake group is ticked, a Quiesce leader
// idle for QuiesceTicks quiesces instead, and a group whose leader's
// broker is down campaigns again if it is the preferred candidate.
func (d *Driver) tick() {
	d.ticks.Add(1)
	for _, g := range d.awake {
		if g.failed != nil {
			continue
		}
		if g.deadLead != 0 {
			g.campaignForDead()
		}
		if g.cfg.Quiesce && g.idleTick() {
			g.quiesceLeader()
			continue
		}
		if g.guard("tick", g.rn.Tick) {
			d.markDirty(g)
		}
	}
}

// idleTick counts the ticks in a row at which g, as leader, was idle, and
// reports whether it has been idle long enough to quiesce.
func (g *group) idleTick() bool {
	if !g.leaderIdle() {
		g.idleTicks = 0
		return false
	}
	g.idleTicks++
	return g.idleTicks >= g.d.cfg.QuiesceTicks
}

// leaderIdle reports whether g is led by this member with nothing in
// flight: no proposal waiting, no leadership transfer, every entry
// committed and applied, and every member not reported down holding the
// whole log. A member reported down is not waited for: when it is back
// (ReportPeerUp) the group wakes and catches it up. But with a quorum of
// voters reported down the leader stays awake, so that raft's CheckQuorum
// deposes it if it is the one cut off.
func (g *group) leaderIdle() bool {
	if g.lead != g.d.cfg.ID || len(g.pending) > 0 || len(g.fifo) > 0 || len(g.byIndex) > 0 || g.rn.HasReady() {
		return false
	}
	bs := g.rn.BasicStatus()
	if bs.RaftState != raft.StateLeader || bs.LeadTransferee != 0 || g.applied != bs.HardState.GetCommit() {
		return false
	}
	last, err := g.cfg.Storage.LastIndex()
	if err != nil || last != bs.HardState.GetCommit() {
		return false
	}
	voters, live := g.confState.GetVoters(), 0
	for _, v := range voters {
		if !g.d.down[v] {
			live++
		}
	}
	if live <= len(voters)/2 {
		return false
	}
	idle := true
	self := g.d.cfg.ID
	g.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		if id != self && pr.Match != last && !g.d.down[id] {
			idle = false
		}
	})
	return idle
}

// quiesceLeader stops ticking g and sends each member a heartbeat marked
// with quiesceIndex, carrying the commit index as raft's own heartbeat
// would (never above what the member holds). A follower that agrees on
// leader and term quiesces on it. One that misses it goes on ticking,
// campaigns after an election timeout, and its pre-vote wakes the leader,
// which then heartbeats it and quiesces again: the loss costs a few
// messages, not safety.
func (g *group) quiesceLeader() {
	bs := g.rn.BasicStatus()
	term, commit, self := bs.HardState.GetTerm(), bs.HardState.GetCommit(), g.d.cfg.ID
	g.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		if id == self {
			return
		}
		g.d.send(g.id, &pb.Message{
			Type: pb.MsgHeartbeat.Enum(), From: new(self), To: new(id), Term: new(term),
			Commit: new(min(pr.Match, commit)), Index: new(uint64(quiesceIndex)),
		})
	})
	g.setQuiesced()
}

// maybeQuiesceFollower quiesces g after it stepped a quiescing heartbeat m,
// if it follows m's sender in m's term, is not waiting for anything, the
// sender is not reported down, and it knows every entry it holds committed.
// A heartbeat committing less (its sender had not seen this member's last
// acknowledgement: it quiesced without waiting for a member reported down;
// or a late duplicate) leaves it awake: quiesced, it would not learn of the
// commit until the next write, and its state machine would stay behind the
// others'. Awake, it campaigns after an election timeout, which wakes the
// leader, whose heartbeats then bring the commit.
func (g *group) maybeQuiesceFollower(m *pb.Message) {
	if !g.cfg.Quiesce || g.quiesced || g.deadLead != 0 || len(g.pending) > 0 || g.d.down[m.GetFrom()] {
		return
	}
	bs := g.rn.BasicStatus()
	if bs.RaftState != raft.StateFollower || bs.Lead != m.GetFrom() || bs.HardState.GetTerm() != m.GetTerm() {
		return
	}
	if last, err := g.cfg.Storage.LastIndex(); err != nil || bs.HardState.GetCommit() < last {
		return
	}
	g.setQuiesced()
}

func (g *group) setQuiesced() {
	g.quiesced = true
	g.idleTicks = 0
	delete(g.d.awake, g.id)
	g.d.quiescedGroups.Add(1)
}

// wakeGroup makes a quiesced group tick again.
func (d *Driver) wakeGroup(g *group) {
	if !g.quiesced {
		return
	}
	g.quiesced = false
	d.awake[g.id] = g
	d.quiescedGroups.Add(-1)
	d.wakes.Add(1)
}

// ReportPeerDown tells the driver that peer's broker is suspected dead (a
// broker-level failure detector: the transport heard nothing from it for a
// while). Every Quiesce group led by peer wakes and forgets its leader, so that its
// members grant votes at once rather than after an election timeout (raft's
// PreVote and CheckQuorum make a member that heard from a leader lately
// refuse them), and the preferred surviving voter campaigns, again at each
// tick while no leader is known, for an election timeout at most. The
// preferred voter is the same on every member that sees the same peers
// down: of the voters not down, the one with the smallest hash of (group,
// voter), which spreads the new leaders over the survivors.
//
// A wrong suspicion costs little: a member that hears from the leader again
// follows it, and a campaign needs a quorum of members that also suspect
// it. Groups without Quiesce (the metadata group) are left to raft's own
// election timeout: their leadership moving on a wrong suspicion costs
// more. Groups led by peer do not quiesce until ReportPeerUp. Quiesced
// groups this member leads with peer as a voter wake: a leader with a
// quorum of its voters down does not quiesce, so that CheckQuorum deposes
// it if it is the one cut off.
func (d *Driver) ReportPeerDown(peer uint64) {
	_ = d.enqueue(func() {
		if d.down[peer] {
			return
		}
		d.down[peer] = true
		for _, g := range d.groups {
			if g.failed != nil || peer == d.cfg.ID {
				continue
			}
			if g.lead == d.cfg.ID {
				// Awake, the leader finds out whether it still has a
				// quorum (leaderIdle, CheckQuorum).
				if g.quiesced && slices.Contains(g.confState.GetVoters(), peer) {
					d.wakeGroup(g)
				}
				continue
			}
			if g.lead != peer || !g.cfg.Quiesce {
				continue
			}
			d.wakeGroup(g)
			g.deadLead, g.campaigns = peer, 0
			_ = g.rn.ForgetLeader()
			g.campaignForDead()
			d.markDirty(g)
		}
	})
}

// ReportPeerUp withdraws ReportPeerDown: peer's broker is heard from
// again. Quiesced groups this member leads with peer as a member wake, so
// that peer is caught up if it missed entries.
func (d *Driver) ReportPeerUp(peer uint64) {
	_ = d.enqueue(func() {
		if !d.down[peer] {
			return
		}
		delete(d.down, peer)
		for _, g := range d.groups {
			if g.quiesced && g.lead == d.cfg.ID &&
				(slices.Contains(g.confState.GetVoters(), peer) || slices.Contains(g.confState.GetLearners(), peer)) {
				d.wakeGroup(g)
			}
		}
	})
}

// campaignForDead makes this member campaign if it is the preferred
// candidate to replace the group's dead leader (see ReportPeerDown), while
// no leader is known, for at most an election timeout's ticks.
func (g *group) campaignForDead() {
	bs := g.rn.BasicStatus()
	if bs.Lead != raft.None || g.campaigns >= g.electionTicks() {
		g.deadLead = 0
		return
	}
	g.campaigns++
	if g.preferredCandidate() != g.d.cfg.ID {
		return
	}
	// A candidate is in its election already: campaigning again would only
	// raise the term. A pre-candidate asks again, for the members that did
	// not suspect the leader yet when it asked last.
	if st := bs.RaftState; st == raft.StateFollower || st == raft.StatePreCandidate {
		if g.rn.Campaign() == nil {
			g.d.markDirty(g)
		}
	}
}

// preferredCandidate is the voter of g, not reported down nor the dead
// leader, with the smallest mix(group, voter); 0 if none.
func (g *group) preferredCandidate() uint64 {
	var best, bestH uint64
	for _, v := range g.confState.GetVoters() {
		if v == g.deadLead || g.d.down[v] {
			continue
		}
		if h := mix(g.id, v); best == 0 || h < bestH {
			best, bestH = v, h
		}
	}
	return best
}

// mix hashes a (group, member) pair (splitmix64's finaliser).
func mix(group, member uint64) uint64 {
	z := group*0x9e3779b97f4a7c15 ^ member
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func (g *group) electionTicks() int {
	if g.cfg.ElectionTicks > 0 {
		return g.cfg.ElectionTicks
	}
	return g.d.cfg.ElectionTicks
}
