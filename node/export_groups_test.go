package node

import (
	"fmt"

	"github.com/rafka/rafka/node/group"
	"go.etcd.io/raft/v3/raftpb"
)

// RaftStats returns the counters of b's raft driver (groups hosted,
// quiesced...).
func RaftStats(b *Broker) group.Stats { return b.raftStats() }

// MetaStatus is b's own view of the metadata group: the voters it has
// applied, the leader it knows.
func MetaStatus(b *Broker) (group.Status, bool) {
	if b.cluster == nil || b.cluster.driver == nil {
		return group.Status{}, false
	}
	return b.cluster.driver.Status(metaGroup)
}

// RaftGroupsFailed counts the raft groups failed on b.
func RaftGroupsFailed(b *Broker) uint64 { return b.cluster.metrics.raftGroupsFailed.Get() }

// PartitionReopens is how often b reopened a partition after its raft
// group failed (-1: not a hosted replicated partition).
func PartitionReopens(b *Broker, topic string, id int32) int {
	rp := b.topics()[topic].raft(id)
	if rp == nil {
		return -1
	}
	return int(rp.reopens.Load())
}

// StepBadHeartbeat hands the raft group of topic/id on b a heartbeat from
// its leader naming a commit index past b's log, as a peer that lost track
// of b's log might: raft panics on it, which fails the group on a follower.
func StepBadHeartbeat(b *Broker, topic string, id int32) error {
	rp := b.topics()[topic].raft(id)
	if rp == nil {
		return fmt.Errorf("%s/%d: not a hosted replicated partition", topic, id)
	}
	st, ok := b.cluster.driver.Status(rp.group)
	if !ok || st.Leader == 0 || st.Leader == b.cluster.raftID {
		return fmt.Errorf("%s/%d: not a follower with a leader (%+v)", topic, id, st)
	}
	m := &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: new(st.Leader), To: new(b.cluster.raftID),
		Term: new(st.Term), Commit: new(st.LastIndex + 1000)}
	b.cluster.driver.Step(st.Leader, []group.Envelope{{Group: rp.group, Msg: m}})
	return nil
}
