package quicnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// sharedEcho serves srv's non-QUIC datagrams through a SharedPacketConn,
// echoing every payload to its sender, until cleanup closes the conn and
// waits for the echo goroutine.
func sharedEcho(t *testing.T, srv *Server) *SharedPacketConn {
	t.Helper()
	pc := NewSharedPacketConn(srv.Transport())
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 1<<16)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("ReadFrom: %v", err)
				}
				return
			}
			if _, err := pc.WriteTo(buf[:n], addr); err != nil {
				t.Errorf("WriteTo: %v", err)
				return
			}
		}
	})
	t.Cleanup(func() {
		pc.Close()
		wg.Wait()
	})
	return pc
}

// udpPeer is a plain UDP socket on loopback, closed at cleanup.
func udpPeer(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readShared reads the next prefixed datagram, with a generous deadline,
// and returns its payload. It skips QUIC packets: the server answers some
// garbage with a version negotiation packet or a stateless reset.
func readShared(t *testing.T, c *net.UDPConn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1<<16)
	for {
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("reading echo: %v", err)
		}
		if p, err := parseSharedDatagram(buf[:n]); err == nil {
			return p
		}
	}
}

// TestSharedPortCarriesQUICAndDatagrams runs QUIC streams and prefixed
// datagrams over the same UDP port at once.
func TestSharedPortCarriesQUICAndDatagrams(t *testing.T) {
	serverTLS, clientTLS := devTLS(t)
	srv := startServer(t, serverTLS, Config{}, echo)
	sharedEcho(t, srv.Server)
	conn := dial(t, srv.Addr(), clientTLS, Config{})
	peer := udpPeer(t)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	quicErr := make(chan error, 1)
	go func() {
		for i := range 20 {
			req := make([]byte, 50_000)
			rand.Read(req)
			resp, err := roundTrip(ctx, conn, req)
			if err != nil || !bytes.Equal(resp, req) {
				quicErr <- fmt.Errorf("round trip %d: %v (echoed %d of %d bytes)", i, err, len(resp), len(req))
				return
			}
		}
		quicErr <- nil
	}()

	// One datagram at a time: quic-go queues only 32 non-QUIC packets.
	for i := range 50 {
		msg := fmt.Appendf(nil, "d1:q4:ping1:t%d:%de", len(fmt.Sprint(i)), i)
		if _, err := peer.WriteTo(appendSharedDatagram(nil, msg), srv.Addr()); err != nil {
			t.Fatal(err)
		}
		if got := readShared(t, peer); !bytes.Equal(got, msg) {
			t.Fatalf("datagram %d: echoed %q, want %q", i, got, msg)
		}
	}
	if err := <-quicErr; err != nil {
		t.Fatal(err)
	}
}

