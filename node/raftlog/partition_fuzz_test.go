package raftlog

import (
	"bytes"
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
)

func FuzzPartitionControlBody(f *testing.F) {
	f.Add(appendControlBody(nil, pb.EntryNormal, nil))
	f.Add(appendControlBody(nil, pb.EntryConfChange, []byte("cc")))
	f.Add(appendControlBody(nil, pb.EntryConfChangeV2, []byte{8, 1, 18, 0}))
	f.Add([]byte{1, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, data, err := parseControlBody(b)
		if err != nil {
			return
		}
		if again := appendControlBody(nil, typ, data); !bytes.Equal(again, b) {
			t.Fatalf("round trip %x -> %x", b, again)
		}
	})
}

func FuzzPartitionSideIndex(f *testing.F) {
	b := appendSideHeader(nil, 7)
	for i := range 4 {
		b = appendSideRecord(b, 7+uint64(i), sideRec{base: int64(100 * i), term: 2})
	}
	f.Add(b)
	f.Add(b[:len(b)-3])
	f.Add(appendSideHeader(nil, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		first, recs, err := parseSideIndex(b)
		if err != nil {
			return
		}
		again := appendSideHeader(nil, first)
		for i, r := range recs {
			again = appendSideRecord(again, first+uint64(i), r)
		}
		if !bytes.HasPrefix(b, again) {
			t.Fatalf("re-encoding of %d records is not a prefix of the input", len(recs))
		}
	})
}

func FuzzPartitionState(f *testing.F) {
	b, _ := appendState(nil, &persisted{term: 3, vote: 2, commit: 9, baseOffset: 40, baseIndex: 8, baseTerm: 2,
		cs: &pb.ConfState{Voters: []uint64{1, 2, 3}}})
	f.Add(b)
	f.Add(appendSnapData(nil, 5, 6, 7))
	f.Fuzz(func(t *testing.T, b []byte) {
		if start, fi, ci, err := ParseSnapshotData(b); err == nil && b[0] == snapDataVersion {
			if !bytes.Equal(appendSnapData(nil, start, fi, ci), b) {
				t.Fatal("snapshot data round trip")
			}
		}
		p, err := parseState(b)
		if err != nil {
			return
		}
		if _, err := appendState(nil, &p); err != nil {
			t.Fatal(err)
		}
	})
}
