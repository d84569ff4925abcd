package segment

import (
	"encoding/binary"
	"math"
	"sort"
)

// Index entry layouts (on-disk format; see doc.go). The .idx and .tix files of
// a segment have one entry per index point, in the same order, so entry k of
// both describes the same batch.
const (
	idxEntrySize = 8  // u32 offset - segment base, u32 file position
	tixEntrySize = 12 // i64 max timestamp of every batch before, u32 offset - base
)

// index is an immutable snapshot of a segment's offset and time index. The
// active segment publishes a new snapshot (sharing the backing arrays, which
// only grow past the lengths published) after each append that adds entries;
// a sealed segment's snapshot points into the read-only mappings of its files.
type index struct {
	idx []byte
	tix []byte
}

func (x *index) len() int {
	if x == nil {
		return 0
	}
	return min(len(x.idx)/idxEntrySize, len(x.tix)/tixEntrySize)
}

// entry returns the relative offset and position of entry k.
func (x *index) entry(k int) (rel uint32, pos uint32) {
	e := x.idx[k*idxEntrySize:]
	return binary.LittleEndian.Uint32(e), binary.LittleEndian.Uint32(e[4:])
}

// ts returns the time-index timestamp and relative offset of entry k.
func (x *index) ts(k int) (int64, uint32) {
	e := x.tix[k*tixEntrySize:]
	return int64(binary.LittleEndian.Uint64(e)), binary.LittleEndian.Uint32(e[8:])
}

// floor returns the position and relative offset of the last entry whose
// relative offset is <= rel, or (0, 0, false) when there is none.
func (x *index) floor(rel uint32) (pos uint32, erel uint32, ok bool) {
	n := x.len()
	k := sort.Search(n, func(i int) bool {
		r, _ := x.entry(i)
		return r > rel
	}) - 1
	if k < 0 {
		return 0, 0, false
	}
	erel, pos = x.entry(k)
	return pos, erel, true
}

// beforeTime returns the position and relative offset of the last entry
// whose timestamp (the largest MaxTimestamp of every batch before it) is below
// ts: the first batch with MaxTimestamp >= ts is at or after it.
func (x *index) beforeTime(ts int64) (pos uint32, erel uint32, ok bool) {
	n := x.len()
	k := sort.Search(n, func(i int) bool {
		t, _ := x.ts(i)
		return t >= ts
	}) - 1
	if k < 0 {
		return 0, 0, false
	}
	erel, pos = x.entry(k)
	return pos, erel, true
}

// appendEntry encodes one index point into the two buffers.
func appendEntry(idx, tix []byte, rel uint32, pos uint32, maxTsBefore int64) ([]byte, []byte) {
	idx = binary.LittleEndian.AppendUint32(idx, rel)
	idx = binary.LittleEndian.AppendUint32(idx, pos)
	tix = binary.LittleEndian.AppendUint64(tix, uint64(maxTsBefore))
	tix = binary.LittleEndian.AppendUint32(tix, rel)
	return idx, tix
}

// validPrefix returns how many leading entries of the raw .idx and .tix
// contents are well formed: relative offsets and positions strictly
// increasing, positions below limit, timestamps non-decreasing and both files
// naming the same offset for each entry.
func validPrefix(idx, tix []byte, limit int64) int {
	x := index{idx: idx, tix: tix}
	n := x.len()
	var prevRel, prevPos uint32
	prevTs := int64(math.MinInt64)
	for k := range n {
		rel, pos := x.entry(k)
		ts, trel := x.ts(k)
		if trel != rel || int64(pos) >= limit || ts < prevTs || pos == 0 {
			return k
		}
		if k > 0 && (rel <= prevRel || pos <= prevPos) {
			return k
		}
		prevRel, prevPos, prevTs = rel, pos, ts
	}
	return n
}
