package client_test

import (
	"errors"
	"net"
	"sync"
	"testing"
)

// udpProxy relays datagrams between clients and a broker on loopback, one
// upstream socket per client address (every client connection has its own
// socket, so one flow is one QUIC connection). It can drop the packets of
// the flows that exist at some moment, as a broker killed and restarted
// does with its old connections, or drop everything, as an unreachable
// broker does.
type udpProxy struct {
	t      *testing.T
	ln     *net.UDPConn
	target *net.UDPAddr
	wg     sync.WaitGroup

	mu      sync.Mutex
	flows   map[string]*proxyFlow
	dropAll bool
	newFlow chan struct{} // closed and replaced when a flow appears
	closed  bool
}

type proxyFlow struct {
	up   *net.UDPConn
	dead bool // its packets are dropped both ways
}

// newUDPProxy binds the proxy's address; start it with start once the
// broker (which advertises that address) listens.
func newUDPProxy(t *testing.T) *udpProxy {
	t.Helper()
	ln, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &udpProxy{t: t, ln: ln, flows: make(map[string]*proxyFlow), newFlow: make(chan struct{})}
	t.Cleanup(p.close)
	return p
}

func (p *udpProxy) start(target string) {
	taddr, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		p.t.Fatal(err)
	}
	p.target = taddr
	p.wg.Add(1)
	go p.run()
}

func (p *udpProxy) addr() string { return p.ln.LocalAddr().String() }

func (p *udpProxy) run() {
	defer p.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, from, err := p.ln.ReadFromUDP(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		f := p.flows[from.String()]
		if f == nil && !p.closed {
			up, err := net.DialUDP("udp", nil, p.target)
			if err != nil {
				p.mu.Unlock()
				p.t.Errorf("proxy: %v", err)
				return
			}
			f = &proxyFlow{up: up}
			p.flows[from.String()] = f
			close(p.newFlow)
			p.newFlow = make(chan struct{})
			p.wg.Add(1)
			go p.back(f, from)
		}
		drop := f == nil || f.dead || p.dropAll
		p.mu.Unlock()
		if !drop {
			f.up.Write(buf[:n])
		}
	}
}

// back relays the broker's answers of one flow.
func (p *udpProxy) back(f *proxyFlow, client *net.UDPAddr) {
	defer p.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, err := f.up.Read(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.t.Logf("proxy flow: %v", err)
			}
			return
		}
		p.mu.Lock()
		drop := f.dead || p.dropAll
		p.mu.Unlock()
		if !drop {
			p.ln.WriteToUDP(buf[:n], client)
		}
	}
}

// blackholeExisting silently drops, from now on, every packet of the
// connections made so far; new connections go through.
func (p *udpProxy) blackholeExisting() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.flows {
		f.dead = true
	}
}

// setDropAll drops (or stops dropping) every packet; new flows are still
// counted.
func (p *udpProxy) setDropAll(drop bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropAll = drop
}

// flowCount returns the number of connections seen so far and a channel
// closed when the next one appears.
func (p *udpProxy) flowCount() (int, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.flows), p.newFlow
}

func (p *udpProxy) close() {
	p.mu.Lock()
	p.closed = true
	flows := p.flows
	p.mu.Unlock()
	p.ln.Close()
	for _, f := range flows {
		f.up.Close()
	}
	p.wg.Wait()
}
