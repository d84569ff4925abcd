package quicnet

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/quic-go/quic-go"
)

// Config tunes the QUIC transport of a Server or a dialed connection. The zero
// value is usable: every zero field takes the default stated on it.
type Config struct {
	// MaxIncomingStreams is how many bidirectional streams the peer may have
	// open on one connection at once. Default 1024. On a Server a stream
	// keeps counting until its handler has returned, so this also bounds the
	// handler goroutines per connection; the peer's next OpenStreamSync waits
	// for a slot. Higher admits more concurrent control calls per client at
	// the cost of memory per connection.
	MaxIncomingStreams int64

	// MaxStreamReceiveWindow is the largest flow-control window of one stream,
	// in bytes. Default 16 MiB. It bounds the bytes in flight (sent, not yet
	// read) per stream: larger sustains more throughput on long fat paths,
	// smaller bounds memory held for a slow reader.
	MaxStreamReceiveWindow uint64

	// MaxConnReceiveWindow is the largest flow-control window of a whole
	// connection, in bytes. Default 64 MiB. It bounds the bytes in flight over
	// all streams of a connection, hence memory per peer.
	MaxConnReceiveWindow uint64

	// IdleTimeout closes a connection that received nothing for this long.
	// Default 30s. The effective value is the smaller of both peers'. Shorter
	// detects dead peers sooner; keep it above KeepAlivePeriod.
	IdleTimeout time.Duration

	// KeepAlivePeriod is how often a PING is sent on an otherwise idle
	// connection to keep it (and NAT bindings) alive. Default 10s; negative
	// disables keep-alives. quic-go caps it at half the idle timeout.
	KeepAlivePeriod time.Duration

	// HandshakeTimeout bounds the whole QUIC+TLS handshake. Default 10s.
	// quic-go also aborts a handshake that hears nothing from the peer for
	// half of this.
	HandshakeTimeout time.Duration

	// ShutdownLinger is how long Shutdown, once every handler has returned,
	// waits for peers to close their connections after being told to go away
	// (see WaitGoAway) before closing them itself. Default 2s; negative means
	// no wait. A peer that has not yet read the last response loses it when
	// the server closes first, so longer protects slow readers and shorter
	// makes shutdown faster with peers that ignore the go-away.
	ShutdownLinger time.Duration

	// MaxConnections bounds the connections a Server holds at once. Default
	// 10,000. A connection beyond it is closed as soon as its handshake
	// completes, with CodeConnectionLimit, before any stream is served. Each
	// connection costs a goroutine, its streams' handlers and up to
	// MaxConnReceiveWindow of buffered data, so this caps the memory and
	// goroutines peers can make a server hold; raise it for brokers with
	// many clients. Dialers ignore it.
	MaxConnections int

	// StatelessResetKey, when set on a Server, lets it answer packets of
	// connections it does not know (those of an earlier run of the same
	// server, after a crash or restart) with a QUIC stateless reset, so
	// their peers fail at once (*quic.StatelessResetError) instead of
	// waiting for their idle timeout. It must stay the same across restarts
	// and be secret: keep it in the server's state directory, readable only
	// by the server. Nil: no stateless resets (quic-go's default). Dialers
	// ignore it.
	StatelessResetKey *quic.StatelessResetKey

	// Logger receives connection-level events. Nil discards.
	Logger *slog.Logger

	// Sockets, when set, opens the UDP sockets of this package in place of
	// net.ListenUDP: Listen asks it for a socket on its address, Dial for
	// one on the local address it would bind (see Dial). The socket is then
	// owned by the Server or the dialed connection and closed with it.
	// Nil: real UDP sockets. Tests set it to run brokers over a network
	// that injects faults (package quicnet/faultnet); a socket that is not
	// a *net.UDPConn loses quic-go's batched reads, GSO and ECN.
	Sockets PacketListener
}

// PacketListener opens datagram sockets for Config.Sockets. ListenPacket
// binds laddr (host:port, port 0 picks one) and returns a socket whose
// LocalAddr is the bound address.
type PacketListener interface {
	ListenPacket(laddr string) (net.PacketConn, error)
}

// listenPacket opens a socket on laddr through c.Sockets or, when nil, as a
// UDP socket.
func (c Config) listenPacket(laddr *net.UDPAddr) (net.PacketConn, error) {
	if c.Sockets != nil {
		return c.Sockets.ListenPacket(laddr.String())
	}
	return net.ListenUDP("udp", laddr)
}

