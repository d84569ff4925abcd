package raftlog

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/rafka/rafka/segment"
	"github.com/rafka/rafka/wire"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// PartitionOptions configures a PartitionStorage.
type PartitionOptions struct {
	// Log is the segment log's options (segment size, retention, fsync
	// policy...). Its fsync policy is the storage's: under always, Save
	// returns once its entries are fsynced (one fsync per Save).
	// InitialOffset is set by the storage.
	Log segment.Options
	// MustExist refuses a missing directory instead of creating it (a
	// replica that must find its data).
	MustExist bool
	// Logger gets recovery and reconciliation reports. Nil discards.
	Logger *slog.Logger
}

func (o PartitionOptions) withDefaults() PartitionOptions {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Log.Logger == nil {
		o.Log.Logger = o.Logger
	}
	return o
}

// PartitionStorage is a partition's raft log kept in its segment log: one
// entry is one batch (see doc.go, "Partition logs"). It implements the group
// driver's Storage. Safe for concurrent use; every method takes one mutex,
// which Save holds across its fsync (raft's reads and Save both run on the
// driver's goroutine).
type PartitionStorage struct {
	dir  string
	opts PartitionOptions
	lock *os.File

	mu  sync.Mutex
	log *segment.Log
	idx *os.File // the side index
	// fileFirst is the index of the side index's first record.
	fileFirst uint64
	// recs[i] describes entry st.baseIndex+1+i; entries below the log start
	// (dropped by retention) are cut off lazily (syncStartLocked).
	recs []sideRec
	st   persisted // hard state, configuration, base: as last written
	// commit is the commit index last saved (st.commit is the one in the
	// state file).
	commit  uint64
	commitF *os.File
	// segs is the segment count when the side index was last fsynced: it
	// is fsynced at every roll, so that the records of a sealed segment's
	// entries are durable before retention can delete the segment.
	segs int
	// baseDirty: retention moved the base in memory and the state file
	// does not have it yet (written by the next Save).
	baseDirty bool
	failed    error
	closed    bool
	scratch   []byte
	spans     []segment.Span
	recBuf    []byte
}

