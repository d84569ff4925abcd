package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/rafka/rafka/wire"
)

// makeBatch builds a valid batch by hand (docs/protocol.md, "Record batches"): a 64-byte
// header and about payload bytes of records with random values (wire's
// VerifyBatch checks record framing; a record takes at least 8 bytes here,
// and a size a varint boundary makes impossible grows by a byte). A control
// batch (records 0) gets a random body of exactly payload bytes. Base offset
// and term are left zero for the Log to stamp.
func makeBatch(rng *rand.Rand, records int32, payload int, firstTs, maxTs int64) []byte {
	var recs []byte
	for i := range int(records) {
		size := max(8, payload/int(records))
		if i == int(records)-1 {
			size = max(8, payload-len(recs))
		}
		recs = appendRecord(recs, rng, int64(i), size)
	}
	if records > 0 {
		payload = len(recs)
	}
	b := make([]byte, wire.BatchHeaderSize+payload)
	binary.LittleEndian.PutUint32(b[8:], uint32(len(b)-12))
	b[28] = wire.BatchVersion
	if records == 0 {
		b[29] = wire.AttrControl
	}
	binary.LittleEndian.PutUint32(b[30:], uint32(records))
	binary.LittleEndian.PutUint64(b[34:], uint64(firstTs))
	binary.LittleEndian.PutUint64(b[42:], uint64(maxTs))
	binary.LittleEndian.PutUint64(b[50:], ^uint64(0))
	for i := wire.BatchHeaderSize; i < len(b); i++ {
		b[i] = byte(rng.Uint32())
	}
	copy(b[wire.BatchHeaderSize:], recs)
	binary.LittleEndian.PutUint64(b[20:], wire.BatchChecksum(b))
	return b
}

// appendRecord appends a record of size bytes (or one or two more when no
// record has exactly size bytes) with offset delta off, timestamp delta 0, a
// null or one-byte key, a random value and no headers.
func appendRecord(dst []byte, rng *rand.Rand, off int64, size int) []byte {
	vl := func(v int64) int { return len(binary.AppendVarint(nil, v)) }
	for want := size; want <= size+2; want++ {
		for v := 0; v <= want; v++ {
			for key := 0; key <= 1; key++ {
				body := 1 + vl(off) + 1 + key + vl(int64(v)) + v + 1
				if vl(int64(body))+body != want {
					continue
				}
				dst = binary.AppendVarint(dst, int64(body))
				dst = binary.AppendVarint(binary.AppendVarint(dst, 0), off)
				if key == 0 {
					dst = binary.AppendVarint(dst, -1)
				} else {
					dst = append(binary.AppendVarint(dst, 1), 'k')
				}
				dst = binary.AppendVarint(dst, int64(v))
				for range v {
					dst = append(dst, byte(rng.Uint32()))
				}
				return binary.AppendVarint(dst, 0)
			}
		}
	}
	panic(fmt.Sprintf("appendRecord: no record of %d bytes", size))
}

func newRand(t testing.TB) *rand.Rand {
	t.Helper()
	return rand.New(rand.NewPCG(1, uint64(len(t.Name()))))
}

// readAllBatches reads the whole log from StartOffset and checks that every
// batch verifies and offsets are contiguous. It returns the headers.
func readAllBatches(t testing.TB, l *Log) []wire.BatchHeader {
	t.Helper()
	var hs []wire.BatchHeader
	off := l.StartOffset()
	for i := 0; off < l.NextOffset(); i++ {
		if i > 1<<20 {
			t.Fatal("read loop does not advance")
		}
		v, err := l.Read(off, 1<<20)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		b := v.Bytes()
		if len(b) == 0 {
			t.Fatalf("Read(%d) below NextOffset %d returned nothing", off, l.NextOffset())
		}
		first := true
		for len(b) > 0 {
			h, n, err := wire.VerifyBatch(b, 0)
			if err != nil {
				t.Fatalf("served batch at offset %d does not verify: %v", off, err)
			}
			if first && (h.BaseOffset > off || h.NextOffset() <= off) {
				t.Fatalf("Read(%d) starts with batch [%d,%d)", off, h.BaseOffset, h.NextOffset())
			}
			if !first && h.BaseOffset != off {
				t.Fatalf("gap: batch at %d, expected %d", h.BaseOffset, off)
			}
			first = false
			hs = append(hs, h)
			off = h.NextOffset()
			b = b[n:]
		}
		if v.NextOffset() != off {
			t.Fatalf("View.NextOffset %d, batches end at %d", v.NextOffset(), off)
		}
		v.Release()
	}
	return hs
}

func mustOpen(t testing.TB, dir string, o Options) *Log {
	t.Helper()
	l, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

func mustAppend(t testing.TB, l *Log, b []byte) AppendResult {
	t.Helper()
	r, err := l.Append(b, 7)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return r
}

func isErr(err, target error) bool { return errors.Is(err, target) }
