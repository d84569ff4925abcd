package raftlog

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rafka/rafka/node/group"
	"github.com/rafka/rafka/segment"
	"github.com/rafka/rafka/wire"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// tagSize is the proposal tag node/group puts before a proposal's data.
const tagSize = 16

// tagStorage adapts a PartitionStorage to today's group driver, which puts
// a 16-byte tag before each proposal: it keeps the tags in memory and
// stores the batch behind them. (A partition driver proposes batches as
// they are.)
type tagStorage struct {
	*PartitionStorage
	mu   sync.Mutex
	tags map[uint64][]byte
}

func (s *tagStorage) Save(hs *pb.HardState, ents []*pb.Entry, snap *pb.Snapshot) error {
	out := make([]*pb.Entry, len(ents))
	s.mu.Lock()
	for i, e := range ents {
		out[i] = e
		if e.GetType() == pb.EntryNormal && len(e.GetData()) > tagSize {
			c := proto.Clone(e).(*pb.Entry)
			s.tags[e.GetIndex()] = e.GetData()[:tagSize]
			c.Data = e.GetData()[tagSize:]
			out[i] = c
		}
	}
	s.mu.Unlock()
	return s.PartitionStorage.Save(hs, out, snap)
}

func (s *tagStorage) Entries(lo, hi, maxSize uint64) ([]*pb.Entry, error) {
	ents, err := s.PartitionStorage.Entries(lo, hi, maxSize)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range ents {
		if e.GetType() == pb.EntryNormal && len(e.GetData()) > 0 {
			tag := s.tags[e.GetIndex()]
			if tag == nil {
				tag = make([]byte, tagSize)
			}
			e.Data = append(append([]byte(nil), tag...), e.GetData()...)
		}
	}
	return ents, err
}

// batchSM counts applied batches.
type batchSM struct {
	mu sync.Mutex
	n  int
}

func (m *batchSM) Apply(index uint64, data []byte) any {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n++
	return m.n
}
func (m *batchSM) Snapshot() ([]byte, error) { return nil, nil }
func (m *batchSM) Restore([]byte) error      { return nil }

// memNet carries envelopes between drivers in one process, encoded and
// parsed as the broker's transport would; a cut member sends and receives
// nothing.
type memNet struct {
	mu      sync.Mutex
	drivers map[uint64]*group.Driver
	cut     map[uint64]bool
}

type memTransport struct {
	net  *memNet
	from uint64
}

func (t memTransport) Send(to uint64, envs []group.Envelope) {
	t.net.mu.Lock()
	d, cut := t.net.drivers[to], t.net.cut[t.from] || t.net.cut[to]
	t.net.mu.Unlock()
	if d == nil || cut {
		return
	}
	b, err := group.AppendEnvelopes(nil, envs)
	if err != nil {
		panic(err)
	}
	got, err := group.ParseEnvelopes(b, len(envs))
	if err != nil {
		panic(err)
	}
	d.Step(t.from, got)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestPartitionGroup runs one raft group on three drivers whose storages
// are PartitionStorages: batches proposed on any member are committed, the
// three logs are byte-identical up to the commit index, and a member cut
// off while batches are committed catches up.
func TestPartitionGroup(t *testing.T) {
	const g = 1
	members := []uint64{1, 2, 3}
	net := &memNet{drivers: map[uint64]*group.Driver{}, cut: map[uint64]bool{}}
	stores := map[uint64]*tagStorage{}
	for _, id := range members {
		ps := openP(t, t.TempDir(), PartitionOptions{Log: segment.Options{SegmentBytes: 16 << 10,
			Fsync: segment.FsyncPolicy{Mode: segment.FsyncAlways}}})
		stores[id] = startMember(t, net, g, id, members, ps)
	}
	defer func() {
		for _, id := range members {
			net.drivers[id].Close()
			stores[id].Close()
		}
	}()
	propose := func(on uint64, k int) {
		t.Helper()
		data := testBatch(t, fmt.Sprintf("from%d-%d", on, k), 1+k%4)
		waitUntil(t, "a proposal", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, _, err := net.drivers[on].Propose(ctx, g, data)
			if err != nil && !errors.Is(err, group.ErrNoLeader) && !errors.Is(err, group.ErrProposalDropped) &&
				!errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("propose on %d: %v", on, err)
			}
			return err == nil
		})
	}
	for k := range 30 {
		propose(members[k%3], k)
	}
	checkIdentical(t, net, stores, members)

	// Member 3 misses 40 batches, then catches up.
	net.mu.Lock()
	net.cut[3] = true
	net.mu.Unlock()
	for k := range 40 {
		propose(members[k%2], 100+k)
	}
	net.mu.Lock()
	net.cut[3] = false
	net.mu.Unlock()
	lead, _ := net.drivers[1].Status(g)
	leaderLast, _ := stores[lead.Leader].LastIndex()
	waitUntil(t, "member 3 to catch up", func() bool {
		s, _ := net.drivers[3].Status(g)
		return s.Commit >= leaderLast
	})
	checkIdentical(t, net, stores, members)
	for _, id := range members {
		if _, cs, _ := stores[id].InitialState(); len(cs.GetVoters()) != 3 {
			t.Fatalf("member %d configuration %v", id, cs)
		}
	}
}

