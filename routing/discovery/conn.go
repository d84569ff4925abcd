package discovery

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"
)

// guardConn stands between the socket and the DHT library.
//
//   - It drops datagrams that are not well-formed KRPC messages (see
//     checkKRPC), so hostile input neither allocates nor logs there.
//   - It hands the library *net.UDPAddr sources, which it type-asserts.
//   - The library panics when a read fails while it is running. A read
//     error before Close (the socket or the QUIC transport under it was
//     closed by its owner) is logged and the read blocks until Close.
//   - Close is idempotent (the library closes the socket again, on a
//     goroutine of its own) and returns only when no read is in progress;
//     reads after Close fail at once. (The library's read loop may also
//     stop between reads, when it finds itself closed, so waiting for a
//     read to fail would not do.)
type guardConn struct {
	net.PacketConn
	log *slog.Logger

	dropped atomic.Uint64

	closeOnce sync.Once
	closed    chan struct{} // closed by Close

	readMu sync.Mutex // held by ReadFrom; Close waits for it
}

func newGuardConn(pc net.PacketConn, log *slog.Logger) *guardConn {
	return &guardConn{
		PacketConn: pc,
		log:        log,
		closed:     make(chan struct{}),
	}
}

func (c *guardConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	for {
		select {
		case <-c.closed:
			return 0, nil, net.ErrClosed
		default:
		}
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil {
			select {
			case <-c.closed:
			default:
				c.log.Error("discovery: DHT socket failed; this node no longer takes part in the DHT", "err", err)
				<-c.closed
			}
			return 0, nil, err
		}
		ua, ok := asUDPAddr(addr)
		if !ok || checkKRPC(b[:n]) != nil || !decodesAsKRPC(b[:n]) {
			c.dropped.Add(1)
			continue
		}
		return n, ua, nil
	}
}

// decodesAsKRPC reports whether the library will decode b (already checked
// by checkKRPC, so every length in it is bounded by len(b)) without an
// error, which it would log.
func decodesAsKRPC(b []byte) bool {
	var m krpc.Msg
	return bencode.Unmarshal(b, &m) == nil
}

func (c *guardConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.closed)
		err = c.PacketConn.Close()
		c.readMu.Lock() // the read in progress, if any, has returned
		c.readMu.Unlock()
	})
	return err
}

// asUDPAddr returns addr as a *net.UDPAddr with IPv4-mapped addresses
// unmapped.
func asUDPAddr(addr net.Addr) (*net.UDPAddr, bool) {
	var ap netip.AddrPort
	switch a := addr.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		if addr == nil {
			return nil, false
		}
		var err error
		if ap, err = netip.ParseAddrPort(addr.String()); err != nil {
			return nil, false
		}
	}
	if !ap.IsValid() || ap.Port() == 0 {
		return nil, false
	}
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())), true
}

var errNoJoin = errors.New("no join addresses configured")
