package group

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// tagSize is the proposal tag the Driver puts before a proposal's data (and
// a conf change's context): u64 LE proposer id, u64 LE sequence.
const tagSize = 16

// Driver runs many raft groups on one goroutine (see the package
// documentation).
type Driver struct {
	cfg Config
	log *slog.Logger
	// seq numbers this Driver's proposals; it starts at the wall clock in
	// nanoseconds so that a restarted broker does not reuse the tags of
	// entries its previous run proposed.
	seq     atomic.Uint64
	readSeq atomic.Uint64 // ReadIndex request contexts

	sent, received, dropped, proposalsDropped atomic.Uint64
	panics                                    atomic.Uint64
	ticks, wakes                              atomic.Uint64
	groupCount, quiescedGroups                atomic.Int64

	// mu guards the inbox, filled by any goroutine and drained by the loop.
	mu      sync.Mutex
	inbound []inbound
	ops     []func()
	closed  bool

	wake chan struct{} // capacity 1: the inbox is not empty
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the loop has returned

	closeOnce sync.Once

	// Owned by the loop goroutine.
	groups map[uint64]*group
	// awake are the groups ticked: all but the quiesced ones.
	awake map[uint64]*group
	// down are the peers reported down (ReportPeerDown).
	down  map[uint64]bool
	dirty []*group
	out   map[uint64][]Envelope
}

// inbound is one message received from a peer.
type inbound struct {
	from uint64
	env  Envelope
}

// Stats are the Driver's counters since New.
type Stats struct {
	// MessagesSent counts messages handed to the Transport.
	MessagesSent uint64
	// MessagesReceived counts messages stepped into a group.
	MessagesReceived uint64
	// MessagesDropped counts inbound messages dropped: inbox full, unknown
	// group, wrong addressee, or refused by raft.
	MessagesDropped uint64
	// ProposalsDropped counts proposals failed with ErrProposalDropped.
	ProposalsDropped uint64
	// Ticks counts the TickIntervals the loop has handled.
	Ticks uint64
	// GroupsFailedByPanic counts groups failed because raft panicked on
	// their state (group.guard): each is failed, the driver goes on.
	GroupsFailedByPanic uint64
	// Wakes counts quiesced groups woken (by a proposal, a message, an
	// operation or a peer reported down or up).
	Wakes uint64
	// Groups is the number of groups hosted now, Quiesced how many of them
	// are quiesced.
	Groups, Quiesced int
}

// New starts a Driver with no groups.
func New(cfg Config) (*Driver, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &Driver{
		cfg:    cfg,
		log:    cfg.Logger,
		wake:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		groups: make(map[uint64]*group),
		awake:  make(map[uint64]*group),
		down:   make(map[uint64]bool),
		out:    make(map[uint64][]Envelope),
	}
	d.seq.Store(uint64(time.Now().UnixNano()))
	go d.run()
	return d, nil
}

// Stats returns the Driver's counters.
func (d *Driver) Stats() Stats {
	return Stats{
		MessagesSent:        d.sent.Load(),
		MessagesReceived:    d.received.Load(),
		MessagesDropped:     d.dropped.Load(),
		ProposalsDropped:    d.proposalsDropped.Load(),
		Ticks:               d.ticks.Load(),
		GroupsFailedByPanic: d.panics.Load(),
		Wakes:               d.wakes.Load(),
		Groups:              int(d.groupCount.Load()),
		Quiesced:            int(d.quiescedGroups.Load()),
	}
}

// Close stops the loop, fails every pending proposal with ErrClosed and
// returns once the goroutine is gone. Storages and state machines are left
// to their owners. It is idempotent.
func (d *Driver) Close() error {
	d.closeOnce.Do(func() {
		d.mu.Lock()
		d.closed = true
		d.mu.Unlock()
		close(d.stop)
	})
	<-d.done
	return nil
}

// enqueue queues f to run on the loop goroutine.
func (d *Driver) enqueue(f func()) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	d.ops = append(d.ops, f)
	d.wakeLocked()
	d.mu.Unlock()
	return nil
}

