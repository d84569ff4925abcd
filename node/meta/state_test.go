package meta

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"
)

// applier applies commands to a state at consecutive indexes.
type applier struct {
	t     testing.TB
	s     *State
	index uint64
}

func newApplier(t testing.TB) *applier { return &applier{t: t, s: NewState()} }

func (a *applier) apply(c Command) Result {
	a.t.Helper()
	b, err := EncodeCommand(c)
	if err != nil {
		a.t.Fatalf("encode %#v: %v", c, err)
	}
	a.index++
	return a.s.Apply(a.index, b)
}

func (a *applier) must(c Command) Result {
	a.t.Helper()
	r := a.apply(c)
	if r.Err != nil {
		a.t.Fatalf("apply %#v: %v", c, r.Err)
	}
	return r
}

func reg(id string, raftID uint64) RegisterBroker {
	return RegisterBroker{ID: id, RaftID: raftID, Instance: "inst-" + id, Addr: "127.0.0.1:9" + fmt.Sprint(raftID), Zone: ""}
}

func topic(name string, partitions int32, replicas ...string) Topic {
	t := Topic{TopicInfo: TopicInfo{Name: name, Partitions: partitions,
		Created: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)}, ID: "id-" + name}
	for p := range partitions {
		t.Replicas = append(t.Replicas, []string{replicas[int(p)%len(replicas)]})
	}
	return t
}

// cluster returns a state with cluster "c" and brokers a (raft 1), b (2),
// c (3), all alive.
func cluster(t testing.TB) *applier {
	a := newApplier(t)
	a.must(InitCluster{ClusterID: "c"})
	for i, id := range []string{"a", "b", "c"} {
		a.must(reg(id, uint64(i+1)))
	}
	return a
}

func TestInitCluster(t *testing.T) {
	a := newApplier(t)
	if r := a.apply(reg("a", 1)); !errors.Is(r.Err, ErrNotInitialized) {
		t.Fatalf("register before init: %v", r.Err)
	}
	if r := a.apply(InitCluster{}); !errors.Is(r.Err, ErrInvalidCommand) {
		t.Fatalf("empty cluster id: %v", r.Err)
	}
	if r := a.must(InitCluster{ClusterID: "c1"}); !r.Changed || a.s.ClusterID() != "c1" {
		t.Fatalf("init: %+v, id %q", r, a.s.ClusterID())
	}
	if r := a.must(InitCluster{ClusterID: "c1"}); r.Changed {
		t.Fatal("second init with the same id changed the state")
	}
	if r := a.apply(InitCluster{ClusterID: "c2"}); !errors.Is(r.Err, ErrClusterMismatch) {
		t.Fatalf("init with another id: %v", r.Err)
	}
	if a.s.ClusterID() != "c1" || a.s.Applied() != 5 {
		t.Fatalf("cluster id %q applied %d", a.s.ClusterID(), a.s.Applied())
	}
}

func TestApplyIndexes(t *testing.T) {
	s := NewState()
	if r := s.Apply(0, nil); !errors.Is(r.Err, ErrStaleIndex) {
		t.Fatalf("index 0: %v", r.Err)
	}
	if r := s.Apply(5, nil); r.Err != nil || s.Applied() != 5 {
		t.Fatalf("empty entry: %v, applied %d", r.Err, s.Applied())
	}
	b, _ := EncodeCommand(InitCluster{ClusterID: "c"})
	if r := s.Apply(5, b); !errors.Is(r.Err, ErrStaleIndex) || s.ClusterID() != "" {
		t.Fatalf("replayed index: %v, cluster %q", r.Err, s.ClusterID())
	}
	if r := s.Apply(6, []byte{CommandVersion, 99}); !errors.Is(r.Err, ErrInvalidCommand) || s.Applied() != 6 {
		t.Fatalf("undecodable entry: %v, applied %d", r.Err, s.Applied())
	}
}

