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
//   - Reads: ReadIndex confirms with a quorum that the leader still leads;
//     Barrier, on any member, returns once that member applied every entry
//     committed before the call (a follower's request is forwarded to the
//     leader). Both are raft's ReadIndex; neither writes to the log.
//   - A group's state machine starts empty; AddGroup restores it from the
//     storage's snapshot and raft applies the committed entries after it.
//   - Inbound messages are checked (group hosted, addressed to this broker
//     by the peer that sent it) and bounded (Config.MaxInboundMessages);
//     what does not pass is dropped and counted. A joining member
//     (GroupConfig.Joining) drops vote requests until it is in its own
//     configuration: under the same id, an earlier incarnation of it may
//     still count in a stale member's configuration, and its vote, given
//     without that incarnation's log, could elect a leader that lacks
//     committed entries. Raft trusts its peers:
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
// A quiescing heartbeat (see Quiescing) is a raftpb.Message of type
// MsgHeartbeat with Index set to 2^64-1 (raft's heartbeats leave it 0);
// that mark is part of the format.
//
// The proposal tag (format, inside entries): u64 LE proposer node id, u64
// LE sequence, before a normal entry's data and a conf change's Context.
// Sequences start at the wall clock in nanoseconds when the Driver starts,
// so that a restarted broker does not mistake an old entry for one of its
// new proposals.
//
// # Quiescing
//
// A group with GroupConfig.Quiesce stops ticking while idle, so that it
// costs nothing: no heartbeats, no elections, no Ready to look at.
//
//   - The leader checks at each tick whether the group is idle: no proposal
//     waiting, no leadership transfer, every entry committed and applied,
//     and every member's match index at its last index (members reported
//     down excepted, as long as a quorum of voters is not down). After
//     Config.QuiesceTicks idle ticks in a row it stops ticking and sends
//     each member a quiescing heartbeat (raft's heartbeat with the commit
//     index, marked as above).
//   - A follower that steps a quiescing heartbeat and agrees on leader and
//     term, with nothing pending and every entry it holds known committed,
//     stops ticking too. Its raft heard from the leader at that moment, so,
//     frozen, it refuses votes to others. One told a lower commit (the
//     leader had not seen its last acknowledgement) keeps ticking, as
//     below, so that it learns the commit.
//   - Any other message for the group wakes it (heartbeat answers excepted:
//     the leader steps them without waking, which marks the followers
//     recently active for its next CheckQuorum), and so do a proposal,
//     Campaign and TransferLeadership. A member that missed the quiescing
//     heartbeat keeps ticking, campaigns after an election timeout, and
//     its pre-vote wakes the others; the leader then heartbeats it and
//     quiesces again. A lost message costs messages, not safety.
//   - A quiesced follower cannot notice its leader's death by itself: the
//     broker runs a failure detector shared by all groups (one liveness
//     frame per peer broker and tick on the raft link) and calls
//     ReportPeerDown. The Quiesce groups led by that peer wake, forget
//     their leader (raft's ForgetLeader, so that members grant votes at
//     once despite PreVote and CheckQuorum), and the preferred surviving
//     voter (the same on every member: smallest hash of group and voter
//     among those not down) campaigns at once and again each tick while no
//     leader is known, for up to an election timeout. A dead leader is
//     replaced after the detector's timeout plus a round trip instead of
//     an election timeout. A wrong suspicion needs a quorum of members that
//     share it to move leadership. The leader's side: on ReportPeerDown
//     its quiesced groups with that voter wake, and a leader with a quorum
//     of voters down stays awake, so CheckQuorum deposes it if it is the
//     one cut off. ReportPeerUp wakes the groups it leads with that member,
//     to catch it up.
//   - The metadata group does not quiesce and is left to raft's election
//     timeout on a peer reported down: moving its leadership on a wrong
//     suspicion costs more than the second it saves.
//
// # Cost of idle groups (measured)
//
// BenchmarkIdleGroups, 3 drivers in one process on a 2-core machine, groups
// idle, leaders spread evenly: 100 groups at a 100 ms tick cost 2% of a core,
// 1000 groups 21% (46,000 messages/s: every leader heartbeats every tick),
// and 1000 groups at a 10 ms tick saturate a core and fall behind. Hence the
// 100 ms default. Quiesced, 1000 groups cost 0.18% of a core per driver and
// 10,000 groups 0.57% (no message sent; what is left is the loop's ticker,
// the Go runtime and the garbage collector over the groups' memory):
//
//	go test -run '^$' -bench 'IdleGroups/.*quiesce=true' -benchtime=30x ./node/group/
//
// Revisit the loop when a broker hosts far more active groups than a core
// can tick: shard the groups over a few loops.
// BenchmarkProposeLatency: one proposal at a time on 3 drivers with
// FileStorage (fsync per Save), applied on the proposer in about 0.9 ms
// whether proposed on the leader or on a follower.
//
// # Goroutines and locks
//
// A Driver has one goroutine, the loop: every TickInterval it ticks every
// group not quiesced; whenever woken it steps the queued inbound messages, runs queued
// operations (proposals, AddGroup, Status...), then handles the Ready of
// each group touched in this round and hands each peer's messages to
// Transport.Send in one call. Groups, RawNodes and state machines are only
// touched by the loop; hooks and StateMachine methods run on it and must
// not call the Driver's waiting methods. Driver.mu guards the inbox only (a
// leaf lock). Close stops the loop and waits for it. The loop's state is
// per group, so groups can later be sharded over a few loops.
package group