// Defaults of Config; see the fields.
const (
	DefaultMaxIncomingStreams     = 1024
	DefaultMaxStreamReceiveWindow = 16 << 20
	DefaultMaxConnReceiveWindow   = 64 << 20
	DefaultIdleTimeout            = 30 * time.Second
	DefaultKeepAlivePeriod        = 10 * time.Second
	DefaultHandshakeTimeout       = 10 * time.Second
	DefaultShutdownLinger         = 2 * time.Second
	DefaultMaxConnections         = 10000
)

// minHandshakeTimeout keeps the handshake idle timeout (half of it) above
// quic-go's lower bound on loss detection.
const minHandshakeTimeout = 2 * time.Millisecond

func (c Config) withDefaults() Config {
	if c.MaxIncomingStreams == 0 {
		c.MaxIncomingStreams = DefaultMaxIncomingStreams
	}
	if c.MaxStreamReceiveWindow == 0 {
		c.MaxStreamReceiveWindow = DefaultMaxStreamReceiveWindow
	}
	if c.MaxConnReceiveWindow == 0 {
		c.MaxConnReceiveWindow = DefaultMaxConnReceiveWindow
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.KeepAlivePeriod == 0 {
		c.KeepAlivePeriod = DefaultKeepAlivePeriod
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.ShutdownLinger == 0 {
		c.ShutdownLinger = DefaultShutdownLinger
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// WithDefaults returns c with every zero field set to its default, as Listen
// and Dial apply them; callers validating a configuration early use
// c.WithDefaults().Validate().
func (c Config) WithDefaults() Config { return c.withDefaults() }

// Validate reports every out-of-range field at once. It expects defaults to
// have been applied.
func (c Config) Validate() error {
	var errs []error
	if c.MaxIncomingStreams < 1 {
		errs = append(errs, fmt.Errorf("%w: MaxIncomingStreams %d < 1", ErrInvalidConfig, c.MaxIncomingStreams))
	}
	if c.MaxStreamReceiveWindow < 64<<10 {
		errs = append(errs, fmt.Errorf("%w: MaxStreamReceiveWindow %d < 64 KiB", ErrInvalidConfig, c.MaxStreamReceiveWindow))
	}
	if c.MaxConnReceiveWindow < c.MaxStreamReceiveWindow {
		errs = append(errs, fmt.Errorf("%w: MaxConnReceiveWindow %d < MaxStreamReceiveWindow %d",
			ErrInvalidConfig, c.MaxConnReceiveWindow, c.MaxStreamReceiveWindow))
	}
	if c.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("%w: IdleTimeout %v < 0", ErrInvalidConfig, c.IdleTimeout))
	}
	if c.KeepAlivePeriod > 0 && c.KeepAlivePeriod >= c.IdleTimeout {
		errs = append(errs, fmt.Errorf("%w: KeepAlivePeriod %v >= IdleTimeout %v", ErrInvalidConfig, c.KeepAlivePeriod, c.IdleTimeout))
	}
	if c.MaxConnections < 1 {
		errs = append(errs, fmt.Errorf("%w: MaxConnections %d < 1", ErrInvalidConfig, c.MaxConnections))
	}
	if c.HandshakeTimeout < minHandshakeTimeout {
		errs = append(errs, fmt.Errorf("%w: HandshakeTimeout %v < %v", ErrInvalidConfig, c.HandshakeTimeout, minHandshakeTimeout))
	}
	return errors.Join(errs...)
}

// quicConfig translates c (defaults applied) to quic-go's configuration.
// server selects the server-side stream policy: peers may not open
// unidirectional streams (nobody reads them), and a stream's credit is
// returned only when its handler is done. A dialed connection accepts one
// unidirectional stream, the server's go-away notice.
func (c Config) quicConfig(server bool) *quic.Config {
	keepAlive := c.KeepAlivePeriod
	if keepAlive < 0 {
		keepAlive = 0
	}
	qc := &quic.Config{
		HandshakeIdleTimeout:       c.HandshakeTimeout / 2,
		MaxIdleTimeout:             c.IdleTimeout,
		KeepAlivePeriod:            keepAlive,
		MaxStreamReceiveWindow:     c.MaxStreamReceiveWindow,
		MaxConnectionReceiveWindow: c.MaxConnReceiveWindow,
		MaxIncomingStreams:         c.MaxIncomingStreams,
		MaxIncomingUniStreams:      1,
	}
	if server {
		qc.MaxIncomingUniStreams = -1
		qc.RequireStreamCreditRelease = true
	}
	return qc
}
