package faultnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// readTimeout bounds a read that must succeed: reaching it fails the test,
// it is no measurement.
const readTimeout = 10 * time.Second

func listen(t *testing.T, n *Network) *Conn {
	t.Helper()
	c, err := n.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, from, to *Conn, msg string) {
	t.Helper()
	if n, err := from.WriteTo([]byte(msg), to.LocalAddr()); err != nil || n != len(msg) {
		t.Fatalf("WriteTo: %d, %v", n, err)
	}
}

// recv reads the next datagram on c.
func recv(t *testing.T, c *Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(readTimeout))
	buf := make([]byte, 64<<10)
	n, _, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatalf("ReadFrom: %v", err)
	}
	return string(buf[:n])
}

// Datagrams dropped by a rule are never written; the first datagram read
// after healing is therefore the first one sent after healing, which
// proves that everything sent during the cut was dropped.
func TestCutAndHeal(t *testing.T) {
	n := New(1)
	a, b := listen(t, n), listen(t, n)
	send(t, a, b, "before")
	if got := recv(t, b); got != "before" {
		t.Fatalf("got %q", got)
	}
	n.Cut(a.Name(), b.Name())
	send(t, a, b, "lost a->b")
	send(t, b, a, "lost b->a")
	n.Heal(b.Name(), a.Name())
	send(t, a, b, "after a->b")
	send(t, b, a, "after b->a")
	if got := recv(t, b); got != "after a->b" {
		t.Fatalf("b got %q", got)
	}
	if got := recv(t, a); got != "after b->a" {
		t.Fatalf("a got %q", got)
	}
	if sent, dropped, dup := n.Stats(a.Name(), b.Name()); sent != 3 || dropped != 1 || dup != 0 {
		t.Fatalf("a->b stats %d/%d/%d, want 3 sent, 1 dropped", sent, dropped, dup)
	}
	if sent, dropped, _ := n.Stats(b.Name(), a.Name()); sent != 2 || dropped != 1 {
		t.Fatalf("b->a stats %d/%d, want 2 sent, 1 dropped", sent, dropped)
	}
}

func TestCutOneWay(t *testing.T) {
	n := New(1)
	a, b := listen(t, n), listen(t, n)
	n.CutOneWay(a.Name(), b.Name())
	send(t, a, b, "lost")
	send(t, b, a, "delivered")
	if got := recv(t, a); got != "delivered" {
		t.Fatalf("a got %q", got)
	}
	n.HealAll()
	send(t, a, b, "healed")
	if got := recv(t, b); got != "healed" {
		t.Fatalf("b got %q", got)
	}
}