// OpenPartition opens (recovering) the segment log in dir and the raft state
// beside it, and reconciles the side index with the log: records past the
// log's end are dropped and batches past the side index get records.
func OpenPartition(dir string, opts PartitionOptions) (*PartitionStorage, error) {
	opts = opts.withDefaults()
	if opts.MustExist {
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("raftlog: partition directory: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("raftlog: create %s: %w", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &PartitionStorage{dir: dir, opts: opts, lock: lock}
	if err := s.open(); err != nil {
		s.closeFiles()
		syncUnlock(lock)
		return nil, err
	}
	return s, nil
}

func syncUnlock(f *os.File) {
	(&FileStorage{lock: f}).unlock()
}

func (s *PartitionStorage) path(name string) string { return filepath.Join(s.dir, name) }

func (s *PartitionStorage) open() error {
	b, err := os.ReadFile(s.path(stateFileName))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.st = persisted{cs: &pb.ConfState{}}
		if hasSegments(s.dir) {
			// A log without raft state: only a log that starts at offset 0
			// can be indexed from entry 1.
			s.opts.Logger.Warn("raftlog: partition log without raft state; indexing it from entry 1", "dir", s.dir)
		}
		if err := s.writeStateLocked(); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("raftlog: read %s: %w", s.path(stateFileName), err)
	default:
		if s.st, err = parseState(b); err != nil {
			return fmt.Errorf("raftlog: %s: %w", s.path(stateFileName), err)
		}
	}
	if s.st.resetting {
		s.opts.Logger.Warn("raftlog: finishing an interrupted log reset", "dir", s.dir,
			"offset", s.st.baseOffset, "index", s.st.baseIndex+1)
		return s.resetFilesLocked()
	}
	lo := s.opts.Log
	lo.InitialOffset = s.st.baseOffset
	if s.log, err = segment.Open(s.dir, lo); err != nil {
		return err
	}
	if err := s.loadSideIndex(); err != nil {
		return err
	}
	s.commit = s.st.commit
	if cb, err := os.ReadFile(s.path(commitFileName)); err == nil {
		if c, ok := parseCommit(cb); ok {
			s.commit = max(s.commit, c)
		}
	}
	s.syncStartLocked()
	s.commit = min(max(s.commit, s.st.baseIndex), s.lastLocked())
	s.commitF, err = os.OpenFile(s.path(commitFileName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("raftlog: open %s: %w", s.path(commitFileName), err)
	}
	return nil
}

// hasSegments reports whether dir holds segment files.
func hasSegments(dir string) bool {
	names, _ := os.ReadDir(dir)
	for _, n := range names {
		if isSegmentFile(n.Name()) {
			return true
		}
	}
	return false
}

// isSegmentFile matches the segment log's files (20 digits and a suffix)
// and its clean marker.
func isSegmentFile(name string) bool {
	if strings.HasPrefix(name, "clean-offset") {
		return true
	}
	for _, suf := range []string{".log", ".idx", ".tix"} {
		if d, ok := strings.CutSuffix(name, suf); ok && len(d) == 20 && strings.Trim(d, "0123456789") == "" {
			return true
		}
	}
	return false
}

// loadSideIndex reads the side index and reconciles it with the log: it is
// rebuilt from the log when missing or its header is bad, its records past
// the log's end (or not matching the batch they name) are dropped, and
// batches past its last record get records.
func (s *PartitionStorage) loadSideIndex() error {
	name := s.path(sideIndexName)
	b, err := os.ReadFile(name)
	var first uint64
	var recs []sideRec
	if err == nil {
		first, recs, err = parseSideIndex(b)
	}
	rewrite := err != nil
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) || hasData(s.log) {
			s.opts.Logger.Warn("raftlog: rebuilding the side index from the log", "file", name, "reason", err)
		}
		if s.log.StartOffset() != s.st.baseOffset {
			return fmt.Errorf("%w: %s: cannot rebuild: the log starts at %d, the raft state knows offset %d (entry %d)",
				ErrCorrupt, name, s.log.StartOffset(), s.st.baseOffset, s.st.baseIndex+1)
		}
		first, recs = s.st.baseIndex+1, nil
	}
	if first > s.st.baseIndex+1 {
		return fmt.Errorf("%w: %s starts at entry %d, after the log base %d", ErrCorrupt, name, first, s.st.baseIndex)
	}
	skip := int(s.st.baseIndex + 1 - first) // records below the base
	good := len(recs)
	next := s.log.NextOffset()
	// Drop records past the log's end, then those whose batch differs (a
	// record that outlived a truncation it was not fsynced after).
	for good > skip && recs[good-1].base >= next {
		good--
	}
	for good > skip {
		h, err := s.header(recs[good-1].base)
		if err == nil && h.BaseOffset == recs[good-1].base && h.Term == recs[good-1].term {
			break
		}
		good--
	}
	if good < skip {
		// Records up to the base were lost (not yet fsynced): index again
		// from the base.
		first, recs, good, skip, rewrite = s.st.baseIndex+1, nil, 0, 0, true
	}
	if good < len(recs) || rewrite {
		s.opts.Logger.Info("raftlog: side index reconciled", "file", name, "kept", good, "dropped", len(recs)-good)
	}
	// Walk the batches after the last good record.
	from := s.st.baseOffset
	if good > skip {
		h, err := s.header(recs[good-1].base)
		if err != nil {
			return err
		}
		from = h.NextOffset()
	} else if s.log.StartOffset() > from {
		return fmt.Errorf("%w: %s: cannot index the log from offset %d: it starts at %d", ErrCorrupt, name, from, s.log.StartOffset())
	}
	added, err := s.scanBatches(from, next)
	if err != nil {
		return err
	}
	kept := len(recs[:good])
	recs = append(recs[:good], added...)
	if rewrite {
		if err := s.rewriteSideIndex(first, recs); err != nil {
			return err
		}
	} else {
		if s.idx, err = os.OpenFile(name, os.O_RDWR, 0); err != nil {
			return fmt.Errorf("raftlog: open %s: %w", name, err)
		}
		if err := s.writeRecords(first, kept, recs[kept:], true); err != nil {
			return err
		}
	}
	s.fileFirst = first
	s.recs = slices.Clone(recs[skip:])
	return nil
}

func hasData(l *segment.Log) bool { return l.NextOffset() > l.StartOffset() }

// header returns the header of the batch that starts at off.
func (s *PartitionStorage) header(off int64) (wire.BatchHeader, error) {
	v, err := s.log.Read(off, 1)
	if err != nil {
		return wire.BatchHeader{}, err
	}
	defer v.Release()
	h, _, err := wire.ParseBatchHeader(v.Bytes(), math.MaxInt32)
	return h, err
}

