package quicnet

import (
	"errors"

	"github.com/quic-go/quic-go"
)

// Sentinel errors. Test for them with errors.Is.
var (
	// ErrServerClosed is the cause of the handlers' context once Shutdown or
	// Close has begun, and what Serve, Shutdown and Close return when the
	// server was already closed.
	ErrServerClosed = errors.New("quicnet: server closed")

	// ErrAlreadyServing is returned by a second call to Server.Serve.
	ErrAlreadyServing = errors.New("quicnet: Serve already called")

	// ErrConnClosed is returned by WaitGoAway when the connection ended
	// before the peer announced that it is going away, and is the cause of a
	// handler's context once its connection's goroutine has finished.
	ErrConnClosed = errors.New("quicnet: connection closed")

	// ErrProtocol is returned when the peer sends something the transport
	// layer does not understand (an unknown control stream).
	ErrProtocol = errors.New("quicnet: protocol error")

	// ErrBadTLSFiles is returned by ServerTLSConfig and ClientTLSConfig when
	// the certificate, key or CA files cannot be read or parsed, or when the
	// combination of TLSFiles fields is inconsistent.
	ErrBadTLSFiles = errors.New("quicnet: bad TLS files")

	// ErrInvalidConfig is returned by Listen and Dial when a Config field is
	// out of range.
	ErrInvalidConfig = errors.New("quicnet: invalid config")
)

// Application error codes sent in CONNECTION_CLOSE. They are part of the
// protocol: peers see them as *quic.ApplicationError.ErrorCode.
const (
	// CodeNormal closes a connection that is simply no longer needed.
	CodeNormal quic.ApplicationErrorCode = 0
	// CodeShuttingDown closes connections of a server that is shutting down
	// (Shutdown after its drain, or Close). Clients reconnect elsewhere.
	CodeShuttingDown quic.ApplicationErrorCode = 1
	// CodeProtocolError closes a connection whose peer violated the protocol.
	CodeProtocolError quic.ApplicationErrorCode = 2
)

// Stream error codes used in RESET_STREAM and STOP_SENDING by this package.
const (
	// StreamCodeDone cancels the unread rest of a stream whose handler has
	// returned: the server will not read it.
	StreamCodeDone quic.StreamErrorCode = 0
	// StreamCodeRefused resets a stream opened while the server is shutting
	// down; the request was not processed and is safe to retry elsewhere.
	StreamCodeRefused quic.StreamErrorCode = 1
)

// IsRefused reports whether err is a stream reset by a server that refused
// the stream because it is shutting down (the request was not processed).
func IsRefused(err error) bool {
	se, ok := errors.AsType[*quic.StreamError](err)
	return ok && se.Remote && se.ErrorCode == StreamCodeRefused
}
