package meta

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// seedCommands returns one encoding of every command kind.
func seedCommands(t testing.TB) [][]byte {
	tp := topic("t", 2, "a", "b")
	tp.Configs = map[string]string{"fsync": "always", "retention.ms": "1000"}
	cmds := []Command{
		InitCluster{ClusterID: "c"},
		reg("a", 1),
		RegisterBroker{ID: "b", RaftID: 1 << 40, Instance: "i", Addr: "[::1]:9000", Zone: "z"},
		FenceBroker{ID: "a", Epoch: 3},
		CreateTopic{Topic: tp},
		CreateTopic{Topic: Topic{TopicInfo: TopicInfo{Name: "zero"}}},
		DeleteTopic{Name: "t"},
		SetTopicConfigs{Name: "t", Configs: map[string]string{"k": "v"}},
		SetTopicConfigs{Name: "t"},
		RemoveBroker{ID: "a"},
		StartMove{Topic: "t", Move: Move{Partition: 1, Add: "c", Remove: "a", Source: "b", Term: 300}},
		FinishMove{Topic: "t", Partition: 1, Replicas: []string{"c", "b"}},
		FinishMove{Topic: "t", Partition: 0},
		CancelMove{Topic: "t", Partition: 1},
		SetBrokerDrain{ID: "a", Mode: DrainFull},
		SetBrokerDrain{ID: "b", Mode: DrainLeaders},
	}
	var out [][]byte
	for _, c := range cmds {
		b, err := EncodeCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestCommandRoundTrip(t *testing.T) {
	for _, b := range seedCommands(t) {
		c, err := DecodeCommand(b)
		if err != nil {
			t.Fatalf("%x: %v", b, err)
		}
		again, _ := EncodeCommand(c)
		if !bytes.Equal(b, again) {
			t.Fatalf("%#v: %x then %x", c, b, again)
		}
		// Every strict prefix fails.
		for i := range len(b) {
			if _, err := DecodeCommand(b[:i]); !errors.Is(err, ErrInvalidCommand) {
				t.Fatalf("%#v truncated to %d: %v", c, i, err)
			}
		}
	}
	ct := CreateTopic{Topic: topic("t", 1, "a")}
	ct.Topic.Created = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := EncodeCommand(ct); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("year 10000: %v", err)
	}
	if _, err := EncodeCommand(nil); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("nil: %v", err)
	}
	// A count the input cannot hold fails before allocating.
	huge := []byte{CommandVersion, byte(kindSetTopicConfigs), 1, 't', 0xff, 0xff, 0xff, 0xff, 0x0f}
	if _, err := DecodeCommand(huge); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("huge count: %v", err)
	}
}

func FuzzDecodeCommand(f *testing.F) {
	for _, b := range seedCommands(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidCommand) {
				t.Fatalf("error %v does not wrap ErrInvalidCommand", err)
			}
			return
		}
		enc, err := EncodeCommand(c)
		if err != nil {
			t.Fatalf("decoded %#v does not encode: %v", c, err)
		}
		// The input may use longer varints than needed, so compare the
		// re-encoding's decoding, then its bytes once more.
		c2, err := DecodeCommand(enc)
		if err != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip: %#v, %#v, %v", c, c2, err)
		}
		if enc2, _ := EncodeCommand(c2); !bytes.Equal(enc, enc2) {
			t.Fatalf("encodings differ: %x, %x", enc, enc2)
		}
		// Applying it to a small cluster does not panic.
		s := cluster(t).s
		s.Apply(s.Applied()+1, b)
	})
}

// seedSnapshots returns snapshots of states built by random commands.
func seedSnapshots(t testing.TB) [][]byte {
	var out [][]byte
	empty, _ := NewState().Snapshot()
	out = append(out, empty)
	for seed := range uint64(4) {
		a := newApplier(t)
		for _, c := range randomCommands(rand.New(rand.NewPCG(seed, 9)), 40) {
			a.apply(c)
		}
		b, _ := a.s.Snapshot()
		out = append(out, b)
	}
	return out
}

func FuzzRestore(f *testing.F) {
	for _, b := range seedSnapshots(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := NewState()
		if err := s.Restore(b); err != nil {
			if !errors.Is(err, ErrInvalidSnapshot) {
				t.Fatalf("error %v does not wrap ErrInvalidSnapshot", err)
			}
			if s.Applied() != 0 || len(s.Brokers()) != 0 {
				t.Fatal("failed restore changed the state")
			}
			return
		}
		snap, _ := s.Snapshot()
		s2 := NewState()
		if err := s2.Restore(snap); err != nil {
			t.Fatalf("restore of a snapshot: %v", err)
		}
		if snap2, _ := s2.Snapshot(); !bytes.Equal(snap, snap2) {
			t.Fatal("snapshot of a restored snapshot differs")
		}
		// The restored state takes commands without panicking.
		for _, c := range seedCommands(t) {
			s2.Apply(s2.Applied()+1, c)
		}
	})
}
