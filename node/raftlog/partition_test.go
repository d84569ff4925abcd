package raftlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/rafka/rafka/segment"
	"github.com/rafka/rafka/wire"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// testBatch builds a record batch of n records whose values name it.
func testBatch(t testing.TB, name string, n int) []byte {
	t.Helper()
	b := wire.NewBatchBuilder()
	for i := range n {
		b.Append(int64(1000+i), nil, fmt.Appendf(nil, "%s/%d/%0200d", name, i, i), nil)
	}
	out, err := b.Build(wire.CodecNone)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pents returns entries lo..hi of term tm: batches of one to three records,
// with every fifth a no-op and index 3 a conf change.
func pents(t testing.TB, tm, lo, hi uint64) []*pb.Entry {
	var es []*pb.Entry
	for i := lo; i <= hi; i++ {
		e := &pb.Entry{Term: new(tm), Index: new(i), Type: pb.EntryNormal.Enum()}
		switch {
		case i == 3:
			e.Type = pb.EntryConfChangeV2.Enum()
			e.Data = fmt.Appendf(nil, "cc%d", i)
		case i%5 == 0:
		default:
			e.Data = testBatch(t, fmt.Sprintf("e%d/t%d", i, tm), 1+int(i%3))
		}
		es = append(es, e)
	}
	return es
}

func openP(t testing.TB, dir string, o PartitionOptions) *PartitionStorage {
	t.Helper()
	s, err := OpenPartition(dir, o)
	if err != nil {
		t.Fatalf("OpenPartition: %v", err)
	}
	return s
}

// sameEntry compares what raft gave Save with what Entries returned: type,
// term, index and data, normal batches compared past the stamped header.
func sameEntry(want, got *pb.Entry) bool {
	if want.GetType() != got.GetType() || want.GetTerm() != got.GetTerm() || want.GetIndex() != got.GetIndex() {
		return false
	}
	w, g := want.GetData(), got.GetData()
	if want.GetType() == pb.EntryNormal && len(w) > 0 {
		return len(w) == len(g) && bytes.Equal(w[20:], g[20:])
	}
	return bytes.Equal(w, g)
}

// checkLog checks the storage against the entries it should hold (first..)
func checkLog(t *testing.T, s *PartitionStorage, first uint64, want []*pb.Entry) {
	t.Helper()
	fi, _ := s.FirstIndex()
	li, _ := s.LastIndex()
	if fi != first || li != first+uint64(len(want))-1 {
		t.Fatalf("log [%d, %d], want [%d, %d]", fi, li, first, first+uint64(len(want))-1)
	}
	if len(want) == 0 {
		return
	}
	got, err := s.Entries(fi, li+1, math.MaxUint64)
	if err != nil {
		t.Fatalf("Entries: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	var prevNext int64 = -1
	for i := range want {
		if !sameEntry(want[i], got[i]) {
			t.Fatalf("entry %d: got %v, want %v", want[i].GetIndex(), got[i], want[i])
		}
		if tm, err := s.Term(want[i].GetIndex()); err != nil || tm != want[i].GetTerm() {
			t.Fatalf("Term(%d) = %d, %v", want[i].GetIndex(), tm, err)
		}
		base, next, err := s.EntryOffset(want[i].GetIndex())
		if err != nil || next <= base || (prevNext >= 0 && base != prevNext) {
			t.Fatalf("EntryOffset(%d) = %d, %d, %v (previous ends at %d)", want[i].GetIndex(), base, next, err, prevNext)
		}
		if got[i].GetType() == pb.EntryNormal && len(got[i].GetData()) > 0 {
			h, _, _ := wire.ParseBatchHeader(got[i].GetData(), math.MaxInt32)
			if h.BaseOffset != base || h.Term != want[i].GetTerm() {
				t.Fatalf("entry %d stored at %d term %d, want %d term %d", want[i].GetIndex(), h.BaseOffset, h.Term, base, want[i].GetTerm())
			}
		}
		prevNext = next
	}
	if n, err := s.NextOffsetAfter(li); err != nil || n != s.Log().NextOffset() {
		t.Fatalf("NextOffsetAfter(last) = %d, %v; log next %d", n, err, s.Log().NextOffset())
	}
	// maxSize: at least one entry, then as many as fit.
	one, err := s.Entries(fi, li+1, 0)
	if err != nil || len(one) != 1 {
		t.Fatalf("Entries with maxSize 0: %d entries, %v", len(one), err)
	}
}

func TestPartitionContract(t *testing.T) {
	dir := t.TempDir()
	o := PartitionOptions{Log: segment.Options{SegmentBytes: 4 << 10}}
	s := openP(t, dir, o)
	if hs, cs, err := s.InitialState(); err != nil || hs.GetTerm() != 0 || len(cs.GetVoters()) != 0 {
		t.Fatalf("fresh InitialState: %v %v %v", hs, cs, err)
	}
	checkLog(t, s, 1, nil)
	if _, err := s.Entries(1, 2, math.MaxUint64); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("Entries past the end: %v", err)
	}
	want := pents(t, 1, 1, 30)
	if err := s.Save(hs(1, 1, 10), want, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SetConfState(3, &pb.ConfState{Voters: []uint64{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	// A change at or before the one recorded is in the configuration
	// already: raft hands it again at start, and it changes nothing.
	if err := s.SetConfState(2, &pb.ConfState{Voters: []uint64{1, 2}}); err != nil {
		t.Fatal(err)
	}
	if _, cs, _ := s.InitialState(); len(cs.GetVoters()) != 3 || s.ConfIndex() != 3 {
		t.Fatalf("configuration %v at %d after an older change", cs, s.ConfIndex())
	}
	checkLog(t, s, 1, want)
	if tm, err := s.Term(0); err != nil || tm != 0 {
		t.Fatalf("Term(0) = %d, %v", tm, err)
	}
	// A conflicting suffix from 21 at term 2.
	repl := pents(t, 2, 21, 25)
	if err := s.Save(hs(2, 0, 20), repl, nil); err != nil {
		t.Fatal(err)
	}
	want = append(want[:20], repl...)
	checkLog(t, s, 1, want)
	// Bad entries: not a batch, a gap. Nothing changes.
	bad := []*pb.Entry{{Term: new(uint64(2)), Index: new(uint64(26)), Type: pb.EntryNormal.Enum(), Data: []byte("not a batch")}}
	if err := s.Save(nil, bad, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Save of a non-batch: %v", err)
	}
	if err := s.Save(nil, pents(t, 2, 28, 28), nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Save with a gap: %v", err)
	}
	checkLog(t, s, 1, want)
	// Restart.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openP(t, dir, o)
	checkLog(t, s, 1, want)
	hs0, cs, _ := s.InitialState()
	if hs0.GetTerm() != 2 || hs0.GetVote() != 0 || hs0.GetCommit() != 20 || len(cs.GetVoters()) != 3 {
		t.Fatalf("InitialState after restart: %v %v", hs0, cs)
	}
	// Retention moves FirstIndex and the snapshot.
	lo := o.Log
	lo.RetentionBytes = 1
	if err := s.Log().SetOptions(lo); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Log().EnforceRetention(); err != nil || n == 0 {
		t.Fatalf("EnforceRetention: %d, %v", n, err)
	}
	fi, _ := s.FirstIndex()
	if fi <= 1 {
		t.Fatalf("FirstIndex %d after retention", fi)
	}
	checkLog(t, s, fi, want[fi-1:])
	sn, _ := s.Snapshot()
	if sn.GetMetadata().GetIndex() != fi-1 || sn.GetMetadata().GetTerm() != want[fi-2].GetTerm() {
		t.Fatalf("snapshot %v after retention, first index %d", sn.GetMetadata(), fi)
	}
	start, sfi, sci, err := ParseSnapshotData(sn.GetData())
	if err != nil || start != s.Log().StartOffset() || sfi != fi || sci != 3 {
		t.Fatalf("snapshot data %d %d %d %v; log start %d", start, sfi, sci, err, s.Log().StartOffset())
	}
	if _, err := s.Entries(fi-1, fi, math.MaxUint64); !errors.Is(err, raft.ErrCompacted) {
		t.Fatalf("Entries below FirstIndex: %v", err)
	}
	if n, err := s.NextOffsetAfter(fi - 1); err != nil || n != s.Log().StartOffset() {
		t.Fatalf("NextOffsetAfter(first-1) = %d, %v", n, err)
	}
	// CreateSnapshot and Compact are harmless.
	if _, err := s.CreateSnapshot(20, &pb.ConfState{}, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(20); err != nil {
		t.Fatal(err)
	}
	checkLog(t, s, fi, want[fi-1:])
	if err := s.Save(hs(2, 0, 22), pents(t, 2, 26, 27), nil); err != nil {
		t.Fatal(err)
	}
	want = append(want, pents(t, 2, 26, 27)...)
	s.Close()
	s = openP(t, dir, o)
	checkLog(t, s, fi, want[fi-1:])
	// A snapshot from a leader far ahead: the log restarts empty there.
	sd := appendSnapData(nil, 5000, 101, 102)
	ls := &pb.Snapshot{Data: sd, Metadata: &pb.SnapshotMetadata{Index: new(uint64(100)), Term: new(uint64(3)),
		ConfState: &pb.ConfState{Voters: []uint64{1, 2}}}}
	if err := s.Save(hs(3, 0, 100), pents(t, 3, 101, 104), ls); err != nil {
		t.Fatal(err)
	}
	check := func() {
		t.Helper()
		checkLog(t, s, 101, pents(t, 3, 101, 104))
		if s.Log().StartOffset() != 5000 {
			t.Fatalf("log starts at %d after the snapshot", s.Log().StartOffset())
		}
		if tm, _ := s.Term(100); tm != 3 {
			t.Fatalf("Term(100) = %d", tm)
		}
		if _, cs, _ := s.InitialState(); len(cs.GetVoters()) != 2 || s.ConfIndex() != 102 {
			t.Fatalf("configuration %v at %d", cs, s.ConfIndex())
		}
	}
	check()
	s.Close()
	s = openP(t, dir, o)
	check()
	s.Close()
	// MustExist.
	if _, err := OpenPartition(filepath.Join(dir, "missing"), PartitionOptions{MustExist: true}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("MustExist on a missing directory: %v", err)
	}
}

// TestPartitionStateFirstVersion: a state file written before the
// configuration index was recorded still opens, with index 0 (unknown).
func TestPartitionStateFirstVersion(t *testing.T) {
	p := persisted{term: 3, vote: 2, commit: 9, baseOffset: 40, baseIndex: 8, baseTerm: 2, confIndex: 7,
		cs: &pb.ConfState{Voters: []uint64{1, 2, 3}}}
	b, err := appendState(nil, &p)
	if err != nil {
		t.Fatal(err)
	}
	v1 := append([]byte(stateFileMagic1), b[8:56]...)
	v1 = append(v1, b[64:len(b)-4]...)
	v1 = binary.LittleEndian.AppendUint32(v1, crc32.Checksum(v1, castagnoli))
	got, err := parseState(v1)
	if err != nil {
		t.Fatal(err)
	}
	p.confIndex = 0
	if got.term != p.term || got.vote != p.vote || got.commit != p.commit || got.baseOffset != p.baseOffset ||
		got.baseIndex != p.baseIndex || got.baseTerm != p.baseTerm || got.confIndex != 0 || !proto.Equal(got.cs, p.cs) {
		t.Fatalf("first version read as %+v, want %+v", got, p)
	}
	if got, err := parseState(b); err != nil || got.confIndex != 7 {
		t.Fatalf("current version: conf index %d, %v", got.confIndex, err)
	}
}

// TestPartitionSameOffsets feeds two storages the same entries whose
// batches carry different header bytes: offsets and stored bytes agree.
func TestPartitionSameOffsets(t *testing.T) {
	a, b := openP(t, t.TempDir(), PartitionOptions{}), openP(t, t.TempDir(), PartitionOptions{})
	defer a.Close()
	defer b.Close()
	ea, eb := pents(t, 1, 1, 20), pents(t, 1, 1, 20)
	for i, e := range eb {
		if len(e.GetData()) >= 20 && e.GetType() == pb.EntryNormal {
			wire.SetBaseOffset(e.Data, int64(12345+i)) // garbage offset and term
			wire.SetTerm(e.Data, 99)
		}
	}
	if err := a.Save(hs(1, 0, 0), ea, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Save(hs(1, 0, 0), eb[:7], nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Save(nil, eb[7:], nil); err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 20; i++ {
		x1, y1, _ := a.EntryOffset(i)
		x2, y2, _ := b.EntryOffset(i)
		if x1 != x2 || y1 != y2 {
			t.Fatalf("entry %d at [%d, %d) and [%d, %d)", i, x1, y1, x2, y2)
		}
	}
	if !bytes.Equal(readLog(t, a.Log(), a.Log().NextOffset()), readLog(t, b.Log(), b.Log().NextOffset())) {
		t.Fatal("logs differ")
	}
}

// readLog returns the bytes of l's batches below end.
func readLog(t testing.TB, l *segment.Log, end int64) []byte {
	t.Helper()
	var out []byte
	for off := l.StartOffset(); off < end; {
		v, err := l.Read(off, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		b := v.Bytes()
		for len(b) > 0 {
			h, n, err := wire.ParseBatchHeader(b, math.MaxInt32)
			if err != nil {
				t.Fatal(err)
			}
			if h.BaseOffset >= end {
				break
			}
			out = append(out, b[:n]...)
			off = h.NextOffset()
			b = b[n:]
		}
		v.Release()
	}
	return out
}

// TestPartitionSideIndexRebuilt deletes or tears the side index: reopening
// rebuilds it from the log.
func TestPartitionSideIndexRebuilt(t *testing.T) {
	for _, damage := range []string{"deleted", "torn", "garbage-tail", "bad-header", "stale-records"} {
		t.Run(damage, func(t *testing.T) {
			dir := t.TempDir()
			o := PartitionOptions{Log: segment.Options{SegmentBytes: 4 << 10}}
			s := openP(t, dir, o)
			want := pents(t, 1, 1, 40)
			if err := s.Save(hs(1, 0, 5), want, nil); err != nil {
				t.Fatal(err)
			}
			s.Close()
			name := filepath.Join(dir, sideIndexName)
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			switch damage {
			case "deleted":
				err = os.Remove(name)
			case "torn":
				err = os.Truncate(name, int64(len(b)-sideRecordSize*7-3))
			case "garbage-tail":
				for i := len(b) - sideRecordSize*5; i < len(b); i++ {
					b[i] ^= 0x5a
				}
				err = os.WriteFile(name, b, 0o644)
			case "bad-header":
				b[3] ^= 1
				err = os.WriteFile(name, b, 0o644)
			case "stale-records":
				// Records of a longer, older log (other terms) past the end.
				var more []byte
				for i := range 5 {
					more = appendSideRecord(more, 41+uint64(i), sideRec{base: 100000 + int64(i), term: 7})
				}
				err = os.WriteFile(name, append(b, more...), 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
			s = openP(t, dir, o)
			defer s.Close()
			checkLog(t, s, 1, want)
		})
	}
}

// TestPartitionCrashLastSave cuts the log file at every byte of the last
// Save (as a crash before its fsync may leave it, zeros past the cut) and
// reopens: every entry of the earlier, fsynced Saves is there, and the log
// is a prefix of what was saved.
func TestPartitionCrashLastSave(t *testing.T) {
	src := t.TempDir()
	o := PartitionOptions{Log: segment.Options{Fsync: segment.FsyncPolicy{Mode: segment.FsyncAlways}}}
	s := openP(t, src, o)
	want := pents(t, 1, 1, 12)
	if err := s.Save(hs(1, 1, 4), want, nil); err != nil {
		t.Fatal(err)
	}
	before := s.Log().NextOffset()
	var cut int64
	last := pents(t, 1, 13, 15)
	if err := s.Save(hs(1, 1, 12), last, nil); err != nil {
		t.Fatal(err)
	}
	want = append(want, last...)
	s.Close()
	logName := filepath.Join(src, fmt.Sprintf("%020d.log", 0))
	full, err := os.ReadFile(logName)
	if err != nil {
		t.Fatal(err)
	}
	// The byte position where the last Save starts: the end of entry 12.
	for p := 0; p < len(full); {
		h, n, err := wire.ParseBatchHeader(full[p:], math.MaxInt32)
		if err != nil {
			t.Fatal(err)
		}
		p += n
		if h.NextOffset() == before {
			cut = int64(p)
			break
		}
	}
	stride := 1
	if testing.Short() {
		stride = 13
	}
	for p := cut; p <= int64(len(full)); p += int64(stride) {
		dir := t.TempDir()
		copyDir(t, src, dir)
		b := append(append([]byte(nil), full[:p]...), make([]byte, int64(len(full))-p)...)
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(logName)), b, 0o644); err != nil {
			t.Fatal(err)
		}
		s := openP(t, dir, o)
		li, _ := s.LastIndex()
		if li < 12 || li > 15 {
			s.Close()
			t.Fatalf("cut at %d: last index %d, want 12..15", p, li)
		}
		checkLog(t, s, 1, want[:li])
		if hs, _, _ := s.InitialState(); hs.GetCommit() > li || hs.GetTerm() != 1 {
			t.Fatalf("cut at %d: hard state %v with last index %d", p, hs, li)
		}
		s.Close()
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	names, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if n.Name() == lockFileName {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, n.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, n.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
