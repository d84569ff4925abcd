package group

import (
	"fmt"
	"slices"
	"testing"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// quiescedAll waits until every member's copy of each group is quiesced.
func (c *cluster) quiescedAll(groups []uint64, members ...uint64) {
	c.t.Helper()
	waitFor(c.t, fmt.Sprintf("groups %v quiesced on %v", groups, members), func() bool {
		for _, g := range groups {
			for _, id := range members {
				if s, ok := c.drivers[id].Status(g); !ok || !s.Quiesced {
					return false
				}
			}
		}
		return true
	})
}

// waitTicks waits until each member's driver has handled n more ticks.
func (c *cluster) waitTicks(n uint64, members ...uint64) {
	c.t.Helper()
	start := map[uint64]uint64{}
	for _, id := range members {
		start[id] = c.drivers[id].Stats().Ticks
	}
	waitFor(c.t, fmt.Sprintf("%d ticks", n), func() bool {
		for _, id := range members {
			if c.drivers[id].Stats().Ticks < start[id]+n {
				return false
			}
		}
		return true
	})
}

// quiesceCluster starts 3 drivers hosting Quiesce groups 1..n, each led by
// a chosen member, with one entry committed in each.
func quiesceCluster(t *testing.T, file bool, n uint64) (*cluster, []uint64, []uint64) {
	c := newCluster(t, file)
	c.gcfg.Quiesce = true
	members := ids(3)
	for _, id := range members {
		c.startDriver(id)
	}
	var groups []uint64
	for g := uint64(1); g <= n; g++ {
		groups = append(groups, g)
		for _, id := range members {
			c.addGroup(id, g, members)
		}
	}
	for _, g := range groups {
		lead := c.leader(g, members...)
		c.propose(lead, g, fmt.Sprintf("g%d-first", g))
		c.converged(g, []string{fmt.Sprintf("g%d-first", g)}, members...)
	}
	return c, members, groups
}

// TestQuiesceIdleGroups: idle groups quiesce on every member, and while
// quiesced with their leader alive they send nothing and elect nobody, for
// many election timeouts.
func TestQuiesceIdleGroups(t *testing.T) {
	c, members, groups := quiesceCluster(t, false, 4)
	c.quiescedAll(groups, members...)
	type view struct{ lead, term uint64 }
	before := map[uint64]view{}
	for _, g := range groups {
		s, _ := c.drivers[1].Status(g)
		before[g] = view{s.Leader, s.Term}
	}
	sent := map[uint64]uint64{}
	for _, id := range members {
		st := c.drivers[id].Stats()
		if st.Groups != len(groups) || st.Quiesced != len(groups) {
			t.Fatalf("driver %d stats %+v, want %d groups all quiesced", id, st, len(groups))
		}
		sent[id] = st.MessagesSent
	}
	c.waitTicks(uint64(5*DefaultElectionTicks), members...)
	for _, id := range members {
		if st := c.drivers[id].Stats(); st.MessagesSent != sent[id] || st.Quiesced != len(groups) {
			t.Fatalf("driver %d while quiesced: sent %d messages more, %d of %d quiesced", id, st.MessagesSent-sent[id], st.Quiesced, len(groups))
		}
		for _, g := range groups {
			s, _ := c.drivers[id].Status(g)
			if (view{s.Leader, s.Term}) != before[g] || !s.Quiesced {
				t.Fatalf("group %d on %d: leader %d term %d quiesced %v, was leader %d term %d", g, id, s.Leader, s.Term, s.Quiesced, before[g].lead, before[g].term)
			}
		}
	}
}

// TestQuiescedWakesOnProposal: a proposal wakes the leader, its append
// wakes the followers, every member applies it, and the group quiesces
// again afterwards.
func TestQuiescedWakesOnProposal(t *testing.T) {
	c, members, groups := quiesceCluster(t, false, 2)
	c.quiescedAll(groups, members...)
	wakes := map[uint64]uint64{}
	for _, id := range members {
		wakes[id] = c.drivers[id].Stats().Wakes
	}
	g := groups[0]
	s, _ := c.drivers[1].Status(g)
	c.propose(s.Leader, g, "after quiescing")
	c.converged(g, []string{"g1-first", "after quiescing"}, members...)
	for _, id := range members {
		if c.drivers[id].Stats().Wakes <= wakes[id] {
			t.Fatalf("driver %d did not wake group %d", id, g)
		}
	}
	// The other group stayed quiesced throughout.
	for _, id := range members {
		if s, _ := c.drivers[id].Status(groups[1]); !s.Quiesced {
			t.Fatalf("group %d on %d woke with group %d", groups[1], id, g)
		}
	}
	c.quiescedAll(groups, members...)
	after, _ := c.drivers[1].Status(g)
	if after.Leader != s.Leader || after.Term != s.Term {
		t.Fatalf("leader %d term %d after the proposal, was %d term %d", after.Leader, after.Term, s.Leader, s.Term)
	}
}

// TestQuiescedWakesOnMessage: a follower restarted from its storage is
// awake; its messages wake the quiesced leader, which takes it back
// without an election, and the group quiesces again.
func TestQuiescedWakesOnMessage(t *testing.T) {
	c, members, groups := quiesceCluster(t, true, 1)
	g := groups[0]
	c.quiescedAll(groups, members...)
	s, _ := c.drivers[1].Status(g)
	lead := s.Leader
	f := lead%3 + 1
	leaderWakes := c.drivers[lead].Stats().Wakes
	c.stopDriver(f)
	c.startDriver(f)
	c.addGroup(f, g, members)
	waitFor(t, "the leader to wake", func() bool { return c.drivers[lead].Stats().Wakes > leaderWakes })
	waitFor(t, "the restarted follower to follow the leader", func() bool {
		s, _ := c.drivers[f].Status(g)
		return s.Leader == lead
	})
	c.quiescedAll(groups, members...)
	after, _ := c.drivers[lead].Status(g)
	if after.Leader != lead || after.State != raft.StateLeader {
		t.Fatalf("after the follower's restart: %+v, want %d still leading", after, lead)
	}
	c.propose(lead, g, "after restart")
	c.converged(g, []string{"g1-first", "after restart"}, members...)
}

// TestQuiescedLeaderDown: the leader's broker dies while its groups are
// quiesced; quiesced followers never elect on their own, and once the
// broker is reported down every group elects a new leader among the
// survivors and takes proposals.
func TestQuiescedLeaderDown(t *testing.T) {
	c, members, groups := quiesceCluster(t, false, 6)
	// Lead every group from broker 1.
	for _, g := range groups {
		s, _ := c.drivers[1].Status(g)
		if s.Leader != 1 {
			c.drivers[s.Leader].TransferLeadership(g, 1)
			waitFor(t, fmt.Sprintf("broker 1 to lead group %d", g), func() bool {
				s, _ := c.drivers[1].Status(g)
				return s.State == raft.StateLeader
			})
		}
	}
	c.quiescedAll(groups, members...)
	c.net.setCut(1, true)
	c.stopDriver(1)
	survivors := []uint64{2, 3}
	c.waitTicks(uint64(3*DefaultElectionTicks), survivors...)
	for _, id := range survivors {
		for _, g := range groups {
			if s, _ := c.drivers[id].Status(g); s.Leader != 1 || !s.Quiesced {
				t.Fatalf("group %d on %d before the report: %+v", g, id, s)
			}
		}
	}
	for _, id := range survivors {
		c.drivers[id].ReportPeerDown(1)
	}
	leaders := map[uint64]int{}
	for _, g := range groups {
		lead := c.leader(g, survivors...)
		if !slices.Contains(survivors, lead) {
			t.Fatalf("group %d: leader %d", g, lead)
		}
		leaders[lead]++
		c.propose(lead, g, "after failover")
		c.converged(g, []string{"after failover"}, survivors...)
	}
	t.Logf("new leaders per broker: %v", leaders)
	// With broker 1 down the groups quiesce again on the survivors.
	c.quiescedAll(groups, survivors...)
}

// TestQuiescedLeaderCutOff: a quiesced leader cut off from both
// followers wakes when they are reported down, and, with a quorum of its
// voters down, stays awake until CheckQuorum deposes it; the followers
// elect one of them meanwhile.
func TestQuiescedLeaderCutOff(t *testing.T) {
	c, members, groups := quiesceCluster(t, false, 1)
	g := groups[0]
	c.quiescedAll(groups, members...)
	s, _ := c.drivers[1].Status(g)
	old := s.Leader
	var others []uint64
	for _, id := range members {
		if id != old {
			others = append(others, id)
		}
	}
	c.net.setCut(old, true)
	for _, id := range others {
		c.drivers[old].ReportPeerDown(id)
		c.drivers[id].ReportPeerDown(old)
	}
	lead := c.leader(g, others...)
	if lead == old {
		t.Fatalf("the cut off leader %d still leads the others", old)
	}
	waitFor(t, "the cut off leader to step down", func() bool {
		s, _ := c.drivers[old].Status(g)
		return s.State != raft.StateLeader
	})
	c.propose(lead, g, "after the cut")
	c.net.setCut(old, false)
	for _, id := range others {
		c.drivers[old].ReportPeerUp(id)
		c.drivers[id].ReportPeerUp(old)
	}
	c.converged(g, []string{"g1-first", "after the cut"}, members...)
	c.quiescedAll(groups, members...)
}

// TestFollowerHoldingUncommittedEntriesStaysAwake: a quiescing heartbeat
// whose commit is below the follower's last entry (its sender had not yet
// seen the follower's last acknowledgement, or it is a late duplicate) does
// not quiesce the follower: quiesced, it would never learn that the entry
// committed, and its high watermark would stay behind the others'.
func TestFollowerHoldingUncommittedEntriesStaysAwake(t *testing.T) {
	c, members, groups := quiesceCluster(t, false, 1)
	g := groups[0]
	c.quiescedAll(groups, members...)
	s, _ := c.drivers[1].Status(g)
	lead := s.Leader
	f := lead%3 + 1
	fs, _ := c.drivers[f].Status(g)
	last, term := fs.LastIndex, fs.Term
	// f answers nobody from now on: its acknowledgement of the entry below
	// must not reach the leader, whose log does not hold it.
	c.net.setCut(f, true)
	c.drivers[f].Step(lead, []Envelope{{Group: g, Msg: &pb.Message{
		Type: pb.MsgApp.Enum(), From: new(lead), To: new(f), Term: new(term),
		Index: new(last), LogTerm: new(term), Commit: new(last),
		Entries: []*pb.Entry{{Index: new(last + 1), Term: new(term), Data: []byte("uncommitted")}},
	}}})
	waitFor(t, "the follower to hold the entry", func() bool {
		s, _ := c.drivers[f].Status(g)
		return s.LastIndex == last+1 && !s.Quiesced
	})
	c.drivers[f].Step(lead, []Envelope{{Group: g, Msg: &pb.Message{
		Type: pb.MsgHeartbeat.Enum(), From: new(lead), To: new(f), Term: new(term),
		Commit: new(last), Index: new(uint64(quiesceIndex)),
	}}})
	s, _ = c.drivers[f].Status(g)
	if s.Quiesced || s.Commit != last {
		t.Fatalf("after a quiescing heartbeat committing %d of %d: quiesced %v, commit %d", last, last+1, s.Quiesced, s.Commit)
	}
}
