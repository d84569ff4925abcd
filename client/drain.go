package client

import (
	"context"
	"time"

	"github.com/rafka/rafka/wire"
)

// DrainState is a broker's drain state as the cluster reports it.
type DrainState struct {
	BrokerID string
	// Mode is wire.DrainStateNone, DrainStateLeadersOnly or DrainStateFull.
	Mode string
	// Hosts counts the partitions the broker still holds (replicas and
	// targets of replica moves).
	Hosts int32
	// Leads counts the partitions it still leads; -1 when it could not be
	// asked (it is down, so it leads nothing).
	Leads int32
	// Moves counts the replica moves in progress that involve it.
	Moves int32
}

// Done reports whether a drain in the state's mode is over: a full drain
// once the broker hosts nothing, a leaders-only one once it leads nothing.
func (s DrainState) Done() bool {
	switch s.Mode {
	case wire.DrainStateFull:
		return s.Hosts == 0
	case wire.DrainStateLeadersOnly:
		return s.Leads == 0
	}
	return true
}

// DrainOption changes what DrainBroker does.
type DrainOption func(*drainOptions)

type drainOptions struct {
	req      wire.DrainBrokerRequest
	wait     bool
	interval time.Duration
}

// DrainLeadersOnly drains leaderships only: the broker keeps its replicas
// (default: a full drain, which also moves its replicas to other brokers).
func DrainLeadersOnly() DrainOption {
	return func(o *drainOptions) { o.req.Mode = wire.DrainLeadersOnly }
}

// DrainWait makes DrainBroker return only once the drain is over
// (DrainState.Done) or ctx ends (default: return once the mark is
// committed). It asks again every interval (0: 500 ms).
func DrainWait(interval time.Duration) DrainOption {
	return func(o *drainOptions) { o.wait, o.interval = true, interval }
}

// Undrain clears the broker's drain mark instead of setting one: it takes
// replicas and leaderships again as placement says.
func Undrain() DrainOption {
	return func(o *drainOptions) { o.req.Undrain = true }
}

// DrainBroker marks broker id draining (full by default; see the options)
// through any broker and returns its state once the mark is committed to
// the cluster metadata. See docs/replication.md, "Moves and drains".
func (c *Client) DrainBroker(ctx context.Context, id string, opts ...DrainOption) (DrainState, error) {
	o := drainOptions{req: wire.DrainBrokerRequest{BrokerID: id, Mode: wire.DrainFull}, interval: 500 * time.Millisecond}
	for _, f := range opts {
		f(&o)
	}
	if o.interval <= 0 {
		o.interval = 500 * time.Millisecond
	}
	errOf := func(r *wire.DrainBrokerResponse) error { return wire.AsError(r.Error, r.Message) }
	for {
		resp, err := controlCall(ctx, c, wire.APIDrainBroker, &o.req, c.anyBroker, "", errOf)
		if err != nil {
			return DrainState{}, opError("drain broker", err)
		}
		st := DrainState{BrokerID: resp.BrokerID, Mode: resp.Mode, Hosts: resp.Hosts, Leads: resp.Leads, Moves: resp.Moves}
		if !o.wait || st.Done() {
			return st, nil
		}
		if err := sleepCtx(ctx, o.interval); err != nil {
			return st, opError("drain broker", err)
		}
	}
}

// ReplicaMove is a replica move in progress: partition Topic/Partition
// gets a replica on To in place of From, the log coming from Source (its
// leader when the move began).
type ReplicaMove struct {
	Topic     string
	Partition int32
	From, To  string
	Source    string
}

// BrokerDrain is a broker being drained, with its mode
// (wire.DrainStateLeadersOnly or DrainStateFull).
type BrokerDrain struct {
	ID   string
	Mode string
}

func movesOf(r *wire.ClusterInfoResponse) []ReplicaMove {
	var out []ReplicaMove
	for _, m := range r.Moves {
		out = append(out, ReplicaMove{Topic: m.Topic, Partition: m.Partition, From: m.From, To: m.To, Source: m.Source})
	}
	return out
}

func drainsOf(r *wire.ClusterInfoResponse) []BrokerDrain {
	var out []BrokerDrain
	for _, d := range r.Drains {
		out = append(out, BrokerDrain{ID: d.ID, Mode: d.Mode})
	}
	return out
}
