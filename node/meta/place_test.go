package meta

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/rafka/rafka/routing/placement"
)

func TestPlaceTopicSpreads(t *testing.T) {
	s := brokersState(t, 3, nil)
	reps, err := PlaceTopic(s, "t", 6, 1)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := placement.NewSet([]placement.Broker{{ID: "b1"}, {ID: "b2"}, {ID: "b3"}})
	used := map[string]int{}
	for p, r := range reps {
		if want := set.Replicas("t", int32(p), 1, nil); !reflect.DeepEqual(r, want) {
			t.Fatalf("partition %d: %v, want rendezvous %v", p, r, want)
		}
		used[r[0]]++
	}
	if len(reps) != 6 || len(used) < 2 {
		t.Fatalf("6 partitions on %v", used)
	}
	// Over 100 such topics each broker holds about a third.
	count := map[string]int{}
	for i := range 100 {
		reps, _ := PlaceTopic(s, fmt.Sprint("topic-", i), 6, 1)
		for _, r := range reps {
			count[r[0]]++
		}
	}
	for id, n := range count {
		if n < 150 || n > 250 { // mean 200, standard deviation 11.5
			t.Errorf("broker %s holds %d of 600", id, n)
		}
	}
	// The result is accepted by CreateTopic.
	a := cluster(t)
	reps, _ = PlaceTopic(a.s, "t", 6, 3)
	tp := topic("t", 6, "a")
	tp.Replicas = reps
	a.must(CreateTopic{Topic: tp})
}

func TestPlaceTopicSkipsFenced(t *testing.T) {
	s := brokersState(t, 4, []string{"x", "y"}, 2)
	for i := range 50 {
		reps, err := PlaceTopic(s, fmt.Sprint("t", i), 6, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range reps {
			if len(r) != 2 || slices.Contains(r, "b2") || r[0] == r[1] {
				t.Fatalf("replicas %v", r)
			}
		}
	}
	// rf above the alive count gives every alive broker.
	reps, _ := PlaceTopic(s, "t", 1, 5)
	if got := slices.Sorted(slices.Values(reps[0])); !reflect.DeepEqual(got, []string{"b1", "b3", "b4"}) {
		t.Fatalf("replicas %v", reps[0])
	}
}

func TestPlaceTopicErrors(t *testing.T) {
	s := brokersState(t, 2, nil)
	for _, tt := range []struct {
		name       string
		partitions int32
		rf         int
		err        error
	}{
		{"a/b", 1, 1, ErrInvalidTopic},
		{"t", 0, 1, ErrInvalidTopic},
		{"t", 1, 0, ErrInvalidTopic},
		{"t", 1, MaxReplicas + 1, ErrInvalidTopic},
	} {
		if _, err := PlaceTopic(s, tt.name, tt.partitions, tt.rf); !errors.Is(err, tt.err) {
			t.Errorf("%+v: %v", tt, err)
		}
	}
	if _, err := PlaceTopic(brokersState(t, 2, nil, 1, 2), "t", 1, 1); !errors.Is(err, ErrNoBrokers) {
		t.Errorf("all fenced: %v", err)
	}
	if _, err := PlaceTopic(NewState(), "t", 1, 1); !errors.Is(err, ErrNoBrokers) {
		t.Errorf("no brokers: %v", err)
	}
}

func TestHostedAndLeader(t *testing.T) {
	a := cluster(t)
	a.must(CreateTopic{Topic: topic("y", 3, "a", "b")}) // a, b, a
	tp := topic("x", 2, "b")
	tp.Replicas = [][]string{{"c", "a"}, {"b"}}
	a.must(CreateTopic{Topic: tp})
	for _, tt := range []struct {
		id   string
		want []PartitionRef
	}{
		{"a", []PartitionRef{{"x", 0}, {"y", 0}, {"y", 2}}},
		{"b", []PartitionRef{{"x", 1}, {"y", 1}}},
		{"c", []PartitionRef{{"x", 0}}},
		{"nobody", nil},
	} {
		if got := Hosted(a.s, tt.id); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("hosted by %s: %v, want %v", tt.id, got, tt.want)
		}
	}
	check := func(topic string, p int32, want string, wantOK bool) {
		t.Helper()
		if got, ok := Leader(a.s, topic, p); got != want || ok != wantOK {
			t.Errorf("leader of %s/%d: %q %v, want %q %v", topic, p, got, ok, want, wantOK)
		}
	}
	check("x", 0, "c", true)
	check("y", 1, "b", true)
	check("y", 3, "", false)
	check("y", -1, "", false)
	check("z", 0, "", false)
	a.must(FenceBroker{ID: "c", Epoch: 1})
	check("x", 0, "", false) // offline, though a follows
	a.must(reg("c", 3))
	check("x", 0, "c", true)
}