// wakeLocked signals the loop; one signal pending is enough, since the loop
// drains the whole inbox after taking it.
func (d *Driver) wakeLocked() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// call runs f on the loop goroutine and waits for it.
func (d *Driver) call(f func()) error {
	ran := make(chan struct{})
	if err := d.enqueue(func() { f(); close(ran) }); err != nil {
		return err
	}
	select {
	case <-ran:
		return nil
	case <-d.done:
		select {
		case <-ran:
			return nil
		default:
			return ErrClosed
		}
	}
}

// Step hands messages received from peer `from` to their groups. It does
// not block: past Config.MaxInboundMessages queued, messages are dropped
// (and counted). Messages for groups not hosted here, or not addressed to
// this broker by `from`, are dropped by the loop.
func (d *Driver) Step(from uint64, envs []Envelope) {
	d.mu.Lock()
	if d.closed || len(d.inbound)+len(envs) > d.cfg.MaxInboundMessages {
		d.mu.Unlock()
		d.dropped.Add(uint64(len(envs)))
		return
	}
	for _, e := range envs {
		d.inbound = append(d.inbound, inbound{from: from, env: e})
	}
	d.wakeLocked()
	d.mu.Unlock()
}

// AddGroup starts hosting a group: from its storage when that has state,
// else from Bootstrap (a new group), else empty (a member being added,
// which waits for the leader). A group whose only voter is this broker
// campaigns at once.
func (d *Driver) AddGroup(gc GroupConfig) error {
	gc = gc.withDefaults()
	if err := gc.Validate(); err != nil {
		return err
	}
	var err error
	if cerr := d.call(func() { err = d.addGroup(gc) }); cerr != nil {
		return cerr
	}
	return err
}

// RemoveGroup stops hosting a group: it is no longer ticked nor stepped,
// and its pending proposals fail with ErrUnknownGroup. Its storage is left
// as it is.
func (d *Driver) RemoveGroup(id uint64) error {
	var err error
	if cerr := d.call(func() {
		g := d.groups[id]
		if g == nil {
			err = fmt.Errorf("%w: %d", ErrUnknownGroup, id)
			return
		}
		delete(d.groups, id)
		delete(d.awake, id)
		d.groupCount.Add(-1)
		if g.quiesced {
			d.quiescedGroups.Add(-1)
		}
		g.removed = true
		g.failPending(fmt.Errorf("%w: %d removed", ErrUnknownGroup, id))
	}); cerr != nil {
		return cerr
	}
	return err
}

// ReportUnreachable tells every group that the last send to peer failed,
// so that leaders stop streaming appends to it optimistically.
func (d *Driver) ReportUnreachable(peer uint64) {
	_ = d.enqueue(func() {
		for _, g := range d.groups {
			if g.failed == nil {
				g.rn.ReportUnreachable(peer)
				d.markDirty(g)
			}
		}
	})
}

// Campaign makes this member start an election in the group.
func (d *Driver) Campaign(id uint64) error {
	var err error
	if cerr := d.call(func() {
		g, gerr := d.liveGroup(id)
		if gerr != nil {
			err = gerr
			return
		}
		d.wakeGroup(g)
		err = g.rn.Campaign()
		d.markDirty(g)
	}); cerr != nil {
		return cerr
	}
	return err
}

// TransferLeadership asks the group's leader (if this member is it) to hand
// leadership to member `to`. It returns at once; watch Status or
// OnLeaderChange for the outcome.
func (d *Driver) TransferLeadership(id, to uint64) {
	_ = d.enqueue(func() {
		if g, err := d.liveGroup(id); err == nil {
			d.wakeGroup(g)
			g.rn.TransferLeader(to)
			d.markDirty(g)
		}
	})
}

// liveGroup returns the group, or why it cannot take requests.
func (d *Driver) liveGroup(id uint64) (*group, error) {
	g := d.groups[id]
	if g == nil {
		return nil, fmt.Errorf("%w: %d", ErrUnknownGroup, id)
	}
	if g.failed != nil {
		return nil, g.failed
	}
	return g, nil
}

// result is what a pending proposal's waiter receives.
type result struct {
	value any
	index uint64
	err   error
}

