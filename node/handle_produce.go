package node

import (
	"fmt"

	"github.com/rafka/rafka/node/replica"
	"github.com/rafka/rafka/wire"
)

// handleProduce appends the request's batches to the partition. The append
// happens before the next frame is read, so batches of one stream keep their
// order; the ack (if any) is held by the writer until the partition's ack
// waiter returns (durable under the topic's fsync policy), letting one fsync
// cover every request appended before it (group commit across requests and
// streams).
func (st *stream) handleProduce(f *wire.Frame, r *response) {
	var req wire.ProduceRequest
	if !st.decode(f, r, &req) {
		return
	}
	res, ack, err := st.produce(&req, f.Payload)
	if req.Acks == wire.AcksNone {
		if err != nil {
			st.b.log.Debug("produce with acks=none failed", "topic", req.Topic, "partition", req.Partition, "err", err)
		}
		code := wire.ErrNone
		if err != nil {
			code = err.Code
		}
		r.api.observe(r.start, code)
		return
	}
	if err != nil {
		r.produce = wire.ProduceResponse{Error: err.Code, Message: err.Message, BaseOffset: -1, LastOffset: -1}
		st.send(r)
		return
	}
	r.produce = wire.ProduceResponse{BaseOffset: res.BaseOffset, LastOffset: res.LastOffset}
	r.ack = ack
	st.send(r)
}

func (st *stream) produce(req *wire.ProduceRequest, payload []byte) (replica.AppendResult, replica.AckWaiter, *wire.Error) {
	switch req.Acks {
	case wire.AcksNone, wire.AcksLeader, wire.AcksAll:
	default:
		return replica.AppendResult{}, replica.AckWaiter{}, &wire.Error{Code: wire.ErrInvalidRequest, Message: fmt.Sprintf("acks %d: want 0, 1 or -1", req.Acks)}
	}
	p, e := st.b.lookup(req.Topic, req.Partition)
	if e != nil {
		return replica.AppendResult{}, replica.AckWaiter{}, e
	}
	if len(payload) == 0 {
		return replica.AppendResult{}, replica.AckWaiter{}, &wire.Error{Code: wire.ErrInvalidRequest, Message: "produce without batches"}
	}
	if p.Replicated() {
		return st.produceReplicated(req, p, payload)
	}
	res, ack, err := p.Append(payload, req.Acks)
	if err != nil {
		return res, ack, &wire.Error{Code: errorCode(err), Message: err.Error()}
	}
	st.b.metrics.topicIn(req.Topic, len(payload), res.LastOffset-res.BaseOffset+1)
	return res, ack, nil
}

// produceReplicated proposes the batches to the partition's raft group,
// on its leader; the offsets come with the ack.
func (st *stream) produceReplicated(req *wire.ProduceRequest, p *partition, payload []byte) (replica.AppendResult, replica.AckWaiter, *wire.Error) {
	b := st.b
	t := b.topics()[req.Topic]
	rp := t.raft(req.Partition)
	if rp == nil || t.partition(req.Partition) != p {
		return replica.AppendResult{}, replica.AckWaiter{}, &wire.Error{Code: wire.ErrNotLeader, Message: "partition is being reopened; retry"}
	}
	if rp.leader.Load() != b.cluster.raftID {
		return replica.AppendResult{}, replica.AckWaiter{}, b.leaderHint(req.Topic, req.Partition, rp)
	}
	ack, records, e := b.proposeBatches(req.Topic, req.Partition, rp, payload, t.cfg.segmentOptions().MaxBatchBytes, req.Acks)
	if e != nil {
		return replica.AppendResult{}, replica.AckWaiter{}, e
	}
	b.metrics.topicIn(req.Topic, len(payload), records)
	return replica.AppendResult{BaseOffset: -1, LastOffset: -1}, ack, nil
}

func unknownPartition(topic string, partition int32) *wire.Error {
	return &wire.Error{Code: wire.ErrUnknownTopicOrPartition, Message: fmt.Sprintf("topic %q partition %d does not exist", topic, partition)}
}
