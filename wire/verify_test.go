package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
)

// TestVerifyBatchChecksRecords: a batch whose checksum is right but whose
// records are not what its header says is refused before it is stored.
func TestVerifyBatchChecksRecords(t *testing.T) {
	good := rec(0, 0, 1, "k", 1, "v", 0)
	second := rec(0, 1, -1, 1, "w", 1, 1, "h", 2, "hv")
	two := append(bytes.Clone(good), second...)
	plain := rec(0, 0, -1, 200, strings.Repeat("a", 200), 0)
	block := lz4Block(plain)
	cases := []struct {
		name  string
		batch []byte
		max   int
		want  error
	}{
		{"count 2^31-1 with one record", rawBatch(good, math.MaxInt32, 0, 0, 0), 0, ErrCorruptBatch},
		{"count larger than records", rawBatch(two, 3, 0, 0, 0), 0, ErrCorruptBatch},
		{"count smaller than records", rawBatch(two, 1, 0, 0, 0), 0, ErrCorruptBatch},
		{"garbage records", rawBatch(bytes.Repeat([]byte{0xfe}, 100), 1, 0, 0, 0), 0, ErrCorruptBatch},
		{"zeros", rawBatch(make([]byte, 60), 10, 0, 0, 0), 0, ErrCorruptBatch},
		{"trailing byte", rawBatch(append(bytes.Clone(two), 0), 2, 0, 0, 0), 0, ErrCorruptBatch},
		{"record length past end", rawBatch(append(binary.AppendVarint(nil, 50), good[1:]...), 1, 0, 0, 0), 0, ErrCorruptBatch},
		{"record length short of its fields", rawBatch(append(binary.AppendVarint(nil, int64(len(good)-2)), good[1:]...), 1, 0, 0, 0), 0, ErrCorruptBatch},
		{"record length beyond its fields", rawBatch(rec(0, 0, -1, 0, 0, "x"), 1, 0, 0, 0), 0, ErrCorruptBatch},
		{"offset deltas repeat", rawBatch(append(bytes.Clone(good), good...), 2, 0, 0, 0), 0, ErrCorruptBatch},
		{"offset deltas skip", rawBatch(append(bytes.Clone(good), rec(0, 2, -1, 0, 0)...), 2, 0, 0, 0), 0, ErrCorruptBatch},
		{"key past record", rawBatch(rec(0, 0, 9, "k"), 1, 0, 0, 0), 0, ErrCorruptBatch},
		{"negative value length", rawBatch(rec(0, 0, -1, -1, 0), 1, 0, 0, 0), 0, ErrCorruptBatch},
		{"header count past record", rawBatch(rec(0, 0, -1, 0, 1000), 1, 0, 0, 0), 0, ErrCorruptBatch},
		{"header value past record", rawBatch(rec(0, 0, -1, 0, 1, 0, 3, "x"), 1, 0, 0, 0), 0, ErrCorruptBatch},
		{"overlong varint", rawBatch(append([]byte{0x80 | byte(len(good)-1)<<1, 0}, good[1:]...), 1, 0, 0, 0), 0, ErrCorruptBatch},
		{"lz4 longer than the batch limit", rawBatch(lz4Section(1<<20, bytes.Repeat([]byte{0}, 8<<10)), 1, 0, 0, 1), 64 << 10, ErrBatchTooLarge},
		{"lz4 count impossible for its length", rawBatch(lz4Section(uint32(len(plain)), block), int32(len(plain)/minRecordSize+1), 0, 0, 1), 0, ErrCorruptBatch},
		{"lz4 count 2^31-1", rawBatch(lz4Section(uint32(len(plain)), block), math.MaxInt32, 0, 0, 1), 0, ErrCorruptBatch},
		{"lz4 length beyond ratio", rawBatch(lz4Section(1<<20, block[:8]), 1, 0, 0, 1), 0, ErrCorruptBatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := VerifyBatch(c.batch, c.max); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	// What the cases are made of is valid.
	for _, b := range [][]byte{rawBatch(two, 2, 0, 0, 0), rawBatch(lz4Section(uint32(len(plain)), block), 1, 0, 0, 1)} {
		if _, _, err := VerifyBatch(b, 0); err != nil {
			t.Fatal(err)
		}
	}
}

// TestVerifyBatchAcceptsBuilt: every batch BatchBuilder and
// AppendControlBatch write verifies, at the broker's limit and at segment
// recovery's, compressed or not, stamped with an offset and term or not.
func TestVerifyBatchAcceptsBuilt(t *testing.T) {
	var shapes [][]testRecord
	shapes = append(shapes, sampleRecords(), []testRecord{{value: []byte{}}}, []testRecord{{key: []byte{}, value: []byte("x")}})
	var big []testRecord
	for i := range 3000 {
		big = append(big, testRecord{ts: int64(i % 5), key: []byte(strings.Repeat("k", i%300)), value: bytes.Repeat([]byte("v"), i%700),
			headers: []Header{{Key: "h", Value: []byte(strings.Repeat("x", i%200))}, {Key: "", Value: []byte{}}}})
	}
	shapes = append(shapes, big)
	for _, recs := range shapes {
		for _, codec := range []Codec{CodecNone, CodecLZ4} {
			b := buildRecords(t, recs, codec)
			SetBaseOffset(b, 1<<40)
			SetTerm(b, 7)
			for _, limit := range []int{0, math.MaxInt32} {
				if _, n, err := VerifyBatch(b, limit); err != nil || n != len(b) {
					t.Fatalf("%d records, %s, limit %d: %v", len(recs), codec, limit, err)
				}
			}
		}
	}
	for _, body := range [][]byte{nil, []byte("membership change")} {
		c, _ := AppendControlBatch(nil, 5, body)
		if _, _, err := VerifyBatch(c, 0); err != nil {
			t.Fatalf("control batch: %v", err)
		}
	}
}

func TestVerifyBatchNoAllocs(t *testing.T) {
	b := buildRecords(t, sampleRecords(), CodecNone)
	n := testing.AllocsPerRun(100, func() {
		if _, _, err := VerifyBatch(b, 0); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Fatalf("%v allocs", n)
	}
}

// TestRecordIterYieldsGoodRecordsFirst: a malformed record ends iteration
// with an error naming its offset, after the records before it.
func TestRecordIterYieldsGoodRecordsFirst(t *testing.T) {
	r0 := rec(0, 0, -1, 1, "a", 0)
	r1 := rec(0, 1, -1, 1, "b", 0)
	bad := rec(0, 2, 5, "k") // key longer than the record
	b := rawBatch(bytes.Join([][]byte{r0, r1, bad}, nil), 3, 0, 0, 0)
	SetBaseOffset(b, 100)
	var it RecordIter
	if err := it.Reset(b); err != nil {
		t.Fatal(err)
	}
	var got []string
	var r Record
	for it.Next(&r) {
		got = append(got, string(r.Value))
	}
	err := it.Err()
	if len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("yielded %q before the error", got)
	}
	if !errors.Is(err, ErrCorruptBatch) || !strings.Contains(err.Error(), "offset 102") {
		t.Fatalf("error %v, want ErrCorruptBatch naming offset 102", err)
	}
	// A count beyond the records: the records present, then an error.
	b = rawBatch(bytes.Join([][]byte{r0, r1}, nil), math.MaxInt32, 0, 0, 0)
	if err := it.Reset(b); err != nil {
		t.Fatal(err)
	}
	n := 0
	for it.Next(&r) {
		n++
	}
	if n != 2 || !errors.Is(it.Err(), ErrCorruptBatch) {
		t.Fatalf("%d records, %v", n, it.Err())
	}
}

// TestRecordIterBoundsLZ4: a compressed section claiming more than its block
// can hold, or more records than its length can, is refused before the
// decompression buffer is sized.
func TestRecordIterBoundsLZ4(t *testing.T) {
	block := lz4Block(bytes.Repeat([]byte{0}, 64<<10))
	for _, b := range [][]byte{
		rawBatch(lz4Section(MaxRecordsSize+1, bytes.Repeat(block, 300)), 1, 0, 0, 1),
		rawBatch(lz4Section(1<<26, block[:16]), 1, 0, 0, 1),
		rawBatch(lz4Section(64<<10, block), 64<<10/minRecordSize+1, 0, 0, 1),
	} {
		var it RecordIter
		var err error
		alloc := allocBytes(func() { err = it.Reset(b) })
		if !errors.Is(err, ErrCorruptBatch) || alloc > 16<<10 {
			t.Fatalf("%v, %d bytes allocated", err, alloc)
		}
	}
}

// TestVerifyBatchChecksum: the checksum-only check accepts a batch with
// malformed records under a valid checksum and refuses damage.
func TestVerifyBatchChecksum(t *testing.T) {
	b := rawBatch(rec(0, 0, 9, "k"), 1, 0, 0, 0)
	if _, n, err := VerifyBatchChecksum(b, 0); err != nil || n != len(b) {
		t.Fatalf("%d %v", n, err)
	}
	b[len(b)-1] ^= 1
	if _, _, err := VerifyBatchChecksum(b, 0); !errors.Is(err, ErrCorruptBatch) {
		t.Fatal(err)
	}
}
