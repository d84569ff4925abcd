package segment

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rafka/rafka/wire"
)

func TestAppendStampsAndReads(t *testing.T) {
	rng := newRand(t)
	l := mustOpen(t, t.TempDir(), Options{SegmentBytes: 1 << 20})
	defer l.Close()

	a := makeBatch(rng, 3, 100, 10, 12)
	b := makeBatch(rng, 0, 0, 11, 11) // control batch: one offset
	c := makeBatch(rng, 5, 200, 13, 20)
	r := mustAppend(t, l, append(append(append([]byte(nil), a...), b...), c...))
	if r.BaseOffset != 0 || r.LastOffset != 8 || r.NextOffset != 9 {
		t.Fatalf("AppendResult %+v", r)
	}
	r = mustAppend(t, l, a)
	if r.BaseOffset != 9 || r.NextOffset != 12 {
		t.Fatalf("second AppendResult %+v", r)
	}
	if wire.BaseOffset(a) != 9 {
		t.Fatalf("base offset not stamped in the caller's buffer: %d", wire.BaseOffset(a))
	}
	hs := readAllBatches(t, l)
	wantBases := []int64{0, 3, 4, 9}
	if len(hs) != len(wantBases) {
		t.Fatalf("read %d batches, want %d", len(hs), len(wantBases))
	}
	for i, h := range hs {
		if h.BaseOffset != wantBases[i] || h.Term != 7 {
			t.Errorf("batch %d: base %d term %d", i, h.BaseOffset, h.Term)
		}
	}
	// An offset inside a batch returns that whole batch; maxBytes bounds the rest.
	v, err := l.Read(6, 1)
	if err != nil {
		t.Fatal(err)
	}
	if h, n, _ := wire.ParseBatchHeader(v.Bytes(), 0); h.BaseOffset != 4 || n != len(v.Bytes()) || v.NextOffset() != 9 {
		t.Fatalf("Read(6,1): base %d, %d of %d bytes, next %d", h.BaseOffset, n, len(v.Bytes()), v.NextOffset())
	}
	v.Release()
	v.Release() // idempotent
	v, err = l.Read(12, 100)
	if err != nil || len(v.Bytes()) != 0 || v.NextOffset() != 12 {
		t.Fatalf("Read(NextOffset): %v, %d bytes", err, len(v.Bytes()))
	}
	v.Release()
	for _, off := range []int64{-1, 13, math.MaxInt64} {
		if _, err := l.Read(off, 100); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Errorf("Read(%d): %v, want ErrOffsetOutOfRange", off, err)
		}
	}
	if l.Size() != int64(len(a)*2+len(b)+len(c)) {
		t.Errorf("Size %d", l.Size())
	}
}

func TestAppendRejectsBadBatchesAtomically(t *testing.T) {
	rng := newRand(t)
	l := mustOpen(t, t.TempDir(), Options{MaxBatchBytes: 4096})
	defer l.Close()
	good := makeBatch(rng, 1, 10, 1, 1)
	bad := makeBatch(rng, 1, 10, 1, 1)
	bad[70] ^= 1
	big := makeBatch(rng, 1, 5000, 1, 1)
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"checksum", append(append([]byte(nil), good...), bad...), wire.ErrCorruptBatch},
		{"torn", append(append([]byte(nil), good...), good[:30]...), wire.ErrCorruptBatch},
		{"too large", append(append([]byte(nil), good...), big...), wire.ErrBatchTooLarge},
		{"empty", nil, wire.ErrCorruptBatch},
	}
	for _, tc := range cases {
		if _, err := l.Append(tc.in, 1); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if l.NextOffset() != 0 || l.Size() != 0 {
		t.Fatalf("rejected appends stored data: next %d size %d", l.NextOffset(), l.Size())
	}
}

