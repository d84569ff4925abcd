// Package group drives many raft groups (go.etcd.io/raft/v3 RawNodes) hosted
// by one broker: the metadata group, and later one group per partition. It
// owns ticking, persistence order, message batching per peer, applying
// committed entries, snapshots and compaction, and it turns raft's
// fire-and-forget proposals into calls that return the state machine's
// result. It does no network I/O: the broker hands it a Transport.
//
// # Contract
//
//   - Propose returns once the entry is applied on this broker (a read of the
//     local state machine afterwards sees it), with StateMachine.Apply's
//     result. It works on followers and learners too: raft forwards the
//     proposal to the leader. Each proposal carries a 16-byte tag (proposer
//     id, sequence; see below) that the driver removes before Apply and uses
//     to find the waiter when the entry is applied here.
//   - Raft drops a proposal on a deposed leader without telling anyone. So
//     when this member sees the leader or the term change, it fails every
//     proposal made under the previous ones with ErrProposalDropped
//     (retriable; the entry may still commit and be applied later). With no
//     leader known, Propose fails at once with ErrNoLeader. At most
//     Config.MaxPendingProposals wait per group (ErrTooManyProposals past
//     it). A proposal lost in transit with no leader change waits for its
//     context.
//   - Per Ready, in this order: Storage.Save (snapshot, entries, hard
//     state), StateMachine.Restore of a received snapshot, messages queued
//     for the transport, committed entries applied (normal entries to
//     Apply, conf changes to raft's ApplyConfChange), Advance. Messages are
//     sent after the Save they depend on, never before. A failed Save or
//     Restore stops that group only (ErrGroupFailed, logged, its proposals
//     failed); the process and the other groups go on.
//   - Every GroupConfig.SnapshotEntries applied entries, the state machine's
//     Snapshot is stored (Storage.CreateSnapshot) and the log compacted up to
//     KeepEntries before it, so a follower slightly behind gets entries and
//     one far behind gets the snapshot.
//   - PreVote and CheckQuorum are on: a leader that cannot reach a quorum
//     for an election timeout steps down. A group whose only voter is this
//     broker campaigns as soon as it is added (after replaying its log on a
//     restart), so a one-broker cluster is usable at once.
//   - A group's state machine starts empty; AddGroup restores it from the
//     storage's snapshot and raft applies the committed entries after it.
//   - Inbound messages are checked (group hosted, addressed to this broker
//     by the peer that sent it) and bounded (Config.MaxInboundMessages);
//     what does not pass is dropped and counted. Raft trusts its peers:
//     brokers authenticate each other before their messages reach Step.
//
// # Envelopes
//
// Messages of all groups to one peer travel as batches. A batch, all
// integers unsigned varints (encoding/binary), is the format of
// AppendEnvelopes and ParseEnvelopes:
//
//	count                       number of envelopes
//	count times:
//	  group                     group id, nonzero
//	  length                    bytes of the message
//	  message                   raftpb.Message, protobuf-encoded
//
// The proposal tag (format, inside entries): u64 LE proposer node id, u64
// LE sequence, before a normal entry's data and a conf change's Context.
// Sequences start at the wall clock in nanoseconds when the Driver starts,
// so that a restarted broker does not mistake an old entry for one of its
// new proposals.
//
// # Cost of idle groups (measured)
//
// BenchmarkIdleGroups, 3 drivers in one process on a 2-core machine, groups
// idle, leaders spread evenly: 100 groups at a 100 ms tick cost 2% of a core,
// 1000 groups 21% (46,000 messages/s: every leader heartbeats every tick),
// and 1000 groups at a 10 ms tick saturate a core and fall behind. Hence the
// 100 ms default. Revisit when a broker hosts thousands of partitions:
// coalesce heartbeats per peer pair or quiesce idle groups (stop ticking a
// group whose followers all match the leader, wake it on any message).
// BenchmarkProposeLatency: one proposal at a time on 3 drivers with
// FileStorage (fsync per Save), applied on the proposer in about 0.9 ms
// whether proposed on the leader or on a follower.
//
// # Goroutines and locks
//
// A Driver has one goroutine, the loop: every TickInterval it ticks every
// group; whenever woken it steps the queued inbound messages, runs queued
// operations (proposals, AddGroup, Status...), then handles the Ready of
// each group touched in this round and hands each peer's messages to
// Transport.Send in one call. Groups, RawNodes and state machines are only
// touched by the loop; hooks and StateMachine methods run on it and must
// not call the Driver's waiting methods. Driver.mu guards the inbox only (a
// leaf lock). Close stops the loop and waits for it. The loop's state is
// per group, so groups can later be sharded over a few loops.
package group
