package quicnet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// Handler serves one bidirectional stream opened by a peer. ServeStream runs
// on its own goroutine and owns s until it returns; afterwards the server
// closes s's send side (if the handler did not) and cancels the unread rest
// of its receive side. ctx is cancelled when the connection closes (cause:
// its close error) or when the server shuts down (cause: ErrServerClosed);
// a long-lived handler finishes its in-flight request and returns then.
type Handler interface {
	ServeStream(ctx context.Context, conn *quic.Conn, s *quic.Stream)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, conn *quic.Conn, s *quic.Stream)

// ServeStream calls f.
func (f HandlerFunc) ServeStream(ctx context.Context, conn *quic.Conn, s *quic.Stream) {
	f(ctx, conn, s)
}

// goAwayByte is the single byte a server writes on the unidirectional stream
// it opens to announce that it is shutting down (see WaitGoAway).
const goAwayByte = 0x01

// Server accepts QUIC connections on its own UDP socket and runs a Handler
// per incoming bidirectional stream.
//
// Goroutines: Serve runs the accept loop on the caller's goroutine; it starts
// one goroutine per connection (accepting its streams), which starts one per
// stream (the handler) and waits for them before it exits. Shutdown and Close
// wait for all of them and for Serve's loop.
type Server struct {
	cfg Config
	log *slog.Logger
	h   Handler
	udp net.PacketConn
	tr  *quic.Transport
	ln  *quic.Listener

	// ctx is the parent of every handler's context; cancel ends it with
	// cause ErrServerClosed when Shutdown or Close begins.
	ctx    context.Context
	cancel context.CancelCauseFunc

	serveDone chan struct{} // closed when Serve's accept loop has exited
	termOnce  sync.Once     // the final teardown, see terminate
	done      chan struct{} // closed when terminate has finished

	// handlers counts running handler goroutines, connsWG connection
	// goroutines. Their Add happens under mu, and only while !draining
	// (handlers) or !closed (connsWG); Wait only after that flag is set, so
	// an Add never races with a Wait.
	handlers sync.WaitGroup
	connsWG  sync.WaitGroup

	// mu guards the fields below it.
	mu       sync.Mutex
	conns    map[*quic.Conn]struct{}
	serving  bool   // Serve was called
	draining bool   // Shutdown or Close began: no new handlers, new streams refused
	closed   bool   // teardown began: new connections are closed at once
	refused  uint64 // connections closed at once by MaxConnections
}

// Listen binds a UDP socket on addr (host:port; port 0 picks one), or asks
// cfg.Sockets for one, and prepares a server for it; call Serve to start
// accepting. tlsConf is
// cloned and forced to TLS 1.3 with ALPN as the only protocol. cfg's zero
// fields take their defaults.
func Listen(addr string, tlsConf *tls.Config, cfg Config, h Handler) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if tlsConf == nil {
		return nil, fmt.Errorf("%w: nil tls.Config", ErrInvalidConfig)
	}
	if h == nil {
		return nil, fmt.Errorf("%w: nil Handler", ErrInvalidConfig)
	}
	CheckUDPBuffers(cfg.Logger)
	laddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("quicnet: listen %s: %w", addr, err)
	}
	udp, err := cfg.listenPacket(laddr)
	if err != nil {
		return nil, fmt.Errorf("quicnet: listen %s: %w", addr, err)
	}
	tr := &quic.Transport{Conn: udp, StatelessResetKey: cfg.StatelessResetKey}
	ln, err := tr.Listen(rafkaTLS(tlsConf), cfg.quicConfig(true))
	if err != nil {
		tr.Close()
		udp.Close()
		return nil, fmt.Errorf("quicnet: listen %s: %w", addr, err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "quicnet", "addr", udp.LocalAddr().String()),
		h:         h,
		udp:       udp,
		tr:        tr,
		ln:        ln,
		ctx:       ctx,
		cancel:    cancel,
		serveDone: make(chan struct{}),
		done:      make(chan struct{}),
		conns:     make(map[*quic.Conn]struct{}),
	}
	return s, nil
}

// rafkaTLS clones c and forces TLS 1.3 and the Rafka ALPN.
func rafkaTLS(c *tls.Config) *tls.Config {
	c = c.Clone()
	c.MinVersion = tls.VersionTLS13
	c.NextProtos = []string{ALPN}
	return c
}

