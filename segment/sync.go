package segment

import (
	"context"
	"fmt"
	"time"
)

// Group commit (FsyncAlways) uses a single syncer goroutine owned by the Log.
// A waiter joins the pending round (creating it if there is none) and kicks
// the syncer. The syncer takes the pending round, making later waiters start
// a new one, and runs syncOnce, which reads NextOffset only after that: the
// fsync covers every append that completed before its waiters joined, and all
// of them share it. While one fsync runs, the next round gathers waiters, so
// under load there is one fsync in flight and one round forming.

// startGoroutines starts what the policy needs; called with lifeMu held (or
// from Open).
func (l *Log) startGoroutines(p FsyncPolicy) {
	l.stop = make(chan struct{})
	switch p.Mode {
	case FsyncAlways:
		l.gcMu.Lock()
		l.syncerOn = true
		l.gcMu.Unlock()
		l.wg.Add(1)
		go l.syncer(l.stop)
	case FsyncInterval:
		l.wg.Add(1)
		go l.intervalSyncer(l.stop, p.Interval)
	}
}

// stopGoroutines stops the fsync goroutines, waits for them, and settles a
// round that waiters joined but no syncer will run.
func (l *Log) stopGoroutines() {
	close(l.stop)
	l.wg.Wait()
	l.gcMu.Lock()
	l.syncerOn = false
	r := l.pending
	l.pending = nil
	l.gcMu.Unlock()
	if r != nil {
		r.err = l.syncOnce()
		close(r.done)
	}
}

func (l *Log) syncer(stop chan struct{}) {
	defer l.wg.Done()
	for {
		select {
		case <-stop:
			return
		case <-l.kick:
		}
		l.gcMu.Lock()
		r := l.pending
		l.pending = nil
		l.gcMu.Unlock()
		if r == nil {
			continue
		}
		r.err = l.syncOnce()
		close(r.done)
	}
}

func (l *Log) intervalSyncer(stop chan struct{}, every time.Duration) {
	defer l.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if err := l.syncOnce(); err != nil {
			return // sticky; logged by fail
		}
	}
}

// syncOnce fsyncs the active segment if anything was appended since the last
// fsync, and advances durable to the NextOffset read before it started.
// Rolled segments older than that active segment whose background fsync is
// still pending are fsynced first (flush.go); earlier ones were fsynced
// already.
func (l *Log) syncOnce() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if err := l.stickyErr(); err != nil {
		return err
	}
	l.mu.Lock()
	target := l.next.Load()
	s := l.active
	if !s.acquire() {
		l.mu.Unlock()
		return ErrClosed
	}
	l.mu.Unlock()
	defer s.release()
	moved, err := l.flushRolledLocked(s.base)
	if moved { // let the flusher advance the clean marker
		select {
		case l.flushKick <- struct{}{}:
		default:
		}
	}
	if err != nil {
		return err
	}
	if target <= l.durable.Load() {
		return nil
	}
	if err := l.syncData(s); err != nil {
		return l.fail(err)
	}
	l.durable.Store(target)
	return nil
}

// Sync fsyncs everything appended so far, under any policy.
func (l *Log) Sync() error {
	if l.isClosed.Load() {
		return ErrClosed
	}
	return l.syncOnce()
}

// WaitDurable returns once every offset below next is fsynced, under
// FsyncAlways; concurrent callers share fsyncs (group commit, see above).
// Under the other policies it returns at once. It returns the sticky
// ErrSyncFailed if an fsync failed (a failed fsync is never acknowledged),
// ErrClosed if the log closed before the data was durable, or the context's
// error.
func (l *Log) WaitDurable(ctx context.Context, next int64) error {
	next = min(next, l.next.Load())
	for range 16 {
		if err := l.stickyErr(); err != nil {
			return err
		}
		if FsyncMode(l.mode.Load()) != FsyncAlways || l.durable.Load() >= next {
			return nil
		}
		if l.isClosed.Load() {
			return ErrClosed
		}
		l.gcMu.Lock()
		if !l.syncerOn { // policy being changed: sync inline
			l.gcMu.Unlock()
			if err := l.syncOnce(); err != nil {
				return err
			}
			continue
		}
		r := l.pending
		if r == nil {
			r = &round{done: make(chan struct{})}
			l.pending = r
		}
		l.gcMu.Unlock()
		select {
		case l.kick <- struct{}{}:
		default:
		}
		select {
		case <-r.done:
		case <-ctx.Done():
			return fmt.Errorf("segment: waiting for fsync: %w", context.Cause(ctx))
		}
		if r.err != nil {
			return r.err
		}
	}
	return fmt.Errorf("segment: offset %d not durable after 16 fsync rounds", next)
}

// AppendSync is Append followed by WaitDurable for the appended batches.
// Its result carries no Spans (use AppendSpans and WaitDurable for them).
func (l *Log) AppendSync(ctx context.Context, batches []byte, term uint64) (AppendResult, error) {
	var scratch [8]Span // on the stack: the spans do not leave this call
	r, err := l.AppendSpans(batches, term, scratch[:0])
	res := AppendResult{BaseOffset: r.BaseOffset, LastOffset: r.LastOffset, NextOffset: r.NextOffset}
	if err != nil {
		return res, err
	}
	return res, l.WaitDurable(ctx, res.NextOffset)
}
