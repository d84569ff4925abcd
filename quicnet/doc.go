// Package quicnet is Rafka's QUIC transport: a listener that runs a handler
// per incoming stream, a dialer, and the TLS configuration both use. It
// knows nothing of frames or APIs; brokers and clients speak the protocol
// of package wire over the streams it hands out.
//
// # Handshake
//
// Every connection is QUIC (quic-go) with TLS 1.3 and the application
// protocol (ALPN) "rafka/1", the constant [ALPN]; Listen and Dial force both
// on the *tls.Config they are given, and a peer offering another protocol
// fails the handshake (TLS alert no_application_protocol). [ServerTLSConfig] loads a certificate and key,
// or, for development, generates a self-signed one (ECDSA P-256, 10 years,
// SANs localhost, 127.0.0.1, ::1 and the host name) once in
// DataDir/tls/ and reuses it on restart; [SelfSignedCertPath] tells a client
// which file to trust. Brokers authenticate each other by mTLS:
// TLSFiles.RequireClientCert with a CAFile. With TLS 1.3 a client whose
// certificate the server rejects sees the rejection on its first stream, not
// necessarily in Dial. 0-RTT is not used.
//
// # Stream model
//
// Only the dialing side opens bidirectional streams; the server runs
// [Handler].ServeStream on a goroutine of its own for each. Two patterns
// ride on them (see docs/protocol.md):
//   - long-lived streams for the data plane: a producer pipelines produce
//     requests on one stream per broker, a consumer holds a subscribe stream,
//     brokers replicate over one stream per pair. The handler loops over
//     requests until EOF or until its context is cancelled.
//   - one stream per request for rare control calls (metadata, create
//     topic, ...): the client writes the request and closes its side, the
//     handler answers and returns.
//
// When a handler returns, the server closes the stream's send side and
// cancels its unread receive side (StreamCodeDone).
//
// # Limits
//
// Config.MaxIncomingStreams bounds the streams a peer may have open per
// connection, and a stream's slot is returned only when its handler has
// returned, so it also bounds handler goroutines; the peer's OpenStreamSync
// waits for a slot (OpenStream fails with *quic.StreamLimitReachedError).
// Config.MaxStreamReceiveWindow and MaxConnReceiveWindow bound the bytes in
// flight per stream and per connection. Peers may not open unidirectional
// streams to a server. Connections idle for Config.IdleTimeout close;
// Config.KeepAlivePeriod keeps healthy ones open. Config.MaxConnections
// bounds the connections a server holds; one more is closed right after its
// handshake with [CodeConnectionLimit]. A handler that panics has its stream
// reset with [StreamCodeInternal] and the server goes on.
//
// # Restarts
//
// With Config.StatelessResetKey set (the same secret across restarts), a
// restarted server answers packets of its previous run's connections with a
// QUIC stateless reset, so their peers fail at once with
// *quic.StatelessResetError instead of waiting out their idle timeout.
//
// # Shutdown
//
// [Server.Shutdown] stops accepting connections, resets streams opened from
// then on with [StreamCodeRefused] (see [IsRefused]; the request was not
// processed and may be retried on another broker), and sends every peer a
// go-away notice on a unidirectional stream, which the dialing side observes
// with [WaitGoAway]. It cancels the handlers' context with cause
// [ErrServerClosed]: long-lived handlers finish the request in flight and
// return. Once all handlers have returned it waits, up to
// Config.ShutdownLinger, for the peers to close their connections, because a
// response the peer has not read yet is lost when the server closes the
// connection first; then it closes what remains with [CodeShuttingDown] and
// the UDP socket. ctx bounds all of it. [Server.Close] does the last step
// at once.
//
// # Error codes
//
// errors.go holds the one table of connection codes ([CodeNormal],
// [CodeShuttingDown], [CodeProtocolError], [CodeConnectionLimit]) and stream
// codes ([StreamCodeDone] to [StreamCodeResourceLimit]) used by this package
// and by the broker; docs/protocol.md lists them for client authors.
//
// # Sockets
//
// The server owns its UDP socket and closes it; each dialed connection has a
// socket of its own, closed when the connection ends. Config.Sockets, when
// set, opens those sockets instead of the operating system (a
// [PacketListener]); tests use it to inject delay, loss and partitions
// (package quicnet/faultnet). QUIC wants 7.5 MB UDP
// socket buffers: [CheckUDPBuffers] (called by Listen and Dial) warns once
// when the kernel limits are lower and the process cannot override them,
// with the sysctl that fixes it, and silences quic-go's own warning.
package quicnet
