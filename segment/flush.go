package segment

import (
	"math"
	"time"
)

// Flushing rolled segments. Under FsyncAlways a roll fsyncs the old segment
// before the new one exists, as appends are fsynced before they are
// acknowledged anyway. Under never and interval, waiting for that fsync (a
// whole segment's dirty pages) stalled appends for as long as the disk took
// to write it, so a roll only queues the old segment, with a reference, and
// appends go on in the new one at once. The flusher goroutine, owned by the
// Log from Open to Close, fsyncs queued segments oldest first and then
// advances the clean marker (clean.go) to the end of the newest one flushed.
//
// Flushes take syncMu, like fsync rounds: syncOnce flushes every queued
// segment older than the active one before it fsyncs the active one, so that
// durable (and Sync) still covers everything below it. Segments are queued in
// offset order and popped only by a syncMu holder, so flushedTo only grows and
// never passes an unflushed segment.
//
// A crash can therefore leave any number of trailing segments unflushed,
// which is why Open verifies every segment that ends after the clean offset.
// The queue is bounded: a roll that finds maxPendingFlushes segments waiting
// fsyncs its own old segment inline, which slows appends to the disk's pace.

// maxPendingFlushes bounds the rolled segments waiting for the flusher.
const maxPendingFlushes = 8

// pendingFlush is a rolled segment waiting in the queue; synced says the roll
// fsynced it already, so only the clean marker waits for it.
type pendingFlush struct {
	s      *segment
	synced bool
}

func (l *Log) pendingFlushes() int {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	return len(l.unflushed)
}

// syncData fsyncs s's .log file and reports the duration to OnSync.
func (l *Log) syncData(s *segment) error {
	t0 := time.Now()
	err := s.logF.Sync()
	if fn := l.onSync.Load(); fn != nil && *fn != nil {
		(*fn)(time.Since(t0))
	}
	if err != nil {
		return ioError("fsync", s.logName, err)
	}
	return nil
}

// syncSegment fsyncs a rolled segment: its .log file, then its index files
// (whose failures are only reported: recovery rebuilds indexes).
func (l *Log) syncSegment(s *segment) error {
	if err := l.syncData(s); err != nil {
		return err
	}
	for _, f := range []struct {
		f    File
		name string
	}{{s.idxF, s.idxName}, {s.tixF, s.tixName}} {
		if err := f.f.Sync(); err != nil {
			l.warn("index fsync failed; it will be rebuilt on open", ioError("fsync", f.name, err))
		}
	}
	return nil
}

// flushRolledLocked fsyncs the queued segments whose base offset is below
// upTo, oldest first, and advances flushedTo past each. syncMu must be held.
// It reports whether flushedTo moved. A failed fsync is sticky (see fail) and
// leaves the segment queued; Close releases it.
func (l *Log) flushRolledLocked(upTo int64) (bool, error) {
	moved := false
	for {
		if err := l.stickyErr(); err != nil {
			return moved, err
		}
		l.flushMu.Lock()
		if len(l.unflushed) == 0 || l.unflushed[0].s.base >= upTo {
			l.flushMu.Unlock()
			return moved, nil
		}
		p := l.unflushed[0]
		l.flushMu.Unlock()
		if !p.synced && !p.s.dropped.Load() {
			if err := l.syncSegment(p.s); err != nil {
				return moved, l.fail(err)
			}
		}
		l.flushMu.Lock()
		l.unflushed[0] = pendingFlush{}
		l.unflushed = l.unflushed[1:]
		l.flushedTo = max(l.flushedTo, p.s.next.Load())
		l.flushMu.Unlock()
		p.s.release()
		moved = true
	}
}

// flusher is the goroutine that flushes rolled segments; see above.
func (l *Log) flusher(stop chan struct{}) {
	defer l.flushWG.Done()
	for {
		select {
		case <-stop:
			return
		case <-l.flushKick:
		}
		l.syncMu.Lock()
		_, err := l.flushRolledLocked(math.MaxInt64)
		l.syncMu.Unlock()
		if err != nil {
			continue // sticky; logged by fail
		}
		// flushedTo is read under cleanMu so that a TruncateFrom that lowered
		// it (and the marker) meanwhile is never undone with a stale value.
		l.cleanMu.Lock()
		l.flushMu.Lock()
		to := l.flushedTo
		l.flushMu.Unlock()
		l.advanceCleanLocked(to)
		l.cleanMu.Unlock()
	}
}

// advanceClean records off as the clean offset if it is beyond the current
// one (Close, once the flusher is gone).
func (l *Log) advanceClean(off int64) {
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	l.advanceCleanLocked(off)
}

// advanceCleanLocked records off as the clean offset if it is beyond the
// current one; cleanMu is held. A failure is reported and leaves the older
// marker, which is safe: Open then verifies more.
func (l *Log) advanceCleanLocked(off int64) {
	if off <= l.cleanAt {
		return
	}
	if err := writeClean(l.fs, l.dir, off); err != nil {
		l.warn("cannot update the clean marker", err)
		return
	}
	l.cleanAt = off
}

// releaseUnflushed drops the queue's references, after a failed fsync left
// segments in it; called by Close.
func (l *Log) releaseUnflushed() {
	l.flushMu.Lock()
	q := l.unflushed
	l.unflushed = nil
	l.flushMu.Unlock()
	for _, p := range q {
		p.s.release()
	}
}
