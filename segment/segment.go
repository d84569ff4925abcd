package segment

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/rafka/rafka/wire"
)

// File name suffixes of a segment (on-disk format).
const (
	logSuffix = ".log"
	idxSuffix = ".idx"
	tixSuffix = ".tix"
	// nameDigits is the width of the zero-padded base offset in file names.
	nameDigits = 20
)

// readLimit is the batch size limit applied when reading stored data: sizes
// were checked against MaxBatchBytes on append, and a later, smaller limit
// must not make old batches unreadable. The mapping bounds every read anyway.
const readLimit = math.MaxInt32

func segPath(dir string, base int64, suffix string) string {
	return filepath.Join(dir, fmt.Sprintf("%0*d%s", nameDigits, base, suffix))
}

// segment is one <base>.log file with its .idx and .tix files.
//
// Readers touch only data[:written], the index snapshot and the atomics, after
// acquiring a reference; the writer fields are guarded by Log.mu.
type segment struct {
	base                      int64
	fs                        FS
	logName, idxName, tixName string
	logF, idxF, tixF          File

	// data maps the .log file read-only. For the active segment its length is
	// the capacity (the segment size, of which only allocated bytes are
	// preallocated); bytes past written are never read.
	// It is replaced only while written == 0 (see growLocked); readers load
	// it atomically after loading written, and a replaced mapping stays
	// mapped (retired) until teardown, since a View taken before a
	// truncation may still point into it.
	dataP atomic.Pointer[[]byte]
	// retired holds mappings replaced while the segment was live (growLocked,
	// a reactivated segment's index maps); unmapped by teardown.
	retired [][]byte
	// idxMap and tixMap map the index files of a sealed segment; the index
	// snapshot points into them.
	idxMap, tixMap []byte

	written atomic.Int64 // bytes of whole, published batches
	next    atomic.Int64 // offset after the last published batch
	maxTs   atomic.Int64 // largest MaxTimestamp published; math.MinInt64 when empty
	ix      atomic.Pointer[index]
	// refs counts the Log's own reference (while the segment is listed) plus
	// one per reader or View. The mapping and files go when it drops to 0.
	refs atomic.Int64
	// dropped is set when retention removes the segment, so that a pending
	// background fsync of it is skipped.
	dropped atomic.Bool

	// Writer state, guarded by Log.mu.
	capacity       int64     // bytes mapped: the most the segment can hold
	allocated      int64     // bytes preallocated, <= capacity; grown by allocateLocked
	idxBuf, tixBuf []byte    // every index entry (active segment)
	flushed        int       // entries already written to the index files
	lastIdxPos     int64     // position of the last index entry (0: none)
	created        time.Time // when its first batch arrived (age roll)
	sealed         bool
	// keep is the least length the .log file may be trimmed to: the extent
	// published before a TruncateFrom moved the end back (removed bytes are
	// zeroed instead), since Views of removed batches may still map it.
	keep int64
}

