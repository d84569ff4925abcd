package raftlog

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
)

// crashRun is a known run of Saves after the file's last rewrite: for each,
// the file size once it returned and the state raft then observes.
type crashRun struct {
	final   []byte // the file at the end of the run
	baseEnd int    // end of the base record
	sizes   []int
	states  []state
}

// recordCrashRun performs the run in dir.
func recordCrashRun(t *testing.T, dir string) crashRun {
	s := mustOpen(t, dir)
	defer s.Close()
	mustSave(t, s, hs(1, 1, 0), ents(1, 1, 4), nil)
	mustSave(t, s, hs(1, 1, 4), nil, nil)
	cs := &pb.ConfState{Voters: []uint64{1, 2, 3}}
	if _, err := s.CreateSnapshot(3, cs, []byte("state@3")); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(2); err != nil {
		t.Fatal(err)
	}
	var r crashRun
	name := filepath.Join(dir, logFileName)
	size := func() int {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		return int(fi.Size())
	}
	r.baseEnd = size()
	r.sizes = append(r.sizes, r.baseEnd)
	r.states = append(r.states, observe(t, s))
	saves := []func(){
		func() { mustSave(t, s, hs(2, 2, 4), ents(2, 5, 7), nil) },
		func() { mustSave(t, s, hs(2, 2, 6), nil, nil) },                                 // commit only
		func() { mustSave(t, s, hs(3, 3, 6), ents(3, 7, 9), nil) },                       // conflicting suffix
		func() { mustSave(t, s, nil, ents(3, 10, 10), nil) },                             // entries only
		func() { mustSave(t, s, hs(4, 0, 30), nil, snap(30, 4, cs.Voters, "state@30")) }, // received
		func() { mustSave(t, s, hs(4, 0, 31), ents(4, 31, 33), nil) },
	}
	for _, save := range saves {
		save()
		r.sizes = append(r.sizes, size())
		r.states = append(r.states, observe(t, s))
	}
	var err error
	if r.final, err = os.ReadFile(name); err != nil {
		t.Fatal(err)
	}
	return r
}

// openTruncated opens a copy of data cut to n bytes.
func openTruncated(t *testing.T, data []byte, n int) (*FileStorage, error) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, logFileName), data[:n], 0o644); err != nil {
		t.Fatal(err)
	}
	return Open(dir, Options{})
}

// TestCrashEveryOffset cuts the file of a known run at every byte offset, as
// a crash mid-write would, and checks that reopening finds exactly the Saves
// that were complete before the cut, and that the file is usable again.
func TestCrashEveryOffset(t *testing.T) {
	r := recordCrashRun(t, t.TempDir())
	if len(r.final) != r.sizes[len(r.sizes)-1] {
		t.Fatalf("final file %d bytes, last save ended at %d", len(r.final), r.sizes[len(r.sizes)-1])
	}
	for n := 0; n <= len(r.final); n++ {
		s, err := openTruncated(t, r.final, n)
		if n < r.baseEnd {
			// The base record is only ever renamed into place whole.
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("cut at %d inside the base record: %v, want ErrCorrupt", n, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("cut at %d: %v", n, err)
		}
		k := 0
		for k+1 < len(r.sizes) && r.sizes[k+1] <= n {
			k++
		}
		if got := observe(t, s); !equalState(got, r.states[k]) {
			t.Fatalf("cut at %d (after save %d):\ngot  %v\nwant %v", n, k, got, r.states[k])
		}
		// The torn tail is gone: the next Save lands after the intact prefix
		// and survives another reopen.
		last, _ := s.LastIndex()
		h, _, _ := s.InitialState()
		mustSave(t, s, hs(h.GetTerm()+1, 0, h.GetCommit()), ents(h.GetTerm()+1, last+1, last+1), nil)
		want := observe(t, s)
		dir := s.dir
		s.Close()
		s = mustOpen(t, dir)
		if got := observe(t, s); !equalState(got, want) {
			t.Fatalf("cut at %d, then a save:\ngot  %v\nwant %v", n, got, want)
		}
		s.Close()
	}
}

// TestCrashFlippedByte corrupts one byte inside each record after the base:
// replay keeps every record before it and cuts the rest.
func TestCrashFlippedByte(t *testing.T) {
	r := recordCrashRun(t, t.TempDir())
	for k := 1; k < len(r.sizes); k++ {
		data := append([]byte(nil), r.final...)
		data[(r.sizes[k-1]+r.sizes[k])/2] ^= 0x40
		s, err := openTruncated(t, data, len(data))
		if err != nil {
			t.Fatalf("flip in save %d: %v", k, err)
		}
		if got := observe(t, s); !equalState(got, r.states[k-1]) {
			t.Fatalf("flip in save %d:\ngot  %v\nwant %v", k, got, r.states[k-1])
		}
		s.Close()
	}
}
