package placement

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// The properties of the package documentation, checked over many
// partitions. Every input comes from fixed seeds, so a run is reproducible;
// the statistical bounds are wide enough (at least 4 standard deviations of
// the binomial count they test) that passing is not luck of the seed.

// brokers returns n brokers "broker-0".. spread round-robin over zones
// "zone-0".. (no zone when zones is 0).
func brokers(n, zones int) []Broker {
	bs := make([]Broker, n)
	for i := range bs {
		bs[i].ID = fmt.Sprintf("broker-%d", i)
		if zones > 0 {
			bs[i].Zone = fmt.Sprintf("zone-%d", i%zones)
		}
	}
	return bs
}

type part struct {
	topic string
	p     int32
}

// partitions returns n partitions: topics of 100 partitions each.
func partitions(n int) []part {
	ps := make([]part, n)
	for i := range ps {
		ps[i] = part{fmt.Sprintf("topic-%d", i/100), int32(i % 100)}
	}
	return ps
}

// diff returns the IDs of a not in b.
func diff(a, b []string) []string {
	var d []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			d = append(d, x)
		}
	}
	return d
}

// Property 1 and 2, with and without zones: adding broker x changes only
// partitions that x joins, where x replaces exactly one member; every other
// partition keeps its list, order included. Removing broker y changes only
// partitions y was in. Both need at least r brokers in the smaller set.
func TestAddRemoveMovesOnlyThatBroker(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	parts := partitions(10_000)
	type setup struct {
		n, zones, r int
		newZone     string // zone of the broker added
	}
	var setups []setup
	for _, r := range []int{1, 3} {
		for _, n := range []int{max(r, 2), 31} {
			setups = append(setups,
				setup{n, 0, r, ""},
				setup{n, 2, r, "zone-1"},   // fewer zones than r: fill by score
				setup{n, 3, r, "zone-0"},   // as many zones as r
				setup{n, 5, r, "zone-4"},   // more zones than r
				setup{n, 5, r, "zone-new"}, // a zone of its own
			)
		}
	}
	for _, su := range setups {
		t.Run(fmt.Sprintf("n=%d/zones=%d/r=%d/new=%s", su.n, su.zones, su.r, su.newZone), func(t *testing.T) {
			before := brokers(su.n, su.zones)
			x := Broker{ID: fmt.Sprintf("new-%d", rng.Uint32()), Zone: su.newZone}
			after := append(slices.Clone(before), x)
			sb, sa := mustSet(t, before), mustSet(t, after)
			var old, cur []string
			joined := 0
			for _, pt := range parts {
				old = sb.Replicas(pt.topic, pt.p, su.r, old)
				cur = sa.Replicas(pt.topic, pt.p, su.r, cur)
				if !slices.Contains(cur, x.ID) {
					if !slices.Equal(old, cur) {
						t.Fatalf("%v: %v -> %v without the new broker %s", pt, old, cur, x.ID)
					}
					continue
				}
				joined++
				added, removed := diff(cur, old), diff(old, cur)
				if len(added) != 1 || len(removed) != 1 {
					t.Fatalf("%v: %v -> %v: added %v, removed %v; want only %s replacing one", pt, old, cur, added, removed, x.ID)
				}
				if su.zones == 0 && removed[0] != old[len(old)-1] {
					t.Fatalf("%v: %v -> %v: without zones %s must replace the last", pt, old, cur, x.ID)
				}
			}
			if joined == 0 {
				t.Fatalf("the new broker joined no partition")
			}

			// Remove a broker that was there before x, from the set with x.
			y := after[rng.IntN(len(before))]
			without := slices.DeleteFunc(slices.Clone(after), func(b Broker) bool { return b.ID == y.ID })
			sw := mustSet(t, without)
			for _, pt := range parts {
				old = sa.Replicas(pt.topic, pt.p, su.r, old)
				cur = sw.Replicas(pt.topic, pt.p, su.r, cur)
				if !slices.Contains(old, y.ID) {
					if !slices.Equal(old, cur) {
						t.Fatalf("%v: removing %s changed %v -> %v", pt, y.ID, old, cur)
					}
					continue
				}
				if added, removed := diff(cur, old), diff(old, cur); len(added) != 1 || len(removed) != 1 || removed[0] != y.ID {
					t.Fatalf("%v: removing %s: %v -> %v", pt, y.ID, old, cur)
				}
			}
		})
	}
}

