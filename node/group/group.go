package group

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// group is one hosted raft group. It is owned by the Driver's goroutine.
type group struct {
	d   *Driver
	id  uint64
	cfg GroupConfig
	log *slog.Logger
	rn  *raft.RawNode

	// confState is the configuration as of applied, or as of confIndex
	// while applied is below it.
	confState *pb.ConfState
	// confIndex: the configuration changes up to it are in confState
	// already (ConfIndexer); applying one again is skipped.
	confIndex uint64
	applied   uint64
	// nextSnapshot is the applied index at which to snapshot and compact.
	nextSnapshot uint64
	// lead and term as of the last Ready, to notice changes; reported*
	// as last given to OnLeaderChange.
	lead, term                 uint64
	reportedLead, reportedTerm uint64
	// startCommit is the commit index found in storage at AddGroup; until
	// it is applied the configuration is not final (conf changes after the
	// snapshot are applied again), so the lone-voter check waits for it.
	startCommit   uint64
	checkCampaign bool

	// pending are this member's proposals waiting to be applied, by tag
	// sequence.
	pending map[uint64]pending
	// fifo and byIndex hold the proposals of an Untagged group (untagged.go).
	fifo      []*Proposal
	fifoBytes int // bytes of the proposals in fifo
	byIndex   map[uint64]*Proposal
	// reads are the leadership checks waiting for a quorum, by request
	// context (readindex.go).
	reads map[string]pendingRead
	// applyWaits are the barriers confirmed by the leader, waiting for
	// this member to apply their index.
	applyWaits map[string]pendingRead

	// quiesced: not ticked (quiesce.go); idleTicks counts the ticks in a
	// row at which the leader found the group idle.
	quiesced  bool
	idleTicks int
	// deadLead is the leader whose broker was reported down, while no new
	// leader is known; campaigns counts the ticks since.
	deadLead  uint64
	campaigns int

	// joining: GroupConfig.Joining, until the member first finds itself
	// in its configuration.
	joining bool

	dirty   bool
	removed bool
	// failed is set (wrapping ErrGroupFailed) when storage or the state
	// machine failed; the group then does nothing until removed.
	failed error
}

// pending is a proposal waiting to be applied, with the leader and term it
// was proposed under.
type pending struct {
	ch         chan result
	term, lead uint64
}

// addGroup runs on the loop.
func (d *Driver) addGroup(gc GroupConfig) (err error) {
	if d.groups[gc.Group] != nil {
		return fmt.Errorf("%w: %d", ErrGroupExists, gc.Group)
	}
	if gc.ElectionTicks != 0 && gc.ElectionTicks <= d.cfg.HeartbeatTicks {
		return fmt.Errorf("group: %d: ElectionTicks %d not above HeartbeatTicks %d", gc.Group, gc.ElectionTicks, d.cfg.HeartbeatTicks)
	}
	st := gc.Storage
	hs, cs, err := st.InitialState()
	if err != nil {
		return fmt.Errorf("group: %d: initial state: %w", gc.Group, err)
	}
	snap, err := st.Snapshot()
	if err != nil {
		return fmt.Errorf("group: %d: snapshot: %w", gc.Group, err)
	}
	last, err := st.LastIndex()
	if err != nil {
		return fmt.Errorf("group: %d: last index: %w", gc.Group, err)
	}
	si := snap.GetMetadata().GetIndex()
	if hs.GetCommit() > last || hs.GetCommit() < si {
		return fmt.Errorf("group: %d: commit index %d outside [%d, %d]", gc.Group, hs.GetCommit(), si, last)
	}
	g := &group{
		d:             d,
		id:            gc.Group,
		cfg:           gc,
		joining:       gc.Joining,
		log:           d.log.With("group", gc.Group),
		confState:     proto.Clone(pb.EnsureConfState(cs)).(*pb.ConfState),
		applied:       si,
		nextSnapshot:  si + gc.SnapshotEntries,
		startCommit:   hs.GetCommit(),
		checkCampaign: true,
		pending:       make(map[uint64]pending),
		byIndex:       make(map[uint64]*Proposal),
	}
	if ci, ok := st.(ConfIndexer); ok {
		g.confIndex = ci.ConfIndex()
	}
	if si > 0 {
		if err := gc.SM.Restore(snap.GetData()); err != nil {
			return fmt.Errorf("group: %d: restore snapshot at %d: %w", gc.Group, si, err)
		}
	}
	rc := &raft.Config{
		ID:              d.cfg.ID,
		ElectionTick:    g.electionTicks(),
		HeartbeatTick:   d.cfg.HeartbeatTicks,
		Storage:         st,
		Applied:         si,
		MaxSizePerMsg:   d.cfg.MaxSizePerMsg,
		MaxInflightMsgs: d.cfg.MaxInflightMsgs,
		CheckQuorum:     true,
		PreVote:         true,
		Logger:          raftLogger{g.log},
		// An Untagged group's leader matches its entries to its own
		// proposals: none may arrive from followers.
		DisableProposalForwarding: gc.Untagged,
	}
	// raft panics on a storage it cannot start from; report it instead.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("group: %d: start raft: %v", gc.Group, r)
		}
	}()
	rn, err := raft.NewRawNode(rc)
	if err != nil {
		return fmt.Errorf("group: %d: start raft: %w", gc.Group, err)
	}
	if last == 0 && len(gc.Bootstrap) > 0 {
		peers := make([]raft.Peer, len(gc.Bootstrap))
		for i, id := range gc.Bootstrap {
			peers[i] = raft.Peer{ID: id}
		}
		if err := rn.Bootstrap(peers); err != nil {
			return fmt.Errorf("group: %d: bootstrap: %w", gc.Group, err)
		}
	}
	g.rn = rn
	d.groups[g.id] = g
	d.awake[g.id] = g
	d.groupCount.Add(1)
	d.markDirty(g)
	return nil
}

