package segment

import (
	"encoding/binary"
	"fmt"

	"github.com/cespare/xxhash/v2"

	"github.com/rafka/rafka/wire"
)

// DigestPrefix is how many bytes of each batch a Digest hashes: its first
// 28, which hold the base offset, the length, the term and the checksum of
// the rest of the batch (bytes [28, end)). A format constant of the
// replica consistency check: replicas of other versions must hash the same
// bytes to compare.
const DigestPrefix = 28

// digestChunk is how many bytes of batches one Read of a digest takes at
// most, so that pacing sees progress in small steps.
const digestChunk = 1 << 20

// Digest summarises the batches of a log whose base offsets lie in
// [From, To): Sum is the xxhash64 of the concatenated first DigestPrefix
// bytes of each of them, in log order. Two logs holding the same batches
// in a range have equal digests of it, whatever their segment boundaries;
// a batch whose records differ has another checksum, so another digest
// (unless its checksum was recomputed over the altered records and
// collides, at 2^-64). It is computed from headers only: the records are
// not decoded, though reading them verifies each batch's checksum (see
// Read), so a batch corrupted on this disk is ErrCorrupt rather than a
// digest.
type Digest struct {
	From, To int64
	Batches  int64  // batches in the range
	Bytes    int64  // their total size
	Sum      uint64 // xxhash64 of their first DigestPrefix bytes
}

// Digest computes the digest of the batches whose base offsets lie in
// [from, to). The range must lie within [StartOffset, NextOffset]: part of
// it deleted by retention, or not written yet, is ErrOffsetOutOfRange.
// pace, when not nil, is called after each chunk read with its size in
// bytes; an error from it stops the digest and is returned (a caller paces
// the reads there and stops them when its context ends).
func (l *Log) Digest(from, to int64, pace func(n int) error) (Digest, error) {
	d := Digest{From: from, To: to}
	if from > to {
		return d, fmt.Errorf("%w: digest of [%d, %d)", ErrOffsetOutOfRange, from, to)
	}
	if from < l.StartOffset() || to > l.NextOffset() {
		return d, fmt.Errorf("%w: digest of [%d, %d), log holds [%d, %d)", ErrOffsetOutOfRange, from, to, l.StartOffset(), l.NextOffset())
	}
	h := xxhash.New()
	for off := from; off < to; {
		v, err := l.Read(off, digestChunk)
		if err != nil {
			return d, err
		}
		b := v.Bytes()
		if len(b) == 0 {
			v.Release()
			return d, fmt.Errorf("%w: digest of [%d, %d): the log ends at %d", ErrOffsetOutOfRange, from, to, off)
		}
		n := len(b)
		for len(b) > 0 {
			size := wire.PeekBatchSize(b)
			base := int64(binary.LittleEndian.Uint64(b))
			if base >= to {
				off = to
				break
			}
			// The first batch of a read holds off but may start before it
			// (a range boundary that is not a batch boundary of this log);
			// it belongs to the range before.
			if base >= from {
				h.Write(b[:DigestPrefix])
				d.Batches++
				d.Bytes += int64(size)
			}
			b = b[size:]
		}
		if off < to {
			off = v.NextOffset()
		}
		v.Release()
		if pace != nil {
			if err := pace(n); err != nil {
				return d, err
			}
		}
	}
	d.Sum = h.Sum64()
	return d, nil
}

// SegmentBases returns the base offsets of the log's segments, oldest
// first; the last one is the active segment's. Every segment but the last
// is sealed: appends never change it again (TruncateFrom still can).
func (l *Log) SegmentBases() []int64 {
	list := *l.segs.Load()
	out := make([]int64, len(list))
	for i, s := range list {
		out[i] = s.base
	}
	return out
}