func TestRegisterBroker(t *testing.T) {
	tests := []struct {
		name string
		cmd  RegisterBroker
		err  error
		want Broker // checked when err is nil
	}{
		{"new", RegisterBroker{ID: "d", RaftID: 4, Instance: "i", Addr: "x:1", Zone: "z"}, nil,
			Broker{ID: "d", RaftID: 4, Instance: "i", Addr: "x:1", Zone: "z", Epoch: 1, Registered: 5}},
		{"restart of the alive instance", RegisterBroker{ID: "a", RaftID: 1, Instance: "inst-a", Addr: "y:2"}, nil,
			Broker{ID: "a", RaftID: 1, Instance: "inst-a", Addr: "y:2", Epoch: 2, Registered: 2}},
		{"other instance while alive", RegisterBroker{ID: "a", RaftID: 1, Instance: "wiped", Addr: "y:2"}, ErrDuplicateBrokerID, Broker{}},
		{"alive instance changes raft id", RegisterBroker{ID: "a", RaftID: 9, Instance: "inst-a", Addr: "y:2"}, ErrInvalidBroker, Broker{}},
		{"raft id of another broker", RegisterBroker{ID: "d", RaftID: 2, Instance: "i", Addr: "x:1"}, ErrDuplicateRaftID, Broker{}},
		{"raft id 0", RegisterBroker{ID: "d", RaftID: 0, Instance: "i", Addr: "x:1"}, ErrInvalidBroker, Broker{}},
		{"empty id", RegisterBroker{ID: "", RaftID: 4, Instance: "i", Addr: "x:1"}, ErrInvalidBroker, Broker{}},
		{"empty instance", RegisterBroker{ID: "d", RaftID: 4, Addr: "x:1"}, ErrInvalidBroker, Broker{}},
		{"empty addr", RegisterBroker{ID: "d", RaftID: 4, Instance: "i"}, ErrInvalidBroker, Broker{}},
		{"long zone", RegisterBroker{ID: "d", RaftID: 4, Instance: "i", Addr: "x:1", Zone: string(make([]byte, MaxIDLen+1))}, ErrInvalidBroker, Broker{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := cluster(t)
			before, v := a.s.Brokers(), a.s.Versions()
			r := a.apply(tt.cmd)
			if !errors.Is(r.Err, tt.err) {
				t.Fatalf("err %v, want %v", r.Err, tt.err)
			}
			if tt.err != nil {
				if a.s.Versions() != v || a.s.Applied() != 5 || !reflect.DeepEqual(a.s.Brokers(), before) {
					t.Fatalf("failed command changed the state: versions %+v, applied %d, brokers %+v",
						a.s.Versions(), a.s.Applied(), a.s.Brokers())
				}
				return
			}
			got, ok := a.s.Broker(tt.want.ID)
			if !ok || got != tt.want || r.Broker != tt.want || !r.Changed {
				t.Fatalf("broker %+v (%v), result %+v, want %+v", got, ok, r, tt.want)
			}
			if a.s.Versions().Brokers != 5 {
				t.Fatalf("brokers version %d, want 5", a.s.Versions().Brokers)
			}
			if byRaft, ok := a.s.BrokerByRaftID(tt.want.RaftID); !ok || byRaft != tt.want {
				t.Fatalf("by raft id: %+v %v", byRaft, ok)
			}
		})
	}
}

func TestFenceAndComeBack(t *testing.T) {
	a := cluster(t)
	if r := a.apply(FenceBroker{ID: "x", Epoch: 1}); !errors.Is(r.Err, ErrUnknownBroker) {
		t.Fatalf("fence unknown: %v", r.Err)
	}
	if r := a.must(FenceBroker{ID: "a", Epoch: 2}); r.Changed {
		t.Fatal("fence of a future epoch changed the state")
	}
	r := a.must(FenceBroker{ID: "a", Epoch: 1})
	if !r.Changed || r.Broker.State != BrokerFenced {
		t.Fatalf("fence: %+v", r)
	}
	if r := a.must(FenceBroker{ID: "a", Epoch: 1}); r.Changed {
		t.Fatal("second fence changed the state")
	}
	// The same id from a wiped data directory, with another raft id: allowed
	// now that the old instance is fenced.
	r = a.must(RegisterBroker{ID: "a", RaftID: 7, Instance: "new", Addr: "z:1", Zone: "z"})
	want := Broker{ID: "a", RaftID: 7, Instance: "new", Addr: "z:1", Zone: "z", State: BrokerAlive, Epoch: 2, Registered: 2}
	if r.Broker != want {
		t.Fatalf("comeback %+v, want %+v", r.Broker, want)
	}
	if _, ok := a.s.BrokerByRaftID(1); ok {
		t.Fatal("old raft id still maps to a broker")
	}
	// A fence decided before the re-registration is stale.
	if r := a.must(FenceBroker{ID: "a", Epoch: 1}); r.Changed {
		t.Fatal("stale fence changed the state")
	}
	// The freed raft id can be taken.
	a.must(RegisterBroker{ID: "d", RaftID: 1, Instance: "i", Addr: "d:1"})
	if got := a.s.Brokers(); len(got) != 4 || got[0].ID != "a" || got[3].ID != "d" {
		t.Fatalf("brokers %+v", got)
	}
}

