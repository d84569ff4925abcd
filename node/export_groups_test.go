package node

import "github.com/rafka/rafka/node/group"

// RaftStats returns the counters of b's raft driver (groups hosted,
// quiesced...).
func RaftStats(b *Broker) group.Stats { return b.raftStats() }
