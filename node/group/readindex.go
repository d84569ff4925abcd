package group

import (
	"context"
	"encoding/binary"

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

// pendingRead is a leadership check waiting, with the term it was asked in.
type pendingRead struct {
	ch   chan readResult
	term uint64
}

// ReadIndex confirms that this member leads group id: it returns once a
// quorum acknowledged its leadership, with the commit index at the time of
// the request (every entry committed before the call is at or below it). It
// fails with a *NotLeaderError on a member that does not lead, with
// ErrProposalDropped when the leader or term changed meanwhile, and with
// ctx's error when no quorum answered in time.
func (d *Driver) ReadIndex(ctx context.Context, id uint64) (uint64, error) {
	ch := make(chan readResult, 1)
	key := binary.BigEndian.AppendUint64(nil, d.readSeq.Add(1))
	if err := d.enqueue(func() { d.readIndex(id, key, ch) }); err != nil {
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
			}
		})
		return 0, context.Cause(ctx)
	}
}

// readIndex runs on the loop.
func (d *Driver) readIndex(id uint64, key []byte, ch chan readResult) {
	g, err := d.liveGroup(id)
	if err != nil {
		ch <- readResult{err: err}
		return
	}
	bs := g.rn.BasicStatus()
	if bs.RaftState != raft.StateLeader {
		ch <- readResult{err: &NotLeaderError{Group: id, Leader: bs.Lead}}
		return
	}
	if g.reads == nil {
		g.reads = make(map[string]pendingRead)
	}
	g.reads[string(key)] = pendingRead{ch: ch, term: bs.HardState.GetTerm()}
	d.wakeGroup(g)
	g.rn.ReadIndex(key)
	d.markDirty(g)
}

// readStates answers the reads a Ready confirmed.
func (g *group) readStates(rss []raft.ReadState) {
	for _, rs := range rss {
		if r, ok := g.reads[string(rs.RequestCtx)]; ok {
			delete(g.reads, string(rs.RequestCtx))
			r.ch <- readResult{index: rs.Index}
		}
	}
}

// failReads fails the reads waiting that were asked in another term than
// the current one, or all of them (all set): raft forgets them silently
// when its leader or term changes.
func (g *group) failReads(all bool, err error) {
	for k, r := range g.reads {
		if all || r.term != g.term || g.lead != g.d.cfg.ID {
			delete(g.reads, k)
			r.ch <- readResult{err: err}
		}
	}
}
