package meta

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"testing"
)

func TestMoveLifecycle(t *testing.T) {
	a := cluster(t)
	a.must(reg("d", 4))
	tp := topic("t", 2, "a")
	tp.Replicas = [][]string{{"a", "b", "c"}, {"b", "c", "a"}}
	a.must(CreateTopic{Topic: tp})
	m := Move{Partition: 0, Add: "d", Remove: "a", Source: "b", Term: 7}
	r := a.must(StartMove{Topic: "t", Move: m})
	if !r.Changed || !reflect.DeepEqual(r.Topic.Moves, []Move{m}) {
		t.Fatalf("start: %+v", r)
	}
	got, _ := a.s.Topic("t")
	if h := got.Hosts(0); !slices.Equal(h, []string{"a", "b", "c", "d"}) {
		t.Fatalf("hosts during the move: %v", h)
	}
	// The same move again changes nothing; another one on the partition,
	// or one involving a busy broker, is refused.
	if r := a.must(StartMove{Topic: "t", Move: m}); r.Changed {
		t.Fatal("repeated start changed the state")
	}
	if r := a.apply(StartMove{Topic: "t", Move: Move{Partition: 0, Add: "d", Remove: "c", Source: "b"}}); !errors.Is(r.Err, ErrInvalidMove) {
		t.Fatalf("second move of a partition: %v", r.Err)
	}
	if r := a.apply(StartMove{Topic: "t", Move: Move{Partition: 1, Add: "d", Remove: "a", Source: "c"}}); !errors.Is(r.Err, ErrMoveConflict) {
		t.Fatalf("busy target: %v", r.Err)
	}
	for _, bad := range []Move{
		{Partition: 1, Add: "a", Remove: "b", Source: "c"}, // already a replica
		{Partition: 1, Add: "d", Remove: "x", Source: "c"}, // unknown broker
		{Partition: 1, Add: "d", Remove: "d", Source: "c"}, // d is not a replica
		{Partition: 2, Add: "d", Remove: "a", Source: "c"}, // no partition 2
	} {
		if r := a.apply(StartMove{Topic: "t", Move: bad}); !errors.Is(r.Err, ErrInvalidMove) {
			t.Fatalf("%+v: %v", bad, r.Err)
		}
	}
	if r := a.apply(RemoveBroker{ID: "d"}); !errors.Is(r.Err, ErrBrokerInUse) {
		t.Fatalf("remove a move's target: %v", r.Err)
	}
	// A snapshot carries the move.
	snap, _ := a.s.Snapshot()
	s2 := NewState()
	if err := s2.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s2.Moves(), a.s.Moves()) || len(s2.Moves()) != 1 {
		t.Fatalf("restored moves %+v, want %+v", s2.Moves(), a.s.Moves())
	}
	r = a.must(FinishMove{Topic: "t", Partition: 0, Replicas: []string{"b", "c", "d"}})
	if !slices.Equal(r.Topic.Replicas[0], []string{"b", "c", "d"}) || r.Topic.Moves != nil {
		t.Fatalf("finish: %+v", r.Topic)
	}
	if r := a.apply(FinishMove{Topic: "t", Partition: 0, Replicas: []string{"b", "b"}}); !errors.Is(r.Err, ErrInvalidMove) {
		t.Fatalf("duplicate replicas: %v", r.Err)
	}
	// Start then cancel: replicas unchanged.
	a.must(StartMove{Topic: "t", Move: Move{Partition: 1, Add: "d", Remove: "a", Source: "b"}})
	a.must(CancelMove{Topic: "t", Partition: 1})
	if r := a.must(CancelMove{Topic: "t", Partition: 1}); r.Changed {
		t.Fatal("cancel without a move changed the state")
	}
	got, _ = a.s.Topic("t")
	if !slices.Equal(got.Replicas[1], []string{"b", "c", "a"}) || got.Moves != nil {
		t.Fatalf("after cancel: %+v", got)
	}
}

