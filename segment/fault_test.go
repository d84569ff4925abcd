package segment

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

func TestFsyncFailureIsStickyAndNotAcknowledged(t *testing.T) {
	rng := newRand(t)
	dir := t.TempDir()
	ffs := newFaultFS()
	l := mustOpen(t, dir, Options{FS: ffs, SegmentBytes: 1 << 20, Fsync: FsyncPolicy{Mode: FsyncAlways}})
	ok := makeBatch(rng, 1, 100, 1, 1)
	if _, err := l.AppendSync(context.Background(), ok, 1); err != nil {
		t.Fatal(err)
	}
	ffs.set(func(f *faultFS) { f.syncErr = syscall.EIO })
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = l.AppendSync(context.Background(), makeBatch(newRand(t), 1, 50, 1, 1), 1)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, ErrSyncFailed) {
			t.Errorf("appender %d: %v, want ErrSyncFailed", i, err)
		}
	}
	ffs.set(func(f *faultFS) { f.syncErr = nil })
	// Sticky: even with a healthy disk again, no appends until reopened.
	if _, err := l.Append(ok, 1); !errors.Is(err, ErrSyncFailed) {
		t.Fatalf("Append after failed fsync: %v", err)
	}
	if err := l.WaitDurable(context.Background(), l.NextOffset()); !errors.Is(err, ErrSyncFailed) {
		t.Fatalf("WaitDurable after failed fsync: %v", err)
	}
	readAllBatches(t, l) // still readable
	if err := l.Close(); !errors.Is(err, ErrSyncFailed) {
		t.Fatalf("Close: %v", err)
	}
	l = mustOpen(t, dir, Options{FS: ffs, SegmentBytes: 1 << 20, Fsync: FsyncPolicy{Mode: FsyncAlways}})
	defer l.Close()
	if _, err := l.AppendSync(context.Background(), ok, 1); err != nil {
		t.Fatalf("append after reopen: %v", err)
	}
}

func TestGroupCommitSharesFsyncs(t *testing.T) {
	rng := newRand(t)
	ffs := newFaultFS()
	l := mustOpen(t, t.TempDir(), Options{FS: ffs, SegmentBytes: 16 << 20, Fsync: FsyncPolicy{Mode: FsyncAlways}})
	defer l.Close()
	batch := makeBatch(rng, 1, 1000, 1, 1)
	before := ffs.syncs()
	const writers, each = 16, 40
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				b := append([]byte(nil), batch...)
				r, err := l.AppendSync(context.Background(), b, 1)
				if err != nil {
					t.Error(err)
					return
				}
				if l.durable.Load() < r.NextOffset {
					t.Errorf("acknowledged %d before it was durable (%d)", r.NextOffset, l.durable.Load())
				}
			}
		}()
	}
	wg.Wait()
	syncs := ffs.syncs() - before
	if syncs >= writers*each {
		t.Fatalf("%d fsyncs for %d appends: no group commit", syncs, writers*each)
	}
	t.Logf("%d fsyncs for %d appends", syncs, writers*each)
}

func TestWaitDurableHonoursContext(t *testing.T) {
	rng := newRand(t)
	ffs := newFaultFS()
	l := mustOpen(t, t.TempDir(), Options{FS: ffs, Fsync: FsyncPolicy{Mode: FsyncAlways}, SegmentBytes: 1 << 20})
	defer l.Close()
	r := mustAppend(t, l, makeBatch(rng, 1, 10, 1, 1))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Either the fsync won the race or the context did; never a silent ack
	// of data that is not durable.
	err := l.WaitDurable(ctx, r.NextOffset)
	if err == nil && l.durable.Load() < r.NextOffset {
		t.Fatal("WaitDurable returned nil before the data was durable")
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitDurable: %v", err)
	}
}

func TestDiskFull(t *testing.T) {
	rng := newRand(t)
	ffs := newFaultFS()
	l := mustOpen(t, t.TempDir(), Options{FS: ffs, SegmentBytes: 4 << 10})
	defer l.Close()
	for range 3 {
		mustAppend(t, l, makeBatch(rng, 1, 1000, 1, 1))
	}
	next := l.NextOffset()
	// ENOSPC from the write itself, after a short write.
	ffs.set(func(f *faultFS) { f.writeErr, f.shortN = syscall.ENOSPC, 100 })
	if _, err := l.Append(makeBatch(rng, 1, 500, 1, 1), 1); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Append on full disk: %v", err)
	}
	if l.NextOffset() != next {
		t.Fatal("failed append was published")
	}
	readAllBatches(t, l)
	// ENOSPC from fallocate of the next segment at a roll.
	ffs.set(func(f *faultFS) { f.allocErr = syscall.ENOSPC })
	segs := l.Segments()
	if _, err := l.Append(makeBatch(rng, 1, 3000, 1, 1), 1); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("roll on full disk: %v", err)
	}
	if l.Segments() != segs || l.NextOffset() != next {
		t.Fatal("failed roll changed the log")
	}
	readAllBatches(t, l)
	// Space comes back: appends work, and the torn bytes were overwritten.
	ffs.set(func(f *faultFS) { f.allocErr = nil })
	mustAppend(t, l, makeBatch(rng, 1, 3000, 1, 1))
	mustAppend(t, l, makeBatch(rng, 1, 100, 1, 1))
	if hs := readAllBatches(t, l); len(hs) != 5 {
		t.Fatalf("%d batches", len(hs))
	}
}