// A socket bound with ListenAs is cut with its endpoint, both ways.
func TestListenAs(t *testing.T) {
	n := New(1)
	a, b := listen(t, n), listen(t, n)
	a2, err := n.ListenAs(a.Name(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	if a2.Name() != a.Name() || a2.LocalAddr().String() == a.Name() {
		t.Fatalf("ListenAs: name %s, address %s", a2.Name(), a2.LocalAddr())
	}
	n.Cut(a.Name(), b.Name())
	send(t, a2, b, "lost a2->b")
	send(t, b, a2, "lost b->a2")
	n.Heal(a.Name(), b.Name())
	send(t, a2, b, "a2->b")
	send(t, b, a2, "b->a2")
	if got := recv(t, b); got != "a2->b" {
		t.Fatalf("b got %q", got)
	}
	if got := recv(t, a2); got != "b->a2" {
		t.Fatalf("a2 got %q", got)
	}
	if sent, dropped, _ := n.Stats(a.Name(), b.Name()); sent != 2 || dropped != 1 {
		t.Fatalf("a->b stats %d/%d, want 2 sent, 1 dropped", sent, dropped)
	}
}

func TestDuplicate(t *testing.T) {
	n := New(1)
	a, b := listen(t, n), listen(t, n)
	n.SetDuplicate(a.Name(), b.Name(), 1)
	send(t, a, b, "twice")
	n.SetDuplicate(a.Name(), b.Name(), 0)
	send(t, a, b, "once")
	for _, want := range []string{"twice", "twice", "once"} {
		if got := recv(t, b); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if sent, dropped, dup := n.Stats(a.Name(), b.Name()); sent != 2 || dropped != 0 || dup != 1 {
		t.Fatalf("stats %d/%d/%d, want 2 sent, 1 duplicated", sent, dropped, dup)
	}
}

func TestDelayDeliversEverything(t *testing.T) {
	n := New(7)
	a, b := listen(t, n), listen(t, n)
	n.SetDelay(a.Name(), b.Name(), 5*time.Millisecond, 5*time.Millisecond)
	const count = 200
	for i := range count {
		send(t, a, b, fmt.Sprint(i))
	}
	var got []string
	for range count {
		got = append(got, recv(t, b))
	}
	slices.Sort(got)
	var want []string
	for i := range count {
		want = append(want, fmt.Sprint(i))
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want every datagram once", got)
	}
}

// Without jitter a delay keeps the order of sending.
func TestDelayKeepsOrderWithoutJitter(t *testing.T) {
	n := New(7)
	a, b := listen(t, n), listen(t, n)
	n.SetDelay(a.Name(), b.Name(), time.Millisecond, 0)
	for i := range 100 {
		send(t, a, b, fmt.Sprint(i))
	}
	for i := range 100 {
		if got := recv(t, b); got != fmt.Sprint(i) {
			t.Fatalf("datagram %d: got %q", i, got)
		}
	}
}

func TestDelayQueueBounds(t *testing.T) {
	t.Run("count", func(t *testing.T) {
		n := New(1)
		a, b := listen(t, n), listen(t, n)
		n.SetDelay(a.Name(), b.Name(), time.Hour, 0)
		for range MaxDelayedDatagrams + 10 {
			send(t, a, b, "x")
		}
		if d := a.Delayed(); d != MaxDelayedDatagrams {
			t.Fatalf("queued %d, want %d", d, MaxDelayedDatagrams)
		}
		if sent, dropped, _ := n.Stats(a.Name(), b.Name()); sent != MaxDelayedDatagrams+10 || dropped != 10 {
			t.Fatalf("stats %d sent, %d dropped", sent, dropped)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		n := New(1)
		a, b := listen(t, n), listen(t, n)
		n.SetDelay(a.Name(), b.Name(), time.Hour, 0)
		big := make([]byte, 60<<10)
		const fits = MaxDelayedBytes / (60 << 10)
		for range fits + 3 {
			if _, err := a.WriteTo(big, b.LocalAddr()); err != nil {
				t.Fatal(err)
			}
		}
		if d := a.Delayed(); d != fits {
			t.Fatalf("queued %d, want %d", d, fits)
		}
		if _, dropped, _ := n.Stats(a.Name(), b.Name()); dropped != 3 {
			t.Fatalf("dropped %d, want 3", dropped)
		}
	})
}

// Healing a delay does not lose what is queued: it is sent when due.
func TestHealKeepsQueuedDatagrams(t *testing.T) {
	n := New(1)
	a, b := listen(t, n), listen(t, n)
	n.SetDelay(a.Name(), b.Name(), 20*time.Millisecond, 0)
	send(t, a, b, "late")
	n.Heal(a.Name(), b.Name())
	send(t, a, b, "now")
	got := []string{recv(t, b), recv(t, b)}
	slices.Sort(got)
	if !slices.Equal(got, []string{"late", "now"}) {
		t.Fatalf("got %v", got)
	}
}

func TestLossRate(t *testing.T) {
	n := New(3)
	a, b := listen(t, n), listen(t, n)
	n.SetLoss(a.Name(), b.Name(), 0.25)
	dst, _ := addrPort(b.LocalAddr())
	const count = 10000
	for range count {
		n.decide(a.Name(), dst)
	}
	sent, dropped, _ := n.Stats(a.Name(), b.Name())
	// 25% of 10,000: the standard deviation is about 43.
	if sent != count || dropped < 2250 || dropped > 2750 {
		t.Fatalf("%d of %d dropped at p=0.25", dropped, sent)
	}
}

// fates runs count datagrams through a fresh network's rules on the first
// of two endpoints to the second, with loss, duplication and jitter.
func fates(t *testing.T, seed uint64, count int) []fate {
	n := New(seed)
	a, b := listen(t, n), listen(t, n)
	n.SetLoss(a.Name(), b.Name(), 0.2)
	n.SetDuplicate(a.Name(), b.Name(), 0.2)
	n.SetDelay(a.Name(), b.Name(), time.Millisecond, time.Millisecond)
	dst, _ := addrPort(b.LocalAddr())
	out := make([]fate, count)
	for i := range out {
		out[i] = n.decide(a.Name(), dst)
	}
	return out
}

// The same seed gives the same fates although the ports differ.
func TestDeterministic(t *testing.T) {
	x, y, z := fates(t, 42, 1000), fates(t, 42, 1000), fates(t, 43, 1000)
	if !slices.Equal(x, y) {
		t.Fatal("same seed, different fates")
	}
	if slices.Equal(x, z) {
		t.Fatal("different seeds, same fates")
	}
}

func TestListenNotLoopback(t *testing.T) {
	n := New(1)
	for _, addr := range []string{"0.0.0.0:0", "[::]:0"} {
		if _, err := n.Listen(addr); !errors.Is(err, ErrNotLoopback) {
			t.Errorf("Listen(%s): %v, want ErrNotLoopback", addr, err)
		}
	}
}

func TestClose(t *testing.T) {
	n := New(1)
	a, b := listen(t, n), listen(t, n)
	n.SetDelay(a.Name(), b.Name(), time.Hour, 0)
	send(t, a, b, "never")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := a.WriteTo([]byte("x"), b.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteTo after Close: %v", err)
	}
	if _, _, err := a.ReadFrom(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadFrom after Close: %v", err)
	}
	if a.Delayed() != 0 {
		t.Fatalf("%d datagrams still queued", a.Delayed())
	}
	ap, _ := addrPort(a.LocalAddr())
	n.mu.Lock()
	_, registered := n.endpoints[ap]
	n.mu.Unlock()
	if registered {
		t.Fatal("closed socket still registered")
	}
}

func TestInvalidRulesPanic(t *testing.T) {
	n := New(1)
	for name, f := range map[string]func(){
		"loss > 1":       func() { n.SetLoss("a", "b", 1.5) },
		"loss NaN":       func() { n.SetLoss("a", "b", nan()) },
		"duplicate < 0":  func() { n.SetDuplicate("a", "b", -0.1) },
		"negative delay": func() { n.SetDelay("a", "b", -time.Second, 0) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

func nan() float64 {
	zero := 0.0
	return zero / zero
}

func TestEndpointName(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:80":          "127.0.0.1:80",
		"[::ffff:127.0.0.1]:80": "127.0.0.1:80",
		"[::1]:80":              "[::1]:80",
		"broker-0":              "broker-0",
	} {
		if got := endpointName(in); got != want {
			t.Errorf("endpointName(%q) = %q, want %q", in, got, want)
		}
	}
	ap, err := addrPort(&net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: 9})
	if err != nil || ap != netip.MustParseAddrPort("127.0.0.1:9") {
		t.Fatalf("addrPort: %v, %v", ap, err)
	}
}
