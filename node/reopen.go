package node

import (
	"time"
)

// Failed partition groups. A raft group fails alone (group.ErrGroupFailed):
// raft panicked on its state, or its storage failed. The broker and its
// other partitions go on. The reconcile loop then closes the failed
// partition and opens it again from its storage, after a pause that
// doubles with each failure of the same partition (reopenBase up to
// reopenMax): a passing cause (a message from a peer with a stale view, a
// disk full that was freed) heals by itself, and a lasting one costs a
// log line per reopenMax.
const (
	reopenBase = time.Second
	reopenMax  = time.Minute
)

// reopenDelay is the pause before reopening a partition that failed after
// reopens earlier reopens.
func reopenDelay(reopens int32) time.Duration {
	if reopens >= 6 { // 2^6 s is past reopenMax
		return reopenMax
	}
	return min(reopenBase<<reopens, reopenMax)
}

// groupFailed runs on the raft driver's goroutine when group g failed: it
// marks the partition and wakes the reconcile loop once its pause is over.
func (b *Broker) groupFailed(g uint64, err error) {
	for name, t := range b.topics() {
		for i, rp := range t.rafts {
			if rp == nil || rp.group != g {
				continue
			}
			delay := reopenDelay(rp.reopens.Load())
			rp.failedAt.Store(time.Now().UnixNano())
			b.log.Error("partition raft group failed; reopening it from its log", "topic", name, "partition", i,
				"in", delay, "reopens", rp.reopens.Load(), "err", err)
			time.AfterFunc(delay, b.cluster.notify)
			return
		}
	}
}

// reopenDue reports whether rp failed and its pause is over.
func (rp *raftPart) reopenDue(now time.Time) bool {
	at := rp.failedAt.Load()
	return at != 0 && now.Sub(time.Unix(0, at)) >= reopenDelay(rp.reopens.Load())
}