// Addr is the local address of the server's UDP socket.
func (s *Server) Addr() net.Addr { return s.udp.LocalAddr() }

// Transport is the quic.Transport of the server's UDP socket, for sharing
// the port with another protocol (see NewSharedPacketConn). The server
// closes it on Shutdown or Close.
func (s *Server) Transport() *quic.Transport { return s.tr }

// Connections is the number of open connections.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// RefusedConnections is how many connections were closed at once because the
// server held Config.MaxConnections.
func (s *Server) RefusedConnections() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// Serve accepts connections and their streams until Shutdown or Close, then
// returns ErrServerClosed. Any other error means the socket failed; the
// server must then be closed. Serve may be called once.
func (s *Server) Serve() error {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		return ErrServerClosed
	}
	if s.serving {
		s.mu.Unlock()
		return ErrAlreadyServing
	}
	s.serving = true
	s.mu.Unlock()
	defer close(s.serveDone)

	for {
		conn, err := s.ln.Accept(context.Background())
		if err != nil {
			if errors.Is(err, quic.ErrServerClosed) || s.isDraining() {
				return ErrServerClosed
			}
			return fmt.Errorf("quicnet: accept: %w", err)
		}
		s.startConn(conn)
	}
}

func (s *Server) isDraining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

func (s *Server) startConn(conn *quic.Conn) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		conn.CloseWithError(CodeShuttingDown, "server shutting down")
		return
	}
	if len(s.conns) >= s.cfg.MaxConnections {
		s.refused++
		s.mu.Unlock()
		s.log.Debug("connection refused: too many connections", "remote", conn.RemoteAddr().String(), "limit", s.cfg.MaxConnections)
		conn.CloseWithError(CodeConnectionLimit, fmt.Sprintf("too many connections (limit %d)", s.cfg.MaxConnections))
		return
	}
	s.conns[conn] = struct{}{}
	s.connsWG.Add(1)
	draining := s.draining
	s.mu.Unlock()
	if draining {
		// Accepted from the queue after Shutdown began.
		s.sendGoAway(conn)
	}
	go s.serveConn(conn)
}

// serveConn accepts conn's streams until conn closes, refusing those that
// arrive once the server is draining, and waits for its handlers.
func (s *Server) serveConn(conn *quic.Conn) {
	defer s.connsWG.Done()
	log := s.log.With("remote", conn.RemoteAddr().String())
	log.Debug("connection accepted")

	ctx, cancel := context.WithCancelCause(s.ctx)
	stop := context.AfterFunc(conn.Context(), func() { cancel(context.Cause(conn.Context())) })
	var hs sync.WaitGroup
	for {
		// AcceptStream returns once conn is closed, by either side: the
		// loop keeps running while draining so late streams are refused
		// promptly rather than left hanging.
		str, err := conn.AcceptStream(context.Background())
		if err != nil {
			break
		}
		s.mu.Lock()
		if s.draining {
			s.mu.Unlock()
			refuse(str)
			continue
		}
		s.handlers.Add(1)
		s.mu.Unlock()
		hs.Go(func() {
			defer s.handlers.Done()
			s.serveStream(ctx, conn, str)
		})
	}
	hs.Wait()
	stop()
	cancel(ErrConnClosed)

	s.mu.Lock()
	delete(s.conns, conn)
	s.mu.Unlock()
	log.Debug("connection closed", "cause", context.Cause(conn.Context()))
}

func (s *Server) serveStream(ctx context.Context, conn *quic.Conn, str *quic.Stream) {
	defer func() {
		// A panicking handler must not take the process down with every
		// other connection: reset its stream and keep serving. Handlers
		// that want to count or report panics recover themselves.
		if v := recover(); v != nil {
			s.log.Error("stream handler panicked", "remote", conn.RemoteAddr().String(), "panic", v, "stack", string(debug.Stack()))
			str.CancelRead(StreamCodeInternal)
			str.CancelWrite(StreamCodeInternal)
		}
		// Finish both directions so the stream completes, then hand its
		// credit back: only now may the peer open a stream in its place
		// (Config.MaxIncomingStreams bounds running handlers).
		str.CancelRead(StreamCodeDone) // no-op once EOF was read
		str.Close()                    // no-op once closed or reset
		str.ReleaseStreamCredit()
	}()
	s.h.ServeStream(ctx, conn, str)
}