// startMember starts a driver for member id on net hosting group g on ps
// (bootstrapped with members when new), recording each configuration
// change in ps as a broker does.
func startMember(t *testing.T, net *memNet, g, id uint64, members []uint64, ps *PartitionStorage) *tagStorage {
	t.Helper()
	d, err := group.New(group.Config{ID: id, TickInterval: 5 * time.Millisecond, Transport: memTransport{net, id}})
	if err != nil {
		t.Fatal(err)
	}
	net.mu.Lock()
	net.drivers[id] = d
	net.mu.Unlock()
	st := &tagStorage{PartitionStorage: ps, tags: map[uint64][]byte{}}
	gc := group.GroupConfig{Group: g, Storage: st, SM: &batchSM{}, Bootstrap: members,
		SnapshotEntries: math.MaxUint32,
		OnConfChange: func(index uint64, cs *pb.ConfState) {
			if err := ps.SetConfState(index, cs); err != nil {
				t.Errorf("SetConfState: %v", err)
			}
		}}
	if err := d.AddGroup(gc); err != nil {
		t.Fatal(err)
	}
	return st
}

// checkIdentical checks that every member's log is byte-identical up to the
// smallest commit index, and that the batches it holds are the proposals.
func checkIdentical(t *testing.T, net *memNet, stores map[uint64]*tagStorage, members []uint64) {
	t.Helper()
	commit := uint64(math.MaxUint64)
	for _, id := range members {
		s, _ := net.drivers[id].Status(1)
		commit = min(commit, s.Commit)
	}
	var ref []byte
	for _, id := range members {
		hwm, err := stores[id].NextOffsetAfter(commit)
		if err != nil {
			t.Fatal(err)
		}
		b := readLog(t, stores[id].Log(), hwm)
		if ref == nil {
			ref = b
			continue
		}
		if !bytes.Equal(b, ref) {
			t.Fatalf("member %d's log differs below commit %d (%d and %d bytes)", id, commit, len(b), len(ref))
		}
	}
	records := 0
	for b := ref; len(b) > 0; {
		h, n, err := wire.VerifyBatch(b, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !h.IsControl() {
			records += int(h.RecordCount)
		}
		b = b[n:]
	}
	if records == 0 || binary.LittleEndian.Uint64(ref) != 0 {
		t.Fatalf("committed log holds %d records, starts at offset %d", records, binary.LittleEndian.Uint64(ref))
	}
	t.Logf("commit %d: %d bytes, %d records identical on %d members", commit, len(ref), records, len(members))
}

// TestPartitionGroupRestartsInJointConfig restarts a member whose stored
// configuration is joint. raft hands it every committed entry again, the
// bootstrap's simple configuration changes among them: those are in the
// stored configuration already (ConfIndex) and must not be applied again,
// which raft refuses with a panic on a joint configuration.
func TestPartitionGroupRestartsInJointConfig(t *testing.T) {
	const g = 1
	members := []uint64{1, 2, 3}
	net := &memNet{drivers: map[uint64]*group.Driver{}, cut: map[uint64]bool{}}
	dirs := map[uint64]string{}
	drivers := map[uint64]*group.Driver{}
	stores := map[uint64]*PartitionStorage{}
	start := func(id uint64) {
		ps := openP(t, dirs[id], PartitionOptions{})
		startMember(t, net, g, id, members, ps)
		net.mu.Lock()
		drivers[id], stores[id] = net.drivers[id], ps
		net.mu.Unlock()
	}
	stop := func(id uint64) {
		net.mu.Lock()
		delete(net.drivers, id)
		net.mu.Unlock()
		drivers[id].Close()
		stores[id].Close()
	}
	for _, id := range members {
		dirs[id] = t.TempDir()
		start(id)
	}
	defer func() {
		for _, id := range members {
			stop(id)
		}
	}()
	// Replace member 3 by a member 4 that never starts: members 1 and 2
	// are a majority of both halves, and the configuration stays joint.
	var index uint64
	waitUntil(t, "the joint configuration to commit", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var err error
		index, err = drivers[1].ProposeConfChange(ctx, g, &pb.ConfChangeV2{
			Transition: pb.ConfChangeTransitionJointExplicit.Enum(),
			Changes: []*pb.ConfChangeSingle{
				{Type: pb.ConfChangeAddNode.Enum(), NodeId: new(uint64(4))},
				{Type: pb.ConfChangeRemoveNode.Enum(), NodeId: new(uint64(3))},
			}})
		return err == nil
	})
	waitUntil(t, "member 1 to record the joint configuration", func() bool {
		_, cs, _ := stores[1].InitialState()
		return len(cs.GetVotersOutgoing()) > 0 && stores[1].ConfIndex() == index
	})
	stop(1)
	start(1)
	waitUntil(t, "member 1 to apply its log again", func() bool {
		s, ok := drivers[1].Status(g)
		if ok && s.Err != nil {
			t.Fatalf("member 1 after restart: %v", s.Err)
		}
		return ok && s.Applied >= index
	})
	s, _ := drivers[1].Status(g)
	if s.Err != nil || !slices.Equal(s.Voters, []uint64{1, 2, 4}) {
		t.Fatalf("member 1 after restart: voters %v, %v", s.Voters, s.Err)
	}
	if _, cs, _ := stores[1].InitialState(); !slices.Equal(cs.GetVotersOutgoing(), members) {
		t.Fatalf("member 1's stored configuration after restart: %v", cs)
	}
}
