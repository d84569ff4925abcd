package quicnet

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"

	"github.com/quic-go/quic-go"
)

// Dial connects to the Rafka server at addr (host:port) and returns once the
// handshake has completed on this side. tlsConf is cloned and forced to TLS
// 1.3 with ALPN as the only protocol; an empty ServerName becomes the host
// of addr. cfg's zero fields take their defaults.
//
// The connection has its own UDP socket, bound to the loopback address when
// addr is a loopback address and to the unspecified address otherwise; the
// socket is closed when the connection ends, however it ends. With
// cfg.Sockets set, the socket is cfg.Sockets.ListenPacket of that address
// (for instance "127.0.0.1:0"). Close the
// connection with conn.CloseWithError(CodeNormal, "").
//
// With TLS 1.3 the client finishes its handshake before the server has
// checked the client certificate: a server rejecting it (mTLS) closes the
// connection right after Dial returned, and the first stream operation
// fails with a crypto error.
func Dial(ctx context.Context, addr string, tlsConf *tls.Config, cfg Config) (*quic.Conn, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if tlsConf == nil {
		return nil, fmt.Errorf("%w: nil tls.Config", ErrInvalidConfig)
	}
	CheckUDPBuffers(cfg.Logger)
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("quicnet: dial %s: %w", addr, err)
	}
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("quicnet: dial %s: %w", addr, err)
	}
	tc := rafkaTLS(tlsConf)
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	udp, err := cfg.listenPacket(localAddrFor(raddr))
	if err != nil {
		return nil, fmt.Errorf("quicnet: dial %s: %w", addr, err)
	}
	// Our own Transport (not quic.DialAddr) lets us choose the local
	// address; a Transport we create does not close itself or its socket
	// when its only connection ends, so the AfterFunc below does.
	tr := &quic.Transport{Conn: udp}
	conn, err := tr.Dial(ctx, raddr, tc, cfg.quicConfig(false))
	if err != nil {
		tr.Close()
		udp.Close()
		return nil, fmt.Errorf("quicnet: dial %s: %w", addr, err)
	}
	context.AfterFunc(conn.Context(), func() {
		tr.Close()
		udp.Close()
	})
	return conn, nil
}

// localAddrFor is the address a dialing socket binds: the loopback address
// of the same family for a loopback peer, else the unspecified address.
func localAddrFor(raddr *net.UDPAddr) *net.UDPAddr {
	switch {
	case raddr.IP.IsLoopback():
		return &net.UDPAddr{IP: raddr.IP}
	case raddr.IP.To4() != nil:
		return &net.UDPAddr{IP: net.IPv4zero}
	default:
		return &net.UDPAddr{IP: net.IPv6unspecified}
	}
}

// WaitGoAway blocks until the server at the other end of conn announces that
// it is shutting down, and returns nil then. The caller should stop opening
// streams on conn, finish the requests in flight, and close conn with
// CodeNormal (the server waits for that, up to its ShutdownLinger, before
// closing it itself), reconnecting elsewhere as needed. It returns an error
// wrapping ErrConnClosed if conn ends first, ErrProtocol on an unexpected
// stream, or context.Cause(ctx). Call it once per connection, from a
// goroutine of the connection's owner.
func WaitGoAway(ctx context.Context, conn *quic.Conn) error {
	str, err := conn.AcceptUniStream(ctx)
	if err != nil {
		if conn.Context().Err() != nil {
			return fmt.Errorf("%w: %w", ErrConnClosed, context.Cause(conn.Context()))
		}
		return context.Cause(ctx)
	}
	// The server writes one byte and FIN at once; a peer that does not
	// must not hold us past ctx.
	stop := context.AfterFunc(ctx, func() { str.CancelRead(StreamCodeDone) })
	defer stop()
	var b [1]byte
	if _, err := io.ReadFull(str, b[:]); err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if conn.Context().Err() != nil {
			return fmt.Errorf("%w: %w", ErrConnClosed, context.Cause(conn.Context()))
		}
		return fmt.Errorf("%w: go-away stream: %w", ErrProtocol, err)
	}
	if b[0] != goAwayByte {
		str.CancelRead(StreamCodeDone)
		return fmt.Errorf("%w: unknown control byte %#x", ErrProtocol, b[0])
	}
	return nil
}