func TestRemoveBroker(t *testing.T) {
	a := cluster(t)
	a.must(CreateTopic{Topic: topic("t", 1, "b")})
	for _, tt := range []struct {
		cmd RemoveBroker
		err error
	}{
		{RemoveBroker{ID: "x"}, ErrUnknownBroker},
		{RemoveBroker{ID: "a"}, ErrBrokerInUse}, // alive
	} {
		if r := a.apply(tt.cmd); !errors.Is(r.Err, tt.err) {
			t.Errorf("%+v: %v, want %v", tt.cmd, r.Err, tt.err)
		}
	}
	a.must(FenceBroker{ID: "b", Epoch: 1})
	if r := a.apply(RemoveBroker{ID: "b"}); !errors.Is(r.Err, ErrBrokerInUse) {
		t.Fatalf("remove a replica holder: %v", r.Err)
	}
	a.must(FenceBroker{ID: "a", Epoch: 1})
	if r := a.must(RemoveBroker{ID: "a"}); !r.Changed {
		t.Fatal("remove did not change the state")
	}
	if _, ok := a.s.Broker("a"); ok {
		t.Fatal("removed broker still there")
	}
	if _, ok := a.s.BrokerByRaftID(1); ok {
		t.Fatal("removed broker's raft id still there")
	}
}

func TestCreateTopic(t *testing.T) {
	long := string(bytes.Repeat([]byte{'x'}, MaxIDLen+1))
	mod := func(f func(*Topic)) Topic {
		tp := topic("t", 2, "a", "b")
		f(&tp)
		return tp
	}
	tests := []struct {
		name  string
		topic Topic
		err   error
	}{
		{"ok", topic("t", 2, "a", "b"), nil},
		{"ok with configs and 3 replicas", mod(func(t *Topic) {
			t.Configs = map[string]string{"fsync": "always"}
			t.Replicas = [][]string{{"a", "b", "c"}, {"c", "a", "b"}}
		}), nil},
		{"exists", topic("old", 1, "a"), ErrTopicExists},
		{"bad name", mod(func(t *Topic) { t.Name = "a/b" }), ErrInvalidTopic},
		{"no partitions", mod(func(t *Topic) { t.Partitions = 0; t.Replicas = nil }), ErrInvalidTopic},
		{"too many partitions", mod(func(t *Topic) { t.Partitions = MaxPartitions + 1 }), ErrInvalidTopic},
		{"no id", mod(func(t *Topic) { t.ID = "" }), ErrInvalidTopic},
		{"long id", mod(func(t *Topic) { t.ID = long }), ErrInvalidTopic},
		{"short replicas", mod(func(t *Topic) { t.Replicas = t.Replicas[:1] }), ErrInvalidTopic},
		{"long replicas", mod(func(t *Topic) { t.Replicas = append(t.Replicas, []string{"a"}) }), ErrInvalidTopic},
		{"empty replica list", mod(func(t *Topic) { t.Replicas[1] = nil }), ErrInvalidTopic},
		{"unknown broker", mod(func(t *Topic) { t.Replicas[1] = []string{"x"} }), ErrInvalidTopic},
		{"repeated broker", mod(func(t *Topic) { t.Replicas[1] = []string{"a", "a"} }), ErrInvalidTopic},
		{"too many replicas", mod(func(t *Topic) { t.Replicas[1] = make([]string, MaxReplicas+1) }), ErrInvalidTopic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := cluster(t)
			a.must(CreateTopic{Topic: topic("old", 1, "c")})
			r := a.apply(CreateTopic{Topic: tt.topic})
			if !errors.Is(r.Err, tt.err) {
				t.Fatalf("err %v, want %v", r.Err, tt.err)
			}
			if tt.err != nil {
				if a.s.Versions().Topics != 5 || len(a.s.Topics()) != 1 {
					t.Fatalf("failed create changed topics: %+v", a.s.Topics())
				}
				return
			}
			want := tt.topic.clone()
			want.CreatedIndex = 6
			got, ok := a.s.Topic("t")
			if !ok || !reflect.DeepEqual(got, want) || !reflect.DeepEqual(r.Topic, want) {
				t.Fatalf("topic %+v, result %+v, want %+v", got, r.Topic, want)
			}
			if a.s.Versions().Topics != 6 {
				t.Fatalf("topics version %d", a.s.Versions().Topics)
			}
		})
	}
}