// acquire takes a reader reference; it fails once the segment is being torn
// down (the count reached zero).
func (s *segment) acquire() bool {
	for range 1000 {
		n := s.refs.Load()
		if n <= 0 {
			return false
		}
		if s.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
	return false
}

// release drops a reference; the last one unmaps and closes the files.
func (s *segment) release() {
	n := s.refs.Add(-1)
	if n > 0 {
		return
	}
	if n < 0 {
		panic("BUG: segment: reference count below zero")
	}
	s.teardown()
}

// teardown unmaps and closes everything; errors are irrelevant at this point
// (read-only mappings, descriptors whose data was synced or is abandoned).
func (s *segment) teardown() {
	for _, m := range append([][]byte{s.data(), s.idxMap, s.tixMap}, s.retired...) {
		if m != nil {
			_ = s.logF.Unmap(m)
		}
	}
	s.setData(nil)
	s.idxMap, s.tixMap, s.retired = nil, nil, nil
	for _, f := range []File{s.logF, s.idxF, s.tixF} {
		if f != nil {
			_ = f.Close()
		}
	}
}

// data is the current mapping of the .log file.
func (s *segment) data() []byte {
	if p := s.dataP.Load(); p != nil {
		return *p
	}
	return nil
}

func (s *segment) setData(m []byte) {
	if m == nil {
		s.dataP.Store(nil)
		return
	}
	s.dataP.Store(&m)
}

func newSegment(fs FS, dir string, base int64) *segment {
	s := &segment{
		base:    base,
		fs:      fs,
		logName: segPath(dir, base, logSuffix),
		idxName: segPath(dir, base, idxSuffix),
		tixName: segPath(dir, base, tixSuffix),
	}
	s.next.Store(base)
	s.maxTs.Store(math.MinInt64)
	s.ix.Store(&index{})
	s.refs.Store(1)
	return s
}

// openFiles opens (creating when create is set, truncating with trunc) the
// three files of s.
func (s *segment) openFiles(create, trunc bool) error {
	flag := os.O_RDWR
	if create {
		flag |= os.O_CREATE
	}
	if trunc {
		flag |= os.O_TRUNC
	}
	var err error
	if s.logF, err = s.fs.OpenFile(s.logName, flag, 0o644); err != nil {
		return ioError("open", s.logName, err)
	}
	if s.idxF, err = s.fs.OpenFile(s.idxName, flag|os.O_CREATE, 0o644); err != nil {
		return ioError("open", s.idxName, err)
	}
	if s.tixF, err = s.fs.OpenFile(s.tixName, flag|os.O_CREATE, 0o644); err != nil {
		return ioError("open", s.tixName, err)
	}
	return nil
}

// preallocate reserves capacity bytes for the log file. File systems without
// fallocate are fine: pwrite then allocates as it goes.
func (s *segment) preallocate(capacity int64) error {
	if err := s.logF.Allocate(capacity); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return ioError("fallocate", s.logName, err)
	}
	return nil
}

// preallocStep is the first preallocation of a segment; it doubles as the
// segment fills, up to the segment's capacity, so that an idle partition
// costs about this much disk rather than a whole segment.
const preallocStep = 1 << 20

// allocTarget is how far to preallocate a segment of capacity bytes that has
// allocated bytes preallocated and must now hold need bytes: double (at least
// preallocStep), never past capacity, never short of need.
func allocTarget(allocated, need, capacity int64) int64 {
	return max(need, min(capacity, max(preallocStep, 2*allocated)))
}

// allocateLocked grows the preallocation so that need bytes fit, in doubling
// steps. The mapping already spans the capacity, so nothing is remapped.
// ENOSPC is returned as ErrDiskFull and changes nothing that readers see.
func (s *segment) allocateLocked(need int64) error {
	if need <= s.allocated {
		return nil
	}
	t := allocTarget(s.allocated, need, s.capacity)
	if err := s.preallocate(t); err != nil {
		return err
	}
	s.allocated = t
	return nil
}

// createSegment makes a new, empty and mapped segment of capacity bytes,
// preallocated for its first need bytes (see allocTarget).
func createSegment(fs FS, dir string, base, capacity, need int64) (*segment, error) {
	s := newSegment(fs, dir, base)
	alloc := allocTarget(0, need, capacity)
	err := s.openFiles(true, true)
	if err == nil {
		err = s.preallocate(alloc)
	}
	if err == nil {
		var m []byte
		m, err = s.logF.Map(int(capacity))
		s.setData(m)
		if err != nil {
			err = ioError("mmap", s.logName, err)
		}
	}
	if err != nil {
		s.teardown()
		s.removeFiles()
		return nil, err
	}
	s.capacity, s.allocated = capacity, alloc
	return s, nil
}

// removeFiles unlinks the segment's files, the log first so that a crash in
// between leaves only orphan index files, which Open deletes.
func (s *segment) removeFiles() error {
	var errs []error
	for _, name := range []string{s.logName, s.idxName, s.tixName} {
		if err := s.fs.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, ioError("remove", name, err))
		}
	}
	return errors.Join(errs...)
}

