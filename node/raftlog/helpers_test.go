package raftlog

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// ents returns entries lo..hi (inclusive) of term t whose data names them.
func ents(t, lo, hi uint64) []*pb.Entry {
	var es []*pb.Entry
	for i := lo; i <= hi; i++ {
		es = append(es, &pb.Entry{Term: new(t), Index: new(i), Type: pb.EntryNormal.Enum(), Data: fmt.Appendf(nil, "e%d/t%d", i, t)})
	}
	return es
}

func hs(term, vote, commit uint64) *pb.HardState {
	return &pb.HardState{Term: new(term), Vote: new(vote), Commit: new(commit)}
}

func snap(i, t uint64, voters []uint64, data string) *pb.Snapshot {
	return &pb.Snapshot{Data: []byte(data), Metadata: &pb.SnapshotMetadata{
		Index: new(i), Term: new(t), ConfState: &pb.ConfState{Voters: voters},
	}}
}

// state is what raft can observe of a storage, in comparable form.
type state struct {
	First, Last      uint64
	Terms            []uint64 // Term(First-1) .. Term(Last)
	Data             []string // entries First..Last
	Term, Vote, Comm uint64
	SnapIndex, SnapT uint64
	SnapData         string
	Voters, Learners string
}

// observe reads the state of s through raft.Storage only.
func observe(t testing.TB, s raft.Storage) state {
	t.Helper()
	var st state
	var err error
	if st.First, err = s.FirstIndex(); err != nil {
		t.Fatal(err)
	}
	if st.Last, err = s.LastIndex(); err != nil {
		t.Fatal(err)
	}
	if st.First > st.Last+1 {
		t.Fatalf("first index %d > last index %d + 1", st.First, st.Last)
	}
	for i := st.First - 1; i <= st.Last; i++ {
		term, err := s.Term(i)
		if err != nil {
			t.Fatalf("Term(%d): %v", i, err)
		}
		st.Terms = append(st.Terms, term)
	}
	if st.First > 1 {
		if _, err := s.Term(st.First - 2); !errors.Is(err, raft.ErrCompacted) {
			t.Fatalf("Term(%d) below the log: %v, want ErrCompacted", st.First-2, err)
		}
		if _, err := s.Entries(st.First-1, st.Last+1, math.MaxUint64); !errors.Is(err, raft.ErrCompacted) {
			t.Fatalf("Entries from %d: %v, want ErrCompacted", st.First-1, err)
		}
	}
	if st.Last >= st.First {
		es, err := s.Entries(st.First, st.Last+1, math.MaxUint64)
		if err != nil {
			t.Fatal(err)
		}
		for k, e := range es {
			if e.GetIndex() != st.First+uint64(k) {
				t.Fatalf("entry %d has index %d", st.First+uint64(k), e.GetIndex())
			}
			st.Data = append(st.Data, string(e.GetData()))
		}
		// maxSize returns at least one entry.
		if es, err := s.Entries(st.First, st.Last+1, 1); err != nil || len(es) != 1 {
			t.Fatalf("Entries with maxSize 1: %d entries, %v", len(es), err)
		}
	}
	h, cs, err := s.InitialState()
	if err != nil {
		t.Fatal(err)
	}
	st.Term, st.Vote, st.Comm = h.GetTerm(), h.GetVote(), h.GetCommit()
	st.Voters, st.Learners = fmt.Sprint(cs.GetVoters()), fmt.Sprint(cs.GetLearners())
	sn, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	st.SnapIndex, st.SnapT, st.SnapData = sn.GetMetadata().GetIndex(), sn.GetMetadata().GetTerm(), string(sn.GetData())
	if st.SnapIndex != 0 && (st.SnapIndex < st.First-1 || st.SnapIndex > st.Last) {
		t.Fatalf("snapshot at %d outside the log [%d, %d]", st.SnapIndex, st.First-1, st.Last)
	}
	return st
}

func (s state) String() string {
	type plain state // no String method: no recursion
	return fmt.Sprintf("%+v", plain(s))
}

func equalState(a, b state) bool { return a.String() == b.String() }

func mustOpen(t testing.TB, dir string) *FileStorage {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustSave(t testing.TB, s *FileStorage, h *pb.HardState, es []*pb.Entry, sn *pb.Snapshot) {
	t.Helper()
	if err := s.Save(h, es, sn); err != nil {
		t.Fatal(err)
	}
}
