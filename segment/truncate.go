package segment

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/rafka/rafka/wire"
)

// zeroChunk bounds the buffer TruncateFrom zeroes removed bytes with.
const zeroChunk = 1 << 20

// TruncateFrom removes every batch whose base offset is >= offset, so that
// NextOffset becomes offset and the next Append continues there. offset must
// be the base offset of a batch at or after StartOffset, or NextOffset (then
// nothing changes); anything else is ErrBadTruncation. It is meant for a
// replica whose uncommitted suffix conflicts with its leader's; see doc.go,
// "Truncation", for the order of the steps and what a crash leaves.
//
// The removed bytes of the segment that then holds the end are overwritten
// with zeros and fsynced under every policy, later segments are unlinked and
// that segment becomes the active one again. No file that is mapped shrinks:
// Views of removed batches stay valid memory, but their bytes may be zeroed
// or overwritten by later appends, so callers must only hold Views of
// batches that can never be removed (below a replicated high watermark). A
// failure to zero or fsync is sticky, like a failed fsync: the log refuses
// appends until it is reopened, and recovery then finds either the old end
// or the new one.
func (l *Log) TruncateFrom(offset int64) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if err := l.stickyErr(); err != nil {
		return err
	}
	next, start := l.next.Load(), l.start.Load()
	if offset == next {
		return nil
	}
	if offset < start || offset > next {
		return fmt.Errorf("%w: offset %d, log holds [%d, %d)", ErrBadTruncation, offset, start, next)
	}
	list := *l.segs.Load()
	i := sort.Search(len(list), func(i int) bool { return list[i].base > offset }) - 1
	s := list[i]
	var pos int64
	switch {
	case offset == s.base && i > 0:
		// The end lands on a segment boundary: the previous segment keeps
		// all its batches and this one goes with the later ones.
		i--
		s = list[i]
		pos = s.written.Load()
	case offset == s.base:
		pos = 0
	default:
		p, h, err := s.seek(offset, s.written.Load())
		if err != nil {
			return err
		}
		if h.BaseOffset != offset {
			return fmt.Errorf("%w: offset %d is inside the batch [%d, %d)", ErrBadTruncation, offset, h.BaseOffset, h.NextOffset())
		}
		pos = p
	}
	removed := list[i+1:]

	// Rolled segments still waiting for their background fsync are flushed
	// now, so that the queue holds none of the segments changed below.
	if _, err := l.flushRolledLocked(math.MaxInt64); err != nil {
		return err
	}
	// Step 1: lower the clean marker, so that recovery verifies everything
	// from offset on instead of trusting it by size.
	if err := l.lowerClean(offset); err != nil {
		return err
	}
	// Step 2: zero the removed bytes of s (or the first header of the next
	// segment when s keeps all of its batches) and fsync: from here on,
	// recovery stops at offset and deletes whatever follows.
	oldW := s.written.Load()
	zs, zfrom, zto := s, pos, oldW
	if pos == oldW {
		zs, zfrom, zto = removed[0], 0, min(wire.BatchHeaderSize, removed[0].written.Load())
	}
	if err := zeroRange(zs, zfrom, zto); err != nil {
		return l.fail(err)
	}
	if err := l.syncData(zs); err != nil {
		return l.fail(err)
	}
	// Step 3: unlink the later segments, newest first. A failure only
	// leaves files that recovery deletes (they follow the zeroed header).
	for j := len(removed) - 1; j >= 0; j-- {
		r := removed[j]
		r.dropped.Store(true)
		if err := r.removeFiles(); err != nil {
			l.warn("cannot delete a truncated segment; recovery will", err)
		}
	}
	if len(removed) > 0 {
		if err := l.fs.SyncDir(l.dir); err != nil {
			l.warn("directory fsync failed", ioError("fsync", l.dir, err))
		}
	}

	// Step 4: publish the new end. next first, so that readers stop there.
	freed := oldW - pos
	for _, r := range removed {
		freed += r.written.Load()
	}
	l.next.Store(offset)
	s.written.Store(pos)
	s.next.Store(offset)
	kept := append([]*segment(nil), list[:i+1]...)
	l.segs.Store(&kept)
	l.size.Add(-freed)
	if l.durable.Load() > offset {
		l.durable.Store(offset)
	}
	l.trimIndexLocked(s, pos)
	s.keep = max(s.keep, oldW)
	if s != l.active {
		// A sealed segment takes appends again: its file is oldW long and
		// its mapping as large as it was (the whole segment size if it was
		// rolled by this process, its length if it was opened sealed), so
		// appends that do not fit roll to a new segment as usual.
		s.sealed = false
		s.allocated = oldW
		l.active = s
	}
	for _, r := range removed {
		r.release()
	}
	return nil
}

