package wire

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/cespare/xxhash/v2"
)

// Key partitioning (docs/architecture.md). A topic's partitions own contiguous
// ranges of the 64-bit hash space; at creation the N ranges are equal, range i
// being [ceil(i*2^64/N), ceil((i+1)*2^64/N) - 1]. A keyed record belongs to the
// partition whose range holds KeyHash(key). These rules are part of the
// protocol: every client must place keys exactly this way.

// KeyHash is the hash that places a key: xxhash64 (seed 0) of its bytes.
func KeyHash(key []byte) uint64 { return xxhash.Sum64(key) }

// PartitionRange returns the inclusive hash range [start, end] of partition i
// of n equal partitions. The ranges are contiguous, cover the whole uint64
// space and differ in size by at most one. It panics unless 0 <= i < n.
func PartitionRange(i, n int32) (start, end uint64) {
	if n <= 0 || i < 0 || i >= n {
		panic(fmt.Sprintf("wire: PartitionRange(%d, %d): need 0 <= i < n", i, n))
	}
	start = rangeStart(uint64(i), uint64(n))
	if i == n-1 {
		return start, math.MaxUint64
	}
	return start, rangeStart(uint64(i)+1, uint64(n)) - 1
}

// rangeStart is ceil(i * 2^64 / n) for 0 <= i < n.
func rangeStart(i, n uint64) uint64 {
	q, r := bits.Div64(i, 0, n)
	if r != 0 {
		q++
	}
	return q
}

// PartitionForHash returns the partition of n equal partitions whose range
// (PartitionRange) holds h: floor(h * n / 2^64). It panics unless n > 0.
func PartitionForHash(h uint64, n int32) int32 {
	if n <= 0 {
		panic(fmt.Sprintf("wire: PartitionForHash with %d partitions", n))
	}
	hi, _ := bits.Mul64(h, uint64(n))
	return int32(hi)
}
