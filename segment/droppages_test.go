package segment

import (
	"bytes"
	"testing"

	"github.com/rafka/rafka/wire"
)

// Releasing a view drops its pages from the mapping; views over the same
// pages still read the right bytes (they fault back in from the page cache).
func TestReleaseKeepsOverlappingViewsIntact(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Options{SegmentBytes: 8 << 20})
	defer l.Close()
	rng := newRand(t)
	var want [][]byte
	for range 40 {
		b := makeBatch(rng, 4, 16<<10, 1000, 1000)
		want = append(want, bytes.Clone(b))
		mustAppend(t, l, b)
	}
	a, err := l.Read(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Read(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	a.Release()
	a.Release() // idempotent
	got := b.Bytes()
	for i, w := range want {
		if len(got) == 0 {
			break
		}
		h, n, err := wire.VerifyBatch(got, 0)
		if err != nil {
			t.Fatalf("batch %d after the other view's release: %v", i, err)
		}
		if h.BaseOffset != int64(4*i) || !bytes.Equal(got[wire.BatchHeaderSize:n], w[wire.BatchHeaderSize:]) {
			t.Fatalf("batch %d changed", i)
		}
		got = got[n:]
	}
	b.Release()
}