// Propose proposes data to the group and waits until the entry is applied
// on this broker, so that a read of the local state machine afterwards sees
// it. It returns the state machine's result and the entry's index. It works
// on any member; followers and learners forward to the leader.
//
// Errors: ErrNoLeader at once when no leader is known; ErrProposalDropped
// when the proposal was refused or the leader or term changed while it was
// pending (the entry may still be applied later); ErrTooManyProposals; the
// context's error (the entry may still be applied); ErrUnknownGroup,
// ErrGroupFailed, ErrClosed.
func (d *Driver) Propose(ctx context.Context, id uint64, data []byte) (any, uint64, error) {
	seq := d.seq.Add(1)
	tagged := make([]byte, tagSize+len(data))
	putTag(tagged, d.cfg.ID, seq)
	copy(tagged[tagSize:], data)
	r := d.wait(ctx, id, seq, func(g *group) error {
		if g.cfg.Untagged {
			panic("BUG: Propose on an Untagged group: use ProposeAsync")
		}
		return g.rn.Propose(tagged)
	})
	return r.value, r.index, r.err
}

// ProposeConfChange proposes a configuration change and waits until it is
// applied on this broker, returning its index. The change's Context carries
// the driver's tag in front of the caller's (removed again before
// OnConfChange sees it). Errors are those of Propose; besides, raft turns a
// conf change proposed while another is still unapplied into an empty entry,
// which leaves this call waiting for its context.
func (d *Driver) ProposeConfChange(ctx context.Context, id uint64, cc *pb.ConfChangeV2) (uint64, error) {
	seq := d.seq.Add(1)
	tagged := &pb.ConfChangeV2{Transition: cc.Transition, Changes: cc.Changes}
	tagged.Context = make([]byte, tagSize+len(cc.GetContext()))
	putTag(tagged.Context, d.cfg.ID, seq)
	copy(tagged.Context[tagSize:], cc.GetContext())
	r := d.wait(ctx, id, seq, func(g *group) error { return g.rn.ProposeConfChange(tagged) })
	return r.index, r.err
}

// wait submits a proposal on the loop and waits for its result.
func (d *Driver) wait(ctx context.Context, id, seq uint64, propose func(*group) error) result {
	if err := ctx.Err(); err != nil {
		return result{err: err}
	}
	ch := make(chan result, 1)
	if err := d.enqueue(func() { d.propose(id, seq, ch, propose) }); err != nil {
		return result{err: err}
	}
	select {
	case r := <-ch:
		return r
	case <-ctx.Done():
		_ = d.enqueue(func() {
			if g := d.groups[id]; g != nil {
				delete(g.pending, seq)
			}
		})
		return result{err: context.Cause(ctx)}
	case <-d.done:
		select {
		case r := <-ch:
			return r
		default:
			return result{err: ErrClosed}
		}
	}
}

// propose runs on the loop: it checks the group can take a proposal, hands
// it to raft and records its waiter.
func (d *Driver) propose(id, seq uint64, ch chan result, propose func(*group) error) {
	g, err := d.liveGroup(id)
	if err != nil {
		ch <- result{err: err}
		return
	}
	bs := g.rn.BasicStatus()
	lead, term := bs.Lead, bs.HardState.GetTerm()
	switch {
	case lead == raft.None:
		ch <- result{err: fmt.Errorf("%w: group %d, term %d", ErrNoLeader, id, term)}
		return
	case len(g.pending) >= d.cfg.MaxPendingProposals:
		ch <- result{err: fmt.Errorf("%w: group %d has %d", ErrTooManyProposals, id, len(g.pending))}
		return
	}
	d.wakeGroup(g)
	if err := propose(g); err != nil {
		d.proposalsDropped.Add(1)
		ch <- result{err: fmt.Errorf("%w: group %d: %w", ErrProposalDropped, id, err)}
		return
	}
	g.pending[seq] = pending{ch: ch, term: term, lead: lead}
	d.markDirty(g)
}

func putTag(b []byte, proposer, seq uint64) {
	binary.LittleEndian.PutUint64(b, proposer)
	binary.LittleEndian.PutUint64(b[8:], seq)
}

func parseTag(b []byte) (proposer, seq uint64, ok bool) {
	if len(b) < tagSize {
		return 0, 0, false
	}
	return binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:]), true
}

