package raftlog

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// File names inside a storage directory.
const (
	logFileName  = "raft.log"
	tmpFileName  = "raft.log.tmp"
	lockFileName = "LOCK"
)

// FileStorage is a raft.Storage held in memory and persisted to one file (see
// the package documentation). It is safe for concurrent use.
type FileStorage struct {
	dir  string
	opts Options
	// ms is the log in memory; it has its own lock, and raft's reads go
	// straight to it.
	ms *raft.MemoryStorage

	mu sync.Mutex
	// f is the log file, opened for appending.
	f *os.File
	// lock holds the directory's flock.
	lock *os.File
	// snapIndex is the index of the latest snapshot (0 when none).
	snapIndex uint64
	// hs is the last hard state saved, to tell a commit-only change.
	hs *pb.HardState
	// unsynced: a record was written without fsync since the last one.
	unsynced bool
	// failed is the sticky error of a failed write or fsync.
	failed error
	closed bool
	// buf is reused to encode records.
	buf []byte
}

// Open opens the log in dir, creating dir and an empty log if needed, and
// replays it (see the package documentation for what a torn tail does).
func Open(dir string, opts Options) (*FileStorage, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("raftlog: create %s: %w", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &FileStorage{dir: dir, opts: opts, lock: lock}
	if err := s.open(); err != nil {
		s.unlock()
		return nil, err
	}
	return s, nil
}

// lockDir takes the exclusive flock of dir.
func lockDir(dir string) (*os.File, error) {
	name := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("raftlog: open %s: %w", name, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("raftlog: lock %s: %w", name, err)
	}
	return f, nil
}

func (s *FileStorage) unlock() {
	syscall.Flock(int(s.lock.Fd()), syscall.LOCK_UN)
	s.lock.Close()
}

// open replays the log file (creating it when absent) and opens it for
// appending.
func (s *FileStorage) open() error {
	if err := os.Remove(filepath.Join(s.dir, tmpFileName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("raftlog: remove leftover %s: %w", tmpFileName, err)
	}
	name := filepath.Join(s.dir, logFileName)
	data, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		s.ms = raft.NewMemoryStorage()
		return s.rewriteLocked()
	}
	if err != nil {
		return fmt.Errorf("raftlog: read %s: %w", name, err)
	}
	r, err := replay(data, s.opts.MaxRecordBytes)
	if err != nil {
		return fmt.Errorf("raftlog: %s: %w", name, err)
	}
	s.ms, s.snapIndex = r.ms, r.snapIndex
	s.hs, _, _ = r.ms.InitialState()
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("raftlog: open %s: %w", name, err)
	}
	if r.good < len(data) {
		s.opts.Logger.Warn("raftlog: truncating torn tail", "file", name, "offset", r.good,
			"bytes", len(data)-r.good, "reason", r.tornErr)
		if err := f.Truncate(int64(r.good)); err != nil {
			f.Close()
			return fmt.Errorf("raftlog: truncate %s at %d: %w", name, r.good, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("raftlog: fsync %s: %w", name, err)
		}
	}
	s.f = f
	return nil
}

// replayed is the state read back from a log file.
type replayed struct {
	ms        *raft.MemoryStorage
	snapIndex uint64
	// good is the length of the intact prefix of the file.
	good int
	// tornErr says why the file ends early (nil when good is its length).
	tornErr error
}

// replay rebuilds the log from the bytes of a log file.
func replay(data []byte, maxRecord int) (replayed, error) {
	var r replayed
	if len(data) < len(fileMagic) || string(data[:len(fileMagic)]) != fileMagic {
		return r, fmt.Errorf("%w: bad magic", ErrCorrupt)
	}
	off := len(fileMagic)
	payload, n, err := parseRecord(data[off:], maxRecord)
	if err != nil {
		// The base record is written whole before the file is renamed
		// into place: it cannot be torn by a crash.
		return r, fmt.Errorf("%w: base record: %w", ErrCorrupt, err)
	}
	m, err := decodeSave(payload)
	if err != nil {
		return r, fmt.Errorf("base record: %w", err)
	}
	if r.ms, r.snapIndex, err = replayBase(m); err != nil {
		return r, err
	}
	off += n
	for off < len(data) {
		payload, n, err := parseRecord(data[off:], maxRecord)
		if err != nil {
			r.tornErr = err
			break
		}
		m, err := decodeSave(payload)
		if err != nil {
			return r, fmt.Errorf("record at %d: %w", off, err)
		}
		if err := checkSave(r.ms, r.snapIndex, m); err != nil {
			return r, fmt.Errorf("%w: record at %d: %w", ErrCorrupt, off, err)
		}
		r.snapIndex = applySave(r.ms, r.snapIndex, m)
		off += n
	}
	r.good = off
	hs, _, _ := r.ms.InitialState()
	last, _ := r.ms.LastIndex()
	if hs.GetCommit() > last {
		return r, fmt.Errorf("%w: commit index %d past last index %d", ErrCorrupt, hs.GetCommit(), last)
	}
	return r, nil
}

// replayBase builds the log a base record describes.
func replayBase(m *pb.Message) (*raft.MemoryStorage, uint64, error) {
	ms := raft.NewMemoryStorage()
	j, tj := m.GetIndex(), m.GetLogTerm()
	snap := m.GetSnapshot()
	si := snap.GetMetadata().GetIndex()
	switch {
	case j == 0 && tj != 0:
		return nil, 0, fmt.Errorf("%w: base record starts after index 0 with term %d", ErrCorrupt, tj)
	case si < j || j > 0 && si == 0:
		return nil, 0, fmt.Errorf("%w: base record starts after index %d, snapshot at %d", ErrCorrupt, j, si)
	}
	ents := m.GetEntries()
	if err := checkContiguous(ents, j+1); err != nil {
		return nil, 0, fmt.Errorf("%w: base record: %w", ErrCorrupt, err)
	}
	if j > 0 {
		base := snap
		if si > j {
			// The log starts before the snapshot: lay down the compaction
			// point first, then record the snapshot over the entries.
			base = &pb.Snapshot{Metadata: &pb.SnapshotMetadata{
				Index: new(j), Term: new(tj), ConfState: snap.GetMetadata().GetConfState(),
			}}
		}
		if err := ms.ApplySnapshot(base); err != nil {
			return nil, 0, fmt.Errorf("%w: base record: %w", ErrCorrupt, err)
		}
	}
	if err := ms.Append(ents); err != nil {
		return nil, 0, fmt.Errorf("%w: base record: %w", ErrCorrupt, err)
	}
	if si > j {
		last, _ := ms.LastIndex()
		if si > last {
			return nil, 0, fmt.Errorf("%w: base record: snapshot at %d past last index %d", ErrCorrupt, si, last)
		}
		if t, _ := ms.Term(si); t != snap.GetMetadata().GetTerm() {
			return nil, 0, fmt.Errorf("%w: base record: snapshot at %d has term %d, entry has %d",
				ErrCorrupt, si, snap.GetMetadata().GetTerm(), t)
		}
		if _, err := ms.CreateSnapshot(si, snap.GetMetadata().GetConfState(), snap.GetData()); err != nil {
			return nil, 0, fmt.Errorf("%w: base record: %w", ErrCorrupt, err)
		}
	}
	if hs := hardState(m); hs != nil {
		ms.SetHardState(hs)
	}
	return ms, si, nil
}

// checkContiguous checks that ents have consecutive indexes from first.
func checkContiguous(ents []*pb.Entry, first uint64) error {
	for i, e := range ents {
		if e.GetIndex() != first+uint64(i) {
			return fmt.Errorf("entry %d has index %d, want %d", i, e.GetIndex(), first+uint64(i))
		}
	}
	return nil
}

// checkSave checks that a Save fits the log in ms whose latest snapshot is
// at snapIndex, without changing anything.
func checkSave(ms *raft.MemoryStorage, snapIndex uint64, m *pb.Message) error {
	last, _ := ms.LastIndex()
	if snap := m.GetSnapshot(); snap.GetMetadata().GetIndex() != 0 {
		si := snap.GetMetadata().GetIndex()
		if si <= snapIndex {
			return fmt.Errorf("snapshot at %d, not after the snapshot at %d", si, snapIndex)
		}
		last = si
	}
	ents := m.GetEntries()
	if len(ents) == 0 {
		return nil
	}
	first := ents[0].GetIndex()
	if first == 0 || first > last+1 {
		return fmt.Errorf("entries from %d leave a gap after last index %d", first, last)
	}
	return checkContiguous(ents, first)
}

// applySave applies a checked Save to ms and returns the new snapshot index.
func applySave(ms *raft.MemoryStorage, snapIndex uint64, m *pb.Message) uint64 {
	if snap := m.GetSnapshot(); snap.GetMetadata().GetIndex() != 0 {
		if err := ms.ApplySnapshot(snap); err != nil {
			panic(fmt.Sprintf("BUG: raftlog: checked snapshot refused: %v", err))
		}
		snapIndex = snap.GetMetadata().GetIndex()
	}
	if err := ms.Append(m.GetEntries()); err != nil {
		panic(fmt.Sprintf("BUG: raftlog: checked entries refused: %v", err))
	}
	if hs := hardState(m); hs != nil {
		ms.SetHardState(hs)
	}
	return snapIndex
}

// InitialState implements raft.Storage.
func (s *FileStorage) InitialState() (*pb.HardState, *pb.ConfState, error) {
	return s.ms.InitialState()
}

// Entries implements raft.Storage.
func (s *FileStorage) Entries(lo, hi, maxSize uint64) ([]*pb.Entry, error) {
	return s.ms.Entries(lo, hi, maxSize)
}

// Term implements raft.Storage.
func (s *FileStorage) Term(i uint64) (uint64, error) { return s.ms.Term(i) }

// LastIndex implements raft.Storage.
func (s *FileStorage) LastIndex() (uint64, error) { return s.ms.LastIndex() }

// FirstIndex implements raft.Storage.
func (s *FileStorage) FirstIndex() (uint64, error) { return s.ms.FirstIndex() }

// Snapshot implements raft.Storage.
func (s *FileStorage) Snapshot() (*pb.Snapshot, error) { return s.ms.Snapshot() }

// Save persists, in one record, a snapshot (if not empty), entries
// (replacing any conflicting suffix) and a hard state (if not nil nor
// empty), then applies them in memory. It returns once the record is
// fsynced, except when only the commit index changed (see the package
// documentation). The log keeps the entries and snapshot it is handed; the
// caller must not modify them afterwards.
func (s *FileStorage) Save(hs *pb.HardState, ents []*pb.Entry, snap *pb.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(); err != nil {
		return err
	}
	if raft.IsEmptyHardState(hs) {
		hs = nil
	}
	if hs == nil && len(ents) == 0 && raft.IsEmptySnap(snap) {
		return nil
	}
	if hs != nil {
		hs = proto.Clone(hs).(*pb.HardState)
	}
	m := saveMessage(hs, ents, snap)
	if err := checkSave(s.ms, s.snapIndex, m); err != nil {
		return fmt.Errorf("%w: save: %w", ErrInvalid, err)
	}
	sync := len(ents) > 0 || m.Snapshot != nil ||
		hs != nil && (hs.GetTerm() != s.hs.GetTerm() || hs.GetVote() != s.hs.GetVote())
	if err := s.appendLocked(m, sync); err != nil {
		return err
	}
	s.snapIndex = applySave(s.ms, s.snapIndex, m)
	if hs != nil {
		s.hs = hs
	}
	return nil
}

// usableLocked returns why the storage cannot be written, or nil.
func (s *FileStorage) usableLocked() error {
	if s.closed {
		return ErrClosed
	}
	return s.failed
}

// appendLocked writes m as one record and fsyncs it when sync is set (or an
// earlier record waits for one).
func (s *FileStorage) appendLocked(m *pb.Message, sync bool) error {
	var err error
	s.buf, err = appendRecord(s.buf[:0], m, s.opts.MaxRecordBytes)
	if err != nil {
		return err
	}
	if _, err := s.f.Write(s.buf); err != nil {
		return s.failLocked("write", err)
	}
	if !sync {
		s.unsynced = true
		return nil
	}
	if err := s.f.Sync(); err != nil {
		return s.failLocked("fsync", err)
	}
	s.unsynced = false
	return nil
}

// failLocked records a sticky write failure.
func (s *FileStorage) failLocked(op string, err error) error {
	s.failed = fmt.Errorf("%w: %s %s: %w", ErrFailed, op, filepath.Join(s.dir, logFileName), err)
	s.opts.Logger.Error("raftlog: storage failed", "dir", s.dir, "err", s.failed)
	return s.failed
}

// CreateSnapshot records a snapshot at index i (at most the last index,
// after the latest snapshot) with the state machine's data and the
// configuration as of i, and rewrites the file so that it survives a
// restart. It returns the snapshot.
func (s *FileStorage) CreateSnapshot(i uint64, cs *pb.ConfState, data []byte) (*pb.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(); err != nil {
		return nil, err
	}
	if last, _ := s.ms.LastIndex(); i > last {
		return nil, fmt.Errorf("%w: snapshot at %d past last index %d", ErrInvalid, i, last)
	}
	snap, err := s.ms.CreateSnapshot(i, cs, data)
	if err != nil {
		return nil, fmt.Errorf("raftlog: snapshot at %d: %w", i, err)
	}
	s.snapIndex = i
	if err := s.rewriteLocked(); err != nil {
		return nil, err
	}
	return snap, nil
}

// Compact drops the entries up to and including i, which the latest
// snapshot must cover, and rewrites the file. Compacting at or below the
// first kept entry's predecessor returns raft.ErrCompacted.
func (s *FileStorage) Compact(i uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(); err != nil {
		return err
	}
	if i > s.snapIndex {
		return fmt.Errorf("%w: compact to %d past the snapshot at %d", ErrInvalid, i, s.snapIndex)
	}
	if err := s.ms.Compact(i); err != nil {
		return fmt.Errorf("raftlog: compact to %d: %w", i, err)
	}
	return s.rewriteLocked()
}

// rewriteLocked replaces the file with one base record of the log in
// memory. A failure before the rename leaves the old file, which still
// describes the log (uncompacted); a failure after it is sticky.
func (s *FileStorage) rewriteLocked() error {
	fi, _ := s.ms.FirstIndex()
	li, _ := s.ms.LastIndex()
	j := fi - 1
	tj, err := s.ms.Term(j)
	if err != nil {
		panic(fmt.Sprintf("BUG: raftlog: term of compaction point %d: %v", j, err))
	}
	snap, _ := s.ms.Snapshot()
	var ents []*pb.Entry
	if li >= fi {
		if ents, err = s.ms.Entries(fi, li+1, math.MaxUint64); err != nil {
			panic(fmt.Sprintf("BUG: raftlog: entries [%d, %d]: %v", fi, li, err))
		}
	}
	hs, _, _ := s.ms.InitialState()
	if raft.IsEmptyHardState(hs) {
		hs = nil
	}
	m := saveMessage(hs, ents, snap)
	m.Index, m.LogTerm = new(j), new(tj)
	buf := append(s.buf[:0], fileMagic...)
	if buf, err = appendRecord(buf, m, s.opts.MaxRecordBytes); err != nil {
		return err
	}
	s.buf = buf

	tmp := filepath.Join(s.dir, tmpFileName)
	name := filepath.Join(s.dir, logFileName)
	if err := writeFileSync(tmp, buf); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("raftlog: rewrite: %w", err)
	}
	if err := os.Rename(tmp, name); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("raftlog: rewrite: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		return s.failLocked("fsync dir", err)
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return s.failLocked("open", err)
	}
	if s.f != nil {
		s.f.Close()
	}
	s.f = f
	s.unsynced = false
	return nil
}

// writeFileSync creates name with data and fsyncs it.
func writeFileSync(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir fsyncs a directory so that a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Close fsyncs a record still waiting for it, closes the file and releases
// the directory. It is idempotent; reads keep working from memory.
func (s *FileStorage) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var err error
	if s.unsynced && s.failed == nil {
		if serr := s.f.Sync(); serr != nil {
			err = fmt.Errorf("raftlog: fsync on close: %w", serr)
		}
	}
	if cerr := s.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("raftlog: close: %w", cerr)
	}
	s.unlock()
	return err
}