func TestBitFlipIsDetectedNotServed(t *testing.T) {
	rng := newRand(t)
	dir := t.TempDir()
	ffs := newFaultFS()
	o := Options{FS: ffs, SegmentBytes: 4 << 10, IndexIntervalBytes: 512}
	l := mustOpen(t, dir, o)
	for range 10 {
		mustAppend(t, l, makeBatch(rng, 2, 900, 1, 1))
	}
	// A flip in the active segment, as the data reached the file.
	ffs.set(func(f *faultFS) { f.flipNext = true })
	r := mustAppend(t, l, makeBatch(rng, 2, 900, 1, 1))
	if _, err := l.Read(r.BaseOffset, 1<<20); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Read of flipped batch: %v", err)
	}
	// Reads before it stop short of it.
	v, err := l.Read(r.BaseOffset-2, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if v.NextOffset() != r.BaseOffset {
		t.Fatalf("read ran into the corrupt batch: next %d", v.NextOffset())
	}
	v.Release()
	l.Close()

	// Reopen: the corrupt batch at the tail of the active segment is
	// truncated away.
	l = mustOpen(t, dir, o)
	if l.NextOffset() != r.BaseOffset {
		t.Fatalf("recovery kept the corrupt batch: next %d, want %d", l.NextOffset(), r.BaseOffset)
	}
	readAllBatches(t, l)
	l.Close()

	// A flip in a sealed segment: detected on read, never served, and the
	// reopen does not silently drop data after it.
	name := segPath(dir, 0, logSuffix)
	flipByte(t, name, 200)
	l = mustOpen(t, dir, o)
	defer l.Close()
	if _, err := l.Read(0, 1<<20); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Read of corrupt sealed batch: %v", err)
	}
	v, err = l.Read(l.NextOffset()-2, 1<<20)
	if err != nil {
		t.Fatalf("data after the corrupt segment: %v", err)
	}
	v.Release()
}

func flipByte(t *testing.T, name string, off int64) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestRecoveryTruncatesTornTail(t *testing.T) {
	rng := newRand(t)
	dir := t.TempDir()
	o := Options{SegmentBytes: 64 << 10, IndexIntervalBytes: 256}
	l := mustOpen(t, dir, o)
	for range 20 {
		mustAppend(t, l, makeBatch(rng, 1, 300, 1, 1))
	}
	next, size := l.NextOffset(), l.Size()
	l.Close()
	name := segPath(dir, 0, logSuffix)
	for _, tail := range [][]byte{
		makeBatch(rng, 1, 300, 1, 1)[:100],      // torn: header, part of the body
		make([]byte, 4096),                      // preallocated zeros
		append(makeBatch(rng, 1, 10, 1, 1), 1),  // base offset 0: breaks continuity
		[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 1}, // garbage
	} {
		f, err := os.OpenFile(name, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(tail, size); err != nil {
			t.Fatal(err)
		}
		f.Close()
		l = mustOpen(t, dir, o)
		if l.NextOffset() != next || l.Size() != size {
			t.Fatalf("after recovery: next %d size %d, want %d %d", l.NextOffset(), l.Size(), next, size)
		}
		readAllBatches(t, l)
		l.Close()
	}
	// Index files that are missing or garbage are rebuilt.
	os.Remove(segPath(dir, 0, idxSuffix))
	os.WriteFile(segPath(dir, 0, tixSuffix), []byte("not an index at all"), 0o644)
	l = mustOpen(t, dir, o)
	defer l.Close()
	if l.NextOffset() != next {
		t.Fatalf("next %d after index rebuild", l.NextOffset())
	}
	if n := l.active.ix.Load().len(); n < 10 {
		t.Fatalf("index rebuilt with %d entries", n)
	}
	readAllBatches(t, l)
}

func TestSealedIndexRebuiltAndZeroTailTrimmed(t *testing.T) {
	rng := newRand(t)
	dir := t.TempDir()
	o := Options{SegmentBytes: 4 << 10, IndexIntervalBytes: 256}
	l := mustOpen(t, dir, o)
	for range 20 {
		mustAppend(t, l, makeBatch(rng, 1, 500, 1, 1))
	}
	next := l.NextOffset()
	l.Close()
	// Garbage index of a sealed segment, and a zero tail as left by a crash
	// in the middle of a roll.
	os.WriteFile(segPath(dir, 0, idxSuffix), []byte{1, 2, 3, 4, 5, 6, 7, 8}, 0o644)
	f, _ := os.OpenFile(segPath(dir, 0, logSuffix), os.O_RDWR, 0)
	fi, _ := f.Stat()
	f.Truncate(fi.Size() + 8192)
	f.Close()
	l = mustOpen(t, dir, o)
	defer l.Close()
	if l.NextOffset() != next {
		t.Fatalf("next %d, want %d", l.NextOffset(), next)
	}
	readAllBatches(t, l)
	if fi2, _ := os.Stat(segPath(dir, 0, logSuffix)); fi2.Size() != fi.Size() {
		t.Fatalf("zero tail not trimmed: %d", fi2.Size())
	}
}

func TestGapBetweenSegmentsIsCorrupt(t *testing.T) {
	rng := newRand(t)
	dir := t.TempDir()
	o := Options{SegmentBytes: 2 << 10}
	l := mustOpen(t, dir, o)
	for range 20 {
		mustAppend(t, l, makeBatch(rng, 1, 500, 1, 1))
	}
	l.Close()
	ents, _ := os.ReadDir(dir)
	var logs []string
	for _, e := range ents {
		if _, suf, ok := parseSegmentName(e.Name()); ok && suf == logSuffix {
			logs = append(logs, e.Name())
		}
	}
	os.Remove(dir + "/" + logs[2]) // a hole in the middle
	if _, err := Open(dir, o); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with a missing middle segment: %v", err)
	}
}

