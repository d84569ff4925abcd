package node

import "github.com/rafka/rafka/node/group"

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
