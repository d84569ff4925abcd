package meta

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// brokersState returns a state with brokers b1..bn (raft ids 1..n) in the
// given zones (cycled; none if zones is empty), the listed ones fenced.
func brokersState(t testing.TB, n int, zones []string, fenced ...int) *State {
	a := newApplier(t)
	a.must(InitCluster{ClusterID: "c"})
	for i := 1; i <= n; i++ {
		r := RegisterBroker{ID: fmt.Sprint("b", i), RaftID: uint64(i), Instance: "i", Addr: "x:1"}
		if len(zones) > 0 {
			r.Zone = zones[(i-1)%len(zones)]
		}
		a.must(r)
	}
	for _, i := range fenced {
		a.must(FenceBroker{ID: fmt.Sprint("b", i), Epoch: 1})
	}
	return a.s
}

func TestDesiredVotersSize(t *testing.T) {
	for _, tt := range []struct {
		alive, max, want int
	}{
		{0, 3, 0}, {1, 3, 1}, {2, 3, 1}, {3, 3, 3}, {4, 3, 3}, {4, 5, 3}, {5, 5, 5}, {9, 5, 5}, {6, 4, 3}, {3, 0, 1},
	} {
		got := DesiredVoters(brokersState(t, tt.alive, nil), nil, tt.max)
		if len(got) != tt.want || !slices.IsSorted(got) {
			t.Errorf("%d alive, max %d: %v, want %d voters", tt.alive, tt.max, got, tt.want)
		}
	}
}

func TestDesiredVotersKeepsAliveVoters(t *testing.T) {
	s := brokersState(t, 7, nil, 2)
	// 2 is fenced, 99 is no broker: both go; 1 and 3 stay; one more joins.
	got := DesiredVoters(s, []uint64{3, 99, 2, 1}, 3)
	if len(got) != 3 || !slices.Contains(got, 1) || !slices.Contains(got, 3) || slices.Contains(got, 2) {
		t.Fatalf("desired %v", got)
	}
	// The order of current does not matter.
	if again := DesiredVoters(s, []uint64{1, 2, 99, 3}, 3); !reflect.DeepEqual(again, got) {
		t.Fatalf("desired %v then %v", got, again)
	}
	// More alive voters than slots: the best ranked are kept, and the
	// result is stable.
	five := DesiredVoters(s, nil, 5)
	three := DesiredVoters(s, five, 3)
	if len(three) != 3 {
		t.Fatalf("desired %v", three)
	}
	for _, id := range three {
		if !slices.Contains(five, id) {
			t.Fatalf("shrinking %v to 3 took %d", five, id)
		}
	}
	if again := DesiredVoters(s, three, 3); !reflect.DeepEqual(again, three) {
		t.Fatalf("not stable: %v then %v", three, again)
	}
}

func TestDesiredVotersZones(t *testing.T) {
	zoneOf := func(s *State, id uint64) string { b, _ := s.BrokerByRaftID(id); return b.Zone }
	s := brokersState(t, 9, []string{"x", "y", "z"})
	got := DesiredVoters(s, nil, 3)
	zones := map[string]bool{}
	for _, id := range got {
		zones[zoneOf(s, id)] = true
	}
	if len(zones) != 3 {
		t.Fatalf("voters %v span zones %v", got, zones)
	}
	// Kept voters in one zone: the fill still goes to the other zones.
	got = DesiredVoters(s, []uint64{1, 4}, 5) // both zone x
	zones = map[string]bool{}
	for _, id := range got {
		zones[zoneOf(s, id)] = true
	}
	if len(got) != 5 || !slices.Contains(got, 1) || !slices.Contains(got, 4) || len(zones) != 3 {
		t.Fatalf("voters %v span zones %v", got, zones)
	}
}

// applyChange applies one step to voters and learners.
func applyChange(t *testing.T, voters, learners []uint64, c VoterChange) ([]uint64, []uint64) {
	t.Helper()
	switch c.Kind {
	case AddLearner:
		if slices.Contains(voters, c.RaftID) || slices.Contains(learners, c.RaftID) {
			t.Fatalf("add learner %d: voters %v learners %v", c.RaftID, voters, learners)
		}
		learners = append(learners, c.RaftID)
	case PromoteVoter:
		i := slices.Index(learners, c.RaftID)
		if i < 0 {
			t.Fatalf("promote %d: not a learner of %v", c.RaftID, learners)
		}
		learners = slices.Delete(learners, i, i+1)
		voters = append(voters, c.RaftID)
	case RemoveVoter:
		i := slices.Index(voters, c.RaftID)
		if i < 0 {
			t.Fatalf("remove %d: not a voter of %v", c.RaftID, voters)
		}
		voters = slices.Delete(voters, i, i+1)
		learners = append(learners, c.RaftID)
	}
	return voters, learners
}