// scanBatches returns a record per batch in [from, to).
func (s *PartitionStorage) scanBatches(from, to int64) ([]sideRec, error) {
	var recs []sideRec
	for off := from; off < to; {
		v, err := s.log.Read(off, 8<<20)
		if err != nil {
			return nil, err
		}
		b := v.Bytes()
		for len(b) > 0 {
			h, n, err := wire.ParseBatchHeader(b, math.MaxInt32)
			if err != nil {
				v.Release()
				return nil, fmt.Errorf("%w: batch at %d: %w", ErrCorrupt, off, err)
			}
			recs = append(recs, sideRec{base: h.BaseOffset, term: h.Term})
			off = h.NextOffset()
			b = b[n:]
		}
		v.Release()
	}
	return recs, nil
}

// rewriteSideIndex replaces the side index with the given records,
// atomically (temporary file, fsync, rename, directory fsync).
func (s *PartitionStorage) rewriteSideIndex(first uint64, recs []sideRec) error {
	b := appendSideHeader(make([]byte, 0, sideHeaderSize+len(recs)*sideRecordSize), first)
	for i, r := range recs {
		b = appendSideRecord(b, first+uint64(i), r)
	}
	if err := writeFileSync(s.path(sideIndexTmp), b); err != nil {
		return fmt.Errorf("raftlog: write side index: %w", err)
	}
	if err := os.Rename(s.path(sideIndexTmp), s.path(sideIndexName)); err != nil {
		return fmt.Errorf("raftlog: rename side index: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("raftlog: fsync %s: %w", s.dir, err)
	}
	if s.idx != nil {
		s.idx.Close()
	}
	f, err := os.OpenFile(s.path(sideIndexName), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("raftlog: open side index: %w", err)
	}
	s.idx, s.fileFirst = f, first
	return nil
}

// writeRecords writes recs as the side index's records from position k
// (the record of entry first+k), cutting the file there first when trunc is
// set; a cut is fsynced, so that a record removed by it cannot come back
// after a crash and describe a batch written since at its offset.
func (s *PartitionStorage) writeRecords(first uint64, k int, recs []sideRec, trunc bool) error {
	at := int64(sideHeaderSize + k*sideRecordSize)
	if trunc {
		if err := s.idx.Truncate(at); err != nil {
			return fmt.Errorf("raftlog: truncate side index: %w", err)
		}
	}
	if len(recs) > 0 {
		b := s.recBuf[:0]
		for i, r := range recs {
			b = appendSideRecord(b, first+uint64(k+i), r)
		}
		s.recBuf = b
		if _, err := s.idx.WriteAt(b, at); err != nil {
			return fmt.Errorf("raftlog: write side index: %w", err)
		}
	}
	if trunc {
		if err := s.idx.Sync(); err != nil {
			return fmt.Errorf("raftlog: fsync side index: %w", err)
		}
	}
	return nil
}

// writeStateLocked replaces the state file with s.st (and s.commit).
func (s *PartitionStorage) writeStateLocked() error {
	st := s.st
	st.commit = max(st.commit, s.commit)
	b, err := appendState(nil, &st)
	if err != nil {
		return err
	}
	if err := writeFileSync(s.path(stateFileTmp), b); err != nil {
		return fmt.Errorf("raftlog: write state: %w", err)
	}
	if err := os.Rename(s.path(stateFileTmp), s.path(stateFileName)); err != nil {
		return fmt.Errorf("raftlog: rename state: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("raftlog: fsync %s: %w", s.dir, err)
	}
	s.st = st
	s.baseDirty = false
	return nil
}

// syncStartLocked follows the log start moved by retention: entries whose
// batches are gone are dropped from memory and the base moves to the last
// of them (persisted with the next state write).
func (s *PartitionStorage) syncStartLocked() bool {
	start := s.log.StartOffset()
	if start <= s.st.baseOffset || len(s.recs) == 0 {
		return false
	}
	k := sort.Search(len(s.recs), func(i int) bool { return s.recs[i].base >= start })
	if k == 0 {
		return false
	}
	s.st.baseIndex += uint64(k)
	s.st.baseTerm = s.recs[k-1].term
	s.st.baseOffset = start
	s.recs = slices.Clone(s.recs[k:])
	s.commit = max(s.commit, s.st.baseIndex)
	s.baseDirty = true
	return true
}

func (s *PartitionStorage) lastLocked() uint64 { return s.st.baseIndex + uint64(len(s.recs)) }

// Log is the segment log, for readers (Read up to the high watermark,
// offsets, retention). A Save with a snapshot replaces it: call Log again
// rather than keep it.
func (s *PartitionStorage) Log() *segment.Log {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log
}

// InitialState implements raft.Storage: the hard state (commit clamped to
// the log) and the configuration last given to SetConfState (or of the
// snapshot the log was reset to).
func (s *PartitionStorage) InitialState() (*pb.HardState, *pb.ConfState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.syncStartLocked()
	hs := &pb.HardState{Term: new(s.st.term), Vote: new(s.st.vote), Commit: new(min(s.commit, s.lastLocked()))}
	return hs, proto.Clone(pb.EnsureConfState(s.st.cs)).(*pb.ConfState), nil
}

// FirstIndex implements raft.Storage: the first entry whose batch the log
// still holds.
func (s *PartitionStorage) FirstIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.syncStartLocked()
	return s.st.baseIndex + 1, nil
}

// LastIndex implements raft.Storage.
func (s *PartitionStorage) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastLocked(), nil
}

