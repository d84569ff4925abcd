package wire

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestKeyHash(t *testing.T) {
	// Reference values of xxhash64 with seed 0.
	for _, c := range []struct {
		key  string
		want uint64
	}{
		{"", 0xef46db3751d8e999},
		{"a", 0xd24ec4f1a98c6e5b},
		{"abc", 0x44bc2cf5ad770999},
	} {
		if got := KeyHash([]byte(c.key)); got != c.want {
			t.Errorf("KeyHash(%q) = %#x, want %#x", c.key, got, c.want)
		}
	}
}

func TestPartitionRange(t *testing.T) {
	const max = math.MaxUint64
	cases := []struct {
		i, n       int32
		start, end uint64
	}{
		{0, 1, 0, max},
		{0, 2, 0, 1<<63 - 1},
		{1, 2, 1 << 63, max},
		{0, 3, 0, 0x5555555555555555},
		{1, 3, 0x5555555555555556, 0xaaaaaaaaaaaaaaaa},
		{2, 3, 0xaaaaaaaaaaaaaaab, max},
		{3, 4, 3 << 62, max},
	}
	for _, c := range cases {
		s, e := PartitionRange(c.i, c.n)
		if s != c.start || e != c.end {
			t.Errorf("PartitionRange(%d, %d) = [%#x, %#x], want [%#x, %#x]", c.i, c.n, s, e, c.start, c.end)
		}
	}
}

// TestPartitionRangesCoverAndAgree: for many partition counts the ranges are
// contiguous, cover the space, are equal within one, and PartitionForHash
// maps every boundary and random hash to the range that holds it.
func TestPartitionRangesCoverAndAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int32{1, 2, 3, 5, 7, 10, 16, 100, 1000, 4096, 1<<31 - 1} {
		var minSize, maxSize uint64 = math.MaxUint64, 0
		if s, _ := PartitionRange(0, n); s != 0 {
			t.Fatalf("n=%d: the first range starts at %#x", n, s)
		}
		if _, e := PartitionRange(n-1, n); e != math.MaxUint64 {
			t.Fatalf("n=%d: the last range ends at %#x", n, e)
		}
		step := max(1, n/200) // sample the huge counts
		for i := int32(0); i >= 0 && i < n; i += step {
			s, e := PartitionRange(i, n)
			if i > 0 {
				if _, prevEnd := PartitionRange(i-1, n); s != prevEnd+1 {
					t.Fatalf("n=%d: partition %d starts at %#x, previous ends at %#x", n, i, s, prevEnd)
				}
			}
			size := e - s
			minSize, maxSize = min(minSize, size), max(maxSize, size)
			hashes := []uint64{s, e, s + size/2}
			if size > 0 {
				hashes = append(hashes, s+rng.Uint64N(size))
			}
			for _, h := range hashes {
				if p := PartitionForHash(h, n); p != i {
					t.Fatalf("n=%d: hash %#x in partition %d's range, PartitionForHash says %d", n, h, i, p)
				}
			}
			if i > 0 && PartitionForHash(s-1, n) != i-1 {
				t.Fatalf("n=%d: hash below partition %d's range maps to %d", n, i, PartitionForHash(s-1, n))
			}
		}
		if maxSize-minSize > 1 {
			t.Fatalf("n=%d: range sizes differ by %d", n, maxSize-minSize)
		}
	}
}

func TestPartitionPanics(t *testing.T) {
	for _, f := range []func(){
		func() { PartitionRange(0, 0) },
		func() { PartitionRange(-1, 3) },
		func() { PartitionRange(3, 3) },
		func() { PartitionForHash(1, 0) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		}()
	}
}
