package group

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
)

// Defaults of Config and GroupConfig.
const (
	DefaultTickInterval        = 100 * time.Millisecond
	DefaultElectionTicks       = 10
	DefaultHeartbeatTicks      = 1
	DefaultMaxSizePerMsg       = 1 << 20
	DefaultMaxInflightMsgs     = 256
	DefaultMaxPendingProposals = 1024
	DefaultMaxInboundMessages  = 16384
	DefaultSnapshotEntries     = 1000
	DefaultQuiesceTicks        = 3
)

// Config configures a Driver. The zero value of every field but ID and
// Transport means its default; withDefaults fills them and Validate reports
// every problem at once.
type Config struct {
	// ID is this broker's raft node id in every group it hosts. Required,
	// nonzero.
	ID uint64
	// TickInterval is raft's logical clock. Default 100 ms. Every hosted
	// group is ticked each interval, so the CPU spent on idle groups grows
	// as it shrinks (see the benchmarks); election timeout is
	// ElectionTicks times it.
	TickInterval time.Duration
	// ElectionTicks is the election timeout in ticks (randomised by raft
	// between it and twice it). Default 10; more than HeartbeatTicks.
	ElectionTicks int
	// HeartbeatTicks is the leader's heartbeat interval in ticks. Default 1.
	HeartbeatTicks int
	// MaxSizePerMsg bounds the entry bytes of one append message. Default
	// 1 MiB. It should stay well under the transport's frame limit.
	MaxSizePerMsg uint64
	// MaxInflightMsgs bounds the append messages in flight to one follower
	// of one group. Default 256.
	MaxInflightMsgs int
	// MaxPendingProposals bounds the proposals of this member waiting to be
	// applied, per group; past it Propose fails with ErrTooManyProposals.
	// Default 1024.
	MaxPendingProposals int
	// MaxPendingBytes bounds the bytes of an Untagged group's proposals
	// not yet saved (raft holds them in memory until then); past it
	// ProposeAsync fails with ErrTooManyProposals. Default 64 MiB.
	MaxPendingBytes int
	// MaxInboundMessages bounds the inbound messages (all groups) queued for
	// the driver's goroutine; past it Step drops messages, which raft
	// retransmits. Default 16384.
	MaxInboundMessages int
	// QuiesceTicks is how many ticks in a row a Quiesce group's leader
	// must find it idle (every member's log matches its own, all of it
	// committed and applied, nothing proposed) before it quiesces: stops
	// ticking and tells its followers to stop too. Default 3. Shorter saves
	// a few heartbeats after each burst of writes; longer keeps a group
	// that is written every few ticks from quiescing and waking each time.
	QuiesceTicks int
	// Transport carries messages to other brokers. Required.
	Transport Transport
	// Logger gets group failures and raft's own log (raft's info lines at
	// debug level: they are per group). Nil discards.
	Logger *slog.Logger
	// OnGroupFailed, when set, is called on the driver's goroutine when a
	// group fails (its storage or state machine failed, or raft panicked on
	// its state): the group then does nothing until removed.
	OnGroupFailed func(group uint64, err error)
}

