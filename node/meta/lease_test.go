package meta

import (
	"reflect"
	"testing"
	"time"
)

func ids(bs []Broker) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.ID)
	}
	return out
}

func TestLeases(t *testing.T) {
	a := cluster(t) // a, b, c alive at epoch 1
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	l := NewLeases(2 * time.Second)

	// First check: no lease yet, so everyone gets one from now.
	if got := l.Expired(a.s, t0); len(got) != 0 {
		t.Fatalf("first check expired %v", ids(got))
	}
	if age, ok := l.Age("a", at(time.Second)); !ok || age != time.Second {
		t.Fatalf("age of a: %v %v", age, ok)
	}
	l.Renew("a", 1, at(1500*time.Millisecond))
	l.Renew("b", 1, at(1500*time.Millisecond))
	// Exactly the timeout is not expired; beyond it is.
	if got := l.Expired(a.s, at(2*time.Second)); len(got) != 0 {
		t.Fatalf("at the timeout: %v", ids(got))
	}
	got := l.Expired(a.s, at(2*time.Second+1))
	if !reflect.DeepEqual(ids(got), []string{"c"}) || got[0].Epoch != 1 {
		t.Fatalf("expired %+v, want c at epoch 1", got)
	}
	// A late heartbeat from an older epoch, or older than the last, does
	// not renew.
	l.Renew("c", 0, at(3*time.Second))
	l.Renew("a", 1, at(time.Second))
	l.Renew("b", 1, at(3*time.Second))
	if got := l.Expired(a.s, at(3600*time.Millisecond)); !reflect.DeepEqual(ids(got), []string{"a", "c"}) {
		t.Fatalf("expired %v, want a c", ids(got))
	}

	// c is fenced: not reported again, its lease is dropped.
	a.must(FenceBroker{ID: "c", Epoch: 1})
	l.Expired(a.s, at(4*time.Second))
	if _, ok := l.Age("c", at(4*time.Second)); ok {
		t.Fatal("fenced broker kept its lease")
	}
	// c comes back at epoch 2: a full lease from the first check after.
	a.must(reg("c", 3))
	if got := l.Expired(a.s, at(5*time.Second)); !reflect.DeepEqual(ids(got), []string{"a"}) {
		t.Fatalf("expired %v, want a", ids(got))
	}
	if got := l.Expired(a.s, at(7*time.Second+1)); !reflect.DeepEqual(ids(got), []string{"a", "b", "c"}) {
		t.Fatalf("expired %v, want a b c", ids(got))
	}

	// A new leader resets: everyone has a full lease from now.
	l.Reset(at(10 * time.Second))
	if got := l.Expired(a.s, at(12*time.Second)); len(got) != 0 {
		t.Fatalf("after reset: %v", ids(got))
	}
	if got := l.Expired(a.s, at(12*time.Second+1)); len(got) != 3 {
		t.Fatalf("after reset and a timeout: %v", ids(got))
	}
	// A heartbeat at an epoch the state has not applied yet counts.
	l.Renew("b", 5, at(12*time.Second))
	if got := l.Expired(a.s, at(13*time.Second)); !reflect.DeepEqual(ids(got), []string{"a", "c"}) {
		t.Fatalf("expired %v, want a c", ids(got))
	}
	if _, ok := l.Age("nobody", t0); ok {
		t.Fatal("age of an unknown broker")
	}
}
