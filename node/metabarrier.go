package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rafka/rafka/node/group"
	"github.com/rafka/rafka/wire"
)

// Reads of the cluster metadata come from this broker's copy, which may
// lag the metadata group by a few entries (a follower applying, a broker
// whose link to the leader is slow). For most answers that is harmless: a
// stale leader is corrected by the partition itself. "This topic does not
// exist" is not: a client that created a topic through one broker and asks
// another must not be told it is missing. Before such an answer the broker
// passes a barrier: it asks the metadata leader for its commit index and
// applies up to it (group.Driver.Barrier).

// metaBarrierTimeout bounds one barrier: two election timeouts, enough
// for a new metadata leader to be elected when the old one is gone.
func (c *cluster) metaBarrierTimeout() time.Duration {
	return 2 * time.Duration(group.DefaultElectionTicks) * c.cfg.RaftTick
}

// barrierRound is one barrier request shared by the callers that joined
// before it started.
type barrierRound struct {
	done chan struct{}
	err  error
}

// metaBarrier coalesces the barriers of concurrent callers: at most one
// round runs at a time, and callers arriving meanwhile share the next one
// (a round started before a caller arrived would not cover the entries
// committed just before its call). However many clients ask about missing
// topics, the metadata leader sees at most one read at a time per broker.
type metaBarrier struct {
	mu      sync.Mutex
	running bool
	next    *barrierRound // nil when nobody waits for the next round
}

// syncMeta returns once this broker's metadata includes every change
// committed before the call, or a retriable METADATA_UNAVAILABLE when the
// metadata leader cannot be reached in time.
func (c *cluster) syncMeta(ctx context.Context) *wire.Error {
	if e := c.behind(); e != nil {
		return e
	}
	mb := &c.barrier
	mb.mu.Lock()
	r := mb.next
	if r == nil {
		r = &barrierRound{done: make(chan struct{})}
		mb.next = r
	}
	if !mb.running {
		mb.running = true
		go c.runBarriers()
	}
	mb.mu.Unlock()
	select {
	case <-r.done:
	case <-ctx.Done():
		return &wire.Error{Code: wire.ErrMetadataUnavailable, Message: "metadata not confirmed with the leader in time; retry"}
	}
	if r.err != nil {
		return &wire.Error{Code: wire.ErrMetadataUnavailable, Message: fmt.Sprintf("metadata not confirmed with the leader (%v); retry", r.err)}
	}
	return nil
}

// runBarriers runs rounds while callers wait for one.
func (c *cluster) runBarriers() {
	mb := &c.barrier
	for {
		mb.mu.Lock()
		r := mb.next
		mb.next = nil
		if r == nil {
			mb.running = false
			mb.mu.Unlock()
			return
		}
		mb.mu.Unlock()
		ctx, cancel := context.WithTimeout(c.ctx, c.metaBarrierTimeout())
		_, r.err = c.driver.Barrier(ctx, metaGroup)
		cancel()
		if errors.Is(r.err, context.DeadlineExceeded) {
			r.err = errors.New("no answer from the metadata leader")
		}
		close(r.done)
	}
}