func (c Config) withDefaults() Config {
	if c.TickInterval == 0 {
		c.TickInterval = DefaultTickInterval
	}
	if c.ElectionTicks == 0 {
		c.ElectionTicks = DefaultElectionTicks
	}
	if c.HeartbeatTicks == 0 {
		c.HeartbeatTicks = DefaultHeartbeatTicks
	}
	if c.MaxSizePerMsg == 0 {
		c.MaxSizePerMsg = DefaultMaxSizePerMsg
	}
	if c.MaxInflightMsgs == 0 {
		c.MaxInflightMsgs = DefaultMaxInflightMsgs
	}
	if c.MaxPendingBytes == 0 {
		c.MaxPendingBytes = 64 << 20
	}
	if c.MaxPendingProposals == 0 {
		c.MaxPendingProposals = DefaultMaxPendingProposals
	}
	if c.MaxInboundMessages == 0 {
		c.MaxInboundMessages = DefaultMaxInboundMessages
	}
	if c.QuiesceTicks == 0 {
		c.QuiesceTicks = DefaultQuiesceTicks
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports every invalid field at once.
func (c Config) Validate() error {
	var errs []error
	if c.ID == 0 {
		errs = append(errs, errors.New("group: ID must be nonzero"))
	}
	if c.Transport == nil {
		errs = append(errs, errors.New("group: Transport is required"))
	}
	if c.TickInterval < time.Millisecond {
		errs = append(errs, fmt.Errorf("group: TickInterval %v below 1ms", c.TickInterval))
	}
	if c.HeartbeatTicks < 1 {
		errs = append(errs, fmt.Errorf("group: HeartbeatTicks %d below 1", c.HeartbeatTicks))
	}
	if c.ElectionTicks <= c.HeartbeatTicks {
		errs = append(errs, fmt.Errorf("group: ElectionTicks %d not above HeartbeatTicks %d", c.ElectionTicks, c.HeartbeatTicks))
	}
	if c.MaxInflightMsgs < 1 {
		errs = append(errs, fmt.Errorf("group: MaxInflightMsgs %d below 1", c.MaxInflightMsgs))
	}
	if c.MaxPendingProposals < 1 {
		errs = append(errs, fmt.Errorf("group: MaxPendingProposals %d below 1", c.MaxPendingProposals))
	}
	if c.MaxInboundMessages < 1 {
		errs = append(errs, fmt.Errorf("group: MaxInboundMessages %d below 1", c.MaxInboundMessages))
	}
	if c.QuiesceTicks < 1 {
		errs = append(errs, fmt.Errorf("group: QuiesceTicks %d below 1", c.QuiesceTicks))
	}
	return errors.Join(errs...)
}

// GroupConfig describes one group hosted by a Driver.
type GroupConfig struct {
	// Group is the group's id, nonzero and unique among the Driver's groups.
	Group uint64
	// Storage holds the group's log. The Driver is its only writer while
	// the group is added; it does not close it.
	Storage Storage
	// SM is the group's state machine. It starts empty: AddGroup restores
	// it from the storage's snapshot, and the committed entries after it
	// are applied again.
	SM StateMachine
	// Bootstrap lists the voters of a brand-new group; it is used only when
	// Storage is empty. Every initial voter must be given the same list. A
	// member joining an existing group (added by a conf change) starts with
	// empty storage and no Bootstrap.
	Bootstrap []uint64
	// Joining marks a member added to join an existing group, with
	// storage that is empty or was filled only by this joining: until its
	// configuration includes it (it applied its own addition, and so holds
	// the log before it), it does not vote. Under the same id, an earlier
	// member of the group may still count in a stale member's
	// configuration; a vote given without that member's log could elect a
	// leader lacking committed entries.
	Joining bool
	// SnapshotEntries: every that many applied entries, the state machine's
	// snapshot is stored and the log compacted. Default 1000.
	SnapshotEntries uint64
	// KeepEntries is how many entries before the snapshot compaction keeps,
	// so that a follower slightly behind gets entries rather than a
	// snapshot. Default SnapshotEntries.
	KeepEntries uint64

	// Untagged makes the log hold proposals exactly as given, with no tag
	// (a partition's log is its record batches, byte for byte). Only the
	// leader may then propose (raft's proposal forwarding is off, and
	// ProposeAsync on a follower fails with ErrNotLeader): the leader's own
	// entries of its term are its proposals, in order, so each is matched
	// to its log index when raft hands it over to be saved, and resolved
	// when that index is applied in the same term. Propose (the tagged,
	// blocking call) is refused on such a group: use ProposeAsync.
	Untagged bool
	// NoSnapshots turns the driver's snapshots and compaction off, for a
	// state machine whose log compacts itself (a partition's retention);
	// SnapshotEntries and KeepEntries are then ignored.
	NoSnapshots bool
	// Quiesce lets the group stop ticking while idle (see the package
	// documentation, Quiescing): its leader sends no heartbeats and its
	// followers hold no elections until a proposal, a message or the
	// leader's broker being reported down (Driver.ReportPeerDown) wakes
	// it. For groups that are idle most of the time, such as partitions;
	// the metadata group does not set it.
	Quiesce bool
	// ElectionTicks overrides Config.ElectionTicks for this group (0: the
	// driver's). It must be above Config.HeartbeatTicks.
	ElectionTicks int

	// OnApplied, if set, is called after each Ready's committed entries
	// are applied, with the last applied index.
	OnApplied func(index uint64)
	// OnLeaderChange, if set, is called when this member learns of a new
	// leader or term (leader 0: none known).
	OnLeaderChange func(leader, term uint64)
	// OnConfChange, if set, is called after a configuration change is
	// applied, with the resulting configuration.
	OnConfChange func(index uint64, cs *pb.ConfState)
	// The hooks run on the driver's goroutine: they must not block nor
	// call the Driver's blocking methods (Propose, Status, AddGroup...).
}

func (gc GroupConfig) withDefaults() GroupConfig {
	if gc.SnapshotEntries == 0 {
		gc.SnapshotEntries = DefaultSnapshotEntries
	}
	if gc.KeepEntries == 0 {
		gc.KeepEntries = gc.SnapshotEntries
	}
	return gc
}

// Validate reports every invalid field at once.
func (gc GroupConfig) Validate() error {
	var errs []error
	if gc.Group == 0 {
		errs = append(errs, errors.New("group: Group must be nonzero"))
	}
	if gc.Storage == nil {
		errs = append(errs, errors.New("group: Storage is required"))
	}
	if gc.SM == nil {
		errs = append(errs, errors.New("group: SM is required"))
	}
	if gc.ElectionTicks < 0 {
		errs = append(errs, fmt.Errorf("group: ElectionTicks %d below 0", gc.ElectionTicks))
	}
	for _, id := range gc.Bootstrap {
		if id == 0 {
			errs = append(errs, errors.New("group: Bootstrap lists node id 0"))
		}
	}
	return errors.Join(errs...)
}
