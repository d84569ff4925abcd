package replica

import (
	"slices"
	"testing"

	"github.com/rafka/rafka/wire"
)

func TestClipAtHighWatermark(t *testing.T) {
	// Three batches of 2, 3 and 1 records at offsets 10, 12 and 15. The high
	// watermark is always at a batch boundary.
	var data []byte
	bb := wire.NewBatchBuilder()
	base := int64(10)
	for _, n := range []int{2, 3, 1} {
		bb.Reset()
		for range n {
			bb.Append(1, nil, []byte("v"), nil)
		}
		b, err := bb.Build(wire.CodecNone)
		if err != nil {
			t.Fatal(err)
		}
		wire.SetBaseOffset(b, base)
		base += int64(n)
		data = append(data, b...)
	}
	sizes := []int{wire.PeekBatchSize(data)}
	sizes = append(sizes, wire.PeekBatchSize(data[sizes[0]:]))
	for _, c := range []struct {
		hwm      int64
		wantLen  int
		wantNext int64
	}{
		{16, len(data), 16},
		{20, len(data), 16},
		{15, sizes[0] + sizes[1], 15},
		{12, sizes[0], 12},
		{10, 0, 10},
	} {
		got, next := clip(slices.Clone(data), 16, c.hwm)
		if len(got) != c.wantLen || next != c.wantNext {
			t.Errorf("hwm %d: %d bytes next %d, want %d bytes next %d", c.hwm, len(got), next, c.wantLen, c.wantNext)
		}
	}
}
