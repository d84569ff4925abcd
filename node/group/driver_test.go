package group

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// TestClusterProposals runs 3 and 5 drivers, each hosting several groups,
// and proposes on leaders and followers.
func TestClusterProposals(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("nodes=%d", n), func(t *testing.T) {
			c := newCluster(t, false)
			members := ids(n)
			for _, id := range members {
				c.startDriver(id)
			}
			groups := []uint64{1, 2, 3}
			for _, g := range groups {
				for _, id := range members {
					c.addGroup(id, g, members)
				}
			}
			for _, g := range groups {
				lead := c.leader(g, members...)
				var want []string
				for k, id := range members {
					data := fmt.Sprintf("g%d-from%d-%d", g, id, k)
					v, index := c.propose(id, g, data)
					if index == 0 || v.(int) < 1 {
						t.Fatalf("proposal on %d (leader %d): result %v at %d", id, lead, v, index)
					}
					// Read-your-writes: the proposer's state machine has it.
					if !slices.Contains(c.sms[[2]uint64{id, g}].list(), data) {
						t.Fatalf("proposer %d does not see %s after Propose returned", id, data)
					}
					want = append(want, data)
				}
				got := c.converged(g, want, members...)
				if len(got) != len(want) {
					t.Fatalf("group %d applied %v, want %v", g, got, want)
				}
				s, _ := c.drivers[lead].Status(g)
				if len(s.Voters) != n || len(s.Progress) != n || s.Applied < uint64(n) {
					t.Fatalf("leader status %+v", s)
				}
			}
			st := c.drivers[1].Stats()
			if st.MessagesSent == 0 || st.MessagesReceived == 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// TestSingleVoterUsableAtOnce: a group whose only voter is this broker takes
// proposals right after AddGroup, also after a restart from its storage.
func TestSingleVoterUsableAtOnce(t *testing.T) {
	c := newCluster(t, true)
	c.startDriver(1)
	c.addGroup(1, 7, []uint64{1})
	ctx := context.Background()
	for i := range 3 {
		if _, _, err := c.drivers[1].Propose(ctx, 7, fmt.Appendf(nil, "x%d", i)); err != nil {
			t.Fatalf("proposal %d right after start: %v", i, err)
		}
	}
	c.stopDriver(1)
	c.startDriver(1)
	c.addGroup(1, 7, []uint64{1})
	v, index, err := c.drivers[1].Propose(ctx, 7, []byte("after restart"))
	if err != nil {
		t.Fatalf("proposal right after restart: %v", err)
	}
	if v.(int) != 4 {
		t.Fatalf("result %v at %d: the log was not replayed into the state machine", v, index)
	}
	if got := c.sms[[2]uint64{1, 7}].list(); !slices.Equal(got, []string{"x0", "x1", "x2", "after restart"}) {
		t.Fatalf("applied %v", got)
	}
}

// TestNoLeaderFailsFast: with a quorum missing, Propose fails at once with
// ErrNoLeader instead of waiting for its context.
func TestNoLeaderFailsFast(t *testing.T) {
	c := newCluster(t, false)
	c.startDriver(1)
	c.addGroup(1, 1, ids(3))
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	_, _, err := c.drivers[1].Propose(ctx, 1, []byte("x"))
	if !errors.Is(err, ErrNoLeader) {
		t.Fatalf("propose without a leader: %v", err)
	}
	if _, err := c.drivers[1].ProposeConfChange(ctx, 1, &pb.ConfChangeV2{}); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("conf change without a leader: %v", err)
	}
	if _, _, err := c.drivers[1].Propose(ctx, 99, []byte("x")); !errors.Is(err, ErrUnknownGroup) {
		t.Fatalf("unknown group: %v", err)
	}
}

// TestLearnerJoinsAndIsPromoted adds a fourth broker as a learner, proposes
// through it (forwarded to the leader), then promotes it to voter.
func TestLearnerJoinsAndIsPromoted(t *testing.T) {
	c := newCluster(t, false)
	for _, id := range ids(4) {
		c.startDriver(id)
	}
	for _, id := range ids(3) {
		c.addGroup(id, 1, ids(3))
	}
	lead := c.leader(1, ids(3)...)
	c.propose(lead, 1, "before")
	ctx := context.Background()
	cc := &pb.ConfChangeV2{Changes: []*pb.ConfChangeSingle{{Type: pb.ConfChangeAddLearnerNode.Enum(), NodeId: new(uint64(4))}}}
	if _, err := c.drivers[lead].ProposeConfChange(ctx, 1, cc); err != nil {
		t.Fatal(err)
	}
	c.addGroup(4, 1, nil) // joins empty, no bootstrap
	c.converged(1, []string{"before"}, ids(4)...)
	s, _ := c.drivers[4].Status(1)
	if !slices.Equal(s.Learners, []uint64{4}) || s.Leader != lead {
		t.Fatalf("learner status %+v", s)
	}
	v, _ := c.propose(4, 1, "from learner")
	if v.(int) != 2 {
		t.Fatalf("learner's proposal result %v", v)
	}
	promote := &pb.ConfChangeV2{Changes: []*pb.ConfChangeSingle{{Type: pb.ConfChangeAddNode.Enum(), NodeId: new(uint64(4))}}, Context: []byte("promote")}
	if _, err := c.drivers[lead].ProposeConfChange(ctx, 1, promote); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node 4 to be a voter everywhere", func() bool {
		for _, id := range ids(4) {
			s, _ := c.drivers[id].Status(1)
			if !slices.Equal(s.Voters, ids(4)) || len(s.Learners) != 0 {
				return false
			}
		}
		return true
	})
	c.propose(4, 1, "from voter 4")
	c.converged(1, []string{"before", "from learner", "from voter 4"}, ids(4)...)
}