func refuse(str *quic.Stream) {
	str.CancelRead(StreamCodeRefused)
	str.CancelWrite(StreamCodeRefused)
	str.ReleaseStreamCredit()
}

// sendGoAway tells the peer, on a unidirectional stream of its own, that
// the server is shutting down and it should close the connection once its
// outstanding requests are answered. Best effort: it never blocks.
func (s *Server) sendGoAway(conn *quic.Conn) {
	str, err := conn.OpenUniStream()
	if err != nil {
		s.log.Debug("go-away not sent", "remote", conn.RemoteAddr().String(), "err", err)
		return
	}
	if err := str.TryWriteAll([]byte{goAwayByte}); err != nil {
		s.log.Debug("go-away not sent", "remote", conn.RemoteAddr().String(), "err", err)
		str.CancelWrite(StreamCodeDone)
		return
	}
	str.Close()
}

func (s *Server) snapshotConns() []*quic.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Keys(s.conns))
}

// Shutdown stops the server gracefully:
//  1. it stops accepting connections, refuses new streams (reset with
//     StreamCodeRefused) and tells every peer to go away (WaitGoAway);
//  2. it cancels the handlers' context with cause ErrServerClosed, so
//     long-lived handlers finish their in-flight request and return, and
//     waits for every handler;
//  3. it waits up to Config.ShutdownLinger for peers to close their
//     connections, so responses already written reach them;
//  4. it closes the remaining connections with CodeShuttingDown, then the
//     socket.
//
// Steps 2 and 3 end early when ctx is done; Shutdown then returns
// context.Cause(ctx), having closed the connections so that handlers still
// running see their streams fail. Either way every goroutine of the server
// has exited when Shutdown returns. A second call (or a call after Close)
// waits for the first to finish and returns ErrServerClosed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		select {
		case <-s.done:
			return ErrServerClosed
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	s.draining = true
	s.mu.Unlock()

	s.ln.Close()
	for _, conn := range s.snapshotConns() {
		s.sendGoAway(conn)
	}
	s.cancel(ErrServerClosed)

	var err error
	handlersDone := make(chan struct{})
	go func() {
		s.handlers.Wait()
		close(handlersDone)
	}()
	select {
	case <-handlersDone:
		s.linger(ctx)
	case <-ctx.Done():
		err = context.Cause(ctx)
	}
	s.terminate()
	<-handlersDone
	return err
}

// linger waits until every connection has been closed by its peer, the
// linger time has passed, or ctx is done.
func (s *Server) linger(ctx context.Context) {
	if s.cfg.ShutdownLinger <= 0 {
		return
	}
	t := time.NewTimer(s.cfg.ShutdownLinger)
	defer t.Stop()
	for _, conn := range s.snapshotConns() {
		select {
		case <-conn.Context().Done():
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// Close stops the server at once: it closes every connection with
// CodeShuttingDown (in-flight requests fail), cancels the handlers' context
// with ErrServerClosed and waits for the handlers to return. It is
// idempotent; later calls wait for the first and return nil.
func (s *Server) Close() error {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	s.ln.Close()
	s.cancel(ErrServerClosed)
	s.terminate()
	return nil
}

// terminate closes every connection, the transport and the socket, then
// waits for all goroutines. Concurrent callers block until the first is done
// (sync.Once).
func (s *Server) terminate() {
	s.termOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		serving := s.serving
		conns := slices.Collect(maps.Keys(s.conns))
		s.mu.Unlock()

		var wg sync.WaitGroup
		for _, conn := range conns {
			wg.Go(func() { conn.CloseWithError(CodeShuttingDown, "server shutting down") })
		}
		wg.Wait()
		if err := s.tr.Close(); err != nil {
			s.log.Warn("closing transport", "err", err)
		}
		if err := s.udp.Close(); err != nil {
			s.log.Warn("closing socket", "err", err)
		}
		s.connsWG.Wait()
		s.handlers.Wait()
		if serving {
			<-s.serveDone
		}
		close(s.done)
	})
}
