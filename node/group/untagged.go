package group

import (
	"context"
	"fmt"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// Proposals of Untagged groups (see GroupConfig.Untagged). The leader's
// proposals wait in fifo until raft hands their entries to Save, in order;
// they are then known by index (byIndex) until applied. A change of leader
// or term fails every one of them: raft may drop them silently.

// Proposal is an entry proposed with ProposeAsync.
type Proposal struct {
	term uint64
	size int // bytes proposed, counted in the group's fifoBytes until saved
	// index and err are written on the loop before persisted is closed,
	// and read only after.
	index     uint64
	err       error         // a failure before the entry was saved
	persisted chan struct{} // closed once saved in this member's log, or failed before
	done      chan result   // one result: applied, or failed
}

// Saved returns, once Persisted is closed, the entry's index in the log,
// or why the proposal failed before it was saved. (A saved proposal may
// still fail to commit: Wait tells.)
func (p *Proposal) Saved() (uint64, error) {
	<-p.persisted
	return p.index, p.err
}

// Persisted is closed once the entry is in this member's log under its
// storage's durability (saved), or when the proposal failed (Wait says
// which).
func (p *Proposal) Persisted() <-chan struct{} { return p.persisted }

// Wait waits until the entry is applied on this member and returns the
// state machine's result and the entry's index, or the proposal's failure.
func (p *Proposal) Wait(ctx context.Context) (any, uint64, error) {
	select {
	case r := <-p.done:
		p.done <- r // keep it for another Wait
		return r.value, r.index, r.err
	case <-ctx.Done():
		return nil, 0, context.Cause(ctx)
	}
}

func newProposal() *Proposal {
	return &Proposal{persisted: make(chan struct{}), done: make(chan result, 1)}
}

// finish fails a proposal that was not saved.
func (p *Proposal) finish(r result) {
	p.err = r.err
	p.done <- r
	close(p.persisted)
}

// ProposeAsync proposes data to an Untagged group without waiting: the
// returned Proposal reports when the entry is saved here (Persisted) and
// applied (Wait). Proposals of one caller are appended in the order of
// the calls. It fails at once (in the Proposal) on a member that is not
// the leader, with a *NotLeaderError.
//
// after, if not nil, is an earlier proposal to the same group that this one
// must follow in the log: if after failed before it was saved (refused,
// dropped), this one fails too, with ErrProposalDropped, rather than enter
// the log without it. (A proposal refused for a full queue is otherwise
// followed by the next one once the queue drained.)
func (d *Driver) ProposeAsync(id uint64, data []byte, after *Proposal) *Proposal {
	p := newProposal()
	if err := d.enqueue(func() { d.proposeUntagged(id, data, p, after) }); err != nil {
		p.finish(result{err: err})
	}
	return p
}

// failedUnsaved reports whether p failed before it was saved. On the loop,
// for a proposal whose own turn on the loop came first.
func (p *Proposal) failedUnsaved() bool {
	select {
	case <-p.persisted:
		return p.err != nil
	default:
		return false
	}
}

// proposeUntagged runs on the loop.
func (d *Driver) proposeUntagged(id uint64, data []byte, p, after *Proposal) {
	if after != nil && after.failedUnsaved() {
		d.proposalsDropped.Add(1)
		p.finish(result{err: fmt.Errorf("%w: group %d: the proposal it follows failed: %w", ErrProposalDropped, id, after.err)})
		return
	}
	g, err := d.liveGroup(id)
	if err != nil {
		p.finish(result{err: err})
		return
	}
	if !g.cfg.Untagged {
		p.finish(result{err: fmt.Errorf("group: %d: ProposeAsync needs an Untagged group", id)})
		return
	}
	bs := g.rn.BasicStatus()
	switch {
	case bs.RaftState != raft.StateLeader:
		p.finish(result{err: &NotLeaderError{Group: id, Leader: bs.Lead}})
		return
	case len(g.fifo)+len(g.byIndex) >= d.cfg.MaxPendingProposals:
		p.finish(result{err: fmt.Errorf("%w: group %d has %d", ErrTooManyProposals, id, len(g.fifo)+len(g.byIndex))})
		return
	case len(g.fifo) > 0 && g.fifoBytes+len(data) > d.cfg.MaxPendingBytes:
		p.finish(result{err: fmt.Errorf("%w: group %d has %d bytes not yet saved", ErrTooManyProposals, id, g.fifoBytes)})
		return
	}
	p.term = bs.HardState.GetTerm()
	d.wakeGroup(g)
	if err := g.rn.Propose(data); err != nil {
		d.proposalsDropped.Add(1)
		p.finish(result{err: fmt.Errorf("%w: group %d: %w", ErrProposalDropped, id, err)})
		return
	}
	p.size = len(data)
	g.fifoBytes += p.size
	g.fifo = append(g.fifo, p)
	d.markDirty(g)
}

// saved matches the leader's newly saved entries with its proposals, in
// order, and reports them persisted.
func (g *group) saved(ents []*pb.Entry) {
	for _, e := range ents {
		if len(g.fifo) == 0 {
			return
		}
		if e.GetType() != pb.EntryNormal || len(e.GetData()) == 0 || e.GetTerm() != g.fifo[0].term {
			continue
		}
		p := g.fifo[0]
		g.fifo[0] = nil
		g.fifo = g.fifo[1:]
		g.fifoBytes -= p.size
		p.index = e.GetIndex()
		g.byIndex[p.index] = p
		close(p.persisted)
	}
}

// appliedUntagged resolves the proposal of an applied entry, if this
// member made it.
func (g *group) appliedUntagged(e *pb.Entry, v any) {
	p, ok := g.byIndex[e.GetIndex()]
	if !ok {
		return
	}
	delete(g.byIndex, e.GetIndex())
	if p.term != e.GetTerm() {
		p.done <- result{err: fmt.Errorf("%w: group %d: index %d holds another term's entry", ErrProposalDropped, g.id, e.GetIndex())}
		return
	}
	p.done <- result{value: v, index: e.GetIndex()}
}

// failUntagged fails the proposals made under another term or leader (all
// of them with all set).
func (g *group) failUntagged(all bool, err func(p *Proposal) error) {
	keep := g.fifo[:0]
	for _, p := range g.fifo {
		if all || p.term != g.term || g.lead != g.d.cfg.ID {
			g.d.proposalsDropped.Add(1)
			g.fifoBytes -= p.size
			p.finish(result{err: err(p)})
			continue
		}
		keep = append(keep, p)
	}
	clear(g.fifo[len(keep):])
	g.fifo = keep
	for i, p := range g.byIndex {
		if all || p.term != g.term || g.lead != g.d.cfg.ID {
			delete(g.byIndex, i)
			g.d.proposalsDropped.Add(1)
			p.done <- result{err: err(p)}
		}
	}
}
