package segment

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rafka/rafka/wire"
)

// scanResult is what a verifying walk over a segment's batches found.
type scanResult struct {
	end        int64 // position after the last good batch
	next       int64 // offset after the last good batch
	maxTs      int64 // largest MaxTimestamp seen (including the starting value)
	idx, tix   []byte
	lastIdxPos int64
	stop       error // why the walk ended before the end of data; nil if it did not
}

// scanBatches walks data from pos, where a batch with base offset want is
// expected, verifying each batch's header, checksum and offset continuity. It
// appends index entries every interval bytes (after lastIdxPos) to idx/tix,
// tracking the running max timestamp from maxTs.
func scanBatches(data []byte, base, pos, want, maxTs int64, interval int, lastIdxPos int64, idx, tix []byte) scanResult {
	r := scanResult{end: pos, next: want, maxTs: maxTs, idx: idx, tix: tix, lastIdxPos: lastIdxPos}
	end := int64(len(data))
	for r.end < end {
		h, n, err := wire.VerifyBatch(data[r.end:], readLimit)
		switch {
		case err != nil:
		case h.BaseOffset != r.next:
			err = fmt.Errorf("base offset %d, expected %d", h.BaseOffset, r.next)
		case h.NextOffset()-base > math.MaxUint32 || r.end+int64(n) > math.MaxUint32:
			err = errors.New("segment spans more than 2^32 offsets or bytes")
		}
		if err != nil {
			r.stop = err
			return r
		}
		if r.end-r.lastIdxPos >= int64(interval) {
			r.idx, r.tix = appendEntry(r.idx, r.tix, uint32(h.BaseOffset-base), uint32(r.end), r.maxTs)
			r.lastIdxPos = r.end
		}
		r.maxTs = max(r.maxTs, h.MaxTimestamp)
		r.end += int64(n)
		r.next = h.NextOffset()
	}
	return r
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// parseSegmentName returns the base offset and suffix of a segment file name.
func parseSegmentName(name string) (int64, string, bool) {
	for _, suf := range []string{logSuffix, idxSuffix, tixSuffix} {
		digits, ok := strings.CutSuffix(name, suf)
		if !ok || len(digits) != nameDigits {
			continue
		}
		base, err := strconv.ParseInt(digits, 10, 64)
		if err != nil || base < 0 {
			return 0, "", false
		}
		return base, suf, true
	}
	return 0, "", false
}

// listSegments returns the base offsets of the .log files in dir, sorted, and
// the index files that have no .log (left by a crash during deletion).
func listSegments(fs FS, dir string) ([]int64, []string, error) {
	names, err := fs.ReadDir(dir)
	if err != nil {
		return nil, nil, ioError("read dir", dir, err)
	}
	logs := map[int64]bool{}
	var bases []int64
	for _, n := range names {
		if base, suf, ok := parseSegmentName(n); ok && suf == logSuffix {
			logs[base] = true
			bases = append(bases, base)
		}
	}
	var orphans []string
	for _, n := range names {
		if base, suf, ok := parseSegmentName(n); ok && suf != logSuffix && !logs[base] {
			orphans = append(orphans, n)
		}
	}
	slices.Sort(bases)
	return bases, orphans, nil
}

// readAll reads the whole file f.
func readAll(f File, name string) ([]byte, error) {
	size, err := f.Size()
	if err != nil {
		return nil, ioError("stat", name, err)
	}
	b := make([]byte, size)
	if n, err := f.ReadAt(b, 0); err != nil && !(errors.Is(err, io.EOF) && int64(n) == size) {
		return nil, ioError("read", name, err)
	}
	return b, nil
}

// headerMatches reports whether a batch header with base offset want starts
// at pos of data.
func headerMatches(data []byte, pos, want int64) bool {
	if pos <= 0 || pos >= int64(len(data)) {
		return false
	}
	h, _, err := wire.ParseBatchHeader(data[pos:], readLimit)
	return err == nil && h.BaseOffset == want
}

// openSealed opens a segment that is not the last one. It is trusted by size:
// only the tail after its last index entry is verified (which also yields its
// next offset and newest timestamp). A zero tail left by a crash during a roll
// is trimmed; anything else wrong is ErrCorrupt. A missing or inconsistent
// index is rebuilt by a full verifying scan.
func openSealed(fs FS, dir string, base int64, o *Options) (_ *segment, err error) {
	s := newSegment(fs, dir, base)
	defer func() {
		if err != nil {
			s.teardown()
		}
	}()
	if err := s.openFiles(false, false); err != nil {
		return nil, err
	}
	size, err := s.logF.Size()
	if err != nil {
		return nil, ioError("stat", s.logName, err)
	}
	if size > maxAppendBytes+maxSegmentBytes {
		return nil, fmt.Errorf("%w: %s is %d bytes", ErrCorrupt, s.logName, size)
	}
	data, err := s.logF.Map(int(size))
	if err != nil {
		return nil, ioError("mmap", s.logName, err)
	}
	s.setData(data)
	idxSize, err1 := s.idxF.Size()
	tixSize, err2 := s.tixF.Size()
	n := int(idxSize / idxEntrySize)
	ok := err1 == nil && err2 == nil && idxSize%idxEntrySize == 0 && tixSize%tixEntrySize == 0 &&
		tixSize/tixEntrySize == int64(n) && n > 0
	if ok {
		if s.idxMap, err = s.idxF.Map(int(idxSize)); err == nil {
			s.tixMap, err = s.tixF.Map(int(tixSize))
		}
		if err != nil {
			return nil, ioError("mmap", s.idxName, err)
		}
		x := &index{idx: s.idxMap, tix: s.tixMap}
		rel, pos := x.entry(n - 1)
		ts, trel := x.ts(n - 1)
		ok = trel == rel && headerMatches(data, int64(pos), base+int64(rel))
		if ok {
			r := scanBatches(data, base, int64(pos), base+int64(rel), ts, math.MaxInt, int64(pos), nil, nil)
			if r.stop == nil || allZero(data[r.end:]) {
				s.ix.Store(x)
				return s.finishSealed(r, size, o)
			}
			return nil, fmt.Errorf("%w: %s: batch at position %d: %w", ErrCorrupt, s.logName, r.end, r.stop)
		}
		_ = s.idxF.Unmap(s.idxMap)
		_ = s.tixF.Unmap(s.tixMap)
		s.idxMap, s.tixMap = nil, nil
	}
	// Rebuild the index from a full scan.
	r := scanBatches(data, base, 0, base, math.MinInt64, o.IndexIntervalBytes, 0, nil, nil)
	if r.stop != nil && !allZero(data[r.end:]) {
		return nil, fmt.Errorf("%w: %s: batch at position %d: %w", ErrCorrupt, s.logName, r.end, r.stop)
	}
	if n > 0 || idxSize > 0 || tixSize > 0 {
		o.Logger.Warn("segment: rebuilt index of sealed segment", "file", s.logName)
	}
	if err := rewriteIndex(s, r.idx, r.tix); err != nil {
		o.Logger.Warn("segment: cannot rewrite index", "file", s.idxName, "err", err)
	}
	s.ix.Store(&index{idx: r.idx, tix: r.tix})
	return s.finishSealed(r, size, o)
}

// finishSealed trims a zero tail (unmapping first: a mapped file is never
// truncated below its mapping at open) and sets the published state.
func (s *segment) finishSealed(r scanResult, size int64, o *Options) (*segment, error) {
	if r.end < size {
		o.Logger.Warn("segment: trimming zero tail of sealed segment", "file", s.logName, "from", r.end, "size", size)
		_ = s.logF.Unmap(s.data())
		s.setData(nil)
		if err := s.logF.Truncate(r.end); err != nil {
			return nil, ioError("truncate", s.logName, err)
		}
		if err := s.logF.Sync(); err != nil {
			return nil, ioError("fsync", s.logName, err)
		}
		m, err := s.logF.Map(int(r.end))
		if err != nil {
			return nil, ioError("mmap", s.logName, err)
		}
		s.setData(m)
	}
	s.written.Store(r.end)
	s.next.Store(r.next)
	s.maxTs.Store(r.maxTs)
	s.capacity = r.end
	s.sealed = true
	return s, nil
}

// rewriteIndex replaces the index files of s with the given entries.
func rewriteIndex(s *segment, idx, tix []byte) error {
	for _, f := range []struct {
		f    File
		name string
		b    []byte
	}{{s.idxF, s.idxName, idx}, {s.tixF, s.tixName, tix}} {
		if err := f.f.Truncate(0); err != nil {
			return ioError("truncate", f.name, err)
		}
		if len(f.b) > 0 {
			if _, err := f.f.WriteAt(f.b, 0); err != nil {
				return ioError("write", f.name, err)
			}
		}
		if err := f.f.Sync(); err != nil {
			return ioError("fsync", f.name, err)
		}
	}
	return nil
}

// recoverSegment opens a segment that is not known to be complete on disk
// (see clean.go): the last one, or one that ends after the clean offset. It
// verifies batches from the last usable index entry at or below clean (an
// entry past it may point into data that never reached the disk, with holes
// before it), or from the start, and ends the good data at the first torn or
// corrupt batch or at a zero tail.
//
// nextBase is the base offset of the following segment, or -1 if there is
// none. If the good data runs to the end of the file (zeros aside) and meets
// nextBase, the segment is sealed: its zero tail is trimmed and it is fsynced.
// Otherwise it becomes the active segment (active is true): truncated there
// before it is mapped for good, preallocated, its index tail rebuilt; the
// caller then deletes every later segment. Damage below clean in a segment
// that is not the last is ErrCorrupt, not cut (a cut would delete the later
// segments); in the last segment it is cut with an error logged, as the
// active segment always was.
func recoverSegment(fs FS, dir string, base, clean, nextBase int64, o *Options) (_ *segment, active bool, err error) {
	s := newSegment(fs, dir, base)
	defer func() {
		if err != nil {
			s.teardown()
		}
	}()
	if err := s.openFiles(false, false); err != nil {
		return nil, false, err
	}
	size, err := s.logF.Size()
	if err != nil {
		return nil, false, ioError("stat", s.logName, err)
	}
	if size > maxAppendBytes+maxSegmentBytes {
		return nil, false, fmt.Errorf("%w: %s is %d bytes", ErrCorrupt, s.logName, size)
	}
	// A temporary mapping to scan; unmapped before the truncation below.
	tmp, err := s.logF.Map(int(size))
	if err != nil {
		return nil, false, ioError("mmap", s.logName, err)
	}
	idxRaw, err := readAll(s.idxF, s.idxName)
	if err != nil {
		_ = s.logF.Unmap(tmp)
		return nil, false, err
	}
	tixRaw, err := readAll(s.tixF, s.tixName)
	if err != nil {
		_ = s.logF.Unmap(tmp)
		return nil, false, err
	}
	k := validPrefix(idxRaw, tixRaw, size)
	x := &index{idx: idxRaw[:k*idxEntrySize], tix: tixRaw[:k*tixEntrySize]}
	for k > 0 {
		rel, pos := x.entry(k - 1)
		if base+int64(rel) <= clean && headerMatches(tmp, int64(pos), base+int64(rel)) {
			break
		}
		k--
	}
	start, want, maxTs := int64(0), base, int64(math.MinInt64)
	if k > 0 {
		rel, pos := x.entry(k - 1)
		start, want = int64(pos), base+int64(rel)
		maxTs, _ = x.ts(k - 1)
	}
	r := scanBatches(tmp, base, start, want, maxTs, o.IndexIntervalBytes, start,
		slices.Clone(idxRaw[:k*idxEntrySize]), slices.Clone(tixRaw[:k*tixEntrySize]))
	// Drop a kept entry that points at the truncation point itself.
	for len(r.idx) > 0 {
		_, pos := (&index{idx: r.idx, tix: r.tix}).entry(len(r.idx)/idxEntrySize - 1)
		if int64(pos) < r.end {
			break
		}
		r.idx = r.idx[:len(r.idx)-idxEntrySize]
		r.tix = r.tix[:len(r.tix)-tixEntrySize]
		r.lastIdxPos = 0
		if m := len(r.idx) / idxEntrySize; m > 0 {
			_, p := (&index{idx: r.idx, tix: r.tix}).entry(m - 1)
			r.lastIdxPos = int64(p)
		}
	}
	torn := r.end < size && !allZero(tmp[r.end:])
	if nextBase >= 0 && !torn && r.next == nextBase {
		_ = s.logF.Unmap(tmp)
		if err := rewriteIndexTail(s, r.idx, r.tix, len(idxRaw), len(tixRaw), k); err != nil {
			o.Logger.Warn("segment: cannot rewrite index", "file", s.idxName, "err", err)
		}
		for _, f := range []File{s.idxF, s.tixF} {
			_ = f.Sync() // rebuilt by the next recovery if lost
		}
		if r.end == size { // finishSealed trims and fsyncs otherwise
			if err := s.logF.Sync(); err != nil {
				return nil, false, ioError("fsync", s.logName, err)
			}
			m, err := s.logF.Map(int(size))
			if err != nil {
				return nil, false, ioError("mmap", s.logName, err)
			}
			s.setData(m)
		}
		s.ix.Store(&index{idx: r.idx, tix: r.tix})
		s, err := s.finishSealed(r, size, o)
		return s, false, err
	}
	switch {
	case r.next < clean && nextBase >= 0:
		// Cutting here would also delete the later segments.
		why := r.stop
		if why == nil {
			why = errors.New("end of data")
		}
		_ = s.logF.Unmap(tmp)
		return nil, false, errBelowClean(s.logName, r.end, r.next, clean, why)
	case r.next < clean:
		o.Logger.Error("segment: truncating corrupt data that was on stable storage", "file", s.logName,
			"position", r.end, "size", size, "next_offset", r.next, "clean_offset", clean, "reason", r.stop)
	case torn:
		o.Logger.Warn("segment: truncating torn or corrupt tail", "file", s.logName,
			"position", r.end, "size", size, "next_offset", r.next, "reason", r.stop)
	}
	var created time.Time
	if r.end > 0 {
		if h, _, err := wire.ParseBatchHeader(tmp, readLimit); err == nil {
			created = time.UnixMilli(h.MaxTimestamp)
		}
		if now := o.Now(); created.After(now) || created.IsZero() {
			created = now
		}
	}
	_ = s.logF.Unmap(tmp)

	if r.end != size {
		if err := s.logF.Truncate(r.end); err != nil {
			return nil, false, ioError("truncate", s.logName, err)
		}
	}
	capacity := max(o.SegmentBytes, r.end)
	s.allocated = r.end
	if alloc := allocTarget(0, r.end, capacity); alloc > r.end {
		if err := s.preallocate(alloc); err != nil {
			// Without space the log is still readable; appends will report it.
			o.Logger.Warn("segment: cannot preallocate", "file", s.logName, "err", err)
		} else {
			s.allocated = alloc
		}
	}
	m, err := s.logF.Map(int(capacity))
	if err != nil {
		return nil, false, ioError("mmap", s.logName, err)
	}
	s.setData(m)
	s.capacity = capacity
	if err := rewriteIndexTail(s, r.idx, r.tix, len(idxRaw), len(tixRaw), k); err != nil {
		o.Logger.Warn("segment: cannot rewrite index", "file", s.idxName, "err", err)
	}
	s.idxBuf, s.tixBuf = r.idx, r.tix
	s.flushed = len(r.idx) / idxEntrySize
	s.lastIdxPos = r.lastIdxPos
	s.ix.Store(&index{idx: s.idxBuf, tix: s.tixBuf})
	s.written.Store(r.end)
	s.next.Store(r.next)
	s.maxTs.Store(r.maxTs)
	s.created = created
	return s, true, nil
}

// rewriteIndexTail makes the index files hold exactly idx/tix, rewriting only
// from entry kept on (the first kept entries are already there).
func rewriteIndexTail(s *segment, idx, tix []byte, idxLen, tixLen, kept int) error {
	kept = min(kept, len(idx)/idxEntrySize)
	for _, f := range []struct {
		f     File
		name  string
		b     []byte
		size  int
		old   int
		entry int
	}{{s.idxF, s.idxName, idx, len(idx), idxLen, idxEntrySize}, {s.tixF, s.tixName, tix, len(tix), tixLen, tixEntrySize}} {
		if f.old != f.size || kept*f.entry != f.size {
			if err := f.f.Truncate(int64(kept * f.entry)); err != nil {
				return ioError("truncate", f.name, err)
			}
			if rest := f.b[kept*f.entry:]; len(rest) > 0 {
				if _, err := f.f.WriteAt(rest, int64(kept*f.entry)); err != nil {
					return ioError("write", f.name, err)
				}
			}
		}
	}
	return nil
}
