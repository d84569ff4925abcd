package segment

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/rafka/rafka/wire"
)

// truncLog fills a log with batches of one to three offsets over several
// small segments and returns it with the checksum of every batch, by base
// offset, and the base offsets in order.
func truncLog(t *testing.T, dir string, o Options, rng *rand.Rand, n int) (*Log, map[int64]uint64, []int64) {
	t.Helper()
	l := mustOpen(t, dir, o)
	sums := map[int64]uint64{}
	var bases []int64
	for range n {
		b := makeBatch(rng, int32(1+rng.IntN(3)), 500+rng.IntN(3000), 1, int64(1+rng.IntN(1000)))
		r := mustAppend(t, l, b)
		sums[r.BaseOffset] = wire.BatchChecksum(b)
		bases = append(bases, r.BaseOffset)
	}
	return l, sums, bases
}

// checkPrefix reads the whole log and checks that it is exactly the batches
// of sums below end, in order, with no gap.
func checkPrefix(t *testing.T, l *Log, sums map[int64]uint64, end int64) {
	t.Helper()
	if l.NextOffset() != end {
		t.Fatalf("NextOffset %d, want %d", l.NextOffset(), end)
	}
	for _, h := range readAllBatches(t, l) {
		want, ok := sums[h.BaseOffset]
		if !ok || h.Checksum != want {
			t.Fatalf("batch at %d has checksum %x, want %x (known %v)", h.BaseOffset, h.Checksum, want, ok)
		}
	}
}

// truncPoints picks truncation offsets of every kind: the start, inside the
// first (sealed) segment, a segment boundary, inside the active segment, and
// its last batch.
func truncPoints(t *testing.T, l *Log, bases []int64) map[string]int64 {
	t.Helper()
	segs := *l.segs.Load()
	if len(segs) < 3 {
		t.Fatalf("want at least 3 segments, have %d", len(segs))
	}
	pts := map[string]int64{"start": l.StartOffset(), "boundary": segs[1].base, "last": bases[len(bases)-1]}
	for _, b := range bases {
		if b > segs[0].base && b < segs[1].base && pts["sealed"] == 0 {
			pts["sealed"] = b
		}
		if b > segs[len(segs)-1].base && pts["active"] == 0 {
			pts["active"] = b
		}
	}
	if pts["sealed"] == 0 || pts["active"] == 0 {
		t.Fatalf("segments too small for the test: %v", pts)
	}
	return pts
}

func TestTruncateFrom(t *testing.T) {
	o := Options{SegmentBytes: 16 << 10, IndexIntervalBytes: 1024}
	probe, _, pbases := truncLog(t, t.TempDir(), o, rand.New(rand.NewPCG(1, 2)), 40)
	points := truncPoints(t, probe, pbases)
	probe.Close()
	for name, off := range points {
		for _, reopen := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/reopened=%v", name, reopen), func(t *testing.T) {
				rng := newRand(t)
				dir := t.TempDir()
				l, sums, _ := truncLog(t, dir, o, rand.New(rand.NewPCG(1, 2)), 40)
				if reopen { // sealed segments opened from disk, mapped at their length
					l.Close()
					l = mustOpen(t, dir, o)
				}
				old := l.NextOffset()
				if err := l.TruncateFrom(off); err != nil {
					t.Fatalf("TruncateFrom(%d): %v", off, err)
				}
				checkPrefix(t, l, sums, off)
				if ts, err := l.OffsetForTimestamp(0); err != nil || (off > l.StartOffset() && ts != l.StartOffset()) {
					t.Fatalf("OffsetForTimestamp(0) = %d, %v", ts, err)
				}
				if err := l.TruncateFrom(old); !isErr(err, ErrBadTruncation) {
					t.Fatalf("TruncateFrom past the new end: %v", err)
				}
				// Appends continue at off, filling the reactivated segment
				// and rolling past it.
				for range 20 {
					b := makeBatch(rng, int32(1+rng.IntN(3)), 500+rng.IntN(3000), 1, 5)
					r := mustAppend(t, l, b)
					sums[r.BaseOffset] = wire.BatchChecksum(b)
				}
				end := l.NextOffset()
				checkPrefix(t, l, sums, end)
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				l = mustOpen(t, dir, o)
				defer l.Close()
				checkPrefix(t, l, sums, end)
			})
		}
	}
}

func TestTruncateFromBadOffset(t *testing.T) {
	o := Options{SegmentBytes: 16 << 10, IndexIntervalBytes: 1024}
	l, sums, bases := truncLog(t, t.TempDir(), o, newRand(t), 30)
	defer l.Close()
	var inside int64 = -1
	for i := 0; i+1 < len(bases); i++ {
		if bases[i+1]-bases[i] > 1 {
			inside = bases[i] + 1
			break
		}
	}
	if inside < 0 {
		t.Fatal("no batch of several offsets")
	}
	for _, off := range []int64{-1, inside, l.NextOffset() + 1} {
		if err := l.TruncateFrom(off); !isErr(err, ErrBadTruncation) {
			t.Fatalf("TruncateFrom(%d): %v, want ErrBadTruncation", off, err)
		}
	}
	if err := l.TruncateFrom(l.NextOffset()); err != nil {
		t.Fatalf("TruncateFrom(NextOffset): %v", err)
	}
	checkPrefix(t, l, sums, l.NextOffset())
	// After retention, the start is a boundary and below it is out of range.
	o.RetentionBytes = 1
	if err := l.SetOptions(o); err != nil {
		t.Fatal(err)
	}
	if n, err := l.EnforceRetention(); err != nil || n == 0 {
		t.Fatalf("EnforceRetention: %d, %v", n, err)
	}
	if err := l.TruncateFrom(l.StartOffset() - 1); !isErr(err, ErrBadTruncation) {
		t.Fatalf("TruncateFrom below the start: %v", err)
	}
	if err := l.TruncateFrom(l.StartOffset()); err != nil {
		t.Fatal(err)
	}
	if l.NextOffset() != l.StartOffset() || l.Size() != 0 {
		t.Fatalf("emptied log: [%d, %d) size %d", l.StartOffset(), l.NextOffset(), l.Size())
	}
	// The emptied segment takes an append larger than its mapping.
	b := makeBatch(newRand(t), 3, 40<<10, 1, 1)
	if _, err := l.Append(b, 1); err != nil {
		t.Fatalf("Append after emptying: %v", err)
	}
	readAllBatches(t, l)
}

