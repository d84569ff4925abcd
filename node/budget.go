package node

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/quic-go/quic-go"
)

// Memory held in frames being received is bounded twice: per connection
// (Config.MaxConnFrameMemory) and for the whole broker
// (Config.MaxFrameMemory). Without it a peer could open its allowed streams
// and announce a maximum-size frame on each, making the broker allocate
// MaxIncomingStreams x MaxFrameBytes per connection while sending almost
// nothing. A frame is charged from the moment its length is known, before
// its buffer is allocated, until the stream moves on to the next frame or
// ends; a frame that does not fit is refused without allocating (the stream
// gets THROTTLED and is closed) and nothing blocks.

// errFrameBudget is the read error of a stream whose next frame does not fit
// in the memory budget.
var errFrameBudget = errors.New("node: frame memory budget exhausted")

// frameBudget is the broker-wide budget and the registry of per-connection
// budgets.
type frameBudget struct {
	limit     int64 // broker-wide, bytes
	connLimit int64 // per connection, bytes
	used      atomic.Int64
	peak      atomic.Int64 // highest used ever seen
	rejected  atomic.Int64 // frames refused

	// mu guards conns; an entry lives while streams of its connection run.
	mu    sync.Mutex
	conns map[*quic.Conn]*connBudget
}

// connBudget charges one connection's frames; it satisfies the frame reader's
// budget interface (Acquire must not block, Release returns a charge).
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
// nothing and returns an error wrapping errFrameBudget.
func (cb *connBudget) Acquire(n int) error {
	if n <= 0 {
		return nil
	}
	fb := cb.fb
	if u := cb.used.Add(int64(n)); u > fb.connLimit {
		cb.used.Add(-int64(n))
		fb.rejected.Add(1)
		return fmt.Errorf("%w: a %d-byte frame does not fit in the connection's %d bytes (%d in use)", errFrameBudget, n, fb.connLimit, u-int64(n))
	}
	u := fb.used.Add(int64(n))
	if u > fb.limit {
		fb.used.Add(-int64(n))
		cb.used.Add(-int64(n))
		fb.rejected.Add(1)
		return fmt.Errorf("%w: a %d-byte frame does not fit in the broker's %d bytes (%d in use)", errFrameBudget, n, fb.limit, u-int64(n))
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

// budgetReader sits between a stream and its wire.FrameReader and charges
// each frame to a budget: it reads the 4-byte length prefix ahead, acquires
// that many bytes before handing the prefix on (so the frame reader never
// allocates a buffer the budget refused), passes the body through, and
// releases the charge when the next frame starts or the reader is closed.
// It relies on the frame reader consuming a frame whole before reading the
// next length, which it does.
type budgetReader struct {
	r      io.Reader
	budget *connBudget
	max    int // frames over this are not charged: the frame reader refuses them unread

	lenBuf  [4]byte
	have    int   // bytes of lenBuf read from r
	pending int   // bytes of lenBuf not yet handed on
	body    int64 // body bytes of the current frame still to pass through
	held    int   // bytes charged for the current frame
}

func newBudgetReader(r io.Reader, b *connBudget, maxFrame int) *budgetReader {
	return &budgetReader{r: r, budget: b, max: maxFrame}
}

func (br *budgetReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if br.pending > 0 {
		n := copy(p, br.lenBuf[len(br.lenBuf)-br.pending:])
		br.pending -= n
		return n, nil
	}
	if br.body > 0 {
		if int64(len(p)) > br.body {
			p = p[:br.body]
		}
		n, err := br.r.Read(p)
		br.body -= int64(n)
		return n, err
	}
	// A frame boundary: the previous frame is done with.
	br.budget.Release(br.held)
	br.held = 0
	for br.have < len(br.lenBuf) {
		n, err := br.r.Read(br.lenBuf[br.have:])
		br.have += n
		if err != nil {
			if br.have == 0 {
				return 0, err
			}
			// Cut inside the length: hand on what came so the frame
			// reader reports a short frame.
			n := copy(p, br.lenBuf[:br.have])
			br.have = 0
			return n, err
		}
	}
	br.have = 0
	length := binary.LittleEndian.Uint32(br.lenBuf[:])
	if uint64(length)+uint64(len(br.lenBuf)) <= uint64(br.max) {
		if err := br.budget.Acquire(int(length)); err != nil {
			return 0, err
		}
		br.held = int(length)
	}
	br.body = int64(length)
	br.pending = len(br.lenBuf)
	n := copy(p, br.lenBuf[:])
	br.pending -= n
	return n, nil
}

// close releases the current frame's charge; it is idempotent.
func (br *budgetReader) close() {
	br.budget.Release(br.held)
	br.held = 0
}
