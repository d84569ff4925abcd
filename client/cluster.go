package client

import (
	"context"
	"math"
	"time"

	"github.com/rafka/rafka/wire"
)

// ClusterInfo is one broker's view of the cluster: the brokers registered in
// its copy of the metadata and the metadata group's raft state.
type ClusterInfo struct {
	ClusterID   string
	Brokers     []ClusterBroker // in the broker's order (by ID)
	MetaLeader  string          // broker ID of the metadata leader; "" unknown
	MetaTerm    uint64
	MetaCommit  uint64
	MetaApplied uint64   // applied by the broker that answered
	Voters      []string // broker IDs of the metadata group's voters
	Learners    []string // broker IDs of its learners
	// Moves are the replica moves in progress, Drains the brokers being
	// drained (drain.go).
	Moves  []ReplicaMove
	Drains []BrokerDrain
}

// ClusterBroker is one registered broker.
type ClusterBroker struct {
	ID    string
	Addr  string
	Zone  string // "" when the broker declares none
	State string // wire.BrokerStateAlive ("alive") or wire.BrokerStateFenced ("fenced")
	// LeaseAge is the time since the broker's last heartbeat; -1 when unknown
	// (the answering broker is not the metadata leader, which alone sees
	// heartbeats). See LeaseAgeKnown.
	LeaseAge time.Duration
	Epoch    uint64 // registration epoch: grows each time the broker (re)joins
	Leads    int32  // partitions it leads
	Hosts    int32  // partitions it hosts a replica of
	Voter    bool   // a voter of the metadata group
	Applied  uint64 // metadata log index it has applied
}

// LeaseAgeKnown reports whether LeaseAge holds a value.
func (b *ClusterBroker) LeaseAgeKnown() bool { return b.LeaseAge >= 0 }

// ClusterInfo asks a broker (any one: the call moves to the next known
// broker on retriable failures) for its view of the cluster. Lease ages are
// known to the metadata leader only: when another broker answered, the
// leader is asked too, and its answer is returned if it comes.
func (c *Client) ClusterInfo(ctx context.Context) (ClusterInfo, error) {
	errOf := func(r *wire.ClusterInfoResponse) error { return wire.AsError(r.Error, r.Message) }
	resp, err := controlCall(ctx, c, wire.APIClusterInfo, &wire.ClusterInfoRequest{}, c.anyBroker, "", errOf)
	if err != nil {
		return ClusterInfo{}, opError("cluster info", err)
	}
	if leaderAddr := leaderOf(resp); leaderAddr != "" {
		var lr wire.ClusterInfoResponse
		if err := c.roundTrip(ctx, leaderAddr, wire.APIClusterInfo, &wire.ClusterInfoRequest{}, &lr); err == nil && errOf(&lr) == nil && answeredByLeader(&lr) {
			resp = &lr
		}
	}
	return clusterInfoOf(resp), nil
}

// answeredByLeader reports whether r comes from the metadata leader: only
// it knows lease ages.
func answeredByLeader(r *wire.ClusterInfoResponse) bool {
	for _, b := range r.Brokers {
		if b.LeaseAgeMs >= 0 {
			return true
		}
	}
	return false
}

// leaderOf is the address of the metadata leader named by r when r comes
// from another broker (no lease age known), else "".
func leaderOf(r *wire.ClusterInfoResponse) string {
	addr := ""
	for _, b := range r.Brokers {
		if b.LeaseAgeMs >= 0 {
			return "" // answered by the leader
		}
		if b.ID == r.MetaLeader {
			addr = b.Addr
		}
	}
	return addr
}

// clusterInfoOf converts a response: milliseconds become durations, and a
// negative lease age (unknown) becomes -1.
func clusterInfoOf(r *wire.ClusterInfoResponse) ClusterInfo {
	ci := ClusterInfo{
		ClusterID: r.ClusterID, MetaLeader: r.MetaLeader, MetaTerm: r.MetaTerm,
		MetaCommit: r.MetaCommit, MetaApplied: r.MetaApplied,
		Voters: append([]string(nil), r.Voters...), Learners: append([]string(nil), r.Learners...),
		Brokers: make([]ClusterBroker, len(r.Brokers)),
	}
	for i, b := range r.Brokers {
		age := time.Duration(-1)
		if b.LeaseAgeMs >= 0 {
			age = time.Duration(min(b.LeaseAgeMs, math.MaxInt64/int64(time.Millisecond))) * time.Millisecond
		}
		ci.Brokers[i] = ClusterBroker{
			ID: b.ID, Addr: b.Addr, Zone: b.Zone, State: b.State, LeaseAge: age, Epoch: b.Epoch,
			Leads: b.Leads, Hosts: b.Hosts, Voter: b.Voter, Applied: b.Applied,
		}
	}
	ci.Moves, ci.Drains = movesOf(r), drainsOf(r)
	return ci
}