func TestRollIndexAndReopen(t *testing.T) {
	rng := newRand(t)
	dir := t.TempDir()
	o := Options{SegmentBytes: 8 << 10, IndexIntervalBytes: 300}
	l := mustOpen(t, dir, o)
	var want []int64
	for i := range 300 {
		b := makeBatch(rng, int32(1+rng.IntN(4)), rng.IntN(400), int64(i), int64(i))
		r := mustAppend(t, l, b)
		want = append(want, r.BaseOffset)
	}
	if l.Segments() < 5 {
		t.Fatalf("only %d segments", l.Segments())
	}
	check := func(l *Log) {
		hs := readAllBatches(t, l)
		if len(hs) != len(want) {
			t.Fatalf("%d batches, want %d", len(hs), len(want))
		}
		// Every offset, not just batch starts, finds its batch.
		for off := int64(0); off < l.NextOffset(); off += 3 {
			v, err := l.Read(off, 0)
			if err != nil {
				t.Fatal(err)
			}
			h, _, _ := wire.ParseBatchHeader(v.Bytes(), 0)
			if h.BaseOffset > off || h.NextOffset() <= off {
				t.Fatalf("Read(%d) got batch [%d,%d)", off, h.BaseOffset, h.NextOffset())
			}
			v.Release()
		}
	}
	check(l)
	segs, size, next := l.Segments(), l.Size(), l.NextOffset()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Sealed and closed segments are trimmed to their data.
	var total int64
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if filepath.Ext(e.Name()) == ".log" {
			fi, _ := e.Info()
			total += fi.Size()
		}
	}
	if total != size {
		t.Errorf("log files hold %d bytes, Size was %d", total, size)
	}
	l = mustOpen(t, dir, o)
	defer l.Close()
	if l.Segments() != segs || l.Size() != size || l.NextOffset() != next {
		t.Fatalf("reopened: %d segments %d bytes next %d; want %d %d %d", l.Segments(), l.Size(), l.NextOffset(), segs, size, next)
	}
	check(l)
	// Appending after reopen continues the offsets.
	if r := mustAppend(t, l, makeBatch(rng, 1, 10, 1, 1)); r.BaseOffset != next {
		t.Fatalf("append after reopen at %d, want %d", r.BaseOffset, next)
	}
}

func TestOffsetForTimestamp(t *testing.T) {
	rng := newRand(t)
	dir := t.TempDir()
	o := Options{SegmentBytes: 4 << 10, IndexIntervalBytes: 200}
	l := mustOpen(t, dir, o)
	type rec struct{ base, maxTs int64 }
	var recs []rec
	for i := range 200 {
		// Mostly rising timestamps with stretches going backwards.
		ts := int64(i*10) - int64(rng.IntN(60))
		r := mustAppend(t, l, makeBatch(rng, 2, rng.IntN(150), ts, ts))
		recs = append(recs, rec{r.BaseOffset, ts})
	}
	brute := func(ts int64) int64 {
		for _, r := range recs {
			if r.maxTs >= ts {
				return r.base
			}
		}
		return l.NextOffset()
	}
	check := func(l *Log) {
		for ts := int64(-100); ts < 2100; ts += 7 {
			got, err := l.OffsetForTimestamp(ts)
			if err != nil {
				t.Fatal(err)
			}
			if want := brute(ts); got != want {
				t.Fatalf("OffsetForTimestamp(%d) = %d, want %d", ts, got, want)
			}
		}
	}
	check(l)
	l.Close()
	l = mustOpen(t, dir, o)
	defer l.Close()
	check(l)
}

func TestRetention(t *testing.T) {
	rng := newRand(t)
	now := time.UnixMilli(1_000_000)
	clock := func() time.Time { return now }
	l := mustOpen(t, t.TempDir(), Options{SegmentBytes: 2 << 10, RetentionBytes: 5 << 10, RetentionAge: time.Hour, Now: clock})
	defer l.Close()
	for i := range 40 {
		mustAppend(t, l, makeBatch(rng, 1, 400, now.UnixMilli()+int64(i), now.UnixMilli()+int64(i)))
	}
	segs := l.Segments()
	n, err := l.EnforceRetention()
	if err != nil || n == 0 {
		t.Fatalf("EnforceRetention: %d, %v", n, err)
	}
	if l.Segments() != segs-n || l.Size() > 5<<10+2<<10 {
		t.Fatalf("after size retention: %d segments, %d bytes", l.Segments(), l.Size())
	}
	start := l.StartOffset()
	if start == 0 {
		t.Fatal("StartOffset did not move")
	}
	if _, err := l.Read(start-1, 10); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("Read below start: %v", err)
	}
	readAllBatches(t, l)
	// Time: everything older than an hour goes, except the active segment.
	now = now.Add(2 * time.Hour)
	if _, err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	if l.Segments() != 1 || l.StartOffset() == start {
		t.Fatalf("after time retention: %d segments, start %d", l.Segments(), l.StartOffset())
	}
	readAllBatches(t, l)
}

