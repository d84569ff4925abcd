package client

import (
	"context"

	"github.com/rafka/rafka/wire"
)

// PartitionCheck is the comparison of one partition's replicas by its
// leader (docs/replication.md, "Consistency checks").
type PartitionCheck struct {
	Partition int32
	// Leader is the broker that compared (with ErrNotLeader in Err, the
	// leader when known).
	Leader string
	// From and To bound the offsets compared: the committed range every
	// replica that answered holds. To <= From: nothing to compare yet.
	From, To int64
	// Replicas holds one result per replica, the leader first (the
	// reference).
	Replicas []ReplicaCheck
	// Err is set when the partition could not be checked at all (no
	// leader now, offline); errors.Is matches it on the code.
	Err error
}

// ReplicaCheck is one replica's comparison with the leader.
type ReplicaCheck struct {
	Broker string
	// Ranges is how many ranges were compared (one per segment of the
	// leader's log), Divergent how many differ from the leader's.
	Ranges, Divergent int32
	// FirstFrom and FirstTo are the first divergent range [FirstFrom,
	// FirstTo); -1 and -1 when none.
	FirstFrom, FirstTo int64
	// Bytes is the size of the leader's batches in the ranges compared.
	Bytes int64
	// Err is set when the replica could not be compared (unreachable), or
	// when a batch failed its checksum on its disk (ErrCorruptMessage).
	Err error
}

// Consistent reports whether the check found every replica identical to
// the leader, with no error.
func (p *PartitionCheck) Consistent() bool {
	if p.Err != nil {
		return false
	}
	for _, r := range p.Replicas {
		if r.Err != nil || r.Divergent > 0 {
			return false
		}
	}
	return true
}

// Verify asks the brokers to compare the replicas of a topic's partitions
// (all of them when partitions is empty) now, and returns one check per
// partition, in the order asked for. Any broker takes the request and
// passes each partition on to its leader, which reads the committed log of
// every replica (paced: see the brokers' Config.VerifyBytesPerSecond), so
// the call takes about as long as reading the largest partition's log at
// that rate: bound it with ctx and the client's control timeout
// (WithControlTimeout). A partition that could not be checked for a
// retriable reason (no leader yet: an election in progress) is asked again
// after a pause, as control requests are (WithControlRetries,
// WithControlBackoff).
// The error is the request's (an unknown topic, no broker answering);
// per-partition and per-replica failures are in the checks.
func (c *Client) Verify(ctx context.Context, topic string, partitions ...int32) ([]PartitionCheck, error) {
	out, err := c.verify(ctx, topic, partitions)
	if err != nil {
		return nil, err
	}
	for attempt := 0; attempt < c.cfg.retries; attempt++ {
		var again []int32
		for _, pc := range out {
			if pc.Err != nil && retriable(pc.Err) {
				again = append(again, pc.Partition)
			}
		}
		if len(again) == 0 || sleepCtx(ctx, backoff(attempt, c.cfg.backoffBase, c.cfg.backoffMax)) != nil {
			break
		}
		c.log.Debug("verify: partitions not checked, asking again", "topic", topic, "partitions", again, "attempt", attempt)
		checks, err := c.verify(ctx, topic, again)
		if err != nil {
			break // keep what the first answers said
		}
		for _, pc := range checks {
			for i := range out {
				if out[i].Partition == pc.Partition {
					out[i] = pc
				}
			}
		}
	}
	return out, nil
}

// verify is one Verify request.
func (c *Client) verify(ctx context.Context, topic string, partitions []int32) ([]PartitionCheck, error) {
	req := &wire.VerifyRequest{Topic: topic, Partitions: partitions}
	resp, err := controlCall(ctx, c, wire.APIVerify, req, c.anyBroker, "", (*wire.VerifyResponse).Err)
	if err != nil {
		return nil, opError("verify "+topic, err)
	}
	out := make([]PartitionCheck, 0, len(resp.Partitions))
	for _, p := range resp.Partitions {
		pc := PartitionCheck{Partition: p.Partition, Leader: p.Leader, From: p.From, To: p.To, Err: wire.AsError(p.Error, p.Message)}
		for _, r := range p.Replicas {
			pc.Replicas = append(pc.Replicas, ReplicaCheck{Broker: r.Broker, Ranges: r.Ranges, Divergent: r.Divergent,
				FirstFrom: r.FirstFrom, FirstTo: r.FirstTo, Bytes: r.Bytes, Err: wire.AsError(r.Error, r.Message)})
		}
		out = append(out, pc)
	}
	return out, nil
}
