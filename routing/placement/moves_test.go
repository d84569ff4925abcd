package placement

import (
	"slices"
	"testing"
)

func TestMoves(t *testing.T) {
	topics := []Topic{{"orders", 100, 3}, {"payments", 50, 1}, {"empty", 0, 3}}
	s10 := mustSet(t, brokers(10, 0))
	s11 := mustSet(t, append(brokers(10, 0), Broker{ID: "new"}))

	if got := Moves(s10, s10, topics, nil); len(got) != 0 {
		t.Fatalf("same set: %d moves, want none", len(got))
	}

	all := Moves(nil, s10, topics, nil)
	if len(all) != 150 {
		t.Fatalf("from nothing: %d moves, want all 150 partitions", len(all))
	}
	for _, m := range all {
		if len(m.Old) != 0 || len(m.New) == 0 {
			t.Fatalf("from nothing: %+v", m)
		}
	}

	prefix := []Move{{Topic: "kept"}}
	got := Moves(s10, s11, topics, prefix)
	if got[0].Topic != "kept" {
		t.Fatalf("dst overwritten: %+v", got[0])
	}
	got = got[1:]
	var want []Move
	for _, tp := range topics {
		for p := range tp.Partitions {
			o := s10.Replicas(tp.Name, p, tp.Replicas, nil)
			n := s11.Replicas(tp.Name, p, tp.Replicas, nil)
			if slices.Contains(n, "new") {
				want = append(want, Move{tp.Name, p, o, n})
			}
		}
	}
	if len(want) == 0 || len(got) != len(want) {
		t.Fatalf("adding a broker: %d moves, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Topic != w.Topic || g.Partition != w.Partition || !slices.Equal(g.Old, w.Old) || !slices.Equal(g.New, w.New) {
			t.Fatalf("move %d = %+v, want %+v", i, g, w)
		}
	}
	// Moves do not share memory with each other.
	got[0].New[0] = "scribbled"
	if got[1].New[0] == "scribbled" || got[1].Old[0] == "scribbled" {
		t.Fatal("moves share their slices")
	}
}

func TestSameSet(t *testing.T) {
	for _, c := range []struct {
		a, b []string
		want bool
	}{
		{nil, nil, true},
		{[]string{"a", "b"}, []string{"b", "a"}, true},
		{[]string{"a", "b"}, []string{"a", "c"}, false},
		{[]string{"a"}, []string{"a", "b"}, false},
	} {
		if got := sameSet(c.a, c.b); got != c.want {
			t.Errorf("sameSet(%v, %v) = %v", c.a, c.b, got)
		}
	}
}