// Property 3, no zones: going from N to N+1 brokers, the new broker is in a
// partition's top R with probability R/(N+1) (each of the N+1 brokers is
// equally likely to rank anywhere), and each such partition moves exactly one
// of its R replica slots (property 1). So the expected fraction of partitions
// that change is R/(N+1), of replica slots 1/(N+1); the test asserts the
// measured partition fraction is within 10% of R/(N+1) and that slots moved
// equal partitions changed. Runs use max(10,000, 1600(1-p)/p) partitions, p =
// R/(N+1), so that 10% is at least 4 binomial standard deviations.
func TestMoveFraction(t *testing.T) {
	for _, c := range []struct{ r, n int }{
		{1, 4}, {1, 9}, {1, 50},
		{3, 3}, {3, 10}, {3, 50}, {3, 100},
	} {
		p := float64(c.r) / float64(c.n+1)
		nparts := max(10_000, int(math.Ceil(1600*(1-p)/p)))
		sb := mustSet(t, brokers(c.n, 0))
		sa := mustSet(t, append(brokers(c.n, 0), Broker{ID: "new"}))
		changed, slots := 0, 0
		var old, cur []string
		for _, pt := range partitions(nparts) {
			old = sb.Replicas(pt.topic, pt.p, c.r, old)
			cur = sa.Replicas(pt.topic, pt.p, c.r, cur)
			if d := len(diff(cur, old)); d > 0 {
				changed++
				slots += d
			}
		}
		got := float64(changed) / float64(nparts)
		t.Logf("R=%d N=%d->%d, %d partitions: %.4f of partitions changed, want %.4f (%+.1f%%); %.4f of slots moved",
			c.r, c.n, c.n+1, nparts, got, p, 100*(got-p)/p, float64(slots)/float64(c.r*nparts))
		if math.Abs(got-p) > 0.1*p {
			t.Errorf("R=%d N=%d->%d: %.4f of partitions changed, want %.4f +-10%%", c.r, c.n, c.n+1, got, p)
		}
		if slots != changed {
			t.Errorf("R=%d N=%d->%d: %d slots moved in %d partitions, want one each", c.r, c.n, c.n+1, slots, changed)
		}
	}
}

// Property 4: over 10,000 partitions, the replicas (and preferred leaders)
// each broker holds are within 5 binomial standard deviations of the mean:
// a broker holds each partition with probability q = R/N (leads it with 1/N),
// so its count has mean P*q and deviation sqrt(P*q*(1-q)). With zones and R
// equal to the number of zones, every zone holds one replica of every
// partition, so a broker's share is 1/(its zone's size) whatever the other
// zones look like: equal zones balance, unequal ones do not. The preferred
// leader is the best-scoring broker overall, zones or not, so leaders are
// always spread evenly.
func TestLoadBalance(t *testing.T) {
	const nparts = 10_000
	parts := partitions(nparts)
	check := func(t *testing.T, what, id string, count int, q float64) float64 {
		mean := nparts * q
		sd := math.Sqrt(nparts * q * (1 - q))
		if math.Abs(float64(count)-mean) > 5*sd {
			t.Errorf("%s %s: %d, want %.0f +- %.0f (5 sd)", id, what, count, mean, 5*sd)
		}
		return math.Abs(float64(count)-mean) / mean
	}
	for _, c := range []struct {
		name      string
		bs        []Broker
		r         int
		zoneSizes map[string]int // replicas per broker: nparts/size of its zone
	}{
		{"N=10/R=3", brokers(10, 0), 3, nil},
		{"N=30/R=3", brokers(30, 0), 3, nil},
		{"N=100/R=3", brokers(100, 0), 3, nil},
		{"N=100/R=1", brokers(100, 0), 1, nil},
		{"N=30/zones=3x10/R=3", brokers(30, 3), 3, map[string]int{"zone-0": 10, "zone-1": 10, "zone-2": 10}},
		{"N=30/zones=5,10,15/R=3", unequalZones(), 3, map[string]int{"a": 5, "b": 10, "c": 15}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := mustSet(t, c.bs)
			replicas, leaders := map[string]int{}, map[string]int{}
			var dst []string
			for _, pt := range parts {
				dst = s.Replicas(pt.topic, pt.p, c.r, dst)
				leaders[dst[0]]++
				for _, id := range dst {
					replicas[id]++
				}
			}
			var worstR, worstL float64
			for _, b := range c.bs {
				q := float64(c.r) / float64(len(c.bs))
				if c.zoneSizes != nil {
					q = 1 / float64(c.zoneSizes[b.Zone])
				}
				worstR = max(worstR, check(t, "replicas", b.ID, replicas[b.ID], q))
				worstL = max(worstL, check(t, "leaders", b.ID, leaders[b.ID], 1/float64(len(c.bs))))
			}
			t.Logf("%d partitions: worst broker off its expected replica count by %.1f%%, leader count by %.1f%%", nparts, 100*worstR, 100*worstL)
		})
	}
}