// markDirty schedules a Ready check of g in this loop iteration.
func (d *Driver) markDirty(g *group) {
	if !g.dirty {
		g.dirty = true
		d.dirty = append(d.dirty, g)
	}
}

// run is the Driver's goroutine: tick, drain the inbox, handle every
// touched group's Ready, flush the outbound messages.
func (d *Driver) run() {
	defer close(d.done)
	ticker := time.NewTicker(d.cfg.TickInterval)
	defer ticker.Stop()
	var ops []func()
	var msgs []inbound
	for {
		select {
		case <-d.stop:
			d.shutdown()
			return
		case <-ticker.C:
			d.tick()
		case <-d.wake:
		}
		d.mu.Lock()
		ops, d.ops = d.ops, ops[:0]
		msgs, d.inbound = d.inbound, msgs[:0]
		d.mu.Unlock()

		for _, in := range msgs {
			d.stepOne(in)
		}
		clear(msgs)
		for i, f := range ops {
			f()
			ops[i] = nil
		}
		d.handleDirty()
		d.flush()
	}
}

// maxReadyPasses bounds the Ready passes over the dirty groups per loop
// iteration. A group whose Advance produced more work (its own append
// acknowledged, entries now committed) is handled again in the next pass;
// past the bound the loop wakes itself and goes on after the inbox.
const maxReadyPasses = 4

// handleDirty handles the Ready of every group touched since the last call.
func (d *Driver) handleDirty() {
	for range maxReadyPasses {
		n := len(d.dirty)
		if n == 0 {
			return
		}
		for _, g := range d.dirty[:n] {
			g.dirty = false
			if !g.removed && g.failed == nil {
				g.guard("ready", g.handleReady)
			}
		}
		// Groups marked again during the pass were appended after n.
		rest := copy(d.dirty, d.dirty[n:])
		clear(d.dirty[rest:])
		d.dirty = d.dirty[:rest]
	}
	if len(d.dirty) > 0 {
		d.mu.Lock()
		d.wakeLocked()
		d.mu.Unlock()
	}
}

// stepOne steps one inbound message into its group.
func (d *Driver) stepOne(in inbound) {
	g := d.groups[in.env.Group]
	m := in.env.Msg
	if g == nil || g.failed != nil || m == nil || m.GetTo() != d.cfg.ID || m.GetFrom() != in.from {
		d.dropped.Add(1)
		return
	}
	if g.joining && isVoteRequest(m) {
		if !g.member() {
			d.dropped.Add(1) // GroupConfig.Joining
			return
		}
		g.joining = false
	}
	if wakes(m) {
		d.wakeGroup(g)
	}
	var err error
	if !g.guard("step", func() { err = g.rn.Step(m) }) || err != nil {
		d.dropped.Add(1)
		return
	}
	d.received.Add(1)
	d.markDirty(g)
	if isQuiesceHeartbeat(m) {
		g.maybeQuiesceFollower(m)
	}
}

func isVoteRequest(m *pb.Message) bool {
	return m.GetType() == pb.MsgVote || m.GetType() == pb.MsgPreVote
}

// member reports whether this member is in the group's configuration, as
// voter or learner (a learner may be asked to vote: it may have been
// promoted without having applied the promotion yet).
func (g *group) member() bool {
	cfg := g.rn.Status().Config
	id := g.d.cfg.ID
	_, in := cfg.Voters[0][id]
	_, out := cfg.Voters[1][id]
	_, l := cfg.Learners[id]
	_, ln := cfg.LearnersNext[id]
	return in || out || l || ln
}

// send queues a group's message for its peer until the next flush.
func (d *Driver) send(group uint64, m *pb.Message) {
	to := m.GetTo()
	d.out[to] = append(d.out[to], Envelope{Group: group, Msg: m})
}

// flush hands the queued messages to the transport, one call per peer.
func (d *Driver) flush() {
	for to, envs := range d.out {
		if len(envs) == 0 {
			continue
		}
		d.sent.Add(uint64(len(envs)))
		d.cfg.Transport.Send(to, envs)
		d.out[to] = nil // the transport owns envs now
	}
}

// shutdown fails what is still waiting when the loop stops.
func (d *Driver) shutdown() {
	for _, g := range d.groups {
		g.failPending(ErrClosed)
	}
}