// TestRestartCatchesUp closes a member, writes more, and reopens it from its
// FileStorage: it replays its log and catches up.
func TestRestartCatchesUp(t *testing.T) {
	c := newCluster(t, true)
	for _, id := range ids(3) {
		c.startDriver(id)
		c.addGroup(id, 1, ids(3))
		c.addGroup(id, 2, ids(3))
	}
	var want []string
	for i := range 5 {
		want = append(want, fmt.Sprintf("a%d", i))
		c.propose(uint64(i%3+1), 1, want[len(want)-1])
	}
	c.converged(1, want, ids(3)...)
	c.stopDriver(3)
	for i := range 5 {
		want = append(want, fmt.Sprintf("b%d", i))
		c.propose(uint64(i%2+1), 1, want[len(want)-1])
	}
	c.startDriver(3)
	c.addGroup(3, 1, ids(3))
	c.addGroup(3, 2, ids(3))
	got := c.converged(1, want, ids(3)...)
	if !slices.Equal(got, want) {
		t.Fatalf("applied %v, want %v", got, want)
	}
	c.propose(3, 2, "restarted member proposes")
	c.converged(2, []string{"restarted member proposes"}, ids(3)...)
}

// TestSnapshotCatchUp: a member cut off while the others compact their logs
// gets a snapshot when it comes back.
func TestSnapshotCatchUp(t *testing.T) {
	c := newCluster(t, true)
	c.gcfg = GroupConfig{SnapshotEntries: 4, KeepEntries: 1}
	for _, id := range ids(3) {
		c.startDriver(id)
		c.addGroup(id, 1, ids(3))
	}
	lead := c.leader(1, ids(3)...)
	behind := uint64(1)
	if lead == behind {
		behind = 2
	}
	c.net.setCut(behind, true)
	var want []string
	for i := range 30 {
		want = append(want, fmt.Sprintf("s%d", i))
		c.propose(lead, 1, want[len(want)-1])
	}
	s, _ := c.drivers[lead].Status(1)
	if s.FirstIndex <= 2 {
		t.Fatalf("leader did not compact: %+v", s)
	}
	c.net.setCut(behind, false)
	got := c.converged(1, want, ids(3)...)
	if !slices.Equal(got, want) {
		t.Fatalf("applied %v, want %v", got, want)
	}
	sm := c.sms[[2]uint64{behind, 1}]
	sm.mu.Lock()
	restores := sm.restores
	sm.mu.Unlock()
	if restores == 0 {
		t.Fatal("member behind caught up without a snapshot")
	}
	// The member that got the snapshot restarts from it.
	c.stopDriver(behind)
	c.startDriver(behind)
	c.addGroup(behind, 1, ids(3))
	c.propose(lead, 1, "after")
	want = append(want, "after")
	c.converged(1, want, ids(3)...)
	// So does the leader, whose log starts before its snapshot.
	c.stopDriver(lead)
	c.startDriver(lead)
	c.addGroup(lead, 1, ids(3))
	c.propose(lead, 1, "after leader restart")
	got = c.converged(1, append(want, "after leader restart"), ids(3)...)
	if !slices.Equal(got, append(want, "after leader restart")) {
		t.Fatalf("applied %v", got)
	}
}

