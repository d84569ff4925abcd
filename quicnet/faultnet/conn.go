package faultnet

import (
	"container/heap"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Conn is one socket of a Network: a net.PacketConn over a real UDP socket
// whose writes pass the Network's rules. Reads are the socket's own.
//
// Goroutines: one, started by Listen, sends delayed datagrams when they are
// due; Close stops it and waits for it.
type Conn struct {
	n     *Network
	udp   *net.UDPConn
	local netip.AddrPort
	name  string // endpoint the rules know this socket by

	closed    atomic.Bool
	done      chan struct{} // closed by Close: stops run
	wake      chan struct{} // capacity 1: the head of the queue changed
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	// mu guards the delay queue.
	mu     sync.Mutex
	queue  delayQueue
	queued int    // bytes in queue
	seq    uint64 // orders datagrams due at the same instant
}

func newConn(n *Network, udp *net.UDPConn, local netip.AddrPort, name string) *Conn {
	c := &Conn{
		n: n, udp: udp, local: local, name: name,
		done: make(chan struct{}),
		wake: make(chan struct{}, 1),
	}
	c.wg.Go(c.run)
	return c
}

// Name is the endpoint this socket belongs to: its address unless it was
// bound with ListenAs.
func (c *Conn) Name() string { return c.name }

// ReadFrom reads the next datagram from the socket.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) { return c.udp.ReadFrom(b) }

// WriteTo sends b to addr as the rules of this endpoint and addr's say: it
// may send nothing (and still return len(b), nil), send it twice, or queue
// it to send later. Errors are the socket's.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.closed.Load() {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: c.LocalAddr(), Addr: addr, Err: net.ErrClosed}
	}
	dst, err := addrPort(addr)
	if err != nil {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: c.LocalAddr(), Addr: addr, Err: err}
	}
	f := c.n.decide(c.name, dst)
	for i := range f.copies {
		if f.delay[i] > 0 {
			if !c.enqueue(b, addr, f.delay[i]) {
				c.n.countDropped(c.name, dst)
			}
			continue
		}
		if _, err := c.udp.WriteTo(b, addr); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// Close closes the socket, stops the delay goroutine and discards the
// datagrams it still held. It is idempotent; later calls return the first
// call's error.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		close(c.done)
		c.wg.Wait()
		c.closeErr = c.udp.Close()
		c.n.unregister(c.local)
		c.mu.Lock()
		c.queue, c.queued = nil, 0
		c.mu.Unlock()
	})
	return c.closeErr
}

// LocalAddr is the bound address of the socket.
func (c *Conn) LocalAddr() net.Addr { return c.udp.LocalAddr() }

// SetDeadline sets the socket's read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error { return c.udp.SetDeadline(t) }

// SetReadDeadline sets the socket's read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.udp.SetReadDeadline(t) }

// SetWriteDeadline sets the socket's write deadline; it does not apply to
// delayed datagrams, which are sent by the Conn's goroutine.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.udp.SetWriteDeadline(t) }

// SetReadBuffer sets the socket's receive buffer size.
func (c *Conn) SetReadBuffer(bytes int) error { return c.udp.SetReadBuffer(bytes) }

// SetWriteBuffer sets the socket's send buffer size.
func (c *Conn) SetWriteBuffer(bytes int) error { return c.udp.SetWriteBuffer(bytes) }

// Delayed is the number of datagrams waiting in the delay queue.
func (c *Conn) Delayed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue)
}

// enqueue copies b (the caller reuses it) into the delay queue, due after d;
// it reports false when the queue is full or the Conn closed.
func (c *Conn) enqueue(b []byte, addr net.Addr, d time.Duration) bool {
	c.mu.Lock()
	if c.closed.Load() || len(c.queue) >= MaxDelayedDatagrams || c.queued+len(b) > MaxDelayedBytes {
		c.mu.Unlock()
		return false
	}
	c.seq++
	item := &delayed{at: time.Now().Add(d), seq: c.seq, b: append([]byte(nil), b...), addr: addr}
	heap.Push(&c.queue, item)
	c.queued += len(b)
	head := c.queue[0] == item
	c.mu.Unlock()
	if head {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// run sends queued datagrams when due, until Close.
func (c *Conn) run() {
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	var due []*delayed
	for {
		due = due[:0]
		now := time.Now()
		c.mu.Lock()
		for len(c.queue) > 0 && !c.queue[0].at.After(now) {
			d := heap.Pop(&c.queue).(*delayed)
			c.queued -= len(d.b)
			due = append(due, d)
		}
		next := time.Duration(-1)
		if len(c.queue) > 0 {
			next = c.queue[0].at.Sub(now)
		}
		c.mu.Unlock()
		for _, d := range due {
			// A send error (socket closing) loses the datagram, as the
			// network would.
			c.udp.WriteTo(d.b, d.addr)
		}
		clear(due)
		if next >= 0 {
			t.Reset(next)
		} else {
			t.Stop()
		}
		select {
		case <-c.done:
			return
		case <-c.wake:
		case <-t.C:
		}
	}
}

// delayed is one datagram waiting in a delay queue.
type delayed struct {
	at   time.Time
	seq  uint64
	b    []byte
	addr net.Addr
}

// delayQueue is a min-heap of delayed datagrams by due time, then by order
// of sending.
type delayQueue []*delayed

func (q delayQueue) Len() int { return len(q) }
func (q delayQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q delayQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *delayQueue) Push(x any)   { *q = append(*q, x.(*delayed)) }
func (q *delayQueue) Pop() any {
	old := *q
	d := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return d
}

// addrPort is addr as an address and port, IPv4-mapped addresses unmapped.
func addrPort(addr net.Addr) (netip.AddrPort, error) {
	var ap netip.AddrPort
	switch a := addr.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		var err error
		if ap, err = netip.ParseAddrPort(addr.String()); err != nil {
			return netip.AddrPort{}, fmt.Errorf("faultnet: address %v: %w", addr, err)
		}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

var _ net.PacketConn = (*Conn)(nil)
