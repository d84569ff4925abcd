package wire

import (
	"bytes"
	"strings"
	"testing"
)

func TestFinishMatchesBuild(t *testing.T) {
	b := NewBatchBuilder()
	for _, codec := range []Codec{CodecNone, CodecLZ4} {
		for _, n := range []int{1, 7, 300} {
			b.Reset()
			b.Grow(n * 64)
			for i := range n {
				b.Append(int64(1000+i), []byte("k"), []byte(strings.Repeat("v", i%50)), []Header{{Key: "h", Value: []byte("x")}})
			}
			want, err := b.Build(codec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := b.Finish(codec)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s n=%d: Finish differs from Build", codec, n)
			}
			if _, _, err := VerifyBatch(got, 0); err != nil {
				t.Fatalf("%s n=%d: %v", codec, n, err)
			}
		}
	}
	b.Reset()
	if _, err := b.Finish(CodecNone); err == nil {
		t.Fatal("Finish of an empty builder succeeded")
	}
}

func TestFinishAllocatesNothing(t *testing.T) {
	b := NewBatchBuilder()
	value := bytes.Repeat([]byte("abcd"), 256)
	fill := func() {
		b.Reset()
		for range 64 {
			b.Append(1, nil, value, nil)
		}
	}
	for _, codec := range []Codec{CodecNone, CodecLZ4} {
		fill()
		b.Finish(codec) // warm up
		if n := testing.AllocsPerRun(20, func() {
			fill()
			if _, err := b.Finish(codec); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations per batch", codec, n)
		}
	}
}
