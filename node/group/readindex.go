package group

import (
	"context"
	"encoding/binary"
	"fmt"

	"go.etcd.io/raft/v3"
)

// Leadership checks. A leader cut off from the others goes on believing it
// leads until its election timeout passes without a quorum (CheckQuorum):
// meanwhile another member may lead a later term and commit entries it
// does not have. What it answers from its own state alone may be stale.
// ReadIndex asks a quorum (raft's ReadIndex, safe mode: a heartbeat round)
// whether this member still leads.

type readResult struct {
	index uint64
	err   error
}

// pendingRead is a read waiting, with the leader and term it was asked
// under. A barrier (see Barrier) also waits, once the leader confirmed an
// index, until this member applied it.
type pendingRead struct {
	ch         chan readResult
	term, lead uint64
	barrier    bool
	index      uint64 // confirmed index a barrier waits to apply
}

// ReadIndex confirms that this member leads group id: it returns once a
// quorum acknowledged its leadership, with the commit index at the time of
// the request (every entry committed before the call is at or below it). It
// fails with a *NotLeaderError on a member that does not lead, with
// ErrProposalDropped when the leader or term changed meanwhile, and with
// ctx's error when no quorum answered in time.
func (d *Driver) ReadIndex(ctx context.Context, id uint64) (uint64, error) {
	return d.read(ctx, id, false)
}

// read starts a leadership check or a barrier on the loop and waits for
// its answer.
func (d *Driver) read(ctx context.Context, id uint64, barrier bool) (uint64, error) {
	ch := make(chan readResult, 1)
	key := binary.BigEndian.AppendUint64(nil, d.readSeq.Add(1))
	if err := d.enqueue(func() { d.startRead(id, key, barrier, ch) }); err != nil {
		return 0, err
	}
	select {
	case r := <-ch:
		return r.index, r.err
	case <-ctx.Done():
		// Forget the request: its answer, if any, goes nowhere.
		d.enqueue(func() {
			if g := d.groups[id]; g != nil {
				delete(g.reads, string(key))
				delete(g.applyWaits, string(key))
			}
		})
		return 0, context.Cause(ctx)
	}
}

// Barrier returns once this member has applied every entry of group id
// committed before the call, with that entry's index: what it reads from
// its state machine afterwards is at least as new as what any member
// acknowledged before. It works on any member, voter or learner: a
// follower asks the leader for its commit index (raft's ReadIndex,
// forwarded), which the leader confirms with a quorum. It fails with
// ErrNoLeader when no leader is known, with ErrProposalDropped when the
// leader or term changed before the leader answered, and with ctx's error
// when no answer came in time (the leader cut off, say).
func (d *Driver) Barrier(ctx context.Context, id uint64) (uint64, error) {
	return d.read(ctx, id, true)
}

// startRead runs on the loop: it checks that the read can be asked here
// (a leadership check only on the leader; a barrier anywhere a leader is
// known, since raft drops a read it cannot forward without a word),
// registers it under key and hands it to raft.
func (d *Driver) startRead(id uint64, key []byte, barrier bool, ch chan readResult) {
	g, err := d.liveGroup(id)
	if err != nil {
		ch <- readResult{err: err}
		return
	}
	bs := g.rn.BasicStatus()
	switch {
	case !barrier && bs.RaftState != raft.StateLeader:
		ch <- readResult{err: &NotLeaderError{Group: id, Leader: bs.Lead}}
		return
	case bs.Lead == raft.None:
		ch <- readResult{err: fmt.Errorf("%w: group %d", ErrNoLeader, id)}
		return
	}
	if g.reads == nil {
		g.reads = make(map[string]pendingRead)
	}
	g.reads[string(key)] = pendingRead{ch: ch, term: bs.HardState.GetTerm(), lead: bs.Lead, barrier: barrier}
	d.wakeGroup(g)
	g.rn.ReadIndex(key)
	d.markDirty(g)
}

// readStates answers the reads a Ready confirmed; a barrier whose index is
// not applied yet waits in applyWaits.
func (g *group) readStates(rss []raft.ReadState) {
	for _, rs := range rss {
		r, ok := g.reads[string(rs.RequestCtx)]
		if !ok {
			continue
		}
		delete(g.reads, string(rs.RequestCtx))
		if r.barrier && rs.Index > g.applied {
			if g.applyWaits == nil {
				g.applyWaits = make(map[string]pendingRead)
			}
			r.index = rs.Index
			g.applyWaits[string(rs.RequestCtx)] = r
			continue
		}
		r.ch <- readResult{index: rs.Index}
	}
}

// releaseBarriers answers the barriers whose index is now applied.
func (g *group) releaseBarriers() {
	for k, r := range g.applyWaits {
		if r.index <= g.applied {
			delete(g.applyWaits, k)
			r.ch <- readResult{index: r.index}
		}
	}
}

// failReads fails the reads waiting that were asked under another leader
// or term than the current ones, or all of them (all set, with the
// barriers waiting to apply): raft forgets them silently when its leader
// or term changes.
func (g *group) failReads(all bool, err error) {
	for k, r := range g.reads {
		if all || r.term != g.term || r.lead != g.lead {
			delete(g.reads, k)
			r.ch <- readResult{err: err}
		}
	}
	if all {
		for k, r := range g.applyWaits {
			delete(g.applyWaits, k)
			r.ch <- readResult{err: err}
		}
	}
}
