package node

import (
	"fmt"
	"sync/atomic"

	"github.com/rafka/rafka/wire"
)

// maxSubscribePartitions bounds one subscription.
const maxSubscribePartitions = 10000

// subscription is the push side of a subscribe stream. The stream's reader
// goroutine keeps reading credit frames; the pusher goroutine sends data.
//
// Credit flow: the pusher sends while credit > 0 and subtracts each data
// frame's payload, so credit goes negative by at most one frame (at most
// maxReadChunk, or one batch when a batch is larger). The consumer tops it
// up with SubscribeCredit frames.
type subscription struct {
	st     *stream
	parts  []subPartition
	credit atomic.Int64
	wake   chan struct{} // cap 1: appends on any partition, credit grants
	stop   chan struct{} // closed when the reader ends
	corr   uint32        // the subscribe request's correlation id, repeated on data frames
}

type subPartition struct {
	p      *partition
	topic  string
	id     int32
	offset int64 // next offset to push
	done   bool  // an error ended this partition's part
}

func (st *stream) handleSubscribe(f *wire.Frame, r *response) {
	var req wire.SubscribeRequest
	if !st.decode(f, r, &req) {
		return
	}
	resp := &wire.SubscribeResponse{}
	r.hdr = resp
	switch {
	case len(req.Partitions) == 0 || len(req.Partitions) > maxSubscribePartitions:
		resp.Error, resp.Message = wire.ErrInvalidRequest, fmt.Sprintf("subscribe to 1-%d partitions, not %d", maxSubscribePartitions, len(req.Partitions))
	case req.Credit < 0:
		resp.Error, resp.Message = wire.ErrInvalidRequest, fmt.Sprintf("negative credit %d", req.Credit)
	}
	if resp.Error != wire.ErrNone {
		st.send(r)
		return
	}
	sub := &subscription{st: st, wake: make(chan struct{}, 1), stop: make(chan struct{}), corr: f.Corr}
	sub.credit.Store(req.Credit)
	seen := make(map[subKey]bool, len(req.Partitions))
	live := 0
	for _, sp := range req.Partitions {
		res := sub.add(sp, seen)
		if res.Error == wire.ErrNone {
			live++
		}
		resp.Partitions = append(resp.Partitions, res)
	}
	st.send(r)
	if live == 0 {
		return
	}
	for _, sp := range sub.parts {
		sp.p.Watch(sub.wake)
	}
	pusherDone := make(chan struct{})
	go func() {
		defer close(pusherDone)
		st.guard(panicPusher, sub.push)
	}()
	defer func() { // also when readCredit panics (see stream.guard)
		close(sub.stop)
		<-pusherDone
		for _, sp := range sub.parts {
			sp.p.Unwatch(sub.wake)
		}
	}()
	sub.readCredit()
}

type subKey struct {
	topic string
	id    int32
}

// add resolves one requested partition and its start offset.
func (sub *subscription) add(sp wire.SubscribePartition, seen map[subKey]bool) wire.SubscribePartitionResult {
	k := subKey{sp.Topic, sp.Partition}
	if seen[k] {
		return wire.SubscribePartitionResult{Error: wire.ErrInvalidRequest, Message: fmt.Sprintf("%s/%d listed twice", sp.Topic, sp.Partition), Offset: -1}
	}
	seen[k] = true
	p, e := sub.st.b.lookup(sp.Topic, sp.Partition)
	if e != nil {
		return wire.SubscribePartitionResult{Error: e.Code, Message: e.Message, Offset: -1}
	}
	off, start, hwm := sp.Offset, p.LogStartOffset(), p.HighWatermark()
	switch {
	case off == wire.OffsetLatest:
		off = hwm
	case off == wire.OffsetEarliest:
		off = start
	case off < start || off > hwm:
		return wire.SubscribePartitionResult{Error: wire.ErrOffsetOutOfRange,
			Message: fmt.Sprintf("offset %d outside [%d, %d]", off, start, hwm), Offset: -1}
	}
	sub.parts = append(sub.parts, subPartition{p: p, topic: sp.Topic, id: sp.Partition, offset: off})
	return wire.SubscribePartitionResult{Offset: off}
}

// readCredit reads the consumer's frames until the stream ends.
func (sub *subscription) readCredit() {
	st := sub.st
	for {
		f, ok := st.next()
		if !ok {
			return
		}
		if f.API != wire.APISubscribeCredit {
			st.send(&response{fh: f.FrameHeader, hdr: &wire.ErrorResponse{Error: wire.ErrInvalidRequest,
				Message: "only subscribe_credit frames are accepted on a subscribe stream"}})
			continue
		}
		var c wire.SubscribeCredit
		if err := st.fr.DecodeHeader(&f, &c); err != nil || c.Bytes <= 0 {
			msg := fmt.Sprintf("credit must be positive, got %d", c.Bytes)
			if err != nil {
				msg = err.Error()
			}
			st.send(&response{fh: f.FrameHeader, hdr: &wire.ErrorResponse{Error: wire.ErrInvalidRequest, Message: msg}})
			continue
		}
		sub.credit.Add(c.Bytes)
		select {
		case sub.wake <- struct{}{}:
		default:
		}
	}
}

// push sends committed batches while there is credit, round-robin over the
// partitions, and sleeps on the wake channel when there is nothing to send.
func (sub *subscription) push() {
	st := sub.st
	for {
		if st.ctx.Err() != nil {
			sub.endIfShuttingDown()
			return
		}
		sent, live := false, false
		for i := range sub.parts {
			sp := &sub.parts[i]
			if sp.done {
				continue
			}
			live = true
			credit := sub.credit.Load()
			if credit <= 0 {
				break
			}
			if sp.offset >= sp.p.HighWatermark() && !sp.p.Closed() {
				continue
			}
			sent = sub.pushOne(sp, int(min(credit, maxReadChunk))) || sent
		}
		if !live {
			return
		}
		if sent {
			continue
		}
		select {
		case <-sub.wake:
		case <-sub.stop:
			sub.endIfShuttingDown()
			return
		case <-st.ctx.Done():
		}
	}
}

// pushOne queues one data frame for sp; it reports whether it sent anything.
func (sub *subscription) pushOne(sp *subPartition, maxBytes int) bool {
	// The client verifies each batch's checksum and reports a damaged one
	// in its place (client.CorruptBatchError): hashing it here too would
	// double the hashing of every byte consumed.
	res, err := sp.p.ReadChargedUnverified(sp.offset, maxBytes, sub.st.budget)
	hdr := &wire.SubscribeData{Topic: sp.topic, Partition: sp.id, HighWatermark: sp.p.HighWatermark()}
	r := &response{fh: wire.FrameHeader{API: wire.APISubscribeData, Corr: sub.corr}, hdr: hdr}
	if err != nil {
		hdr.Error, hdr.Message = errorCode(err), err.Error()
		sp.done = true
		sub.st.send(r)
		return true
	}
	if len(res.Data) == 0 {
		res.Release()
		return false
	}
	r.data = newReadResult(res)
	sp.offset = res.Next
	sub.credit.Add(-int64(len(res.Data)))
	sub.st.send(r)
	return true
}
