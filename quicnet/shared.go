package quicnet

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// SharedPrefix is the byte that starts every datagram a SharedPacketConn
// sends and that it requires of every datagram it receives. It is part of
// the wire format of the shared port: every broker of a cluster must frame
// its non-QUIC datagrams the same way.
//
// Why a prefix: quic-go hands a Transport's non-QUIC datagrams to
// ReadNonQUICPacket only when their first byte has both its top bits (0x80,
// 0x40) clear; anything else is taken for a QUIC packet. A KRPC (DHT)
// message is a bencoded dictionary and starts with 'd' (0x64, 0x40 set), so
// it would be swallowed as a QUIC short-header packet. 0x00 keeps both bits
// clear, and a datagram that does not start with it is no datagram of ours.
const SharedPrefix = 0x00

// MaxSharedPayload is the largest payload a shared datagram carries: the
// largest UDP payload (65507 bytes over IPv4) less the prefix.
const MaxSharedPayload = 65507 - 1

// ErrNotShared is returned by parseSharedDatagram for a datagram that is
// empty or does not start with SharedPrefix.
var ErrNotShared = errors.New("quicnet: datagram without the shared-port prefix")

// appendSharedDatagram appends payload framed for the shared port to dst.
func appendSharedDatagram(dst, payload []byte) []byte {
	return append(append(dst, SharedPrefix), payload...)
}

// parseSharedDatagram returns the payload of a shared-port datagram, a
// sub-slice of b, or ErrNotShared.
func parseSharedDatagram(b []byte) ([]byte, error) {
	if len(b) == 0 || b[0] != SharedPrefix {
		return nil, ErrNotShared
	}
	return b[1:], nil
}

// SharedPacketConn is a net.PacketConn over the non-QUIC datagrams of a
// quic.Transport, so that another UDP protocol (the cluster's DHT) shares
// the QUIC port. It frames what it writes with SharedPrefix and drops, on
// receipt, every datagram that lacks it (see DroppedPackets).
//
// quic-go queues at most 32 non-QUIC datagrams and drops the rest, so one
// goroutine should be reading at all times. Closing a SharedPacketConn
// stops its reads and writes but leaves the Transport open: the QUIC
// listener goes on. Once the Transport is closed, reads fail with an error
// wrapping net.ErrClosed.
//
// Deadlines: SetReadDeadline applies to blocked reads too. Writes go
// straight to the socket and do not block, so a write deadline is only
// checked before writing.
type SharedPacketConn struct {
	tr *quic.Transport

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc

	dropped atomic.Uint64

	// mu guards the read deadline: readEpoch is cancelled and replaced
	// whenever the deadline changes, so a read blocked under the old
	// deadline wakes up and starts over with the new one.
	mu           sync.Mutex
	readDeadline time.Time
	readEpoch    context.Context
	cancelEpoch  context.CancelFunc

	writeDeadline atomic.Pointer[time.Time]

	// pending is a datagram caught while arming the transport in
	// NewSharedPacketConn, handed out by the first ReadFrom; guarded by mu.
	pending     []byte
	pendingAddr net.Addr
}

// NewSharedPacketConn returns a PacketConn over tr's non-QUIC datagrams. tr
// must already be in use (listening or dialing) and stays owned by the
// caller. At most one SharedPacketConn should read from a Transport.
// Non-QUIC datagrams are queued from this call on; before it, quic-go drops
// them.
func NewSharedPacketConn(tr *quic.Transport) *SharedPacketConn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &SharedPacketConn{tr: tr, ctx: ctx, cancel: cancel}
	c.readEpoch, c.cancelEpoch = context.WithCancel(ctx)
	c.arm()
	return c
}

// arm makes the transport queue non-QUIC datagrams from now on: quic-go
// drops them until ReadNonQUICPacket has been called once (and sets its
// queue up without synchronisation on that first call). A read with a
// context already done does both without waiting; should a datagram slip
// in meanwhile, it is kept for the first ReadFrom.
func (c *SharedPacketConn) arm() {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	buf := make([]byte, 1<<16)
	if n, addr, err := c.tr.ReadNonQUICPacket(done, buf); err == nil {
		c.pending, c.pendingAddr = buf[:n], addr
	}
}

