package group

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rafka/rafka/node/raftlog"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

var _ Storage = (*raftlog.FileStorage)(nil)

// testTick keeps elections quick in tests: 10 ticks of 5 ms.
const testTick = 5 * time.Millisecond

// memNet connects Drivers in one process. Every batch is encoded and parsed
// as the broker's transport would, so no message is shared between drivers.
type memNet struct {
	mu      sync.Mutex
	drivers map[uint64]*Driver
	cut     map[uint64]bool // a cut node sends and receives nothing
	// starved nodes receive no entries (appends, snapshots), only the
	// other messages
	starved map[uint64]bool
}

func newMemNet() *memNet {
	return &memNet{drivers: map[uint64]*Driver{}, cut: map[uint64]bool{}, starved: map[uint64]bool{}}
}

type memTransport struct {
	net  *memNet
	from uint64
}

func (t memTransport) Send(to uint64, envs []Envelope) {
	t.net.mu.Lock()
	d, cut, starved := t.net.drivers[to], t.net.cut[t.from] || t.net.cut[to], t.net.starved[to]
	t.net.mu.Unlock()
	if d == nil || cut {
		return
	}
	if starved {
		envs = slices.DeleteFunc(slices.Clone(envs), func(e Envelope) bool {
			return e.Msg.GetType() == pb.MsgApp || e.Msg.GetType() == pb.MsgSnap
		})
		if len(envs) == 0 {
			return
		}
	}
	b, err := AppendEnvelopes(nil, envs)
	if err != nil {
		panic(err)
	}
	got, err := ParseEnvelopes(b, len(envs))
	if err != nil {
		panic(err)
	}
	d.Step(t.from, got)
}

func (n *memNet) setStarved(id uint64, starved bool) {
	n.mu.Lock()
	n.starved[id] = starved
	n.mu.Unlock()
}

func (n *memNet) setCut(id uint64, cut bool) {
	n.mu.Lock()
	n.cut[id] = cut
	n.mu.Unlock()
}

// logSM is a state machine that records every applied entry; Apply returns
// the number applied so far.
type logSM struct {
	mu       sync.Mutex
	entries  []string
	indexes  []uint64
	restores int
}

func (s *logSM) Apply(index uint64, data []byte) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.indexes); n > 0 && index <= s.indexes[n-1] {
		panic(fmt.Sprintf("applied %d after %d", index, s.indexes[n-1]))
	}
	s.entries = append(s.entries, string(data))
	s.indexes = append(s.indexes, index)
	return len(s.entries)
}

func (s *logSM) Snapshot() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return json.Marshal([2]any{s.entries, s.indexes})
}

func (s *logSM) Restore(data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var v struct {
		E []string
		I []uint64
	}
	var raw [2]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	if err := json.Unmarshal(raw[0], &v.E); err != nil {
		return err
	}
	if err := json.Unmarshal(raw[1], &v.I); err != nil {
		return err
	}
	s.entries, s.indexes = v.E, v.I
	s.restores++
	return nil
}

func (s *logSM) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.entries)
}

// cluster is a set of Drivers on one memNet, each hosting some groups.
type cluster struct {
	t       testing.TB
	tick    time.Duration
	net     *memNet
	drivers map[uint64]*Driver
	sms     map[[2]uint64]*logSM // (node, group)
	stores  map[[2]uint64]Storage
	dirs    map[[2]uint64]string
	file    bool // FileStorage rather than MemoryStorage-based
	gcfg    GroupConfig
}

func newCluster(t testing.TB, file bool) *cluster {
	c := &cluster{t: t, tick: testTick, net: newMemNet(), drivers: map[uint64]*Driver{},
		sms: map[[2]uint64]*logSM{}, stores: map[[2]uint64]Storage{}, dirs: map[[2]uint64]string{}, file: file}
	t.Cleanup(c.closeAll)
	return c
}

func (c *cluster) closeAll() {
	for id := range c.drivers {
		c.stopDriver(id)
	}
}

// startDriver starts (or restarts) the Driver of node id.
func (c *cluster) startDriver(id uint64) *Driver {
	d, err := New(Config{ID: id, TickInterval: c.tick, Transport: memTransport{c.net, id}})
	if err != nil {
		c.t.Fatal(err)
	}
	c.net.mu.Lock()
	c.net.drivers[id] = d
	c.net.mu.Unlock()
	c.drivers[id] = d
	return d
}