func TestDeleteAndConfigs(t *testing.T) {
	a := cluster(t)
	if r := a.apply(DeleteTopic{Name: "t"}); !errors.Is(r.Err, ErrUnknownTopic) {
		t.Fatalf("delete unknown: %v", r.Err)
	}
	if r := a.apply(SetTopicConfigs{Name: "t"}); !errors.Is(r.Err, ErrUnknownTopic) {
		t.Fatalf("configs of unknown: %v", r.Err)
	}
	a.must(CreateTopic{Topic: topic("t", 1, "a")})
	r := a.must(SetTopicConfigs{Name: "t", Configs: map[string]string{"k": "v"}})
	if got, _ := a.s.Topic("t"); !reflect.DeepEqual(got.Configs, map[string]string{"k": "v"}) || !reflect.DeepEqual(r.Topic, got) {
		t.Fatalf("configs %v, result %+v", got.Configs, r.Topic)
	}
	a.must(SetTopicConfigs{Name: "t"})
	if got, _ := a.s.Topic("t"); got.Configs != nil {
		t.Fatalf("configs %v after clearing", got.Configs)
	}
	a.must(DeleteTopic{Name: "t"})
	if _, ok := a.s.Topic("t"); ok || a.s.Versions().Topics != a.index {
		t.Fatal("topic still there after delete")
	}
	// Recreated under the same name with a new id.
	nt := topic("t", 2, "b")
	nt.ID = "second"
	a.must(CreateTopic{Topic: nt})
	if got, _ := a.s.Topic("t"); got.ID != "second" || got.CreatedIndex != a.index {
		t.Fatalf("recreated %+v", got)
	}
}

func TestReturnedValuesAreCopies(t *testing.T) {
	a := cluster(t)
	tp := topic("t", 1, "a")
	tp.Configs = map[string]string{"k": "v"}
	r := a.must(CreateTopic{Topic: tp})
	tp.Configs["k"] = "changed"
	r.Topic.Replicas[0][0] = "changed"
	got, _ := a.s.Topic("t")
	got.Configs["k"] = "changed"
	got.Replicas[0][0] = "changed"
	a.s.Topics()[0].Configs["k"] = "changed"
	if again, _ := a.s.Topic("t"); again.Configs["k"] != "v" || again.Replicas[0][0] != "a" {
		t.Fatalf("state changed through a returned value: %+v", again)
	}
}

// randomCommands returns a mix of valid and invalid commands over a few
// brokers and topics.
func randomCommands(rng *rand.Rand, n int) []Command {
	ids := []string{"a", "b", "c", "d", "e"}
	cmds := []Command{InitCluster{ClusterID: "c"}}
	for range n {
		id := ids[rng.IntN(len(ids))]
		name := fmt.Sprintf("t%d", rng.IntN(4))
		switch rng.IntN(11) {
		case 0:
			cmds = append(cmds, RegisterBroker{ID: id, RaftID: uint64(rng.IntN(6) + 1),
				Instance: fmt.Sprint("i", rng.IntN(2)), Addr: id + ":1", Zone: fmt.Sprint("z", rng.IntN(2))})
		case 1:
			cmds = append(cmds, FenceBroker{ID: id, Epoch: uint64(rng.IntN(3) + 1)})
		case 2:
			cmds = append(cmds, RemoveBroker{ID: id})
		case 3, 4:
			cmds = append(cmds, CreateTopic{Topic: topic(name, int32(rng.IntN(3)+1), id, ids[rng.IntN(len(ids))])})
		case 5:
			cmds = append(cmds, DeleteTopic{Name: name})
		case 6:
			cmds = append(cmds, SetTopicConfigs{Name: name, Configs: map[string]string{"k": fmt.Sprint(rng.IntN(3)), "j": "x"}})
		case 7, 8:
			cmds = append(cmds, StartMove{Topic: name, Move: Move{Partition: int32(rng.IntN(3)),
				Add: ids[rng.IntN(len(ids))], Remove: id, Source: ids[rng.IntN(len(ids))]}})
		case 9:
			if rng.IntN(2) == 0 {
				cmds = append(cmds, CancelMove{Topic: name, Partition: int32(rng.IntN(3))})
			} else {
				cmds = append(cmds, FinishMove{Topic: name, Partition: int32(rng.IntN(3)), Replicas: []string{id, ids[rng.IntN(len(ids))]}})
			}
		case 10:
			cmds = append(cmds, SetBrokerDrain{ID: id, Mode: DrainMode(rng.IntN(4))})
		}
	}
	return cmds
}