// handleReady persists, sends, applies and advances one Ready of g.
func (g *group) handleReady() {
	if !g.rn.HasReady() {
		g.maybeCampaign()
		return
	}
	rd := g.rn.Ready()
	if !raft.IsEmptyHardState(rd.HardState) || len(rd.Entries) > 0 || !raft.IsEmptySnap(rd.Snapshot) {
		if err := g.cfg.Storage.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
			g.fail("save", err)
			return
		}
		if g.cfg.Untagged {
			g.saved(rd.Entries)
		}
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		md := rd.Snapshot.GetMetadata()
		if err := g.cfg.SM.Restore(rd.Snapshot.GetData()); err != nil {
			g.fail("restore snapshot", err)
			return
		}
		g.applied = md.GetIndex()
		g.nextSnapshot = g.applied + g.cfg.SnapshotEntries
		g.confState = proto.Clone(pb.EnsureConfState(md.GetConfState())).(*pb.ConfState)
		if ci, ok := g.cfg.Storage.(ConfIndexer); ok {
			g.confIndex = ci.ConfIndex()
		}
		// Entries this member proposed may be inside the snapshot: their
		// results are unknown.
		g.failPending(fmt.Errorf("%w: group %d: replaced by a snapshot at %d", ErrProposalDropped, g.id, g.applied))
		if g.cfg.OnConfChange != nil {
			g.cfg.OnConfChange(g.applied, g.confState)
		}
	}
	var snapsSent []uint64
	for _, m := range rd.Messages {
		g.d.send(g.id, m)
		if m.GetType() == pb.MsgSnap {
			snapsSent = append(snapsSent, m.GetTo())
		}
	}
	g.readStates(rd.ReadStates)
	if len(rd.CommittedEntries) > 0 {
		if !g.apply(rd.CommittedEntries) {
			return
		}
		if g.cfg.OnApplied != nil {
			g.cfg.OnApplied(g.applied)
		}
	}
	g.releaseBarriers()
	g.rn.Advance(rd)
	// The transport gives no delivery report: count a snapshot as delivered
	// once handed over. If it was lost, the follower rejects the next
	// append and the leader sends the snapshot again.
	for _, to := range snapsSent {
		g.rn.ReportSnapshot(to, raft.SnapshotFinish)
	}
	if rd.SoftState != nil {
		g.lead = rd.SoftState.Lead
	}
	if rd.HardState != nil {
		g.term = rd.HardState.GetTerm()
	}
	if rd.SoftState != nil || rd.HardState != nil {
		g.leaderChanged()
	}
	g.maybeSnapshot()
	g.maybeCampaign()
	// Advance may have produced more work (our own append acknowledged,
	// more entries to apply): look again in this iteration.
	if g.rn.HasReady() {
		g.d.markDirty(g)
	}
}

