package bench

import (
	"bytes"
	"sync"
	"testing"

	"github.com/pierrec/lz4/v4"
)

// lz4Ratio compresses the concatenation of n values as one block, as the
// producer compresses a batch, and returns compressed/original.
func lz4Ratio(t *testing.T, p *Payloads, n int) float64 {
	t.Helper()
	var src []byte
	for range n {
		src = append(src, p.Next()...)
	}
	dst := make([]byte, lz4.CompressBlockBound(len(src)))
	var c lz4.Compressor
	m, err := c.CompressBlock(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if m == 0 { // incompressible: lz4 declines
		return 1
	}
	return float64(m) / float64(len(src))
}

func TestPayloadCompressibility(t *testing.T) {
	for _, tc := range []struct {
		size            int
		compressibility float64
		lo, hi          float64 // accepted compressed/original
	}{
		{1024, 0, 0.99, 1.01},
		{1024, 0.5, 0.45, 0.56},
		{1024, 0.9, 0.07, 0.16},
		{100, 0.5, 0.45, 0.58},
		{16 << 10, 0.75, 0.20, 0.30},
	} {
		p, err := NewPayloads(tc.size, tc.compressibility, 1)
		if err != nil {
			t.Fatal(err)
		}
		got := lz4Ratio(t, p, (1<<20)/tc.size) // about a 1 MiB batch
		if got < tc.lo || got > tc.hi {
			t.Errorf("size %d compressibility %v: lz4 ratio %.3f, want [%v, %v]", tc.size, tc.compressibility, got, tc.lo, tc.hi)
		}
	}
}

func TestPayloadValuesDiffer(t *testing.T) {
	p, err := NewPayloads(1024, 0, 7)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := range 2000 {
		v := p.Next()
		if len(v) != 1024 {
			t.Fatalf("value %d: %d bytes", i, len(v))
		}
		if seen[string(v)] {
			t.Fatalf("value %d repeats an earlier one", i)
		}
		seen[string(v)] = true
	}
	// Same seed, same bytes: runs are reproducible.
	a, _ := NewPayloads(64, 0.3, 42)
	b, _ := NewPayloads(64, 0.3, 42)
	for range 100 {
		if !bytes.Equal(a.Next(), b.Next()) {
			t.Fatal("same seed gave different values")
		}
	}
}

func TestPayloadWrapsAround(t *testing.T) {
	p, err := NewPayloads(3000, 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	pool := len(p.buf) - p.size
	for i := range 2 * pool / 3000 {
		if v := p.Next(); len(v) != 3000 {
			t.Fatalf("value %d: %d bytes", i, len(v))
		}
	}
}

func TestPayloadRejects(t *testing.T) {
	for _, c := range []float64{-0.1, 1.1} {
		if _, err := NewPayloads(10, c, 0); err == nil {
			t.Errorf("compressibility %v accepted", c)
		}
	}
	if _, err := NewPayloads(-1, 0, 0); err == nil {
		t.Error("negative size accepted")
	}
	if p, err := NewPayloads(0, 0, 0); err != nil || len(p.Next()) != 0 {
		t.Errorf("empty values: %v", err)
	}
}

func TestStamp(t *testing.T) {
	v := make([]byte, 16)
	if err := Stamp(v, 1_700_000_000_123_456_789); err != nil {
		t.Fatal(err)
	}
	got, err := ReadStamp(v)
	if err != nil || got != 1_700_000_000_123_456_789 {
		t.Fatalf("ReadStamp = %d, %v", got, err)
	}
	if err := Stamp(make([]byte, 7), 1); err == nil {
		t.Error("stamped a 7-byte value")
	}
	if _, err := ReadStamp(make([]byte, 7)); err == nil {
		t.Error("read a stamp from a 7-byte value")
	}
}

// TestPayloadFork checks that forks share the pool, start a stride apart,
// and may be used from several goroutines at once (run with -race).
func TestPayloadFork(t *testing.T) {
	p, err := NewPayloads(1000, 0.5, 7)
	if err != nil {
		t.Fatal(err)
	}
	f0, f1 := p.Fork(0), p.Fork(1)
	if &f0.buf[0] != &p.buf[0] || &f1.buf[0] != &p.buf[0] {
		t.Fatal("a fork copied the pool")
	}
	if !bytes.Equal(f0.Next(), p.Next()) {
		t.Error("fork 0 does not start where its parent does")
	}
	if got, want := f1.Next(), p.buf[forkStride:forkStride+1000]; !bytes.Equal(got, want) {
		t.Error("fork 1 does not start a stride further")
	}
	if a, b := p.Fork(3).Next(), p.Fork(4).Next(); bytes.Equal(a, b) {
		t.Error("successive forks start on the same value")
	}
	var wg sync.WaitGroup
	for i := range 4 {
		f := p.Fork(i)
		wg.Go(func() {
			for range 20000 { // wraps around the 8 MiB pool
				if len(f.Next()) != 1000 {
					t.Error("short value")
					return
				}
			}
		})
	}
	wg.Wait()
}