// Term implements raft.Storage.
func (s *PartitionStorage) Term(i uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.syncStartLocked()
	switch {
	case i < s.st.baseIndex:
		return 0, raft.ErrCompacted
	case i == s.st.baseIndex:
		return s.st.baseTerm, nil
	case i > s.lastLocked():
		return 0, raft.ErrUnavailable
	}
	return s.recs[i-s.st.baseIndex-1].term, nil
}

// Snapshot implements raft.Storage. The partition's state is its log, so a
// snapshot is a position: metadata {FirstIndex-1, its term, the current
// configuration} and data {log start offset, FirstIndex} (ParseSnapshotData).
// It is empty while the log still starts at entry 1.
func (s *PartitionStorage) Snapshot() (*pb.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.syncStartLocked()
	return s.snapshotLocked(), nil
}

func (s *PartitionStorage) snapshotLocked() *pb.Snapshot {
	cs := proto.Clone(pb.EnsureConfState(s.st.cs)).(*pb.ConfState)
	if s.st.baseIndex == 0 {
		return &pb.Snapshot{Metadata: &pb.SnapshotMetadata{ConfState: cs, Index: new(uint64(0)), Term: new(uint64(0))}}
	}
	return &pb.Snapshot{
		Data:     appendSnapData(nil, s.st.baseOffset, s.st.baseIndex+1, s.st.confIndex),
		Metadata: &pb.SnapshotMetadata{ConfState: cs, Index: new(s.st.baseIndex), Term: new(s.st.baseTerm)},
	}
}

// Entries implements raft.Storage: entries [lo, hi) read back from their
// batches, at most maxSize bytes (raft's rule: at least one). Normal entries
// carry their batch as stored (base offset and term stamped); no-ops and
// configuration changes come back as they were saved.
func (s *PartitionStorage) Entries(lo, hi, maxSize uint64) ([]*pb.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.syncStartLocked()
	if lo <= s.st.baseIndex {
		return nil, raft.ErrCompacted
	}
	if hi > s.lastLocked()+1 || lo > hi {
		return nil, fmt.Errorf("%w: entries [%d, %d) of [%d, %d]", raft.ErrUnavailable, lo, hi, s.st.baseIndex+1, s.lastLocked())
	}
	var ents []*pb.Entry
	var size uint64
	for i := lo; i < hi; {
		r := s.recs[i-s.st.baseIndex-1]
		v, err := s.log.Read(r.base, int(min(maxSize-min(size, maxSize), 8<<20)))
		if err != nil {
			return nil, fmt.Errorf("raftlog: entry %d at offset %d: %w", i, r.base, err)
		}
		b := v.Bytes()
		for len(b) > 0 && i < hi {
			h, n, err := wire.ParseBatchHeader(b, math.MaxInt32)
			if err != nil {
				v.Release()
				return nil, fmt.Errorf("%w: entry %d: %w", ErrCorrupt, i, err)
			}
			e, err := entryFromBatch(b[:n], &h, i)
			if err != nil {
				v.Release()
				return nil, err
			}
			size += uint64(proto.Size(e))
			if len(ents) > 0 && size > maxSize {
				v.Release()
				return ents, nil
			}
			ents = append(ents, e)
			b = b[n:]
			i++
		}
		v.Release()
		if size >= maxSize {
			break
		}
	}
	return ents, nil
}

