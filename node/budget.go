package node

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/quic-go/quic-go"

	"github.com/rafka/rafka/wire"
)

// Memory held in frames being received is bounded twice: per connection
// (Config.MaxConnFrameMemory) and for the whole broker
// (Config.MaxFrameMemory). Without it a peer could open its allowed streams
// and announce a maximum-size frame on each, making the broker allocate
// MaxIncomingStreams x MaxFrameBytes per connection while sending almost
// nothing. A frame that does not fit is refused (the stream gets THROTTLED and
// is closed) and nothing blocks.
//
// The charging itself is wire.FrameReader's (SetBudget): it charges a
// frame's buffer as its bytes arrive, so announcing a large frame costs
// nothing until the bytes come, and releases it when the stream moves on.
//
// The same budget covers what is queued the other way: a fetch or a
// subscription served from the hotstore ring copies batches to the heap
// until the writer has sent them, and a client that stops reading would
// otherwise make 64 such copies per stream pile up. Those copies are
// charged (replica.Partition.ReadCharged); past the budget, reads are
// zero-copy views of the segment instead, so nothing is refused.

// frameBudget is the broker-wide budget and the registry of per-connection
// budgets.
type frameBudget struct {
	limit     int64 // broker-wide, bytes
	connLimit int64 // per connection, bytes
	used      atomic.Int64
	peak      atomic.Int64 // highest used ever seen

	// mu guards conns; an entry lives while streams of its connection run.
	mu    sync.Mutex
	conns map[*quic.Conn]*connBudget
}

// connBudget charges one connection's frames; it is the wire.FrameBudget of
// its streams' frame readers.
type connBudget struct {
	fb   *frameBudget
	used atomic.Int64
	refs int // streams using it; guarded by fb.mu
}

func newFrameBudget(limit, connLimit int64) *frameBudget {
	return &frameBudget{limit: limit, connLimit: connLimit, conns: make(map[*quic.Conn]*connBudget)}
}

// forConn returns conn's budget, counting one more stream on it; every call
// is paired with done.
func (fb *frameBudget) forConn(conn *quic.Conn) *connBudget {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	cb := fb.conns[conn]
	if cb == nil {
		cb = &connBudget{fb: fb}
		fb.conns[conn] = cb
	}
	cb.refs++
	return cb
}

func (fb *frameBudget) done(conn *quic.Conn) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	cb := fb.conns[conn]
	if cb.refs--; cb.refs == 0 {
		delete(fb.conns, conn)
	}
}

// Acquire charges n bytes to the connection and the broker, or charges
// nothing and returns an error wrapping wire.ErrFrameBudget.
func (cb *connBudget) Acquire(n int) error {
	if n <= 0 {
		return nil
	}
	fb := cb.fb
	if u := cb.used.Add(int64(n)); u > fb.connLimit {
		cb.used.Add(-int64(n))
		return fmt.Errorf("%w: a %d-byte frame does not fit in the connection's %d bytes (%d in use)", wire.ErrFrameBudget, n, fb.connLimit, u-int64(n))
	}
	u := fb.used.Add(int64(n))
	if u > fb.limit {
		fb.used.Add(-int64(n))
		cb.used.Add(-int64(n))
		return fmt.Errorf("%w: a %d-byte frame does not fit in the broker's %d bytes (%d in use)", wire.ErrFrameBudget, n, fb.limit, u-int64(n))
	}
	for p := fb.peak.Load(); u > p && !fb.peak.CompareAndSwap(p, u); p = fb.peak.Load() {
	}
	return nil
}

// Release returns n bytes charged by Acquire.
func (cb *connBudget) Release(n int) {
	if n <= 0 {
		return
	}
	cb.used.Add(-int64(n))
	cb.fb.used.Add(-int64(n))
}

var _ wire.FrameBudget = (*connBudget)(nil)
