package raftlog

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// reopen closes s and opens its directory again, checking that the state
// survived.
func reopen(t *testing.T, s *FileStorage) *FileStorage {
	t.Helper()
	before := observe(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, s.dir)
	if after := observe(t, s); !equalState(before, after) {
		t.Fatalf("state changed across reopen:\nbefore %v\nafter  %v", before, after)
	}
	return s
}

func TestStorageContract(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	defer func() { s.Close() }()

	st := observe(t, s)
	if st.First != 1 || st.Last != 0 || st.Term != 0 || st.SnapIndex != 0 {
		t.Fatalf("fresh storage: %v", st)
	}
	s = reopen(t, s)

	// Entries and a hard state.
	mustSave(t, s, hs(1, 1, 3), ents(1, 1, 5), nil)
	st = observe(t, s)
	if st.Last != 5 || st.Comm != 3 || st.Vote != 1 || st.Data[4] != "e5/t1" {
		t.Fatalf("after save: %v", st)
	}
	if _, err := s.Term(6); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("Term past the log: %v", err)
	}
	s = reopen(t, s)

	// A conflicting suffix replaces the old one.
	mustSave(t, s, hs(2, 2, 3), ents(2, 4, 6), nil)
	st = observe(t, s)
	if st.Last != 6 || st.Data[2] != "e3/t1" || st.Data[3] != "e4/t2" || st.Terms[6] != 2 {
		t.Fatalf("after conflicting save: %v", st)
	}
	s = reopen(t, s)

	// A commit-only change is kept across a clean close.
	mustSave(t, s, hs(2, 2, 6), nil, nil)
	s = reopen(t, s)
	if st := observe(t, s); st.Comm != 6 {
		t.Fatalf("commit after reopen: %v", st)
	}

	// Snapshot, then compaction keeping a tail.
	cs := &pb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}
	if _, err := s.CreateSnapshot(5, cs, []byte("state@5")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSnapshot(4, cs, nil); !errors.Is(err, raft.ErrSnapOutOfDate) {
		t.Fatalf("older snapshot: %v", err)
	}
	if _, err := s.CreateSnapshot(7, cs, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("snapshot past the log: %v", err)
	}
	s = reopen(t, s)
	if err := s.Compact(6); !errors.Is(err, ErrInvalid) {
		t.Fatalf("compact past the snapshot: %v", err)
	}
	if err := s.Compact(3); err != nil {
		t.Fatal(err)
	}
	st = observe(t, s)
	if st.First != 4 || st.Last != 6 || st.SnapIndex != 5 || st.SnapData != "state@5" || st.Voters != "[1 2 3]" || st.Learners != "[4]" {
		t.Fatalf("after compaction: %v", st)
	}
	if err := s.Compact(3); !errors.Is(err, raft.ErrCompacted) {
		t.Fatalf("compact again: %v", err)
	}
	s = reopen(t, s)

	// More entries after compaction, then compaction at the snapshot.
	mustSave(t, s, hs(3, 1, 8), ents(3, 7, 8), nil)
	s = reopen(t, s)
	if _, err := s.CreateSnapshot(8, cs, []byte("state@8")); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(8); err != nil {
		t.Fatal(err)
	}
	st = observe(t, s)
	if st.First != 9 || st.Last != 8 || st.Terms[0] != 3 {
		t.Fatalf("after full compaction: %v", st)
	}
	s = reopen(t, s)

	// A snapshot received from a leader replaces the log.
	mustSave(t, s, hs(4, 0, 20), nil, snap(20, 4, []uint64{1, 2}, "state@20"))
	st = observe(t, s)
	if st.First != 21 || st.Last != 20 || st.SnapIndex != 20 || st.Voters != "[1 2]" {
		t.Fatalf("after received snapshot: %v", st)
	}
	s = reopen(t, s)
	mustSave(t, s, hs(4, 0, 21), ents(4, 21, 22), nil)
	s = reopen(t, s)
	if st := observe(t, s); st.Last != 22 || st.Data[1] != "e22/t4" {
		t.Fatalf("after entries past a received snapshot: %v", st)
	}

	// Invalid saves change nothing.
	before := observe(t, s)
	if err := s.Save(nil, ents(4, 30, 31), nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("gap: %v", err)
	}
	if err := s.Save(nil, nil, snap(10, 4, nil, "old")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("old snapshot: %v", err)
	}
	if after := observe(t, s); !equalState(before, after) {
		t.Fatalf("invalid save changed the log")
	}
	reopen(t, s)
}

func TestStorageLocked(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := s.Save(hs(1, 0, 0), nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("save after close: %v", err)
	}
	mustOpen(t, dir).Close()
}

func TestStorageLeftoverTmp(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	mustSave(t, s, hs(1, 1, 2), ents(1, 1, 2), nil)
	want := observe(t, s)
	s.Close()
	// A crash during a rewrite leaves a partial .tmp file next to the log.
	if err := os.WriteFile(filepath.Join(dir, tmpFileName), []byte("RAFKRLG1garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir)
	defer s.Close()
	if got := observe(t, s); !equalState(want, got) {
		t.Fatalf("got %v want %v", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, tmpFileName)); !os.IsNotExist(err) {
		t.Fatalf("leftover tmp file: %v", err)
	}
}

func TestStorageRecordTooLarge(t *testing.T) {
	s, err := Open(t.TempDir(), Options{MaxRecordBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	big := ents(1, 1, 1)
	big[0].Data = make([]byte, 2048)
	if err := s.Save(nil, big, nil); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("big save: %v", err)
	}
	mustSave(t, s, hs(1, 1, 0), ents(1, 1, 1), nil)
	if st := observe(t, s); st.Last != 1 {
		t.Fatalf("save after a refused one: %v", st)
	}
}

func TestOptionsValidate(t *testing.T) {
	if err := (Options{MaxRecordBytes: 10}).withDefaults().Validate(); err == nil {
		t.Fatal("tiny MaxRecordBytes accepted")
	}
	if _, err := Open(t.TempDir(), Options{MaxRecordBytes: -1}); err == nil {
		t.Fatal("negative MaxRecordBytes accepted")
	}
}
