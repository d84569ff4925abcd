package placement

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
)

func mustSet(t testing.TB, brokers []Broker) *Set {
	t.Helper()
	s, err := NewSet(brokers)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// reference is Replicas written the slow, obvious way: score every broker,
// sort them all, take the best of each zone in order, then fill by score.
func reference(topic string, partition int32, brokers []Broker, r int) []string {
	type sc struct {
		b Broker
		s uint64
	}
	all := make([]sc, len(brokers))
	for i, b := range brokers {
		all[i] = sc{b, score(topic, partition, b.ID)}
	}
	slices.SortFunc(all, func(a, b sc) int {
		if c := cmp.Compare(b.s, a.s); c != 0 {
			return c
		}
		return strings.Compare(a.b.ID, b.b.ID)
	})
	r = min(r, len(all))
	out := []string{}
	if r <= 0 {
		return out
	}
	taken := map[string]bool{}
	zones := map[string]bool{}
	for _, c := range all {
		if len(out) < r && !zones[c.b.Zone] {
			zones[c.b.Zone] = true
			taken[c.b.ID] = true
			out = append(out, c.b.ID)
		}
	}
	for _, c := range all {
		if len(out) < r && !taken[c.b.ID] {
			taken[c.b.ID] = true
			out = append(out, c.b.ID)
		}
	}
	return out
}

func TestReplicasMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	long := strings.Repeat("x", 300) // past the stack key buffer
	for iter := range 2000 {
		n := rng.IntN(40)
		nz := 1 + rng.IntN(8)
		brokers := make([]Broker, n)
		for i := range brokers {
			brokers[i] = Broker{ID: fmt.Sprintf("b%d", i), Zone: fmt.Sprintf("z%d", rng.IntN(nz))}
			if rng.IntN(50) == 0 {
				brokers[i].ID += long
			}
		}
		if rng.IntN(4) == 0 { // no zones declared
			for i := range brokers {
				brokers[i].Zone = ""
			}
		}
		r := rng.IntN(25) - 1 // -1 .. 23: past stackR too
		topic := fmt.Sprintf("t%d", rng.IntN(10))
		if rng.IntN(50) == 0 {
			topic += long
		}
		p := rng.Int32N(100) - 1
		s := mustSet(t, brokers)
		got := s.Replicas(topic, p, r, nil)
		want := reference(topic, p, brokers, r)
		if !slices.Equal(got, want) {
			t.Fatalf("iter %d: Replicas(%q, %d, %v, %d) = %v, reference %v", iter, topic, p, brokers, r, got, want)
		}
	}
}

func TestScoreEncoding(t *testing.T) {
	// The hashed key, spelled out: a change here reshuffles every cluster.
	key := []byte{6, 'o', 'r', 'd', 'e', 'r', 's', 0, 0, 0, 7, 8, 'b', 'r', 'o', 'k', 'e', 'r', '-', '1'}
	if got, want := score("orders", 7, "broker-1"), xxhash.Sum64(key); got != want {
		t.Fatalf("score = %#x, want xxhash of %x = %#x", got, key, want)
	}
	key = []byte{1, 'a', 0xff, 0xff, 0xff, 0xff, 1, 'b'}
	if got, want := score("a", -1, "b"), xxhash.Sum64(key); got != want {
		t.Fatalf("score(a, -1, b) = %#x, want %#x", got, want)
	}
	// Length prefixes keep the fields apart.
	for _, c := range [][2][2]string{
		{{"ab", "c"}, {"a", "bc"}},
		{{"", "abc"}, {"abc", ""}},
		{{"a\x00", "b"}, {"a", "\x00b"}},
	} {
		if score(c[0][0], 0, c[0][1]) == score(c[1][0], 0, c[1][1]) {
			t.Errorf("score(%q, 0, %q) == score(%q, 0, %q)", c[0][0], c[0][1], c[1][0], c[1][1])
		}
	}
}

