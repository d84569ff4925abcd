package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rafka/rafka/node/meta"
	"github.com/rafka/rafka/wire"
)

// Drains (docs/replication.md, "Moves and drains"). A broker marked
// draining in the metadata (SetBrokerDrain, committed) leads nothing: each
// move-loop pass it hands the leadership of every partition group it leads
// to another caught-up voter that is not draining, and preferredLeader
// skips it, so leader rebalancing does not give leaderships back. A full
// drain also leaves the broker out of placement, so its replicas move off
// it one at a time (moves.go). Undrain clears the mark; placement then
// moves replicas back by the same mechanism as for a broker that joined.

// drainForwardTimeout bounds asking the drained broker how many partitions
// it leads.
const drainForwardTimeout = 2 * time.Second

// drainStep hands over the leadership of the partitions this broker leads
// while it is marked draining.
func (b *Broker) drainStep() {
	c := b.cluster
	b.endLeadersDrainOnce()
	br, ok := c.state.Broker(b.id)
	if !ok || br.Drain == meta.DrainNone || c.driver == nil {
		return
	}
	for name, t := range b.topics() {
		for i, rp := range t.rafts {
			if rp == nil || rp.leader.Load() != c.raftID {
				continue
			}
			st, ok := c.driver.Status(rp.group)
			if !ok || st.Leader != c.raftID {
				continue
			}
			to := b.handOffTarget(st, c.raftID)
			if to == 0 || st.Progress[to] < st.Commit {
				continue // nobody caught up to take it yet
			}
			b.log.Info("draining: handing partition leadership over", "topic", name, "partition", i, "to", to)
			c.driver.TransferLeadership(rp.group, to)
		}
	}
}

// endLeadersDrainOnce ends a leaders-only drain of this broker once per
// start, as soon as its metadata is caught up: such a drain is for a
// restart or a short maintenance (a Kubernetes pod's preStop hook marks
// its broker so before SIGTERM), and the broker that starts again takes
// leaderships again. A full drain (decommission) stays until undrained.
func (b *Broker) endLeadersDrainOnce() {
	c := b.cluster
	if b.leadersDrainChecked.Load() || !c.joined.Load() || c.behind() != nil {
		return
	}
	br, ok := c.state.Broker(b.id)
	if !ok {
		return // not registered yet
	}
	if br.Drain == meta.DrainLeaders {
		ctx, cancel := context.WithTimeout(b.ctx, metaProposeTimeout)
		err := c.propose(ctx, meta.SetBrokerDrain{ID: b.id, Mode: meta.DrainNone})
		cancel()
		if err != nil {
			b.log.Warn("ending this broker's leaders-only drain after its start; retrying", "err", err)
			return
		}
		b.log.Info("ended this broker's leaders-only drain: it started again")
	}
	b.leadersDrainChecked.Store(true)
}

// ledPartitions counts the replicated partitions this broker leads.
func (b *Broker) ledPartitions() int32 {
	var n int32
	for _, t := range b.topics() {
		for _, rp := range t.rafts {
			if rp != nil && rp.leader.Load() == b.cluster.raftID {
				n++
			}
		}
	}
	return n
}

// DrainBroker marks broker id draining (mode wire.DrainLeadersOnly or
// wire.DrainFull), or clears the mark (undrain), and reports its state.
// The mark is committed before it returns; asked again with the same
// arguments it only reports.
func (b *Broker) DrainBroker(ctx context.Context, req *wire.DrainBrokerRequest) *wire.DrainBrokerResponse {
	resp := &wire.DrainBrokerResponse{BrokerID: req.BrokerID, Leads: -1}
	fail := func(err error) *wire.DrainBrokerResponse {
		var we *wire.Error
		if errors.As(err, &we) {
			resp.Error, resp.Message = we.Code, we.Message
		} else {
			resp.Error, resp.Message = wire.ErrMetadataUnavailable, err.Error()
		}
		return resp
	}
	mode := meta.DrainNone
	switch {
	case req.Undrain:
	case req.Mode == wire.DrainLeadersOnly:
		mode = meta.DrainLeaders
	case req.Mode == wire.DrainFull:
		mode = meta.DrainFull
	default:
		return fail(&wire.Error{Code: wire.ErrInvalidRequest, Message: fmt.Sprintf("drain mode %d: 1 (leaders only) or 2 (full)", req.Mode)})
	}
	c := b.cluster
	br, ok := c.state.Broker(req.BrokerID)
	if !ok {
		if err := c.behind(); err != nil {
			return fail(err)
		}
		return fail(&wire.Error{Code: wire.ErrInvalidRequest, Message: fmt.Sprintf("broker %q is not a member of the cluster", req.BrokerID)})
	}
	if br.Drain != mode {
		if err := c.propose(ctx, meta.SetBrokerDrain{ID: br.ID, Mode: mode}); err != nil {
			return fail(err)
		}
		b.log.Info("broker drain mark changed", "target", br.ID, "mode", mode)
		br, _ = c.state.Broker(req.BrokerID)
	}
	resp.Mode = drainState(br.Drain)
	for _, t := range c.state.Topics() {
		for p := range t.Replicas {
			if slices.Contains(t.Hosts(int32(p)), br.ID) {
				resp.Hosts++
			}
		}
	}
	for _, m := range c.state.Moves() {
		if m.Involves(br.ID) {
			resp.Moves++
		}
	}
	switch {
	case br.ID == b.id:
		resp.Leads = b.ledPartitions()
	case br.State != meta.BrokerAlive:
		resp.Leads = 0 // fenced: it leads nothing the cluster sees
	case c.peers != nil:
		// Only the broker itself knows which partitions it leads.
		fctx, cancel := context.WithTimeout(ctx, drainForwardTimeout)
		var fr wire.DrainBrokerResponse
		if err := c.peers.call(fctx, br.Addr, wire.APIDrainBroker, req, &fr); err == nil && fr.Error == wire.ErrNone {
			resp.Leads = fr.Leads
		}
		cancel()
	}
	return resp
}

func drainState(m meta.DrainMode) string {
	switch m {
	case meta.DrainLeaders:
		return wire.DrainStateLeadersOnly
	case meta.DrainFull:
		return wire.DrainStateFull
	}
	return wire.DrainStateNone
}

// clusterMovesAndDrains fills the moves and drains of a cluster_info answer.
func (b *Broker) clusterMovesAndDrains(resp *wire.ClusterInfoResponse) {
	c := b.cluster
	for _, m := range c.state.Moves() {
		resp.Moves = append(resp.Moves, wire.ClusterMove{Topic: m.Topic, Partition: m.Partition, From: m.Remove, To: m.Add, Source: m.Source})
	}
	for _, br := range c.state.Brokers() {
		if br.Drain != meta.DrainNone {
			resp.Drains = append(resp.Drains, wire.ClusterDrain{ID: br.ID, Mode: drainState(br.Drain)})
		}
	}
}