// entryFromBatch rebuilds entry index from its stored batch (copied).
func entryFromBatch(b []byte, h *wire.BatchHeader, index uint64) (*pb.Entry, error) {
	e := &pb.Entry{Index: new(index), Term: new(h.Term)}
	if !h.IsControl() {
		e.Type = new(pb.EntryNormal)
		e.Data = slices.Clone(b)
		return e, nil
	}
	body, err := wire.ControlBody(b)
	if err != nil {
		return nil, fmt.Errorf("%w: entry %d: %w", ErrCorrupt, index, err)
	}
	t, data, err := parseControlBody(body)
	if err != nil {
		return nil, fmt.Errorf("entry %d: %w", index, err)
	}
	e.Type = new(t)
	if len(data) > 0 {
		e.Data = slices.Clone(data)
	}
	return e, nil
}

// Save implements the group driver's Storage: the snapshot (if not empty:
// the log restarts empty at its position), the entries (a conflicting suffix
// is truncated first; each becomes one batch, appended with one write per
// run of equal terms), then the hard state (the state file is replaced when
// term or vote change; a commit-only change is written without fsync).
// Under the log's fsync policy always it returns once the entries are
// fsynced. A normal entry whose data is not exactly one record batch is
// ErrInvalid, and nothing is written. A failed write is sticky (ErrFailed).
func (s *PartitionStorage) Save(hs *pb.HardState, ents []*pb.Entry, snap *pb.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.failed != nil {
		return s.failed
	}
	s.syncStartLocked()
	moved := s.baseDirty
	if !raft.IsEmptySnap(snap) {
		if err := s.resetLocked(snap); err != nil {
			return s.failSave(err)
		}
	}
	if len(ents) > 0 {
		if err := s.checkEntriesLocked(ents); err != nil {
			return err
		}
		if err := s.appendLocked(ents); err != nil {
			return s.failSave(err)
		}
	}
	if raft.IsEmptyHardState(hs) {
		hs = nil
	}
	if hs != nil {
		s.commit = hs.GetCommit()
		if hs.GetTerm() != s.st.term || hs.GetVote() != s.st.vote || moved {
			s.st.term, s.st.vote = hs.GetTerm(), hs.GetVote()
			if err := s.writeStateLocked(); err != nil {
				return s.failSave(err)
			}
		} else if _, err := s.commitF.WriteAt(appendCommit(nil, s.commit), 0); err != nil {
			return s.failSave(fmt.Errorf("raftlog: write commit: %w", err))
		}
	} else if moved {
		if err := s.writeStateLocked(); err != nil {
			return s.failSave(err)
		}
	}
	return nil
}

func (s *PartitionStorage) failSave(err error) error {
	if errors.Is(err, ErrFailed) {
		return err
	}
	s.failed = fmt.Errorf("%w: %s: %w", ErrFailed, s.dir, err)
	s.opts.Logger.Error("raftlog: partition storage failed", "dir", s.dir, "err", err)
	return s.failed
}

// checkEntriesLocked checks that ents follow the log and that every normal
// entry with data is one record batch (header only: the segment log
// verifies the whole batch before writing anything of an append).
func (s *PartitionStorage) checkEntriesLocked(ents []*pb.Entry) error {
	first := ents[0].GetIndex()
	if first <= s.st.baseIndex || first > s.lastLocked()+1 {
		return fmt.Errorf("%w: entries from %d, log holds [%d, %d]", ErrInvalid, first, s.st.baseIndex+1, s.lastLocked())
	}
	if err := checkContiguous(ents, first); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	for _, e := range ents {
		if e.GetType() != pb.EntryNormal || len(e.GetData()) == 0 {
			continue
		}
		h, n, err := wire.ParseBatchHeader(e.GetData(), math.MaxInt32)
		if err != nil || n != len(e.GetData()) || h.IsControl() {
			return fmt.Errorf("%w: entry %d: data is not one record batch (%d bytes): %v", ErrInvalid, e.GetIndex(), len(e.GetData()), err)
		}
	}
	return nil
}

