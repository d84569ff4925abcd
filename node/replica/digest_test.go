package replica

import (
	"errors"
	"slices"
	"testing"

	"github.com/rafka/rafka/segment"
	"github.com/rafka/rafka/wire"
)

// replicatedLog opens a segment log with small segments, appends req (with
// term) and serves it as a replicated partition committed up to hwm.
func replicatedLog(t *testing.T, req []byte, hwm int64) (*Partition, *segment.Log) {
	t.Helper()
	l, err := segment.Open(t.TempDir(), segment.Options{SegmentBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	for rest := slices.Clone(req); len(rest) > 0; {
		n := wire.PeekBatchSize(rest)
		if _, err := l.Append(rest[:n], 3); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	p := OpenOn(Config{Topic: "t", Partition: 0}, l)
	t.Cleanup(func() { p.Close() })
	p.Committed(hwm)
	return p, l
}

// TestDigestsOfCommittedRanges: digests cover committed data only; a log
// whose uncommitted tail differs has the same digests of every committed
// range; sealed ranges are read once and then answered from the cache.
func TestDigestsOfCommittedRanges(t *testing.T) {
	committed := makeRequest(t, 40, 2, 100) // 40 batches of two records
	tailA := makeRequest(t, 5, 1, 50)
	tailB := makeRequest(t, 7, 3, 20)
	const hwm = 80
	a, la := replicatedLog(t, append(slices.Clone(committed), tailA...), hwm)
	b, _ := replicatedLog(t, append(slices.Clone(committed), tailB...), hwm)
	if la.NextOffset() <= hwm || la.Segments() < 3 {
		t.Fatalf("want an uncommitted tail and several segments: end %d, %d segments", la.NextOffset(), la.Segments())
	}
	if _, err := a.Digest(Range{0, hwm + 1}, nil); !errors.Is(err, segment.ErrOffsetOutOfRange) {
		t.Fatalf("digest past the high watermark: %v", err)
	}
	ranges, err := a.SegmentRanges(0, a.HighWatermark())
	if err != nil {
		t.Fatal(err)
	}
	if len(ranges) != la.Segments() || ranges[0].From != 0 || ranges[len(ranges)-1].To != hwm {
		t.Fatalf("ranges %v for %d segments up to %d", ranges, la.Segments(), hwm)
	}
	var batches int64
	for i, r := range ranges {
		if i > 0 && r.From != ranges[i-1].To {
			t.Fatalf("ranges %v leave a gap", ranges)
		}
		da, err := a.Digest(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		db, err := b.Digest(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		if da != db {
			t.Fatalf("range %v: %+v and %+v", r, da, db)
		}
		batches += da.Batches
	}
	if batches != 40 {
		t.Fatalf("ranges cover %d batches, want 40", batches)
	}
	// A sealed range is answered from the cache: no read, so no pacing.
	read := 0
	pace := func(n int) error { read += n; return nil }
	if _, err := a.Digest(ranges[0], pace); err != nil || read != 0 {
		t.Fatalf("cached digest read %d bytes (%v)", read, err)
	}
	// The range in the active segment is read again every time.
	if _, err := a.Digest(ranges[len(ranges)-1], pace); err != nil || read == 0 {
		t.Fatalf("active segment digest read %d bytes (%v)", read, err)
	}
	// Once the tail commits, the two logs differ in the last range only.
	a.Committed(la.NextOffset())
	b.Committed(la.NextOffset())
	last := Range{ranges[len(ranges)-1].From, la.NextOffset()}
	da, err := a.Digest(last, nil)
	if err != nil {
		t.Fatal(err)
	}
	db, err := b.Digest(last, nil)
	if err != nil {
		t.Fatal(err)
	}
	if da.Sum == db.Sum {
		t.Fatalf("different tails, same digest %+v", da)
	}
}

// TestDigestOffline: an offline partition has no digests.
func TestDigestOffline(t *testing.T) {
	p := Offline("t", 0, errors.New("disk gone"))
	if _, err := p.Digest(Range{0, 1}, nil); !errors.Is(err, ErrOffline) {
		t.Fatalf("digest of an offline partition: %v", err)
	}
	if _, err := p.SegmentRanges(0, 1); !errors.Is(err, ErrOffline) {
		t.Fatalf("ranges of an offline partition: %v", err)
	}
}