func TestBrokerDrain(t *testing.T) {
	a := cluster(t)
	r := a.must(SetBrokerDrain{ID: "b", Mode: DrainFull})
	if !r.Changed || r.Broker.Drain != DrainFull {
		t.Fatalf("drain: %+v", r)
	}
	// A restart (registration) keeps the mark; a fence too.
	a.must(FenceBroker{ID: "b", Epoch: 1})
	a.must(RegisterBroker{ID: "b", RaftID: 2, Instance: "other", Addr: "x:1"})
	if br, _ := a.s.Broker("b"); br.Drain != DrainFull {
		t.Fatalf("after restart: %+v", br)
	}
	// Leaders only on top of a full drain keeps it full.
	if r := a.must(SetBrokerDrain{ID: "b", Mode: DrainLeaders}); r.Changed || r.Broker.Drain != DrainFull {
		t.Fatalf("leaders-only after full: %+v", r)
	}
	if r := a.apply(SetBrokerDrain{ID: "b", Mode: 3}); !errors.Is(r.Err, ErrInvalidBroker) {
		t.Fatalf("mode 3: %v", r.Err)
	}
	if r := a.apply(SetBrokerDrain{ID: "x"}); !errors.Is(r.Err, ErrUnknownBroker) {
		t.Fatalf("unknown: %v", r.Err)
	}
	a.must(SetBrokerDrain{ID: "b", Mode: DrainNone})
	if br, _ := a.s.Broker("b"); br.Drain != DrainNone {
		t.Fatalf("undrain: %+v", br)
	}
}

// A snapshot of version 1 (no drain byte, no moves) still restores.
func TestRestoreVersion1(t *testing.T) {
	a := cluster(t)
	a.must(CreateTopic{Topic: topic("t", 2, "a", "b")})
	v2, _ := a.s.Snapshot()
	// Rebuild the version 1 bytes: every broker without its drain byte,
	// no moves list.
	v1 := []byte{1}
	v1 = appendString(v1, "c")
	v1 = appendUvarint(v1, a.s.Applied())
	vs := a.s.Versions()
	v1 = appendUvarint(appendUvarint(v1, vs.Brokers), vs.Topics)
	brs := a.s.Brokers()
	v1 = appendUvarint(v1, uint64(len(brs)))
	for _, br := range brs {
		b := appendBroker(nil, &br)
		v1 = append(v1, b[:len(b)-1]...)
	}
	v1 = appendUvarint(v1, 1)
	tp, _ := a.s.Topic("t")
	v1 = appendTopic(v1, &tp)
	s := NewState()
	if err := s.Restore(v1); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Snapshot(); !bytes.Equal(got, v2) {
		t.Fatalf("version 1 restored as %x, want %x", got, v2)
	}
}

// StartMove as brokers wrote it before moves recorded their term (kind 8,
// no term) still decodes, with term 0; and a snapshot of version 2 (moves
// without a term) still restores.
func TestMoveWithoutTerm(t *testing.T) {
	old := appendString([]byte{CommandVersion, byte(kindStartMove)}, "t")
	old = appendVarint(old, 1)
	for _, s := range []string{"d", "a", "b"} {
		old = appendString(old, s)
	}
	c, err := DecodeCommand(old)
	want := StartMove{Topic: "t", Move: Move{Partition: 1, Add: "d", Remove: "a", Source: "b"}}
	if err != nil || !reflect.DeepEqual(c, want) {
		t.Fatalf("kind 8: %#v, %v; want %#v", c, err, want)
	}
	if _, err := DecodeCommand(append(old, 7)); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("kind 8 with a term: %v", err)
	}

	a := cluster(t)
	a.must(reg("d", 4))
	tp := topic("t", 2, "a")
	tp.Replicas = [][]string{{"a", "b", "c"}, {"b", "c", "a"}}
	a.must(CreateTopic{Topic: tp})
	a.must(StartMove{Topic: "t", Move: Move{Partition: 1, Add: "d", Remove: "a", Source: "b"}})
	v3, _ := a.s.Snapshot()
	// The version 2 bytes: version byte 2, each move without its term (a
	// term of 0 is its last byte, the snapshot's last byte here).
	v2 := append([]byte{2}, v3[1:len(v3)-1]...)
	if v3[len(v3)-1] != 0 {
		t.Fatalf("snapshot does not end with the move's term 0: %x", v3)
	}
	s := NewState()
	if err := s.Restore(v2); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Snapshot(); !bytes.Equal(got, v3) {
		t.Fatalf("version 2 restored as %x, want %x", got, v3)
	}
	// Version 3 bytes cut before the term do not restore.
	if err := NewState().Restore(v3[:len(v3)-1]); !errors.Is(err, ErrInvalidSnapshot) {
		t.Fatalf("version 3 without the term: %v", err)
	}
}
