package group

import (
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// Transport carries raft messages between brokers.
type Transport interface {
	// Send hands messages for peer `to` (all groups, in order) to the
	// transport. It must not block: queue or drop (raft retransmits). The
	// transport owns msgs from then on, and must not modify the messages:
	// their entries are shared with the log.
	Send(to uint64, msgs []Envelope)
}

// StateMachine is a group's replicated state. The Driver calls it from its
// goroutine only, in log order.
type StateMachine interface {
	// Apply applies one committed normal entry: data as proposed (the
	// driver's tag removed), index its log index. Its result is returned to
	// the Propose call that proposed it, on the broker that proposed it.
	// data belongs to the log: Apply must not modify it.
	Apply(index uint64, data []byte) any
	// Snapshot encodes the state as of the last applied entry (for
	// compaction, and for followers too far behind).
	Snapshot() ([]byte, error)
	// Restore replaces the state with a snapshot's data.
	Restore(data []byte) error
}

// Storage is a group's durable raft log. Package node/raftlog implements it
// for small groups; the Driver assumes nothing beyond this interface.
type Storage interface {
	raft.Storage
	// Save persists, in this order: the snapshot (if not nil nor empty:
	// it replaces the log), the entries (truncating any conflicting
	// suffix), the hard state (if not nil nor empty). It is durable on
	// return, except that a hard state changing only Commit need not be
	// fsynced (raft.MustSync is false for it). The storage keeps the
	// entries and snapshot as given; nobody modifies them afterwards.
	Save(hs *pb.HardState, ents []*pb.Entry, snap *pb.Snapshot) error
	// CreateSnapshot records a snapshot at applied index i with the state
	// machine's data and the configuration as of i.
	CreateSnapshot(i uint64, cs *pb.ConfState, data []byte) (*pb.Snapshot, error)
	// Compact drops the entries up to and including i (at most the latest
	// snapshot's index).
	Compact(i uint64) error
}

// ConfIndexer is a Storage whose InitialState configuration may be newer
// than its snapshot: it includes the configuration changes up to ConfIndex,
// some of which raft hands again at start among the committed entries after
// the snapshot. The driver does not apply those a second time (a change
// applied again on top of a later configuration is wrong, and raft panics
// on a simple change over a joint configuration). ConfIndex is read at
// start and after each snapshot is saved.
type ConfIndexer interface {
	ConfIndex() uint64
}