// lowerClean moves the clean marker (and how far rolled segments count as
// flushed) back to offset if it is beyond it.
func (l *Log) lowerClean(offset int64) error {
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	l.flushMu.Lock()
	l.flushedTo = min(l.flushedTo, offset)
	l.flushMu.Unlock()
	if l.cleanAt <= offset {
		return nil
	}
	if err := writeClean(l.fs, l.dir, offset); err != nil {
		return err
	}
	l.cleanAt = offset
	return nil
}

// zeroRange overwrites bytes [from, to) of s's .log file with zeros.
func zeroRange(s *segment, from, to int64) error {
	if to <= from {
		return nil
	}
	zeros := make([]byte, min(to-from, zeroChunk))
	for p := from; p < to; {
		n := min(to-p, int64(len(zeros)))
		if _, err := s.logF.WriteAt(zeros[:n], p); err != nil {
			return ioError("write", s.logName, err)
		}
		p += n
	}
	return nil
}

// trimIndexLocked drops the index entries of s at or past position end,
// recomputes its newest timestamp and makes its index a heap copy again (the
// active segment's form). Index files are fixed best effort: recovery
// validates and rebuilds them. A file that is mapped (a sealed segment's) is
// not shrunk; its dropped entries are zeroed, which recovery reads as the end
// of the index.
func (l *Log) trimIndexLocked(s *segment, end int64) {
	x := s.ix.Load()
	k := sort.Search(x.len(), func(i int) bool {
		_, p := x.entry(i)
		return int64(p) >= end
	})
	idx := slices.Clone(x.idx[:k*idxEntrySize])
	tix := slices.Clone(x.tix[:k*tixEntrySize])
	maxTs, from, want := int64(math.MinInt64), int64(0), s.base
	if k > 0 {
		rel, p := x.entry(k - 1)
		maxTs, _ = x.ts(k - 1)
		from, want = int64(p), s.base+int64(rel)
	}
	if end > 0 {
		_, _, _, err := walkHeaders(s.data()[:end], from, want, func(h *wire.BatchHeader) bool {
			maxTs = max(maxTs, h.MaxTimestamp)
			return false
		})
		if err != nil {
			panic(fmt.Sprintf("BUG: segment: published batches of %s do not walk: %v", s.logName, err))
		}
	}
	if s.idxMap != nil {
		n := len(s.idxMap) / idxEntrySize
		for _, f := range []struct {
			f     File
			name  string
			entry int
		}{{s.idxF, s.idxName, idxEntrySize}, {s.tixF, s.tixName, tixEntrySize}} {
			if n > k {
				if _, err := f.f.WriteAt(make([]byte, (n-k)*f.entry), int64(k*f.entry)); err != nil {
					l.warn("index write failed; it will be rebuilt on open", ioError("write", f.name, err))
				}
			}
		}
		s.retired = append(s.retired, s.idxMap, s.tixMap)
		s.idxMap, s.tixMap = nil, nil
		s.flushed = k
	} else if s.flushed > k {
		if err := rewriteIndexTail(s, idx, tix, s.flushed*idxEntrySize, s.flushed*tixEntrySize, k); err != nil {
			l.warn("index write failed; it will be rebuilt on open", err)
		}
		s.flushed = k
	}
	s.idxBuf, s.tixBuf = idx, tix
	s.lastIdxPos = 0
	if k > 0 {
		_, p := x.entry(k - 1)
		s.lastIdxPos = int64(p)
	}
	s.ix.Store(&index{idx: idx, tix: tix})
	s.maxTs.Store(maxTs)
}