// TestCutOffLeaderDropsProposals: a leader that loses its quorum steps down
// (CheckQuorum) and fails the proposals pending on it.
func TestCutOffLeaderDropsProposals(t *testing.T) {
	c := newCluster(t, false)
	for _, id := range ids(3) {
		c.startDriver(id)
		c.addGroup(id, 1, ids(3))
	}
	lead := c.leader(1, ids(3)...)
	c.propose(lead, 1, "before")
	c.net.setCut(lead, true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			_, _, errs[i] = c.drivers[lead].Propose(ctx, 1, fmt.Appendf(nil, "lost%d", i))
		})
	}
	wg.Wait()
	for i, err := range errs {
		// A proposal made after the step-down finds no leader.
		if !errors.Is(err, ErrProposalDropped) && !errors.Is(err, ErrNoLeader) {
			t.Fatalf("proposal %d on the cut-off leader: %v", i, err)
		}
	}
	if !slices.ContainsFunc(errs, func(e error) bool { return errors.Is(e, ErrProposalDropped) }) {
		t.Fatalf("no proposal was pending when the leader stepped down: %v", errs)
	}
	if c.drivers[lead].Stats().ProposalsDropped == 0 {
		t.Fatal("ProposalsDropped not counted")
	}
	s, _ := c.drivers[lead].Status(1)
	if s.State == raft.StateLeader {
		t.Fatalf("cut-off leader still leads: %+v", s)
	}
	c.net.setCut(lead, false)
	others := slices.DeleteFunc(ids(3), func(id uint64) bool { return id == lead })
	c.leader(1, others...)
	c.propose(lead, 1, "after")
	c.converged(1, []string{"before", "after"}, ids(3)...)
}

// TestCloseFailsPending: proposals waiting when the driver closes get
// ErrClosed; Close is idempotent; calls after it fail with ErrClosed.
func TestCloseFailsPending(t *testing.T) {
	c := newCluster(t, false)
	for _, id := range ids(3) {
		c.startDriver(id)
		c.addGroup(id, 1, ids(3))
	}
	lead := c.leader(1, ids(3)...)
	for _, id := range ids(3) {
		if id != lead {
			c.net.setCut(id, true)
		}
	}
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.drivers[lead].Propose(context.Background(), 1, []byte("pending"))
		errc <- err
	}()
	waitFor(t, "a pending proposal", func() bool {
		s, _ := c.drivers[lead].Status(1)
		return s.PendingProposals == 1 || s.Leader != lead
	})
	c.drivers[lead].Close()
	// Close fails it, unless the leader stepped down (CheckQuorum) first.
	if err := <-errc; !errors.Is(err, ErrClosed) && !errors.Is(err, ErrProposalDropped) {
		t.Fatalf("pending proposal at close: %v", err)
	}
	c.stopDriver(lead)
}

