package quicnet

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// recordingSockets opens real UDP sockets and remembers them, so a test can
// see which sockets a Server and a dialed connection used and that they
// were closed.
type recordingSockets struct {
	mu     sync.Mutex
	laddrs []string
	conns  []*countingConn
}

// countingConn counts the datagrams quic-go writes through it. It embeds
// the net.PacketConn interface, not *net.UDPConn: quic-go would otherwise
// use ReadMsgUDP/WriteMsgUDP and go around WriteTo.
type countingConn struct {
	net.PacketConn
	udp    *net.UDPConn
	mu     sync.Mutex
	writes int
	closed bool
}

func (c *countingConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.PacketConn.WriteTo(b, addr)
}

func (c *countingConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return c.PacketConn.Close()
}

func (c *countingConn) SetReadBuffer(n int) error  { return c.udp.SetReadBuffer(n) }
func (c *countingConn) SetWriteBuffer(n int) error { return c.udp.SetWriteBuffer(n) }

func (r *recordingSockets) ListenPacket(laddr string) (net.PacketConn, error) {
	a, err := net.ResolveUDPAddr("udp", laddr)
	if err != nil {
		return nil, err
	}
	u, err := net.ListenUDP("udp", a)
	if err != nil {
		return nil, err
	}
	c := &countingConn{PacketConn: u, udp: u}
	r.mu.Lock()
	r.laddrs = append(r.laddrs, laddr)
	r.conns = append(r.conns, c)
	r.mu.Unlock()
	return c, nil
}

func TestSocketsHook(t *testing.T) {
	serverTLS, clientTLS := devTLS(t)
	var socks recordingSockets
	cfg := Config{Sockets: &socks}
	srv, err := Listen("127.0.0.1:0", serverTLS, cfg, echo)
	if err != nil {
		t.Fatal(err)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve() }()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := Dial(ctx, srv.Addr().String(), clientTLS, cfg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := roundTrip(ctx, conn, []byte("over the hook"))
	if err != nil || !bytes.Equal(got, []byte("over the hook")) {
		t.Fatalf("round trip: %q, %v", got, err)
	}

	socks.mu.Lock()
	laddrs, conns := socks.laddrs, socks.conns
	socks.mu.Unlock()
	if len(conns) != 2 || laddrs[0] != "127.0.0.1:0" || laddrs[1] != "127.0.0.1:0" {
		t.Fatalf("sockets opened on %v, want the listener's and the dialer's on 127.0.0.1:0", laddrs)
	}
	if srv.Addr().String() != conns[0].LocalAddr().String() {
		t.Fatalf("server address %v, hook socket %v", srv.Addr(), conns[0].LocalAddr())
	}
	for i, c := range conns {
		c.mu.Lock()
		w := c.writes
		c.mu.Unlock()
		if w == 0 {
			t.Errorf("socket %d (%s): no datagram written through the hook", i, laddrs[i])
		}
	}

	conn.CloseWithError(CodeNormal, "")
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-serveErr; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	// The dialer's socket is closed by an AfterFunc of the connection's
	// context: poll for it.
	deadline := time.Now().Add(10 * time.Second)
	for _, c := range conns {
		for {
			c.mu.Lock()
			closed := c.closed
			c.mu.Unlock()
			if closed {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("socket %v not closed", c.LocalAddr())
			}
			time.Sleep(time.Millisecond) // polling an observable condition
		}
	}
}

func TestSocketsHookError(t *testing.T) {
	serverTLS, clientTLS := devTLS(t)
	boom := errors.New("no sockets here")
	cfg := Config{Sockets: failingSockets{boom}}
	if _, err := Listen("127.0.0.1:0", serverTLS, cfg, echo); !errors.Is(err, boom) {
		t.Fatalf("Listen: %v, want %v", err, boom)
	}
	if _, err := Dial(context.Background(), "127.0.0.1:1", clientTLS, cfg); !errors.Is(err, boom) {
		t.Fatalf("Dial: %v, want %v", err, boom)
	}
}

type failingSockets struct{ err error }

func (f failingSockets) ListenPacket(string) (net.PacketConn, error) { return nil, f.err }
