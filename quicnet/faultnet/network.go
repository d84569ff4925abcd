package faultnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Bounds of one Conn's queue of delayed datagrams; a datagram past either is
// dropped (and counted in Stats).
const (
	MaxDelayedDatagrams = 4096
	MaxDelayedBytes     = 16 << 20
)

var (
	// ErrNotLoopback is returned by Listen and ListenAs for an address
	// that is not a loopback address: a Network only binds 127.0.0.0/8
	// and ::1.
	ErrNotLoopback = errors.New("faultnet: not a loopback address")
)

// Network is the registry of a test's endpoints and the rules between them.
// Its methods are safe for concurrent use. The zero value is not usable;
// call New.
type Network struct {
	seed uint64

	// mu guards the fields below it.
	mu        sync.Mutex
	ordinals  map[string]uint64         // endpoint name -> order of first mention, from 1
	endpoints map[netip.AddrPort]string // bound socket address -> endpoint name
	links     map[pair]*link
}

// pair is an ordered pair of endpoint names.
type pair struct{ from, to string }

// link is the rules, random source and counters of one pair.
type link struct {
	rules

	rng                       *rand.Rand
	sent, dropped, duplicated uint64
}

// rules are the faults in force on a pair; the zero value is a healthy link.
type rules struct {
	cut           bool
	loss, dup     float64
	delay, jitter time.Duration
}

// New returns an empty Network whose random decisions derive from seed.
func New(seed uint64) *Network {
	return &Network{
		seed:      seed,
		ordinals:  make(map[string]uint64),
		endpoints: make(map[netip.AddrPort]string),
		links:     make(map[pair]*link),
	}
}

// Listen binds a UDP socket on addr (host:port on loopback; port 0 picks
// one) and registers it as the endpoint named by its bound address, which
// LocalAddr returns.
func (n *Network) Listen(addr string) (*Conn, error) { return n.ListenAs("", addr) }

// ListenAs binds a UDP socket on addr like Listen, as a socket of the
// endpoint name (an address, as rules name endpoints): rules naming name
// apply to the datagrams it sends and to those sent to it. An empty name
// is the bound address, as with Listen.
func (n *Network) ListenAs(name, addr string) (*Conn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("faultnet: listen %s: %w", addr, err)
	}
	if !ua.IP.IsLoopback() {
		return nil, fmt.Errorf("%w: listen %s", ErrNotLoopback, addr)
	}
	udp, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("faultnet: listen %s: %w", addr, err)
	}
	local := udp.LocalAddr().(*net.UDPAddr).AddrPort()
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	if name == "" {
		name = local.String()
	} else {
		name = endpointName(name)
	}
	n.mu.Lock()
	n.endpoints[local] = name
	n.ordinalLocked(name)
	n.mu.Unlock()
	return newConn(n, udp, local, name), nil
}

// ListenPacket is Listen returning a net.PacketConn, so that a Network
// serves as quicnet.Config.Sockets.
func (n *Network) ListenPacket(laddr string) (net.PacketConn, error) {
	c, err := n.Listen(laddr)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Cut drops every datagram between a and b, both ways.
func (n *Network) Cut(a, b string) {
	n.update(a, b, func(r *rules) { r.cut = true })
	n.update(b, a, func(r *rules) { r.cut = true })
}

// CutOneWay drops every datagram from from to to; the other way still
// delivers.
func (n *Network) CutOneWay(from, to string) {
	n.update(from, to, func(r *rules) { r.cut = true })
}

// Heal lifts every rule between a and b, both ways: cut, loss, delay and
// duplication. Datagrams already queued by a delay are still delivered.
func (n *Network) Heal(a, b string) {
	n.update(a, b, func(r *rules) { *r = rules{} })
	n.update(b, a, func(r *rules) { *r = rules{} })
}

// HealAll lifts every rule of the Network. Counters are kept.
func (n *Network) HealAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, l := range n.links {
		l.rules = rules{}
	}
}

// SetLoss drops each datagram from from to to with probability p (0 stops
// random loss). It panics unless 0 <= p <= 1.
func (n *Network) SetLoss(from, to string, p float64) {
	checkProbability("SetLoss", p)
	n.update(from, to, func(r *rules) { r.loss = p })
}