// stopDriver closes node id's Driver and its storages.
func (c *cluster) stopDriver(id uint64) {
	d := c.drivers[id]
	if d == nil {
		return
	}
	c.net.mu.Lock()
	delete(c.net.drivers, id)
	c.net.mu.Unlock()
	d.Close()
	delete(c.drivers, id)
	for k, s := range c.stores {
		if k[0] == id {
			if fs, ok := s.(*raftlog.FileStorage); ok {
				fs.Close()
			}
			delete(c.stores, k)
		}
	}
}

// addGroup adds group g on node id with a fresh state machine, reopening
// its storage directory if it had one.
func (c *cluster) addGroup(id, g uint64, bootstrap []uint64) {
	key := [2]uint64{id, g}
	var st Storage
	if c.file {
		dir, ok := c.dirs[key]
		if !ok {
			dir = c.t.TempDir()
			c.dirs[key] = dir
		}
		fs, err := raftlog.Open(dir, raftlog.Options{})
		if err != nil {
			c.t.Fatal(err)
		}
		st = fs
	} else {
		st = &memStorage{MemoryStorage: raft.NewMemoryStorage()}
	}
	c.stores[key] = st
	sm := &logSM{}
	c.sms[key] = sm
	gc := c.gcfg
	gc.Group, gc.Storage, gc.SM, gc.Bootstrap = g, st, sm, bootstrap
	if err := c.drivers[id].AddGroup(gc); err != nil {
		c.t.Fatal(err)
	}
}

// memStorage is a volatile Storage for tests.
type memStorage struct{ *raft.MemoryStorage }

func (m *memStorage) Save(hs *pb.HardState, ents []*pb.Entry, snap *pb.Snapshot) error {
	if !raft.IsEmptySnap(snap) {
		if err := m.ApplySnapshot(snap); err != nil {
			return err
		}
	}
	if err := m.Append(ents); err != nil {
		return err
	}
	if !raft.IsEmptyHardState(hs) {
		return m.SetHardState(hs)
	}
	return nil
}

// waitFor polls cond until it holds or 20 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// leader waits until the members agree on a leader of group g and returns it.
func (c *cluster) leader(g uint64, members ...uint64) uint64 {
	var lead uint64
	waitFor(c.t, fmt.Sprintf("a leader of group %d", g), func() bool {
		lead = 0
		for _, id := range members {
			s, ok := c.drivers[id].Status(g)
			if !ok || s.Leader == 0 || lead != 0 && s.Leader != lead {
				return false
			}
			lead = s.Leader
		}
		s, _ := c.drivers[lead].Status(g)
		return s.State == raft.StateLeader
	})
	return lead
}

// propose proposes on node id, retrying the retriable errors.
func (c *cluster) propose(id, g uint64, data string) (any, uint64) {
	c.t.Helper()
	var v any
	var index uint64
	waitFor(c.t, "proposal "+data, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		v, index, err = c.drivers[id].Propose(ctx, g, []byte(data))
		if err != nil && !retriable(err) {
			c.t.Fatalf("propose %s on %d: %v", data, id, err)
		}
		return err == nil
	})
	return v, index
}

func retriable(err error) bool {
	return errors.Is(err, ErrNoLeader) || errors.Is(err, ErrProposalDropped) ||
		errors.Is(err, ErrTooManyProposals) || errors.Is(err, context.DeadlineExceeded)
}

// converged waits until every member of group g applied the same entries,
// including every one of want, and returns them.
func (c *cluster) converged(g uint64, want []string, members ...uint64) []string {
	c.t.Helper()
	var got []string
	waitFor(c.t, fmt.Sprintf("group %d to converge on %d entries", g, len(want)), func() bool {
		got = c.sms[[2]uint64{members[0], g}].list()
		for _, id := range members[1:] {
			if !slices.Equal(c.sms[[2]uint64{id, g}].list(), got) {
				return false
			}
		}
		for _, w := range want {
			if !slices.Contains(got, w) {
				return false
			}
		}
		return true
	})
	return got
}

func ids(n int) []uint64 {
	var s []uint64
	for i := 1; i <= n; i++ {
		s = append(s, uint64(i))
	}
	return s
}
