package segment

import (
	"errors"
	"testing"

	"github.com/rafka/rafka/wire"
)

// ReadUnverified serves a batch whose contents changed on disk, unhashed,
// for a reader that verifies checksums itself (which then finds the damage);
// Read still refuses it.
func TestReadUnverifiedLeavesChecksumsToTheReader(t *testing.T) {
	rng := newRand(t)
	dir := t.TempDir()
	ffs := newFaultFS()
	o := Options{FS: ffs, SegmentBytes: 64 << 10, IndexIntervalBytes: 512}
	l := mustOpen(t, dir, o)
	defer l.Close()
	for range 3 {
		mustAppend(t, l, makeBatch(rng, 2, 900, 1, 1))
	}
	// A flip inside the records, as the data reached the file.
	ffs.set(func(f *faultFS) { f.flipNext = true })
	r := mustAppend(t, l, makeBatch(rng, 2, 900, 1, 1))
	ffs.set(func(f *faultFS) { f.flipNext = false })
	mustAppend(t, l, makeBatch(rng, 2, 900, 1, 1))

	if _, err := l.Read(r.BaseOffset, 1<<20); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Read of the flipped batch: %v", err)
	}
	v, err := l.ReadUnverified(0, 1<<20)
	if err != nil {
		t.Fatalf("ReadUnverified: %v", err)
	}
	defer v.Release()
	if v.NextOffset() != l.NextOffset() {
		t.Fatalf("ReadUnverified stopped at %d of %d", v.NextOffset(), l.NextOffset())
	}
	it := wire.NewBatchIter(v.Bytes(), 0)
	var bases []int64
	for _, h, ok := it.Next(); ok; _, h, ok = it.Next() {
		bases = append(bases, h.BaseOffset)
	}
	if !errors.Is(it.Err(), wire.ErrCorruptBatch) || len(bases) != 3 || bases[2] != r.BaseOffset-2 {
		t.Fatalf("reader's own check: batches %v then %v", bases, it.Err())
	}

}