// SetDuplicate sends each datagram from from to to twice with probability p
// (0 stops duplication). It panics unless 0 <= p <= 1.
func (n *Network) SetDuplicate(from, to string, p float64) {
	checkProbability("SetDuplicate", p)
	n.update(from, to, func(r *rules) { r.dup = p })
}

// SetDelay delivers each datagram from from to to after d, give or take a
// uniformly random jitter (d-jitter to d+jitter, at least 0): a jitter
// reorders datagrams. Delayed datagrams wait in the sender's queue (see
// MaxDelayedDatagrams). d = 0 and jitter = 0 send at once again. It panics
// on a negative duration.
func (n *Network) SetDelay(from, to string, d, jitter time.Duration) {
	if d < 0 || jitter < 0 {
		panic(fmt.Sprintf("faultnet: SetDelay(%v, %v): negative duration", d, jitter))
	}
	n.update(from, to, func(r *rules) { r.delay, r.jitter = d, jitter })
}

// Stats returns how many datagrams from sent to to: sent counts every
// WriteTo, dropped those not delivered (cut, lost, or past the delay
// queue's bounds), duplicated the second copies sent.
func (n *Network) Stats(from, to string) (sent, dropped, duplicated uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	l, ok := n.links[pair{endpointName(from), endpointName(to)}]
	if !ok {
		return 0, 0, 0
	}
	return l.sent, l.dropped, l.duplicated
}

func checkProbability(op string, p float64) {
	if !(p >= 0 && p <= 1) {
		panic(fmt.Sprintf("faultnet: %s(%v): probability outside [0, 1]", op, p))
	}
}

func (n *Network) update(from, to string, f func(*rules)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f(&n.linkLocked(endpointName(from), endpointName(to)).rules)
}

// linkLocked returns the link of from -> to, creating it with a random
// source seeded from the Network's seed and the endpoints' ordinals.
func (n *Network) linkLocked(from, to string) *link {
	p := pair{from, to}
	l, ok := n.links[p]
	if !ok {
		var seed [32]byte
		binary.LittleEndian.PutUint64(seed[0:], n.seed)
		binary.LittleEndian.PutUint64(seed[8:], n.ordinalLocked(from))
		binary.LittleEndian.PutUint64(seed[16:], n.ordinalLocked(to))
		l = &link{rng: rand.New(rand.NewChaCha8(seed))}
		n.links[p] = l
	}
	return l
}

func (n *Network) ordinalLocked(name string) uint64 {
	o, ok := n.ordinals[name]
	if !ok {
		o = uint64(len(n.ordinals)) + 1
		n.ordinals[name] = o
	}
	return o
}

// fate is what becomes of one datagram: copies (0, 1 or 2) sent after
// delay[i] each.
type fate struct {
	copies int
	delay  [2]time.Duration
}

// decide applies the rules of from -> dst to one datagram and counts it.
func (n *Network) decide(from string, dst netip.AddrPort) fate {
	n.mu.Lock()
	defer n.mu.Unlock()
	to, ok := n.endpoints[dst]
	if !ok {
		to = dst.String()
	}
	l := n.linkLocked(from, to)
	l.sent++
	if l.cut || (l.loss > 0 && l.rng.Float64() < l.loss) {
		l.dropped++
		return fate{}
	}
	f := fate{copies: 1}
	if l.dup > 0 && l.rng.Float64() < l.dup {
		l.duplicated++
		f.copies = 2
	}
	for i := range f.copies {
		f.delay[i] = l.delay
		if l.jitter > 0 {
			f.delay[i] += time.Duration(l.rng.Int64N(int64(2*l.jitter)+1)) - l.jitter
		}
		f.delay[i] = max(f.delay[i], 0)
	}
	return f
}

// countDropped counts a datagram from -> dst dropped after decide, by a full
// delay queue.
func (n *Network) countDropped(from string, dst netip.AddrPort) {
	n.mu.Lock()
	defer n.mu.Unlock()
	to, ok := n.endpoints[dst]
	if !ok {
		to = dst.String()
	}
	n.linkLocked(from, to).dropped++
}

// unregister forgets the socket at local once its Conn is closed; its
// endpoint's name, rules and counters stay.
func (n *Network) unregister(local netip.AddrPort) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.endpoints, local)
}

// endpointName is the canonical form of an endpoint name: an address with
// an IPv4-mapped IPv6 address unmapped, or the name as given when it is no
// address.
func endpointName(s string) string {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return s
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
}