// TestRemoveAndClose covers RemoveGroup and calls on a closed driver.
func TestRemoveAndClose(t *testing.T) {
	c := newCluster(t, false)
	c.startDriver(1)
	c.addGroup(1, 1, ids(2)) // no quorum: nothing commits
	d := c.drivers[1]
	if err := d.Campaign(1); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveGroup(1); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveGroup(1); !errors.Is(err, ErrUnknownGroup) {
		t.Fatalf("second remove: %v", err)
	}
	d.Close()
	d.Close()
	if _, _, err := d.Propose(context.Background(), 1, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("propose after close: %v", err)
	}
	if _, ok := d.Status(1); ok {
		t.Fatal("status after close")
	}
	if err := d.AddGroup(GroupConfig{Group: 1, Storage: &memStorage{raft.NewMemoryStorage()}, SM: &logSM{}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("add after close: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{ElectionTicks: 1, HeartbeatTicks: 1, TickInterval: time.Microsecond}.withDefaults().Validate()
	for _, want := range []string{"ID", "Transport", "TickInterval", "ElectionTicks"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Validate: %v, want a complaint about %s", err, want)
		}
	}
	if err := (GroupConfig{}).Validate(); err == nil {
		t.Fatal("empty GroupConfig accepted")
	}
}

// A message raft cannot take (a heartbeat committing past the follower's
// log, as a member whose log was lost behind its back receives) makes raft
// panic: it fails that group only; the driver and its other groups go on.
func TestRaftPanicFailsOneGroup(t *testing.T) {
	c := newCluster(t, false)
	members := ids(3)
	for _, id := range members {
		c.startDriver(id)
	}
	for _, g := range []uint64{1, 2} {
		for _, id := range members {
			c.addGroup(id, g, members)
		}
	}
	lead := c.leader(1, members...)
	c.propose(lead, 1, "before")
	c.converged(1, []string{"before"}, members...)
	f := lead%3 + 1
	c.drivers[f].Step(lead, []Envelope{{Group: 1, Msg: &pb.Message{
		Type: pb.MsgHeartbeat.Enum(), From: new(lead), To: new(f), Term: new(uint64(1 << 40)), Commit: new(uint64(1 << 40)),
	}}})
	waitFor(t, "the follower's group 1 failed", func() bool {
		return c.drivers[f].Stats().GroupsFailedByPanic == 1
	})
	if _, _, err := c.drivers[f].Propose(context.Background(), 1, []byte("x")); !errors.Is(err, ErrGroupFailed) {
		t.Fatalf("proposal to the failed group: %v, want ErrGroupFailed", err)
	}
	// Group 2 on the same driver, and group 1 on the others, still work.
	lead2 := c.leader(2, members...)
	c.propose(lead2, 2, "after")
	c.converged(2, []string{"after"}, members...)
}

// A leader whose group fails reports that it knows no leader, so that its
// owner stops serving as the leader from a state that no longer moves.
func TestFailedLeaderReportsNoLeader(t *testing.T) {
	c := newCluster(t, false)
	members := ids(3)
	var mu sync.Mutex
	reported := map[uint64][]uint64{} // leaders each member reported
	for _, id := range members {
		c.startDriver(id)
		c.gcfg.OnLeaderChange = func(leader, term uint64) {
			mu.Lock()
			reported[id] = append(reported[id], leader)
			mu.Unlock()
		}
		c.addGroup(id, 1, members)
	}
	lead := c.leader(1, members...)
	c.propose(lead, 1, "before")
	last := func() uint64 {
		mu.Lock()
		defer mu.Unlock()
		r := reported[lead]
		if len(r) == 0 {
			return math.MaxUint64
		}
		return r[len(r)-1]
	}
	waitFor(t, "the leader to report itself", func() bool { return last() == lead })
	// A heartbeat committing past its log from a higher term: raft panics.
	from := lead%3 + 1
	c.drivers[lead].Step(from, []Envelope{{Group: 1, Msg: &pb.Message{
		Type: pb.MsgHeartbeat.Enum(), From: new(from), To: new(lead), Term: new(uint64(1 << 40)), Commit: new(uint64(1 << 40)),
	}}})
	waitFor(t, "the leader's group failed", func() bool {
		return c.drivers[lead].Stats().GroupsFailedByPanic == 1
	})
	if l := last(); l != 0 {
		t.Fatalf("the failed leader last reported leader %d, want 0 (none)", l)
	}
}

// A member removed and then re-created empty (a replica moved away and
// back) must not help a leader cut off since before the removal, which
// still counts it as a voter, to a majority: it starts at a later term
// (the one it is added back in) and, joining, does not vote while it is
// not in its own configuration.
func TestRecreatedMemberIgnoresStaleLeader(t *testing.T) {
	c, members, stale, _ := untaggedGroup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := c.drivers[stale].ProposeAsync(7, []byte("before"), nil).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	c.net.setCut(stale, true)
	var lead, gone uint64
	waitFor(t, "a leader among the others", func() bool {
		for _, id := range members {
			if st, ok := c.drivers[id].Status(7); id != stale && ok && st.State == raft.StateLeader {
				lead = id
				return true
			}
		}
		return false
	})
	for _, id := range members {
		if id != stale && id != lead {
			gone = id
		}
	}
	remove := &pb.ConfChangeV2{Changes: []*pb.ConfChangeSingle{{Type: pb.ConfChangeRemoveNode.Enum(), NodeId: new(gone)}}}
	if _, err := c.drivers[lead].ProposeConfChange(ctx, 7, remove); err != nil {
		t.Fatal(err)
	}
	st, _ := c.drivers[lead].Status(7)

	// gone comes back empty, at the term its return was decided in.
	c.stopDriver(gone)
	c.startDriver(gone)
	ms := &memStorage{MemoryStorage: raft.NewMemoryStorage()}
	if err := ms.SetHardState(&pb.HardState{Term: new(st.Term)}); err != nil {
		t.Fatal(err)
	}
	gc := c.gcfg
	gc.Group, gc.Storage, gc.SM, gc.Joining = 7, ms, &logSM{}, true
	if err := c.drivers[gone].AddGroup(gc); err != nil {
		t.Fatal(err)
	}

	// The stale member and the re-created one alone: nothing commits,
	// however long the stale one tries (several election timeouts).
	c.net.setCut(lead, true)
	c.net.setCut(stale, false)
	tctx, tcancel := context.WithTimeout(ctx, 3*time.Second)
	defer tcancel()
	for tctx.Err() == nil {
		if _, index, err := c.drivers[stale].ProposeAsync(7, []byte("stale"), nil).Wait(tctx); err == nil {
			t.Fatalf("the stale member committed at %d with the re-created one", index)
		}
		select {
		case <-tctx.Done():
		case <-time.After(10 * testTick):
		}
	}
	if s, _ := c.drivers[stale].Status(7); s.State == raft.StateLeader && s.Term >= st.Term {
		t.Fatalf("the stale member leads term %d (the group is at %d)", s.Term, st.Term)
	}
}