// growLocked enlarges the mapping of the empty active segment so that one
// append of n bytes fits. Safe only while written == 0: readers that see
// written == 0 do not touch the mapping, and the old one is retired rather
// than unmapped, because a View taken before a TruncateFrom that emptied the
// segment may still point into it.
func (s *segment) growLocked(n int64) error {
	if s.written.Load() != 0 {
		panic("BUG: segment: growing a non-empty segment")
	}
	if err := s.preallocate(n); err != nil {
		return err
	}
	m, err := s.logF.Map(int(n))
	if err != nil {
		return ioError("mmap", s.logName, err)
	}
	if old := s.data(); old != nil {
		s.retired = append(s.retired, old)
	}
	s.setData(m)
	s.capacity, s.allocated = n, n
	return nil
}

// flushIndexLocked writes index entries not yet in the index files. Index
// files are rebuilt by recovery, so a failure is reported but not fatal.
func (s *segment) flushIndexLocked() error {
	n := len(s.idxBuf) / idxEntrySize
	if n == s.flushed {
		return nil
	}
	if _, err := s.idxF.WriteAt(s.idxBuf[s.flushed*idxEntrySize:], int64(s.flushed*idxEntrySize)); err != nil {
		return ioError("write", s.idxName, err)
	}
	if _, err := s.tixF.WriteAt(s.tixBuf[s.flushed*tixEntrySize:], int64(s.flushed*tixEntrySize)); err != nil {
		return ioError("write", s.tixName, err)
	}
	s.flushed = n
	return nil
}

// sealLocked seals the active segment at a roll: the preallocated tail is
// cut off and the index switched to mappings of its files. The log file stays mapped while it
// is truncated: the cut removes only bytes past written, which no reader
// touches (SIGBUS comes only from touching pages wholly past the end of the
// file). It is best effort: a crash before the cut leaves a zero tail, which
// Open trims.
func (s *segment) sealLocked(warn func(msg string, err error)) {
	s.sealed = true
	if err := s.logF.Truncate(s.trimLength()); err != nil {
		warn("cannot trim preallocated tail", ioError("truncate", s.logName, err))
	}
	n := s.flushed
	if n == 0 || n != len(s.idxBuf)/idxEntrySize {
		return // keep the heap index
	}
	im, err1 := s.idxF.Map(n * idxEntrySize)
	tm, err2 := s.tixF.Map(n * tixEntrySize)
	if err1 != nil || err2 != nil {
		if im != nil {
			_ = s.idxF.Unmap(im)
		}
		if tm != nil {
			_ = s.tixF.Unmap(tm)
		}
		return
	}
	s.idxMap, s.tixMap = im, tm
	s.ix.Store(&index{idx: im, tix: tm})
	s.idxBuf, s.tixBuf = nil, nil
}

// trimLength is where sealing or Close may cut the preallocated tail: the end
// of the batches, or, after a TruncateFrom, no shorter than the file was then
// (the zeroed removed bytes stay until recovery trims them at the next Open).
func (s *segment) trimLength() int64 { return max(s.written.Load(), s.keep) }

// seek finds the batch containing offset among the first w bytes: it starts
// at the index entry at or below offset and walks batch headers, checking
// offset continuity. A bad index entry (for example a damaged .idx of a sealed
// segment) falls back to a walk from the start of the segment.
func (s *segment) seek(offset, w int64) (int64, wire.BatchHeader, error) {
	if w == 0 { // emptied by TruncateFrom under a reader with a stale range
		return 0, wire.BatchHeader{}, fmt.Errorf("%w: %s holds no batches, looking for offset %d", ErrOffsetOutOfRange, s.logName, offset)
	}
	data := s.data()[:w]
	start, want := int64(0), s.base
	rel := offset - s.base
	if rel > math.MaxUint32 {
		rel = math.MaxUint32
	}
	if pos, erel, ok := s.ix.Load().floor(uint32(rel)); ok && int64(pos) < w {
		start, want = int64(pos), s.base+int64(erel)
	}
	for {
		pos, h, found, err := walkHeaders(data, start, want, func(h *wire.BatchHeader) bool { return offset < h.NextOffset() })
		if found {
			return pos, h, nil
		}
		if start != 0 {
			start, want = 0, s.base
			continue
		}
		if err == nil {
			err = errors.New("offset not found before the end of written data")
		}
		return 0, wire.BatchHeader{}, fmt.Errorf("%w: %s at position %d looking for offset %d: %w", ErrCorrupt, s.logName, pos, offset, err)
	}
}