func TestDeterminismAndSnapshot(t *testing.T) {
	for seed := range uint64(20) {
		cmds := randomCommands(rand.New(rand.NewPCG(seed, 1)), 200)
		a1, a2 := newApplier(t), newApplier(t)
		var fails int
		for i, c := range cmds {
			r1, r2 := a1.apply(c), a2.apply(c)
			if fmt.Sprint(r1) != fmt.Sprint(r2) {
				t.Fatalf("seed %d entry %d: results differ: %+v, %+v", seed, i, r1, r2)
			}
			if r1.Err != nil {
				fails++
			}
			if i%50 == 0 || i == len(cmds)-1 {
				s1, _ := a1.s.Snapshot()
				s2, _ := a2.s.Snapshot()
				if !bytes.Equal(s1, s2) {
					t.Fatalf("seed %d entry %d: snapshots differ", seed, i)
				}
				// Restore into a fresh state and into one holding other data.
				for _, r := range []*State{NewState(), cluster(t).s} {
					if err := r.Restore(s1); err != nil {
						t.Fatalf("seed %d entry %d: restore: %v", seed, i, err)
					}
					s3, _ := r.Snapshot()
					if !bytes.Equal(s1, s3) {
						t.Fatalf("seed %d entry %d: snapshot after restore differs", seed, i)
					}
					if !reflect.DeepEqual(r.Topics(), a1.s.Topics()) || !reflect.DeepEqual(r.Brokers(), a1.s.Brokers()) ||
						r.Versions() != a1.s.Versions() || r.Applied() != a1.s.Applied() || r.ClusterID() != a1.s.ClusterID() {
						t.Fatalf("seed %d entry %d: restored state differs", seed, i)
					}
				}
			}
		}
		if fails == 0 || fails == len(cmds) {
			t.Fatalf("seed %d: %d of %d commands failed: the mix tests too little", seed, fails, len(cmds))
		}
	}
}

func TestRestoreRejects(t *testing.T) {
	a := cluster(t)
	a.must(CreateTopic{Topic: topic("t", 2, "a", "b")})
	good, _ := a.s.Snapshot()
	bad := map[string][]byte{
		"empty":          nil,
		"version":        append([]byte{9}, good[1:]...),
		"truncated":      good[:len(good)-1],
		"trailing":       append(bytes.Clone(good), 0),
		"huge count":     {SnapshotVersion, 1, 'c', 5, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"no cluster id":  {SnapshotVersion, 0, 5, 0, 0, 1, 1, 'a', 1, 1, 'i', 1, 'x', 0, 0, 1, 1, 0},
		"version > appl": {SnapshotVersion, 1, 'c', 1, 2, 0, 0, 0},
	}
	for name, b := range bad {
		s := cluster(t).s
		before, _ := s.Snapshot()
		if err := s.Restore(b); !errors.Is(err, ErrInvalidSnapshot) {
			t.Errorf("%s: %v", name, err)
		}
		if after, _ := s.Snapshot(); !bytes.Equal(before, after) {
			t.Errorf("%s: failed restore changed the state", name)
		}
	}
}

// TestConcurrentReads runs readers against the applying goroutine; run with
// -race.
func TestConcurrentReads(t *testing.T) {
	a := cluster(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, tp := range a.s.Topics() {
					_ = len(tp.Replicas)
				}
				_ = a.s.Brokers()
				_, _ = a.s.Snapshot()
				_, _ = Leader(a.s, "t0", 0)
			}
		})
	}
	for _, c := range randomCommands(rand.New(rand.NewPCG(7, 7)), 300) {
		a.apply(c)
	}
	close(stop)
	wg.Wait()
}