func TestNextVoterChangeConverges(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := range 3000 {
		// A start of 1 to 7 distinct voters among raft ids 1..10, some
		// learners, and a desired set of odd size.
		perm := rng.Perm(10)
		voters := make([]uint64, 0, 7)
		for _, p := range perm[:1+rng.IntN(7)] {
			voters = append(voters, uint64(p+1))
		}
		var learners []uint64
		for id := uint64(1); id <= 10; id++ {
			if !slices.Contains(voters, id) && rng.IntN(2) == 0 {
				learners = append(learners, id)
			}
		}
		var desired []uint64
		for _, p := range rng.Perm(10)[:1+2*rng.IntN(3)] {
			desired = append(desired, uint64(p+1))
		}
		start := slices.Clone(voters)
		lo, hi := min(len(start), len(desired)), max(len(start), len(desired))+1
		steps := 0
		for ; steps < 100; steps++ {
			c := NextVoterChange(voters, learners, desired)
			if c.Kind == NoVoterChange {
				break
			}
			n := len(voters)
			switch c.Kind {
			case AddLearner, PromoteVoter:
				if !slices.Contains(desired, c.RaftID) {
					t.Fatalf("iter %d: %v adds %d not in desired %v", iter, c, c.RaftID, desired)
				}
			case RemoveVoter:
				if slices.Contains(desired, c.RaftID) {
					t.Fatalf("iter %d: %v removes desired %d", iter, c, c.RaftID)
				}
			}
			// An even set above the desired size with a voter to remove
			// removes it next rather than growing.
			if n%2 == 0 && n >= len(desired) && c.Kind != RemoveVoter {
				t.Fatalf("iter %d: voters %v (even) desired %v: step %v", iter, voters, desired, c)
			}
			voters, learners = applyChange(t, voters, learners, c)
			if len(voters) == 0 || len(voters) < lo || len(voters) > hi {
				t.Fatalf("iter %d: from %v to %v: voters %v outside [%d, %d]", iter, start, desired, voters, lo, hi)
			}
		}
		if !sameIDs(voters, desired) {
			t.Fatalf("iter %d: from %v: stopped at %v after %d steps, want %v", iter, start, voters, steps, desired)
		}
		// At most a learner, a promotion and a removal per differing id.
		if limit := 3 * (len(start) + len(desired)); steps > limit {
			t.Fatalf("iter %d: %d steps", iter, steps)
		}
	}
}

func TestNextVoterChangeEdges(t *testing.T) {
	for _, tt := range []struct {
		voters, learners, desired []uint64
		want                      VoterChange
	}{
		{[]uint64{1}, nil, nil, VoterChange{}},
		{[]uint64{1}, nil, []uint64{1}, VoterChange{}},
		{[]uint64{1}, nil, []uint64{2}, VoterChange{AddLearner, 2}},
		{[]uint64{1}, []uint64{2}, []uint64{2}, VoterChange{PromoteVoter, 2}},
		{[]uint64{1, 2}, nil, []uint64{2}, VoterChange{RemoveVoter, 1}},
		// Replacing a voter of three: add first.
		{[]uint64{1, 2, 3}, []uint64{4}, []uint64{1, 2, 4}, VoterChange{PromoteVoter, 4}},
		{[]uint64{1, 2, 3, 4}, nil, []uint64{1, 2, 4}, VoterChange{RemoveVoter, 3}},
		// Growing from 2 to 3 adds even though 1 is to go.
		{[]uint64{1, 2}, nil, []uint64{2, 3, 4}, VoterChange{AddLearner, 3}},
		{nil, nil, []uint64{1}, VoterChange{AddLearner, 1}},
	} {
		if got := NextVoterChange(tt.voters, tt.learners, tt.desired); got != tt.want {
			t.Errorf("%v %v -> %v: %v, want %v", tt.voters, tt.learners, tt.desired, got, tt.want)
		}
	}
}

// TestVotersEndToEnd drives random clusters from random voters to their
// desired voters and checks the result is a fixed point.
func TestVotersEndToEnd(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	zoneSets := [][]string{nil, {"x"}, {"x", "y"}, {"x", "y", "z"}}
	for iter := range 300 {
		n := 1 + rng.IntN(8)
		var fenced []int
		for i := 2; i <= n; i++ { // b1 stays alive
			if rng.IntN(3) == 0 {
				fenced = append(fenced, i)
			}
		}
		s := brokersState(t, n, zoneSets[rng.IntN(len(zoneSets))], fenced...)
		voters := []uint64{uint64(1 + rng.IntN(n))}
		var learners []uint64
		maxVoters := []int{3, 5}[rng.IntN(2)]
		for step := 0; ; step++ {
			if step > 50 {
				t.Fatalf("iter %d: no convergence, voters %v", iter, voters)
			}
			desired := DesiredVoters(s, voters, maxVoters)
			c := NextVoterChange(voters, learners, desired)
			if c.Kind == NoVoterChange {
				if !sameIDs(voters, desired) || len(voters)%2 == 0 {
					t.Fatalf("iter %d: stopped at %v, desired %v", iter, voters, desired)
				}
				break
			}
			voters, learners = applyChange(t, voters, learners, c)
		}
	}
}

func sameIDs(a, b []uint64) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