// walkHeaders walks the batch headers of data from pos, where the batch with
// base offset exp should start, checking offset continuity, until stop
// accepts a header. It returns that batch's position and header (found), or
// found == false with a nil error at the end of data, or the position and
// error of the first malformed header.
func walkHeaders(data []byte, pos, exp int64, stop func(*wire.BatchHeader) bool) (int64, wire.BatchHeader, bool, error) {
	for pos < int64(len(data)) {
		h, n, err := wire.ParseBatchHeader(data[pos:], readLimit)
		if err == nil && h.BaseOffset != exp {
			err = fmt.Errorf("base offset %d, expected %d", h.BaseOffset, exp)
		}
		if err != nil {
			return pos, h, false, err
		}
		if stop(&h) {
			return pos, h, true, nil
		}
		pos += int64(n)
		exp = h.NextOffset()
	}
	return pos, wire.BatchHeader{}, false, nil
}

// read returns whole, verified batches from the one containing offset, at
// most maxBytes but at least one batch. A batch that fails verification is
// never returned: the first one is an ErrCorrupt, a later one ends the read
// early (the next read reports it). Reads check header and checksum only:
// the records were checked when the batch was appended (or recovered), and
// the checksum proves the bytes are the ones checked then. With checksum
// false they check the headers (framing and offset continuity) only: the
// reader verifies the checksums itself.
func (s *segment) read(offset int64, maxBytes int, checksum bool) ([]byte, int64, error) {
	w := s.written.Load()
	start, h, err := s.seek(offset, w)
	if err != nil {
		return nil, 0, err
	}
	data := s.data()[:w]
	pos, exp := start, h.BaseOffset
	for pos < w {
		var (
			h   wire.BatchHeader
			n   int
			err error
		)
		if checksum {
			h, n, err = wire.VerifyBatchChecksum(data[pos:], readLimit)
		} else {
			h, n, err = wire.ParseBatchHeader(data[pos:], readLimit)
		}
		if err == nil && h.BaseOffset != exp {
			err = fmt.Errorf("base offset %d, expected %d", h.BaseOffset, exp)
		}
		if err != nil {
			if pos == start {
				return nil, 0, fmt.Errorf("%w: %s batch at offset %d (position %d): %w", ErrCorrupt, s.logName, exp, pos, err)
			}
			break
		}
		if pos > start && pos-start+int64(n) > int64(maxBytes) {
			break
		}
		pos += int64(n)
		exp = h.NextOffset()
	}
	return data[start:pos], exp, nil
}

// offsetForTime returns the base offset of the first batch whose MaxTimestamp
// is >= ts, or ok == false when no published batch of s has one.
func (s *segment) offsetForTime(ts int64) (int64, bool, error) {
	w := s.written.Load()
	if w == 0 {
		return 0, false, nil
	}
	data := s.data()[:w]
	start, want := int64(0), s.base
	if pos, erel, ok := s.ix.Load().beforeTime(ts); ok && int64(pos) < w {
		start, want = int64(pos), s.base+int64(erel)
	}
	for {
		pos, h, found, err := walkHeaders(data, start, want, func(h *wire.BatchHeader) bool { return h.MaxTimestamp >= ts })
		if found {
			return h.BaseOffset, true, nil
		}
		if err == nil {
			return 0, false, nil
		}
		if start != 0 {
			start, want = 0, s.base
			continue
		}
		return 0, false, fmt.Errorf("%w: %s at position %d: %w", ErrCorrupt, s.logName, pos, err)
	}
}