// ReadFrom reads the next datagram that carries the shared-port prefix and
// copies its payload, without the prefix, into b; datagrams without the
// prefix are dropped and counted. A datagram longer than b is truncated, as
// with a UDP socket (the prefix takes one byte of b while reading: pass a
// buffer of 64 KiB to never truncate).
func (c *SharedPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	buf := b
	if len(buf) == 0 {
		buf = make([]byte, 1) // room to read the prefix
	}
	for {
		if c.ctx.Err() != nil {
			return 0, nil, c.opError("read", net.ErrClosed)
		}
		c.mu.Lock()
		epoch, dl := c.readEpoch, c.readDeadline
		pending, pendingAddr := c.pending, c.pendingAddr
		c.pending, c.pendingAddr = nil, nil
		c.mu.Unlock()
		if pending != nil {
			if payload, err := parseSharedDatagram(pending); err == nil {
				return copy(b, payload), udpAddr(pendingAddr), nil
			}
			c.dropped.Add(1)
			continue
		}
		ctx := epoch
		cancel := context.CancelFunc(func() {})
		if !dl.IsZero() {
			ctx, cancel = context.WithDeadline(epoch, dl)
		}
		n, addr, err := c.tr.ReadNonQUICPacket(ctx, buf)
		cancel()
		if err != nil {
			switch {
			case c.ctx.Err() != nil:
				return 0, nil, c.opError("read", net.ErrClosed)
			case epoch.Err() != nil:
				continue // deadline changed while blocked
			case ctx.Err() != nil:
				return 0, nil, c.opError("read", os.ErrDeadlineExceeded)
			default:
				// The transport is closed (quic-go says only "closed").
				return 0, nil, c.opError("read", errors.Join(net.ErrClosed, err))
			}
		}
		payload, err := parseSharedDatagram(buf[:n])
		if err != nil {
			c.dropped.Add(1)
			continue
		}
		return copy(b, payload), udpAddr(addr), nil // copy handles the overlap
	}
}

// WriteTo sends b to addr, prefixed with SharedPrefix, and returns len(b)
// on success.
func (c *SharedPacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.ctx.Err() != nil {
		return 0, c.opError("write", net.ErrClosed)
	}
	if dl := c.writeDeadline.Load(); dl != nil && !dl.IsZero() && !time.Now().Before(*dl) {
		return 0, c.opError("write", os.ErrDeadlineExceeded)
	}
	if len(b) > MaxSharedPayload {
		return 0, c.opError("write", errors.New("payload too large for a UDP datagram"))
	}
	n, err := c.tr.WriteTo(appendSharedDatagram(make([]byte, 0, 1+len(b)), b), addr)
	if err != nil {
		return 0, c.opError("write", err)
	}
	if n != 1+len(b) {
		return max(n-1, 0), c.opError("write", errors.New("short write"))
	}
	return len(b), nil
}

// Close stops reads (a blocked ReadFrom returns net.ErrClosed) and writes.
// It does not close the Transport. It is idempotent.
func (c *SharedPacketConn) Close() error {
	c.cancel()
	return nil
}

// LocalAddr is the address of the Transport's socket.
func (c *SharedPacketConn) LocalAddr() net.Addr { return c.tr.Conn.LocalAddr() }

// DroppedPackets is the number of non-QUIC datagrams dropped because they
// did not start with SharedPrefix.
func (c *SharedPacketConn) DroppedPackets() uint64 { return c.dropped.Load() }

// SetDeadline sets both the read and the write deadline.
func (c *SharedPacketConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline of current and future reads; the zero
// time means none.
func (c *SharedPacketConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readDeadline = t
	c.cancelEpoch()
	c.readEpoch, c.cancelEpoch = context.WithCancel(c.ctx)
	return nil
}

// SetWriteDeadline sets the deadline checked before each write; the zero
// time means none.
func (c *SharedPacketConn) SetWriteDeadline(t time.Time) error {
	c.writeDeadline.Store(&t)
	return nil
}

func (c *SharedPacketConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "udp", Source: c.LocalAddr(), Err: err}
}

// udpAddr returns addr as a *net.UDPAddr with an IPv4-mapped IPv6 address
// unmapped, as DHT code expects: quic-go passes the socket's address type
// through, which on a dual-stack socket maps IPv4 peers into IPv6.
func udpAddr(addr net.Addr) net.Addr {
	var ap netip.AddrPort
	switch a := addr.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		var err error
		if ap, err = netip.ParseAddrPort(addr.String()); err != nil {
			return addr
		}
	}
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
}

var _ net.PacketConn = (*SharedPacketConn)(nil)
