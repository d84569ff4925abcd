package wire

import (
	"bytes"
	"math/rand/v2"
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

// Compress ahead of Finish changes nothing in the batch: not when the
// producer fields are set after it, not when records are appended after it
// (they are compressed again), not when lz4 does not pay.
func TestCompressThenFinishMatchesBuild(t *testing.T) {
	random := make([]byte, 20*1024)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	compressible := []byte(strings.Repeat("abcdefgh", 128))
	for _, tc := range []struct {
		name  string
		value func(i int) []byte
		more  int // records appended after Compress
		codec Codec
	}{
		{"compressible", func(int) []byte { return compressible }, 0, CodecLZ4},
		{"compressible, appended after", func(int) []byte { return compressible }, 3, CodecLZ4},
		{"incompressible", func(i int) []byte { return random[i*1024 : (i+1)*1024] }, 0, CodecNone},
		// The records appended repeat earlier bytes: now lz4 pays.
		{"incompressible, appended after", func(i int) []byte { return random[i*1024 : (i+1)*1024] }, 2, CodecLZ4},
	} {
		b := NewBatchBuilder()
		for i := range 20 {
			b.Append(int64(i), nil, tc.value(i), nil)
		}
		b.Compress(CodecLZ4)
		for i := range tc.more {
			b.Append(int64(100+i), []byte("k"), tc.value(i)[:100], nil)
		}
		b.Compress(CodecNone) // no effect
		b.SetProducer(42, 3, 1000)
		want, err := b.Build(CodecLZ4)
		if err != nil {
			t.Fatal(err)
		}
		for round := range 2 { // Finish twice: a resent batch rebuilt with new producer fields
			if round == 1 {
				b.SetProducer(42, 4, 0)
				if want, err = b.Build(CodecLZ4); err != nil {
					t.Fatal(err)
				}
			}
			got, err := b.Finish(CodecLZ4)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s, round %d: Finish after Compress differs from Build", tc.name, round)
			}
			h, _, err := VerifyBatch(got, 0)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if h.ProducerEpoch != int16(3+round) || h.Codec() != tc.codec {
				t.Fatalf("%s: epoch %d, codec %s; want %d, %s", tc.name, h.ProducerEpoch, h.Codec(), 3+round, tc.codec)
			}
		}
		// Reset forgets the compressed records.
		b.Reset()
		b.Append(1, nil, []byte("x"), nil)
		want, _ = b.Build(CodecLZ4)
		if got, _ := b.Finish(CodecLZ4); !bytes.Equal(got, want) {
			t.Fatalf("%s: Finish after Reset returned the old batch", tc.name)
		}
	}
}

func TestCompressAllocatesNothing(t *testing.T) {
	b := NewBatchBuilder()
	value := bytes.Repeat([]byte("abcd"), 256)
	fill := func() {
		b.Reset()
		for range 64 {
			b.Append(1, nil, value, nil)
		}
	}
	fill()
	b.Compress(CodecLZ4) // warm up
	if n := testing.AllocsPerRun(20, func() {
		fill()
		b.Compress(CodecLZ4)
		if _, err := b.Finish(CodecLZ4); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per batch", n)
	}
}