// appendLocked truncates the suffix that ents replace and appends them.
func (s *PartitionStorage) appendLocked(ents []*pb.Entry) error {
	first := ents[0].GetIndex()
	if first <= s.lastLocked() {
		k := int(first - s.st.baseIndex - 1)
		if err := s.log.TruncateFrom(s.recs[k].base); err != nil {
			return err
		}
		s.recs = s.recs[:k]
		if err := s.writeRecords(s.fileFirst, s.fileIndexLocked(k), nil, true); err != nil {
			return err
		}
	}
	// Copy into scratch: the entries' data is shared with raft (and with
	// messages to other members), so it is stamped here, not in place.
	buf := s.scratch[:0]
	type run struct {
		start, end int
		term       uint64
	}
	var runs []run
	for _, e := range ents {
		at := len(buf)
		var err error
		if e.GetType() == pb.EntryNormal && len(e.GetData()) > 0 {
			buf = append(buf, e.GetData()...)
		} else if buf, err = wire.AppendControlBatch(buf, 0, appendControlBody(nil, e.GetType(), e.GetData())); err != nil {
			return fmt.Errorf("raftlog: entry %d: %w", e.GetIndex(), err)
		}
		if n := len(runs); n > 0 && runs[n-1].term == e.GetTerm() {
			runs[n-1].end = len(buf)
		} else {
			runs = append(runs, run{at, len(buf), e.GetTerm()})
		}
	}
	s.scratch = buf
	k := len(s.recs)
	for _, r := range runs {
		res, err := s.log.AppendSpans(buf[r.start:r.end], r.term, s.spans)
		if err != nil {
			return err
		}
		s.spans = res.Spans
		for _, sp := range res.Spans {
			s.recs = append(s.recs, sideRec{base: sp.BaseOffset, term: r.term})
		}
	}
	if err := s.writeRecords(s.fileFirst, s.fileIndexLocked(k), s.recs[k:], false); err != nil {
		return err
	}
	if n := s.log.Segments(); n != s.segs {
		if err := s.idx.Sync(); err != nil {
			return fmt.Errorf("raftlog: fsync side index: %w", err)
		}
		s.segs = n
	}
	if len(s.scratch) > 4<<20 {
		s.scratch = nil // do not pin a large catch-up buffer
	}
	return s.log.WaitDurable(context.Background(), s.log.NextOffset())
}

// fileIndexLocked is the side-index file position of s.recs[k].
func (s *PartitionStorage) fileIndexLocked(k int) int {
	return int(s.st.baseIndex+1-s.fileFirst) + k
}

// resetLocked discards the log and restarts it empty at the snapshot's
// position; see doc.go for the order and what a crash leaves.
func (s *PartitionStorage) resetLocked(snap *pb.Snapshot) error {
	md := snap.GetMetadata()
	start, firstIndex, confIndex, err := ParseSnapshotData(snap.GetData())
	if err != nil {
		return err
	}
	if firstIndex != md.GetIndex()+1 {
		return fmt.Errorf("%w: snapshot at %d names first index %d", ErrInvalid, md.GetIndex(), firstIndex)
	}
	s.st.baseOffset, s.st.baseIndex, s.st.baseTerm = start, md.GetIndex(), md.GetTerm()
	s.st.cs = proto.Clone(pb.EnsureConfState(md.GetConfState())).(*pb.ConfState)
	// The configuration is the leader's latest: it includes the changes
	// up to confIndex, which the entries after the snapshot may hold
	// again (ConfIndex).
	s.st.confIndex = max(confIndex, md.GetIndex())
	s.st.resetting = true
	s.commit = max(s.commit, md.GetIndex())
	if err := s.writeStateLocked(); err != nil {
		return err
	}
	return s.resetFilesLocked()
}