// leaderChanged fails the proposals made under another leader or term:
// raft would drop them silently on a deposed leader.
func (g *group) leaderChanged() {
	if g.cfg.Untagged {
		g.failUntagged(false, func(p *Proposal) error {
			return fmt.Errorf("%w: group %d: leader %d term %d, proposed in term %d", ErrProposalDropped, g.id, g.lead, g.term, p.term)
		})
	}
	g.failReads(false, fmt.Errorf("%w: group %d: leader %d term %d", ErrProposalDropped, g.id, g.lead, g.term))
	for seq, p := range g.pending {
		if p.term != g.term || p.lead != g.lead {
			delete(g.pending, seq)
			g.d.proposalsDropped.Add(1)
			p.ch <- result{err: fmt.Errorf("%w: group %d: leader %d term %d, proposed under leader %d term %d",
				ErrProposalDropped, g.id, g.lead, g.term, p.lead, p.term)}
		}
	}
	if g.cfg.OnLeaderChange != nil && (g.reportedLead != g.lead || g.reportedTerm != g.term) {
		g.reportedLead, g.reportedTerm = g.lead, g.term
		g.cfg.OnLeaderChange(g.lead, g.term)
	}
}

// apply applies committed entries in order. It returns false if the group
// failed.
func (g *group) apply(ents []*pb.Entry) bool {
	for _, e := range ents {
		index := e.GetIndex()
		if index <= g.applied {
			continue // covered by a snapshot restored in this Ready
		}
		switch e.GetType() {
		case pb.EntryNormal:
			if len(e.GetData()) == 0 {
				break // a new leader's empty entry
			}
			if g.cfg.Untagged {
				g.appliedUntagged(e, g.cfg.SM.Apply(index, e.GetData()))
				break
			}
			proposer, seq, ok := parseTag(e.GetData())
			if !ok {
				g.log.Warn("group: skipping untagged entry", "index", index, "bytes", len(e.GetData()))
				break
			}
			v := g.cfg.SM.Apply(index, e.GetData()[tagSize:])
			g.deliver(proposer, seq, result{value: v, index: index})
		case pb.EntryConfChange, pb.EntryConfChangeV2:
			cc, err := decodeConfChange(e)
			if err != nil {
				g.fail("decode conf change", err)
				return false
			}
			var tag []byte
			switch c := cc.(type) {
			case *pb.ConfChange:
				tag, c.Context = splitTag(c.Context)
			case *pb.ConfChangeV2:
				tag, c.Context = splitTag(c.Context)
			}
			if index > g.confIndex {
				g.confState = g.rn.ApplyConfChange(cc)
			}
			if g.cfg.OnConfChange != nil {
				g.cfg.OnConfChange(index, g.confState)
			}
			if proposer, seq, ok := parseTag(tag); ok {
				g.deliver(proposer, seq, result{index: index})
			}
		}
		g.applied = index
	}
	return true
}

// splitTag splits a conf change context into the driver's tag and the
// caller's context.
func splitTag(ctx []byte) (tag, rest []byte) {
	if len(ctx) < tagSize {
		return nil, ctx
	}
	return ctx[:tagSize], ctx[tagSize:]
}

func decodeConfChange(e *pb.Entry) (pb.ConfChangeI, error) {
	if e.GetType() == pb.EntryConfChange {
		cc := new(pb.ConfChange)
		if err := proto.Unmarshal(e.GetData(), cc); err != nil {
			return nil, err
		}
		return cc, nil
	}
	cc := new(pb.ConfChangeV2)
	if err := proto.Unmarshal(e.GetData(), cc); err != nil {
		return nil, err
	}
	return cc, nil
}

// deliver hands a result to this member's waiter of the entry, if any.
func (g *group) deliver(proposer, seq uint64, r result) {
	if proposer != g.d.cfg.ID {
		return
	}
	if p, ok := g.pending[seq]; ok {
		delete(g.pending, seq)
		p.ch <- r
	}
}

// maybeSnapshot stores the state machine's snapshot and compacts the log
// every SnapshotEntries applied entries, keeping KeepEntries before it.
func (g *group) maybeSnapshot() {
	if g.cfg.NoSnapshots {
		return
	}
	if g.applied < g.nextSnapshot {
		return
	}
	g.nextSnapshot = g.applied + g.cfg.SnapshotEntries
	data, err := g.cfg.SM.Snapshot()
	if err != nil {
		g.log.Error("group: state machine snapshot failed; compaction skipped", "applied", g.applied, "err", err)
		return
	}
	if _, err := g.cfg.Storage.CreateSnapshot(g.applied, g.confState, data); err != nil {
		g.log.Error("group: storing snapshot failed; compaction skipped", "applied", g.applied, "err", err)
		return
	}
	if g.applied <= g.cfg.KeepEntries {
		return
	}
	to := g.applied - g.cfg.KeepEntries
	if first, err := g.cfg.Storage.FirstIndex(); err != nil || to < first {
		return
	}
	if err := g.cfg.Storage.Compact(to); err != nil {
		g.log.Error("group: compaction failed", "to", to, "err", err)
	}
}

