package node

import (
	"time"

	"github.com/rafka/rafka/wire"
)

// maxReadChunk caps the bytes of one fetch or subscribe data frame.
const maxReadChunk = 1 << 20

// handleFetch serves whole batches from the partition, waiting up to
// MaxWaitMs (capped by Config.MaxFetchWait) when the offset is at the high
// watermark and MinBytes > 0. MinBytes is honoured as "at least one batch".
func (st *stream) handleFetch(f *wire.Frame, r *response) {
	var req wire.FetchRequest
	if !st.decode(f, r, &req) {
		return
	}
	hdr := &wire.FetchResponse{HighWatermark: -1, LogStartOffset: -1}
	r.hdr = hdr
	p, e := st.b.lookup(req.Topic, req.Partition)
	if e != nil {
		hdr.Error, hdr.Message = e.Code, e.Message
		st.send(r)
		return
	}
	if req.MinBytes > 0 && req.MaxWaitMs > 0 && req.Offset == p.HighWatermark() {
		st.awaitData(p, req.Offset, min(time.Duration(req.MaxWaitMs)*time.Millisecond, st.b.cfg.MaxFetchWait))
	}
	maxBytes := int(req.MaxBytes)
	if maxBytes <= 0 || maxBytes > maxReadChunk {
		maxBytes = maxReadChunk
	}
	res, err := p.ReadCharged(req.Offset, maxBytes, st.budget)
	hdr.HighWatermark, hdr.LogStartOffset = p.HighWatermark(), p.LogStartOffset()
	if err != nil {
		hdr.Error, hdr.Message = errorCode(err), err.Error()
	}
	r.data, r.topic = newReadResult(res), req.Topic
	st.send(r)
}

// awaitData blocks until the partition's high watermark passes offset, the
// wait elapses, the partition closes or the stream ends.
func (st *stream) awaitData(p *partition, offset int64, wait time.Duration) {
	ch := make(chan struct{}, 1)
	p.Watch(ch)
	defer p.Unwatch(ch)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for p.HighWatermark() <= offset && !p.Closed() {
		select {
		case <-ch:
		case <-timer.C:
			return
		case <-st.ctx.Done():
			return
		}
	}
}