func TestViewOutlivesRetentionAndClose(t *testing.T) {
	rng := newRand(t)
	l := mustOpen(t, t.TempDir(), Options{SegmentBytes: 1 << 10, RetentionBytes: 1})
	first := makeBatch(rng, 1, 500, 1, 1)
	mustAppend(t, l, first)
	for range 5 {
		mustAppend(t, l, makeBatch(rng, 1, 500, 1, 1))
	}
	v, err := l.Read(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := l.EnforceRetention(); err != nil || n == 0 {
		t.Fatalf("EnforceRetention: %d %v", n, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(v.Bytes(), first) {
		t.Fatal("view bytes changed after its segment was deleted")
	}
	v.Release()
	if _, err := l.Read(0, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	if _, err := l.Append(first, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestConcurrentAppendRead(t *testing.T) {
	rng := newRand(t)
	l := mustOpen(t, t.TempDir(), Options{SegmentBytes: 16 << 10, IndexIntervalBytes: 512, RetentionBytes: 64 << 10})
	defer l.Close()
	batches := make([][]byte, 8)
	for i := range batches {
		batches[i] = makeBatch(rng, int32(i+1), 100*i, 1, 1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var writers, readers sync.WaitGroup
	for w := range 4 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := range 300 {
				b := append([]byte(nil), batches[(w+i)%len(batches)]...)
				if _, err := l.Append(b, 1); err != nil {
					t.Error(err)
					return
				}
				if i%50 == 0 {
					if _, err := l.EnforceRetention(); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for i := 0; i < 1000000 && ctx.Err() == nil; i++ {
				v, err := l.Read(l.StartOffset(), 4096)
				if errors.Is(err, ErrOffsetOutOfRange) {
					continue // retention moved the start meanwhile
				}
				if err != nil {
					t.Error(err)
					return
				}
				for b := v.Bytes(); len(b) > 0; {
					_, n, err := wire.VerifyBatch(b, 0)
					if err != nil {
						t.Error(err)
						break
					}
					b = b[n:]
				}
				v.Release()
			}
		}()
	}
	writers.Wait()
	cancel()
	readers.Wait()
	readAllBatches(t, l)
}

func TestParseFsyncPolicy(t *testing.T) {
	for _, s := range []string{"always", "never", "interval:1", "interval:250"} {
		p, err := ParseFsyncPolicy(s)
		if err != nil || p.String() != s {
			t.Errorf("%q: %v %q", s, err, p.String())
		}
	}
	for _, s := range []string{"", "sometimes", "interval:", "interval:0", "interval:-5", "interval:1.5", "interval:99999999"} {
		if _, err := ParseFsyncPolicy(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	if p, _ := ParseFsyncPolicy("interval:250"); p.Interval != 250*time.Millisecond {
		t.Errorf("interval %v", p.Interval)
	}
}

func TestOptionsValidate(t *testing.T) {
	_, err := Open(t.TempDir(), Options{SegmentBytes: 10, IndexIntervalBytes: -1, Fsync: FsyncPolicy{Mode: FsyncInterval}})
	if err == nil {
		t.Fatal("bad options accepted")
	}
	for _, want := range []string{"SegmentBytes", "IndexIntervalBytes", "fsync interval"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestAppendSpans(t *testing.T) {
	rng := newRand(t)
	l := mustOpen(t, t.TempDir(), Options{SegmentBytes: 1 << 20})
	defer l.Close()
	a := makeBatch(rng, 3, 100, 10, 12)
	b := makeBatch(rng, 0, 0, 11, 11) // control batch: one offset
	c := makeBatch(rng, 5, 200, 13, 20)
	r := mustAppend(t, l, slices.Concat(a, b, c))
	want := []Span{
		{BaseOffset: 0, NextOffset: 3, MaxTimestamp: 12, Start: 0, Len: len(a)},
		{BaseOffset: 3, NextOffset: 4, MaxTimestamp: 11, Start: len(a), Len: len(b)},
		{BaseOffset: 4, NextOffset: 9, MaxTimestamp: 20, Start: len(a) + len(b), Len: len(c)},
	}
	if !slices.Equal(r.Spans, want) {
		t.Fatalf("spans %+v, want %+v", r.Spans, want)
	}
	// A scratch slice is reused for the spans, from its start.
	scratch := make([]Span, 3, 4)
	r, err := l.AppendSpans(c, 1, scratch)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Spans) != 1 || &r.Spans[0] != &scratch[0] || r.Spans[0] != (Span{BaseOffset: 9, NextOffset: 14, MaxTimestamp: 20, Len: len(c)}) {
		t.Fatalf("AppendSpans into scratch: %+v", r.Spans)
	}
	// A rejected append reports no spans.
	bad := slices.Clone(a)
	bad[len(bad)-1] ^= 1
	if r, err := l.AppendSpans(slices.Concat(a, bad), 1, scratch); err == nil || len(r.Spans) != 0 {
		t.Fatalf("corrupt append: %+v, %v", r, err)
	}
}

// diskUse is the file's size and the bytes of disk it occupies.
func diskUse(t *testing.T, name string) (size, used int64) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(name, &st); err != nil {
		t.Fatal(err)
	}
	return st.Size, st.Blocks * 512
}

func TestPreallocationGrowsInSteps(t *testing.T) {
	rng := newRand(t)
	dir := t.TempDir()
	o := Options{SegmentBytes: 16 << 20}
	l := mustOpen(t, dir, o)
	name := segPath(dir, 0, logSuffix)
	if size, used := diskUse(t, name); size != preallocStep || used > 2*preallocStep {
		t.Fatalf("empty segment: size %d, %d bytes used; want %d preallocated", size, used, preallocStep)
	}
	// Filling the first step doubles the preallocation, and so on. (Recent
	// timestamps: the reopened segment must not roll by age.)
	now := time.Now().UnixMilli()
	batch := makeBatch(rng, 1, 256<<10-64, now, now)
	for i := range 4 {
		mustAppend(t, l, slices.Clone(batch))
		if size, _ := diskUse(t, name); size != preallocStep {
			t.Fatalf("after %d appends within the first step: size %d", i+1, size)
		}
	}
	mustAppend(t, l, slices.Clone(batch))
	if size, _ := diskUse(t, name); size != 2*preallocStep {
		t.Fatalf("past the first step: size %d, want %d", size, 2*preallocStep)
	}
	for range 3*4 - 1 { // 16 batches: exactly 4 MiB
		mustAppend(t, l, slices.Clone(batch))
	}
	if size, _ := diskUse(t, name); size != 4*preallocStep {
		t.Fatalf("past the second step: size %d, want %d", size, 4*preallocStep)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopened, the segment keeps its data; the next append doubles it.
	l = mustOpen(t, dir, o)
	defer l.Close()
	if size, _ := diskUse(t, name); size != 4*preallocStep {
		t.Fatalf("reopened: size %d", size)
	}
	mustAppend(t, l, slices.Clone(batch))
	if size, _ := diskUse(t, name); size != 8*preallocStep {
		t.Fatalf("reopened, then appended: size %d", size)
	}
	if hs := readAllBatches(t, l); len(hs) != 17 {
		t.Fatalf("%d batches after reopen", len(hs))
	}
}

func TestDiskFullWhileGrowingPreallocation(t *testing.T) {
	rng := newRand(t)
	dir := t.TempDir()
	ffs := newFaultFS()
	l := mustOpen(t, dir, Options{FS: ffs, SegmentBytes: 8 << 20})
	batch := makeBatch(rng, 1, 512<<10-64, 1, 1)
	mustAppend(t, l, slices.Clone(batch))
	mustAppend(t, l, slices.Clone(batch)) // fills the first step exactly
	next := l.NextOffset()
	ffs.set(func(f *faultFS) { f.allocErr = syscall.ENOSPC })
	if _, err := l.Append(slices.Clone(batch), 1); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("append past the preallocation on a full disk: %v", err)
	}
	if l.NextOffset() != next || l.Segments() != 1 {
		t.Fatal("failed append changed the log")
	}
	ffs.set(func(f *faultFS) { f.allocErr = nil })
	mustAppend(t, l, slices.Clone(batch))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, dir, Options{SegmentBytes: 8 << 20})
	defer l.Close()
	if hs := readAllBatches(t, l); len(hs) != 3 {
		t.Fatalf("%d batches after reopen", len(hs))
	}
}