// TestTruncateFromViews holds Views of batches that a truncation removes,
// then appends over them: the Views stay readable memory (their bytes may
// change) and are released without harm.
func TestTruncateFromViews(t *testing.T) {
	o := Options{SegmentBytes: 16 << 10, IndexIntervalBytes: 1024}
	rng := newRand(t)
	l, _, bases := truncLog(t, t.TempDir(), o, rng, 40)
	defer l.Close()
	pts := truncPoints(t, l, bases)
	var views []*View
	for off := pts["sealed"]; off < l.NextOffset(); {
		v, err := l.Read(off, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		views = append(views, v)
		off = v.NextOffset()
	}
	if err := l.TruncateFrom(pts["sealed"]); err != nil {
		t.Fatal(err)
	}
	for range 40 {
		mustAppend(t, l, makeBatch(rng, 2, 3000, 1, 1))
	}
	var sum byte
	for _, v := range views {
		for _, c := range v.Bytes() { // faults if a mapped file shrank under it
			sum ^= c
		}
		v.Release()
	}
	_ = sum
	readAllBatches(t, l)
}

// TestTruncateFromCrash truncates with a file system that dies after k
// mutations, for every k until the truncation completes (and then appends
// and acknowledges new batches), simulates a power loss, and checks the
// reopened log: never a removed batch, never a lost kept one, the new end
// once TruncateFrom returned and every acknowledged new batch.
func TestTruncateFromCrash(t *testing.T) {
	for _, mode := range []FsyncMode{FsyncAlways, FsyncNever} {
		if testing.Short() && mode == FsyncNever {
			continue
		}
		o := Options{SegmentBytes: 16 << 10, IndexIntervalBytes: 1024, Fsync: FsyncPolicy{Mode: mode}}
		probe, _, pbases := truncLog(t, t.TempDir(), o, rand.New(rand.NewPCG(1, 2)), 40)
		points := truncPoints(t, probe, pbases)
		probe.Close()
		for name, off := range points {
			t.Run(fmt.Sprintf("fsync=%d/%s", mode, name), func(t *testing.T) {
				testTruncateFromCrash(t, o, off)
			})
		}
	}
}

func testTruncateFromCrash(t *testing.T, o Options, off int64) {
	rng := newRand(t)
	for k := 0; k < 200; k++ {
		dir := t.TempDir()
		l, sums, _ := truncLog(t, dir, o, rand.New(rand.NewPCG(1, 2)), 40)
		old := l.NextOffset()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		ffs := newFaultFS()
		fo := o
		fo.FS = ffs
		l = mustOpen(t, dir, fo)
		ffs.set(func(f *faultFS) { f.budget, f.budgetOn = k, true })
		terr := l.TruncateFrom(off)
		// New batches after the cut: those acknowledged must survive.
		newSums := map[int64]uint64{}
		var acked int64 = -1
		if terr == nil {
			for range 6 {
				b := makeBatch(rng, 2, 2000, 1, 1)
				sum := wire.BatchChecksum(b)
				r, err := l.Append(b, 2)
				if err != nil {
					break
				}
				newSums[r.BaseOffset] = sum // written; may be lost
				if err := l.WaitDurable(context.Background(), r.NextOffset); err != nil {
					break
				}
				if o.Fsync.Mode == FsyncAlways {
					acked = r.NextOffset
				}
			}
		}
		completed := !ffs.isDead()
		ffs.set(func(f *faultFS) { f.dead = true })
		_ = l.Close()
		if err := ffs.crash(rng); err != nil {
			t.Fatal(err)
		}
		l = mustOpen(t, dir, o)
		end := l.NextOffset()
		hs := readAllBatches(t, l)
		l.Close()
		switch {
		case terr != nil && end == old:
			// Not durable: the old log, whole.
			for _, h := range hs {
				if h.Checksum != sums[h.BaseOffset] {
					t.Fatalf("k=%d: batch at %d changed", k, h.BaseOffset)
				}
			}
			continue
		case end < off:
			t.Fatalf("k=%d: log ends at %d, below the truncation offset %d (TruncateFrom: %v)", k, end, off, terr)
		}
		for _, h := range hs {
			want, ok := sums[h.BaseOffset]
			if h.BaseOffset >= off {
				want, ok = newSums[h.BaseOffset]
			}
			if !ok || h.Checksum != want {
				t.Fatalf("k=%d: batch at %d (checksum %x) is neither kept nor new (TruncateFrom: %v, old end %d, end %d)",
					k, h.BaseOffset, h.Checksum, terr, old, end)
			}
		}
		if end < acked {
			t.Fatalf("k=%d: acknowledged offsets up to %d, log ends at %d", k, acked, end)
		}
		if completed {
			t.Logf("truncation and appends complete after %d mutations", k)
			return
		}
	}
	t.Fatal("truncation never completed")
}