// TestReplicasGolden pins results: every broker of a cluster, whatever its
// version, must compute the same placement.
func TestReplicasGolden(t *testing.T) {
	var plain, zoned []Broker
	for i := range 6 {
		id := fmt.Sprintf("broker-%d", i)
		plain = append(plain, Broker{ID: id})
		zoned = append(zoned, Broker{ID: id, Zone: fmt.Sprintf("zone-%c", 'a'+i%3)})
	}
	for _, c := range []struct {
		brokers   []Broker
		topic     string
		partition int32
		want      string
	}{
		{plain, "orders", 0, "broker-1 broker-0 broker-4"},
		{plain, "orders", 1, "broker-5 broker-3 broker-2"},
		{plain, "payments", 0, "broker-3 broker-4 broker-1"},
		{zoned, "orders", 0, "broker-1 broker-0 broker-5"},
		{zoned, "orders", 1, "broker-5 broker-3 broker-4"},
		{zoned, "payments", 0, "broker-3 broker-4 broker-5"},
	} {
		got := strings.Join(mustSet(t, c.brokers).Replicas(c.topic, c.partition, 3, nil), " ")
		if got != c.want {
			t.Errorf("Replicas(%q, %d) over %v = %q, want %q", c.topic, c.partition, c.brokers, got, c.want)
		}
	}
}

func TestReplicasEdges(t *testing.T) {
	three := mustSet(t, []Broker{{ID: "a"}, {ID: "b"}, {ID: "c"}})
	empty := mustSet(t, nil)
	for _, c := range []struct {
		name string
		s    *Set
		r    int
		want int
	}{
		{"nil set", nil, 3, 0},
		{"empty set", empty, 3, 0},
		{"r zero", three, 0, 0},
		{"r negative", three, -1, 0},
		{"r capped", three, 5, 3},
		{"r one", three, 1, 1},
	} {
		dst := []string{"stale"}
		got := c.s.Replicas("t", 0, c.r, dst)
		if len(got) != c.want {
			t.Errorf("%s: got %v, want %d IDs", c.name, got, c.want)
		}
	}
	if got := three.Replicas("t", 0, 5, nil); !slices.Equal(slices.Sorted(slices.Values(got)), []string{"a", "b", "c"}) {
		t.Errorf("r capped: got %v, want all three", got)
	}
	if nilSet := (*Set)(nil); nilSet.Len() != 0 || nilSet.Brokers() != nil {
		t.Error("nil Set is not empty")
	}
}

func TestNewSetRejects(t *testing.T) {
	_, err := NewSet([]Broker{{ID: "a"}, {ID: "b", Zone: "z1"}, {ID: ""}, {ID: "b", Zone: "z2"}, {ID: ""}, {ID: "b"}, {ID: "c"}})
	if !errors.Is(err, ErrDuplicateID) || !errors.Is(err, ErrEmptyID) {
		t.Fatalf("err = %v, want ErrDuplicateID and ErrEmptyID", err)
	}
	// One message per problem, not per repeat.
	if got, want := err.Error(), "placement: empty broker id\nplacement: duplicate broker id \"b\""; got != want {
		t.Fatalf("err = %q, want %q", got, want)
	}
	in := []Broker{{ID: "b"}, {ID: "a"}}
	s := mustSet(t, in)
	in[0].ID = "changed"
	if got := s.Brokers(); !slices.Equal(got, []Broker{{ID: "a"}, {ID: "b"}}) {
		t.Fatalf("Brokers() = %v: not sorted, or the input was retained", got)
	}
}

func TestReplicasNoAllocs(t *testing.T) {
	for _, zones := range []int{0, 3} {
		s := mustSet(t, brokers(100, zones))
		dst := make([]string, 0, 3)
		p := int32(0)
		allocs := testing.AllocsPerRun(100, func() {
			dst = s.Replicas("orders", p, 3, dst)
			p++
		})
		if allocs != 0 {
			t.Errorf("zones %d: %v allocations per Replicas call, want 0", zones, allocs)
		}
	}
}
