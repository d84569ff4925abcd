package node

import (
	"testing"

	"github.com/rafka/rafka/node/raftlog"
)

// A move's target starts its empty replica at the move's term, with no
// vote, durably; a replica already at or past it keeps its state.
func TestRaiseTerm(t *testing.T) {
	dir := t.TempDir()
	open := func() *raftlog.PartitionStorage {
		st, err := raftlog.OpenPartition(dir, raftlog.PartitionOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := open()
	if err := raiseTerm(st, 7); err != nil {
		t.Fatal(err)
	}
	if err := raiseTerm(st, 3); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = open()
	defer st.Close()
	hs, _, err := st.InitialState()
	if err != nil {
		t.Fatal(err)
	}
	if hs.GetTerm() != 7 || hs.GetVote() != 0 || hs.GetCommit() != 0 {
		t.Fatalf("hard state after raising to 7 then 3 and reopening: %v", hs)
	}
}