// maybeCampaign makes a group whose only voter is this member elect itself
// at once rather than after an election timeout, once its configuration is
// known (the entries committed before a restart are applied).
func (g *group) maybeCampaign() {
	if !g.checkCampaign || g.applied < g.startCommit {
		return
	}
	g.checkCampaign = false
	if v := g.confState.GetVoters(); len(v) == 1 && v[0] == g.d.cfg.ID && g.lead != g.d.cfg.ID {
		if err := g.rn.Campaign(); err == nil {
			g.d.markDirty(g)
		}
	}
}

// guard runs f, a step of g's raft state machine, and reports whether it
// returned. raft panics on what it holds cannot happen: a message whose
// commit index is beyond the log (a member whose log was lost behind its
// back, or a peer's bug), a corrupt entry. Such a panic fails this group
// only (fail): the process and its other groups go on.
func (g *group) guard(op string, f func()) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			g.d.panics.Add(1)
			g.fail(op, fmt.Errorf("raft panicked: %v", r))
			ok = false
		}
	}()
	f()
	return true
}

// fail stops the group after a storage or state machine failure.
func (g *group) fail(op string, err error) {
	g.failed = fmt.Errorf("%w: group %d: %s: %w", ErrGroupFailed, g.id, op, err)
	g.log.Error("group: failed; remove and add it again to recover", "op", op, "err", err)
	g.failPending(g.failed)
	// A failed member knows no leader any more, and leads nothing: its
	// owner must stop serving as the group's leader (a partition would
	// answer from a state that no longer moves).
	if g.cfg.OnLeaderChange != nil && g.reportedLead != 0 {
		g.reportedLead = 0
		g.cfg.OnLeaderChange(0, g.reportedTerm)
	}
	if f := g.d.cfg.OnGroupFailed; f != nil {
		f(g.id, g.failed)
	}
}

// failPending fails every pending proposal with err.
func (g *group) failPending(err error) {
	for seq, p := range g.pending {
		delete(g.pending, seq)
		if errors.Is(err, ErrProposalDropped) {
			g.d.proposalsDropped.Add(1)
		}
		p.ch <- result{err: err}
	}
	g.failUntagged(true, func(*Proposal) error { return err })
	g.failReads(true, err)
}

// Status is a group's state as this member sees it.
type Status struct {
	Group, ID uint64
	// Leader is the leader's id, 0 when none is known.
	Leader uint64
	Term   uint64
	// State is this member's role: StateLeader, StateFollower...
	State raft.StateType
	// Commit is the highest index known committed, Applied the highest
	// applied to the state machine here.
	Commit, Applied uint64
	// FirstIndex and LastIndex bound the log held in storage.
	FirstIndex, LastIndex uint64
	Voters, Learners      []uint64
	// Progress is each member's match index, on the leader only.
	Progress map[uint64]uint64
	// PendingProposals counts this member's proposals waiting.
	PendingProposals int
	// Quiesced: the group is not ticked (GroupConfig.Quiesce).
	Quiesced bool
	// Err is non-nil once the group failed (wraps ErrGroupFailed).
	Err error
}

// Status returns the group's state, false if the group is not hosted or the
// Driver is closed.
func (d *Driver) Status(id uint64) (Status, bool) {
	var s Status
	var ok bool
	if err := d.call(func() {
		g := d.groups[id]
		if g == nil {
			return
		}
		ok = true
		s = g.status()
	}); err != nil {
		return Status{}, false
	}
	return s, ok
}

func (g *group) status() Status {
	rs := g.rn.Status()
	s := Status{
		Group:            g.id,
		ID:               rs.ID,
		Leader:           rs.Lead,
		Term:             rs.HardState.GetTerm(),
		State:            rs.RaftState,
		Commit:           rs.HardState.GetCommit(),
		Applied:          g.applied,
		Voters:           slices.Clone(g.confState.GetVoters()),
		Learners:         slices.Clone(g.confState.GetLearners()),
		PendingProposals: len(g.pending) + len(g.fifo) + len(g.byIndex),
		Quiesced:         g.quiesced,
		Err:              g.failed,
	}
	s.FirstIndex, _ = g.cfg.Storage.FirstIndex()
	s.LastIndex, _ = g.cfg.Storage.LastIndex()
	if rs.RaftState == raft.StateLeader {
		s.Progress = make(map[uint64]uint64, len(rs.Progress))
		for id, pr := range rs.Progress {
			s.Progress[id] = pr.Match
		}
	}
	return s
}
