package meta

import (
	"fmt"
	"slices"

	"github.com/rafka/rafka/routing/placement"
)

// voterKey is the placement key whose rendezvous order ranks brokers for the
// metadata group's voter slots: placement.Replicas(voterKey, 0, ...). Only
// the metadata leader uses it, and alive voters are kept whatever their
// rank, so changing it would only change which brokers fill new slots.
const voterKey = "__rafka_metadata"

// DesiredVoters returns the raft ids the metadata group's voters should be,
// sorted: of the alive brokers, size = the largest odd number <= min(maxVoters,
// alive count) (at least 1), made of the current voters still alive (the
// best ranked ones if there are more than size), then other alive brokers by
// rendezvous rank, brokers of zones not yet among the voters first. Nil when
// no broker is alive. Raft ids in current that name no alive broker are
// dropped.
func DesiredVoters(state *State, current []uint64, maxVoters int) []uint64 {
	var alive []Broker
	for _, b := range state.Brokers() {
		if b.State == BrokerAlive {
			alive = append(alive, b)
		}
	}
	if len(alive) == 0 {
		return nil
	}
	size := max(1, min(maxVoters, len(alive)))
	if size%2 == 0 {
		size--
	}
	pb := make([]placement.Broker, len(alive))
	byID := make(map[string]Broker, len(alive))
	for i, b := range alive {
		pb[i] = placement.Broker{ID: b.ID, Zone: b.Zone}
		byID[b.ID] = b
	}
	set, err := placement.NewSet(pb)
	if err != nil {
		panic(fmt.Sprintf("BUG: meta: alive brokers are not a placement set: %v", err))
	}
	// rank: every alive broker, best first, zones spread first.
	rank := set.Replicas(voterKey, 0, len(alive), nil)
	isVoter := make(map[uint64]bool, len(current))
	for _, id := range current {
		isVoter[id] = true
	}
	chosen := make(map[string]bool, size)
	zones := make(map[string]bool, size)
	var out []uint64
	take := func(b Broker) {
		chosen[b.ID] = true
		zones[b.Zone] = true
		out = append(out, b.RaftID)
	}
	for _, id := range rank { // current alive voters, best ranked first
		if b := byID[id]; len(out) < size && isVoter[b.RaftID] {
			take(b)
		}
	}
	for _, id := range rank { // new zones
		if b := byID[id]; len(out) < size && !chosen[id] && !zones[b.Zone] {
			take(b)
		}
	}
	for _, id := range rank { // the rest
		if b := byID[id]; len(out) < size && !chosen[id] {
			take(b)
		}
	}
	slices.Sort(out)
	return out
}

// VoterChangeKind is the kind of one step towards the desired voters.
type VoterChangeKind uint8

// Voter change kinds.
const (
	// NoVoterChange: the voters are the desired ones (or nothing can be
	// done safely).
	NoVoterChange VoterChangeKind = iota
	// AddLearner: add RaftID as a learner, which catches up on the log
	// without voting. Every broker normally follows the group as a learner
	// already.
	AddLearner
	// PromoteVoter: make the learner RaftID a voter. The driver should wait
	// until it has caught up (its raft progress near the leader's log)
	// before proposing this, or the group's quorum waits for it.
	PromoteVoter
	// RemoveVoter: remove the voter RaftID (making it a learner, or removing
	// it from the group if it is fenced).
	RemoveVoter
)

func (k VoterChangeKind) String() string {
	switch k {
	case NoVoterChange:
		return "none"
	case AddLearner:
		return "add-learner"
	case PromoteVoter:
		return "promote-voter"
	case RemoveVoter:
		return "remove-voter"
	}
	return fmt.Sprintf("VoterChangeKind(%d)", uint8(k))
}

// VoterChange is one membership step for the metadata group.
type VoterChange struct {
	Kind   VoterChangeKind
	RaftID uint64
}

func (c VoterChange) String() string {
	if c.Kind == NoVoterChange {
		return "none"
	}
	return fmt.Sprintf("%v %d", c.Kind, c.RaftID)
}

// NextVoterChange returns the next single step from the current voters (and
// learners) towards desired, or NoVoterChange. Applied one at a time, each
// after the previous one is committed, the steps reach desired; along the
// way the voter count stays between min(len(voters), len(desired)) and
// max(len(voters), len(desired))+1:
//
//   - adding comes before removing (a missing voter is added as a learner
//     first, then promoted), so replacing a voter never lowers the number
//     of voters that can form a quorum;
//   - but a set of even size with a voter to remove removes it first
//     (unless it is below the desired size), so a replacement alternates
//     n, n+1, n, ... rather than growing to n+k: odd sizes tolerate as many
//     failures as the even size above them, with a smaller quorum;
//   - the last voter is never removed, and an empty desired set changes
//     nothing.
//
// Ids are compared as sets; repeated ids count once. Among several
// candidate ids it picks the lowest, so the result is deterministic.
func NextVoterChange(voters, learners, desired []uint64) VoterChange {
	if len(desired) == 0 {
		return VoterChange{}
	}
	vs, want := toSet(voters), toSet(desired)
	var add, remove uint64
	canAdd, canRemove := false, false
	for _, id := range sortedKeys(want) {
		if !vs[id] {
			add, canAdd = id, true
			break
		}
	}
	for _, id := range sortedKeys(vs) {
		if !want[id] {
			remove, canRemove = id, true
			break
		}
	}
	n := len(vs)
	canRemove = canRemove && n > 1
	switch {
	case canAdd && (n%2 == 1 || n < len(want) || !canRemove):
		if slices.Contains(learners, add) {
			return VoterChange{Kind: PromoteVoter, RaftID: add}
		}
		return VoterChange{Kind: AddLearner, RaftID: add}
	case canRemove:
		return VoterChange{Kind: RemoveVoter, RaftID: remove}
	}
	return VoterChange{}
}

func toSet(ids []uint64) map[uint64]bool {
	m := make(map[uint64]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

func sortedKeys(m map[uint64]bool) []uint64 {
	l := make([]uint64, 0, len(m))
	for id := range m {
		l = append(l, id)
	}
	slices.Sort(l)
	return l
}