func TestFsyncIntervalSyncsInBackground(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ffs := newFaultFS()
		l := mustOpen(t, t.TempDir(), Options{FS: ffs, SegmentBytes: 1 << 20, Fsync: FsyncPolicy{Mode: FsyncInterval, Interval: 100 * time.Millisecond}})
		defer l.Close()
		r := mustAppend(t, l, makeBatch(newRand(t), 1, 10, 1, 1))
		if err := l.WaitDurable(context.Background(), r.NextOffset); err != nil {
			t.Fatal(err) // returns at once under interval
		}
		before := ffs.syncs()
		time.Sleep(150 * time.Millisecond) // fake time inside the bubble
		synctest.Wait()
		if ffs.syncs() != before+1 || l.durable.Load() != r.NextOffset {
			t.Fatalf("after one interval: %d fsyncs, durable %d", ffs.syncs()-before, l.durable.Load())
		}
		time.Sleep(time.Second) // nothing new: no more fsyncs
		synctest.Wait()
		if ffs.syncs() != before+1 {
			t.Fatalf("idle log fsynced %d times", ffs.syncs()-before)
		}
	})
}

func TestSetOptionsSwitchesPolicy(t *testing.T) {
	rng := newRand(t)
	ffs := newFaultFS()
	l := mustOpen(t, t.TempDir(), Options{FS: ffs, SegmentBytes: 1 << 20})
	defer l.Close()
	r := mustAppend(t, l, makeBatch(rng, 1, 10, 1, 1))
	if l.durable.Load() >= r.NextOffset {
		t.Fatal("durable under fsync never")
	}
	if err := l.SetOptions(Options{SegmentBytes: 1 << 20, Fsync: FsyncPolicy{Mode: FsyncAlways}}); err != nil {
		t.Fatal(err)
	}
	r, err := l.AppendSync(context.Background(), makeBatch(rng, 1, 10, 1, 1), 1)
	if err != nil || l.durable.Load() < r.NextOffset {
		t.Fatalf("AppendSync under always: %v, durable %d", err, l.durable.Load())
	}
	if err := l.SetOptions(Options{SegmentBytes: 1 << 10, Fsync: FsyncPolicy{Mode: FsyncInterval, Interval: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		mustAppend(t, l, makeBatch(rng, 1, 600, 1, 1))
	}
	if l.Segments() < 3 {
		t.Fatalf("new SegmentBytes not applied: %d segments", l.Segments())
	}
	if err := l.SetOptions(Options{SegmentBytes: 5}); err == nil {
		t.Fatal("invalid options accepted")
	}
}

func TestAppendLargerThanSegment(t *testing.T) {
	rng := newRand(t)
	l := mustOpen(t, t.TempDir(), Options{SegmentBytes: 1 << 10})
	defer l.Close()
	big := makeBatch(rng, 3, 5000, 1, 1)
	mustAppend(t, l, big) // empty first segment grows
	mustAppend(t, l, makeBatch(rng, 1, 10, 1, 1))
	mustAppend(t, l, big) // rolls to a segment sized for it
	if hs := readAllBatches(t, l); len(hs) != 3 {
		t.Fatalf("%d batches", len(hs))
	}
}

func TestOnSyncReportsFsyncs(t *testing.T) {
	rng := newRand(t)
	ffs := newFaultFS()
	var calls atomic.Int64
	o := Options{FS: ffs, SegmentBytes: 4 << 10, Fsync: FsyncPolicy{Mode: FsyncAlways},
		OnSync: func(d time.Duration) {
			if d < 0 {
				t.Errorf("negative fsync duration %v", d)
			}
			calls.Add(1)
		}}
	l := mustOpen(t, t.TempDir(), o)
	before := ffs.syncs() // Open's own fsyncs are not reported
	for range 10 {        // rolls every 4 batches: inline roll fsyncs too
		if _, err := l.AppendSync(context.Background(), makeBatch(rng, 1, 900, 1, 1), 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := calls.Load(), int64(ffs.syncs()-before); got != want || got < 10 {
		t.Fatalf("OnSync called %d times for %d fsyncs of .log files", got, want)
	}

	// SetOptions replaces the hook.
	var calls2 atomic.Int64
	l = mustOpen(t, t.TempDir(), Options{Fsync: FsyncPolicy{Mode: FsyncAlways}})
	defer l.Close()
	o.FS, o.OnSync = nil, func(time.Duration) { calls2.Add(1) }
	if err := l.SetOptions(o); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendSync(context.Background(), makeBatch(rng, 1, 10, 1, 1), 1); err != nil {
		t.Fatal(err)
	}
	if calls2.Load() == 0 {
		t.Fatal("OnSync set by SetOptions not called")
	}
}

// unflushedLog leaves a log under fsync never with segments rolled while
// their background fsync was held back, then crashes it (nothing lost: the
// files keep what was written). It returns the base offset of each segment.
// Batches are 964 bytes with 2 offsets each.
func unflushedLog(t *testing.T, dir string, rolls int) []int64 {
	t.Helper()
	rng := newRand(t)
	ffs := newFaultFS()
	l := mustOpen(t, dir, Options{FS: ffs, SegmentBytes: 4 << 10, SegmentMaxAge: -1, IndexIntervalBytes: 512})
	gate := make(chan struct{})
	ffs.set(func(f *faultFS) { f.gate = gate })
	for start := l.Segments(); l.Segments() < start+rolls; {
		mustAppend(t, l, makeBatch(rng, 2, 900, 1, 1))
	}
	var bases []int64
	for _, s := range *l.segs.Load() {
		bases = append(bases, s.base)
	}
	ffs.set(func(f *faultFS) { f.dead = true })
	close(gate)
	l.Close()
	return bases
}

func TestRecoveryCutsUnflushedSegments(t *testing.T) {
	dir := t.TempDir()
	bases := unflushedLog(t, dir, 4)
	// A torn batch in the second rolled segment: it is cut there and every
	// later segment is deleted.
	flipByte(t, segPath(dir, bases[2], logSuffix), 1500)
	o := Options{SegmentBytes: 4 << 10, SegmentMaxAge: -1, IndexIntervalBytes: 512}
	l := mustOpen(t, dir, o)
	hs := readAllBatches(t, l)
	if l.Segments() != 3 || hs[len(hs)-1].NextOffset() != bases[2]+2 {
		t.Fatalf("after recovery: %d segments, next %d; want 3 and %d", l.Segments(), l.NextOffset(), bases[2]+2)
	}
	for _, b := range bases[3:] {
		if _, err := os.Stat(segPath(dir, b, logSuffix)); !os.IsNotExist(err) {
			t.Fatalf("segment %d after the cut not deleted: %v", b, err)
		}
	}
	mustAppend(t, l, makeBatch(newRand(t), 1, 10, 1, 1))
	readAllBatches(t, l)
	l.Close()

	// Close made the whole log clean, up to the small batch at position 964
	// of the segment now active. Roll twice more without flushing, then
	// damage that small batch: it lies below the clean offset in a segment
	// that is no longer the last, so Open refuses instead of cutting.
	unflushedLog(t, dir, 2)
	flipByte(t, segPath(dir, bases[2], logSuffix), 964+70)
	if _, err := Open(dir, o); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "below the clean offset") {
		t.Fatalf("Open with damage below the clean offset: %v", err)
	}
}