func unequalZones() []Broker {
	var bs []Broker
	for i := range 30 {
		z := "a"
		if i >= 5 {
			z = "b"
		}
		if i >= 15 {
			z = "c"
		}
		bs = append(bs, Broker{ID: fmt.Sprintf("broker-%d", i), Zone: z})
	}
	return bs
}

// Property 5: the result depends only on the set of brokers, not on the
// order they are listed in, and the same inputs always give the same result.
func TestOrderIndependence(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	parts := partitions(10_000)
	for _, zones := range []int{0, 2, 4} {
		bs := brokers(20, zones)
		s := mustSet(t, bs)
		shuffled := slices.Clone(bs)
		var a, b, c []string
		for i, pt := range parts {
			if i%1000 == 0 {
				rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			}
			s2 := s
			if i%1000 == 0 {
				s2 = mustSet(t, shuffled)
			}
			a = s.Replicas(pt.topic, pt.p, 3, a)
			b = s.Replicas(pt.topic, pt.p, 3, b)
			c = s2.Replicas(pt.topic, pt.p, 3, c)
			if !slices.Equal(a, b) || !slices.Equal(a, c) {
				t.Fatalf("zones %d, %v: %v, again %v, shuffled %v", zones, pt, a, b, c)
			}
		}
	}
}

// Property 6: with at least r zones no two replicas share a zone; with fewer,
// the first replicas are one per zone, every zone represented.
func TestZoneSpread(t *testing.T) {
	parts := partitions(10_000)
	for _, c := range []struct{ n, zones, r int }{
		{9, 3, 3}, {10, 3, 3}, {20, 5, 3}, {20, 5, 5}, {12, 2, 3}, {12, 4, 6},
	} {
		bs := brokers(c.n, c.zones)
		zoneOf := map[string]string{}
		for _, b := range bs {
			zoneOf[b.ID] = b.Zone
		}
		s := mustSet(t, bs)
		var dst []string
		for _, pt := range parts {
			dst = s.Replicas(pt.topic, pt.p, c.r, dst)
			seen := map[string]bool{}
			for i, id := range dst {
				if i < c.zones && seen[zoneOf[id]] {
					t.Fatalf("n=%d zones=%d r=%d %v: %v repeats zone %s in its first %d", c.n, c.zones, c.r, pt, dst, zoneOf[id], min(c.r, c.zones))
				}
				seen[zoneOf[id]] = true
			}
			if len(seen) != min(c.r, c.zones) {
				t.Fatalf("n=%d zones=%d r=%d %v: %v covers %d zones", c.n, c.zones, c.r, pt, dst, len(seen))
			}
		}
	}
}