// TestSharedPortDropsForeignDatagrams sends garbage to the shared port: none
// of it reaches the reader, and the port keeps serving both protocols.
func TestSharedPortDropsForeignDatagrams(t *testing.T) {
	serverTLS, clientTLS := devTLS(t)
	srv := startServer(t, serverTLS, Config{}, echo)
	pc := sharedEcho(t, srv.Server)
	peer := udpPeer(t)

	random := make([]byte, 1200)
	rand.Read(random)
	random[0] |= 0x40 // looks like a QUIC short header, never like our prefix
	garbage := [][]byte{
		{},                              // empty
		[]byte("d1:q4:pinge"),           // a bare KRPC message: looks like a QUIC short header
		{0x01, 'd', 'e'},                // non-QUIC, wrong prefix
		{0x3f},                          // non-QUIC, wrong prefix, one byte
		append([]byte{0xc0}, random...), // QUIC long header, random rest
		random,
	}
	for _, g := range garbage {
		if _, err := peer.WriteTo(g, srv.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	// A marker sent after the garbage is the first thing echoed.
	marker := []byte("marker")
	if _, err := peer.WriteTo(appendSharedDatagram(nil, marker), srv.Addr()); err != nil {
		t.Fatal(err)
	}
	if got := readShared(t, peer); !bytes.Equal(got, marker) {
		t.Fatalf("first echo %q, want the marker", got)
	}
	// 0x01... and 0x3f are the non-QUIC datagrams without the prefix.
	if d := pc.DroppedPackets(); d != 2 {
		t.Errorf("DroppedPackets() = %d, want 2", d)
	}
	// An empty payload is a datagram of its own.
	if _, err := peer.WriteTo([]byte{SharedPrefix}, srv.Addr()); err != nil {
		t.Fatal(err)
	}
	if got := readShared(t, peer); len(got) != 0 {
		t.Fatalf("empty payload echoed as %q", got)
	}
	// QUIC still works.
	conn := dial(t, srv.Addr(), clientTLS, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if resp, err := roundTrip(ctx, conn, []byte("hello")); err != nil || string(resp) != "hello" {
		t.Fatalf("round trip after garbage: %q, %v", resp, err)
	}
}

func TestSharedPacketConnDeadlinesAndClose(t *testing.T) {
	serverTLS, _ := devTLS(t)
	srv := startServer(t, serverTLS, Config{}, echo)
	pc := NewSharedPacketConn(srv.Transport())
	defer pc.Close()
	buf := make([]byte, 100)

	pc.SetReadDeadline(time.Now().Add(-time.Second))
	if _, _, err := pc.ReadFrom(buf); !isTimeout(err) {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}

	// A read blocked without a deadline wakes up when one is set.
	pc.SetReadDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() {
		_, _, err := pc.ReadFrom(buf)
		errc <- err
	}()
	pc.SetReadDeadline(time.Now())
	if err := <-errc; !isTimeout(err) {
		t.Fatalf("blocked read after SetReadDeadline(now): %v, want a timeout", err)
	}

	pc.SetWriteDeadline(time.Now().Add(-time.Second))
	if _, err := pc.WriteTo([]byte("x"), srv.Addr()); !isTimeout(err) {
		t.Fatalf("write past the deadline: %v, want a timeout", err)
	}
	pc.SetDeadline(time.Time{})

	// Close wakes a blocked read, and the transport stays open.
	go func() {
		_, _, err := pc.ReadFrom(buf)
		errc <- err
	}()
	pc.Close()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after Close: %v, want net.ErrClosed", err)
	}
	if _, err := pc.WriteTo([]byte("x"), srv.Addr()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v, want net.ErrClosed", err)
	}
	if _, err := srv.Transport().WriteTo([]byte{SharedPrefix}, srv.Addr()); err != nil {
		t.Fatalf("transport unusable after closing the shared conn: %v", err)
	}
}

func TestSharedPacketConnAfterTransportClosed(t *testing.T) {
	serverTLS, _ := devTLS(t)
	srv, err := Listen("127.0.0.1:0", serverTLS, Config{}, echo)
	if err != nil {
		t.Fatal(err)
	}
	pc := NewSharedPacketConn(srv.Transport())
	defer pc.Close()
	errc := make(chan error, 1)
	go func() {
		_, _, err := pc.ReadFrom(make([]byte, 100))
		errc <- err
	}()
	srv.Close()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after the transport closed: %v, want net.ErrClosed", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() && errors.Is(err, os.ErrDeadlineExceeded)
}

func FuzzParseSharedDatagram(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{SharedPrefix})
	f.Add(appendSharedDatagram(nil, []byte("d1:q4:pinge")))
	f.Add([]byte("d1:q4:pinge"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseSharedDatagram(b)
		if err != nil {
			if len(b) > 0 && b[0] == SharedPrefix {
				t.Fatalf("rejected a prefixed datagram: %v", err)
			}
			return
		}
		if re := appendSharedDatagram(nil, p); !bytes.Equal(re, b) {
			t.Fatalf("re-encoded %x, want %x", re, b)
		}
	})
}