// resetFilesLocked replaces the log and side index with empty ones at the
// base in s.st, then clears the resetting mark.
func (s *PartitionStorage) resetFilesLocked() error {
	if s.log != nil {
		if err := s.log.Close(); err != nil {
			s.opts.Logger.Warn("raftlog: closing the log being reset", "dir", s.dir, "err", err)
		}
		s.log = nil
	}
	if s.idx != nil {
		s.idx.Close()
		s.idx = nil
	}
	if err := os.Remove(s.path(sideIndexName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("raftlog: reset: %w", err)
	}
	names, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("raftlog: reset: %w", err)
	}
	// Newest segment first, so that a crash leaves a prefix of the log
	// (the reset is redone at the next open anyway).
	for i := len(names) - 1; i >= 0; i-- {
		if n := names[i].Name(); isSegmentFile(n) {
			if err := os.Remove(s.path(n)); err != nil {
				return fmt.Errorf("raftlog: reset: %w", err)
			}
		}
	}
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("raftlog: reset: fsync %s: %w", s.dir, err)
	}
	lo := s.opts.Log
	lo.InitialOffset = s.st.baseOffset
	if s.log, err = segment.Open(s.dir, lo); err != nil {
		return err
	}
	s.recs = nil
	if err := s.rewriteSideIndex(s.st.baseIndex+1, nil); err != nil {
		return err
	}
	s.st.resetting = false
	if err := s.writeStateLocked(); err != nil {
		return err
	}
	if s.commitF == nil {
		if s.commitF, err = os.OpenFile(s.path(commitFileName), os.O_RDWR|os.O_CREATE, 0o644); err != nil {
			return fmt.Errorf("raftlog: open %s: %w", s.path(commitFileName), err)
		}
		s.commit = max(s.commit, s.st.commit, s.st.baseIndex)
	}
	return nil
}

// SetConfState records the configuration as of the configuration change
// at raft index index, the last one applied (InitialState and Snapshot
// return it, ConfIndex the index). The driver's owner calls it after
// applying each one; it is fsynced before it returns. A change at or before
// the index recorded is already included: it is ignored.
func (s *PartitionStorage) SetConfState(index uint64, cs *pb.ConfState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.failed != nil {
		return s.failed
	}
	if index <= s.st.confIndex {
		return nil
	}
	s.st.cs = proto.Clone(pb.EnsureConfState(cs)).(*pb.ConfState)
	s.st.confIndex = index
	if err := s.writeStateLocked(); err != nil {
		return s.failSave(err)
	}
	return nil
}

// ConfIndex is the raft index of the last configuration change the
// configuration of InitialState includes (0 when unknown: a state written
// before the index was recorded). raft hands the committed entries after
// the snapshot again at start; the changes among them up to this index are
// in the configuration already and must not be applied a second time.
func (s *PartitionStorage) ConfIndex() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.confIndex
}

// CreateSnapshot implements the group driver's Storage. The log is the
// state, so there is nothing to store: it returns the current snapshot (the
// log's position) and ignores data. Partition groups set SnapshotEntries so
// that the driver does not call it in practice.
func (s *PartitionStorage) CreateSnapshot(i uint64, cs *pb.ConfState, data []byte) (*pb.Snapshot, error) {
	return s.Snapshot()
}

// Compact implements the group driver's Storage as a no-op: entries are
// removed only by the log's retention, which moves FirstIndex.
func (s *PartitionStorage) Compact(i uint64) error { return nil }

// EntryOffset returns the offsets of entry index's batch: its base offset
// and the offset after it.
func (s *PartitionStorage) EntryOffset(index uint64) (base int64, next int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.syncStartLocked()
	if index <= s.st.baseIndex {
		return 0, 0, raft.ErrCompacted
	}
	if index > s.lastLocked() {
		return 0, 0, raft.ErrUnavailable
	}
	k := int(index - s.st.baseIndex - 1)
	return s.recs[k].base, s.nextAfterLocked(k), nil
}

// NextOffsetAfter returns the offset after entry index's batch: with index
// the commit index, the high watermark. index may be FirstIndex-1 (the log
// start offset).
func (s *PartitionStorage) NextOffsetAfter(index uint64) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.syncStartLocked()
	switch {
	case index < s.st.baseIndex:
		return 0, raft.ErrCompacted
	case index == s.st.baseIndex:
		return s.st.baseOffset, nil
	case index > s.lastLocked():
		return 0, raft.ErrUnavailable
	}
	return s.nextAfterLocked(int(index - s.st.baseIndex - 1)), nil
}

func (s *PartitionStorage) nextAfterLocked(k int) int64 {
	if k+1 < len(s.recs) {
		return s.recs[k+1].base
	}
	return s.log.NextOffset()
}

func (s *PartitionStorage) closeFiles() error {
	var errs []error
	if s.log != nil {
		errs = append(errs, s.log.Close())
	}
	if s.idx != nil {
		errs = append(errs, s.idx.Sync(), s.idx.Close())
	}
	if s.commitF != nil {
		errs = append(errs, s.commitF.Close())
	}
	return errors.Join(errs...)
}

// Close closes the log (fsyncing it) and the side index and releases the
// directory. It is idempotent.
func (s *PartitionStorage) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.closeFiles()
	syncUnlock(s.lock)
	return err
}
