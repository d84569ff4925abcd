package replica

import (
	"context"
	"fmt"
	"os"

	"github.com/rafka/rafka/segment"
)

// A replicated partition's log is written by its raft group, not by
// Append: the broker proposes each batch to the group, every replica's raft
// storage appends the batches it is given (on the leader and on followers
// alike), and the high watermark moves when entries are committed
// (Committed), so readers never see a batch a quorum has not stored. The
// partition then only serves reads and tracks the high watermark; its
// storage owns the log (Close leaves it open).

// OpenOn returns a partition serving reads from log, which its raft
// storage owns. The high watermark starts at the log start and moves with
// Committed as the group applies its committed entries (on a restart, the
// whole committed log is applied again at once).
func OpenOn(cfg Config, log *segment.Log) *Partition {
	p := newPartition(cfg.Topic, cfg.Partition, cfg.Logger)
	p.logp.Store(log)
	p.replicated = true
	p.hwm.Store(log.StartOffset())
	return p
}

// CheckDir is the MustExist check of Open for callers that open the log
// themselves (replicated partitions).
func CheckDir(cfg Config) error {
	if !cfg.MustExist {
		return nil
	}
	if _, err := os.Stat(cfg.Dir); err != nil {
		return fmt.Errorf("replica: open partition %s/%d: its directory is missing (%w); restore it, or delete and recreate the topic", cfg.Topic, cfg.Partition, err)
	}
	return nil
}

// ReplaceLog makes a replicated partition read from l, the log its
// storage started afresh (a snapshot reset it); views of the old one stay
// valid until released.
func (p *Partition) ReplaceLog(l *segment.Log) { p.logp.Store(l) }

// Replicated reports whether the partition's log is written by a raft
// group (OpenOn).
func (p *Partition) Replicated() bool { return p.replicated }

// Committed moves the high watermark to next (the offset after the last
// committed batch) and wakes readers. It never moves it back.
func (p *Partition) Committed(next int64) {
	for {
		cur := p.hwm.Load()
		if next <= cur {
			return
		}
		if p.hwm.CompareAndSwap(cur, next) {
			break
		}
	}
	p.wake()
}

// ReplicatedAck is what an ack of a replicated append waits for: the
// batches' proposals saved on the leader (acks=leader) or committed
// (acks=all); it returns the offsets the batches were given.
type ReplicatedAck interface {
	WaitAck(ctx context.Context) (base, next int64, err error)
}

// ReplicatedWaiter makes an AckWaiter of a replicated append.
func ReplicatedWaiter(a ReplicatedAck) AckWaiter { return AckWaiter{rep: a} }

// Offsets is what a replicated ack learnt when it was waited for: the
// offsets its batches were given.
type Offsets struct {
	Known      bool
	Base, Last int64
}

// WaitOffsets is Wait that also returns the offsets of a replicated append
// (Known false for others: their offsets were known at Append).
func (w AckWaiter) WaitOffsets(ctx context.Context) (Offsets, error) {
	if w.rep == nil {
		return Offsets{}, w.Wait(ctx)
	}
	base, next, err := w.rep.WaitAck(ctx)
	if err != nil {
		return Offsets{}, err
	}
	return Offsets{Known: true, Base: base, Last: next - 1}, nil
}
