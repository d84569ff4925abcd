package segment

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/rafka/rafka/wire"
)

// digestLogs writes the same batches to two logs with different segment
// sizes and returns them with the base offset of every batch.
func digestLogs(t *testing.T, batches [][]byte, segA, segB int64) (*Log, *Log, []int64) {
	t.Helper()
	a := mustOpen(t, t.TempDir(), Options{SegmentBytes: segA})
	b := mustOpen(t, t.TempDir(), Options{SegmentBytes: segB})
	t.Cleanup(func() { a.Close(); b.Close() })
	var bases []int64
	for _, batch := range batches {
		ra := mustAppend(t, a, bytes.Clone(batch))
		rb := mustAppend(t, b, bytes.Clone(batch))
		if ra.BaseOffset != rb.BaseOffset {
			t.Fatalf("offsets differ: %d and %d", ra.BaseOffset, rb.BaseOffset)
		}
		bases = append(bases, ra.BaseOffset)
	}
	return a, b, bases
}

func mustDigest(t *testing.T, l *Log, from, to int64) Digest {
	t.Helper()
	d, err := l.Digest(from, to, nil)
	if err != nil {
		t.Fatalf("Digest(%d, %d): %v", from, to, err)
	}
	return d
}

// TestDigestIgnoresSegmentBoundaries: the same batches give the same
// digest of every range, whatever the segment sizes of the two logs, and
// ranges that split the log add up to it.
func TestDigestIgnoresSegmentBoundaries(t *testing.T) {
	rng := newRand(t)
	var batches [][]byte
	for i := range 60 {
		batches = append(batches, makeBatch(rng, int32(1+i%5), 300+i*37, 1000, 1000+int64(i)))
	}
	a, b, bases := digestLogs(t, batches, 2<<10, 5<<10)
	if a.Segments() < 5 || b.Segments() < 3 || a.Segments() == b.Segments() {
		t.Fatalf("want several segments of different sizes, got %d and %d", a.Segments(), b.Segments())
	}
	end := a.NextOffset()
	whole := mustDigest(t, a, 0, end)
	if whole.Batches != int64(len(batches)) || whole.Bytes != a.Size() {
		t.Fatalf("digest covers %d batches, %d bytes; log has %d, %d", whole.Batches, whole.Bytes, len(batches), a.Size())
	}
	if got := mustDigest(t, b, 0, end); got != whole {
		t.Fatalf("digests of the same log differ: %+v and %+v", whole, got)
	}
	// Ranges at each log's segment bases, and ranges that do not start at a
	// batch boundary (the batch holding From belongs to the range before).
	for _, l := range []*Log{a, b} {
		sb := l.SegmentBases()
		for i, from := range sb {
			to := end
			if i+1 < len(sb) {
				to = sb[i+1]
			}
			if da, db := mustDigest(t, a, from, to), mustDigest(t, b, from, to); da != db {
				t.Fatalf("range [%d, %d): %+v and %+v", from, to, da, db)
			}
		}
	}
	var total int64
	for _, cut := range [][2]int64{{0, bases[7] + 1}, {bases[7] + 1, bases[40]}, {bases[40], end}} {
		da, db := mustDigest(t, a, cut[0], cut[1]), mustDigest(t, b, cut[0], cut[1])
		if da != db {
			t.Fatalf("range %v: %+v and %+v", cut, da, db)
		}
		total += da.Batches
	}
	if total != int64(len(batches)) {
		t.Fatalf("split ranges cover %d batches, want %d", total, len(batches))
	}
	if d := mustDigest(t, a, bases[3], bases[3]); d.Batches != 0 || d.Sum != mustDigest(t, b, end, end).Sum {
		t.Fatalf("empty ranges: %+v", d)
	}
}

// TestDigestSeesAlteredRecords: a batch whose records differ (its
// checksum recomputed, so it verifies) changes the digest of the ranges
// holding it and only those.
func TestDigestSeesAlteredRecords(t *testing.T) {
	rng := newRand(t)
	var batches [][]byte
	for i := range 20 {
		batches = append(batches, makeBatch(rng, 3, 400, 1000, 1000+int64(i)))
	}
	altered := make([][]byte, len(batches))
	for i := range batches {
		altered[i] = bytes.Clone(batches[i])
	}
	last := altered[12]
	last[len(last)-2] ^= 0x10 // the last byte of the last record's value
	sum := wire.BatchChecksum(last)
	for i := range 8 {
		last[20+i] = byte(sum >> (8 * i))
	}
	if _, _, err := wire.VerifyBatch(last, 0); err != nil {
		t.Fatalf("altered batch does not verify: %v", err)
	}
	a, _, bases := digestLogs(t, batches, 4<<10, 4<<10)
	b, _, _ := digestLogs(t, altered, 4<<10, 4<<10)
	end := a.NextOffset()
	if da, db := mustDigest(t, a, 0, end), mustDigest(t, b, 0, end); da.Sum == db.Sum || da.Batches != db.Batches || da.Bytes != db.Bytes {
		t.Fatalf("digests of logs with a different record: %+v and %+v", da, db)
	}
	if da, db := mustDigest(t, a, 0, bases[12]), mustDigest(t, b, 0, bases[12]); da != db {
		t.Fatalf("range before the altered batch: %+v and %+v", da, db)
	}
	if da, db := mustDigest(t, a, bases[13], end), mustDigest(t, b, bases[13], end); da != db {
		t.Fatalf("range after the altered batch: %+v and %+v", da, db)
	}
	if da, db := mustDigest(t, a, bases[12], bases[13]), mustDigest(t, b, bases[12], bases[13]); da.Sum == db.Sum {
		t.Fatalf("the altered batch's range has the same digest: %+v", da)
	}
}

// TestDigestRange: a range outside the log is ErrOffsetOutOfRange; pace
// sees every byte read and its error stops the digest.
func TestDigestRange(t *testing.T) {
	rng := newRand(t)
	l := mustOpen(t, t.TempDir(), Options{SegmentBytes: 8 << 10})
	defer l.Close()
	for i := range 40 {
		mustAppend(t, l, makeBatch(rng, 2, 500, 1000, 1000+int64(i)))
	}
	end := l.NextOffset()
	for _, r := range [][2]int64{{-1, 5}, {0, end + 1}, {5, 4}} {
		if _, err := l.Digest(r[0], r[1], nil); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("Digest%v: %v, want ErrOffsetOutOfRange", r, err)
		}
	}
	var read int
	if _, err := l.Digest(0, end, func(n int) error { read += n; return nil }); err != nil || int64(read) != l.Size() {
		t.Fatalf("pace saw %d bytes of %d (%v)", read, l.Size(), err)
	}
	stop := fmt.Errorf("stop")
	if _, err := l.Digest(0, end, func(int) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("pace error: %v", err)
	}
}
