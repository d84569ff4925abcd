package segment

import (
	"math/rand/v2"
	"os"
	"testing"

	"github.com/rafka/rafka/wire"
)

// realSegment returns the .log and .idx bytes of a log written by Log itself.
func realSegment(f testing.TB, n int) ([]byte, []byte) {
	dir := f.TempDir()
	l, err := Open(dir, Options{SegmentBytes: 1 << 20, IndexIntervalBytes: 128})
	if err != nil {
		f.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range n {
		if _, err := l.Append(makeBatch(rng, int32(i%3), 20+rng.IntN(100), int64(i), int64(i)), 1); err != nil {
			f.Fatal(err)
		}
	}
	l.Close()
	logb, _ := os.ReadFile(segPath(dir, 0, logSuffix))
	idxb, _ := os.ReadFile(segPath(dir, 0, idxSuffix))
	return logb, idxb
}

// FuzzRecovery feeds arbitrary bytes as the .log and .idx of the active
// segment: Open must not panic, and every batch it then serves verifies, in
// contiguous offsets; appending afterwards works.
func FuzzRecovery(f *testing.F) {
	logb, idxb := realSegment(f, 12)
	f.Add(logb, idxb)
	f.Add(logb[:len(logb)-7], idxb)
	f.Add(logb, []byte{})
	f.Add(append(append([]byte(nil), logb...), make([]byte, 300)...), idxb[:len(idxb)-3])
	flipped := append([]byte(nil), logb...)
	flipped[len(flipped)/2] ^= 1
	f.Add(flipped, idxb)
	f.Add([]byte{}, []byte{})
	f.Add(make([]byte, 100), make([]byte, 16))
	f.Fuzz(func(t *testing.T, logb, idxb []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(segPath(dir, 0, logSuffix), logb, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(segPath(dir, 0, idxSuffix), idxb, 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := Open(dir, Options{SegmentBytes: 4 << 10, IndexIntervalBytes: 64, FS: noSyncFS{OSFS{}}})
		if err != nil {
			return // refusing is fine; serving bad bytes is not
		}
		defer l.Close()
		readAllBatches(t, l)
		if l.Size() > int64(len(logb)) {
			t.Fatalf("Size %d exceeds the %d bytes given", l.Size(), len(logb))
		}
		r, err := l.Append(makeBatch(rand.New(rand.NewPCG(1, 2)), 1, 10, 1, 1), 1)
		if err != nil {
			t.Fatal(err)
		}
		v, err := l.Read(r.BaseOffset, 1)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := wire.VerifyBatch(v.Bytes(), 0); err != nil {
			t.Fatal(err)
		}
		v.Release()
	})
}

// noSyncFS skips fsyncs: the fuzz target is about parsing what is on disk,
// and fsync would dominate its run time.
type noSyncFS struct{ OSFS }

func (n noSyncFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := n.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

func (noSyncFS) SyncDir(string) error { return nil }

type noSyncFile struct{ File }

func (noSyncFile) Sync() error { return nil }

// FuzzAppendSpans feeds arbitrary bytes to AppendSpans: it must either refuse
// them and store nothing, or store them with spans that tile the input in
// order, with consecutive offsets matching the stamped headers.
func FuzzAppendSpans(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	two := append(makeBatch(rng, 3, 40, 1, 2), makeBatch(rng, 0, 0, 3, 3)...)
	f.Add(two)
	f.Add(two[:len(two)-1])
	f.Add(makeBatch(rng, 1, 0, 1, 1))
	f.Add([]byte{})
	f.Add(make([]byte, wire.BatchHeaderSize))
	dir := f.TempDir()
	l, err := Open(dir, Options{SegmentBytes: 1 << 20, MaxBatchBytes: 1 << 16})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { l.Close() })
	var spans []Span
	f.Fuzz(func(t *testing.T, b []byte) {
		next := l.NextOffset()
		res, err := l.AppendSpans(b, 9, spans)
		if err != nil {
			if l.NextOffset() != next || len(res.Spans) != 0 {
				t.Fatalf("refused append changed the log: next %d -> %d, %d spans", next, l.NextOffset(), len(res.Spans))
			}
			return
		}
		spans = res.Spans
		pos, off := 0, next
		for i, sp := range res.Spans {
			h, n, err := wire.VerifyBatch(b[sp.Start:], 0)
			if err != nil || sp.Start != pos || sp.Len != n || sp.BaseOffset != off || h.BaseOffset != off ||
				sp.NextOffset != h.NextOffset() || sp.MaxTimestamp != h.MaxTimestamp || h.Term != 9 {
				t.Fatalf("span %d %+v does not describe the batch at %d (header %+v, %d bytes, %v)", i, sp, pos, h, n, err)
			}
			pos += n
			off = sp.NextOffset
		}
		if pos != len(b) || off != res.NextOffset || res.BaseOffset != next || l.NextOffset() != off {
			t.Fatalf("spans end at byte %d offset %d; input %d bytes, result %+v", pos, off, len(b), res)
		}
	})
}
