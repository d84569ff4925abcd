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

// The error codes of Rafka's QUIC connections and streams: one table for the
// transport (this package) and the broker (package node), documented in
// docs/protocol.md ("Connection and stream error codes"). They are part of
// the protocol; never renumber one. Request-level outcomes travel as wire
// error codes inside response frames, not here: these codes only say why a
// whole connection or stream ended.
//
// Application error codes sent in CONNECTION_CLOSE; peers see them as
// *quic.ApplicationError.ErrorCode.
const (
	// CodeNormal closes a connection that is simply no longer needed.
	CodeNormal quic.ApplicationErrorCode = 0
	// CodeShuttingDown closes connections of a server that is shutting down
	// (Shutdown after its drain, or Close). Clients reconnect elsewhere.
	CodeShuttingDown quic.ApplicationErrorCode = 1
	// CodeProtocolError closes a connection whose peer violated the protocol.
	CodeProtocolError quic.ApplicationErrorCode = 2
	// CodeConnectionLimit closes a new connection at once because the server
	// already holds Config.MaxConnections. Nothing was processed; retry
	// after a back-off or on another broker.
	CodeConnectionLimit quic.ApplicationErrorCode = 3
)

// Stream error codes sent in RESET_STREAM and STOP_SENDING; peers see them
// as *quic.StreamError.ErrorCode.
const (
	// StreamCodeDone cancels the unread rest of a stream whose reader no
	// longer needs it: a server handler that returned, a client that has its
	// answer. It is not an error.
	StreamCodeDone quic.StreamErrorCode = 0
	// StreamCodeRefused resets a stream opened while the server is shutting
	// down; the request was not processed and is safe to retry elsewhere.
	StreamCodeRefused quic.StreamErrorCode = 1
	// StreamCodeProtocol ends a stream that is out of step: a frame that
	// could not be read (too large, malformed, cut short), answered first
	// with a stream-level ErrorResponse saying why, or a stream whose peer
	// stopped accepting responses. Not retriable as is.
	StreamCodeProtocol quic.StreamErrorCode = 2
	// StreamCodeShuttingDown ends a long-lived stream (pipelined requests, a
	// subscription) because the broker is stopping. Responses already
	// received stand; a request without a response may or may not have been
	// processed. Retry on another connection.
	StreamCodeShuttingDown quic.StreamErrorCode = 3
	// StreamCodeInternal resets a stream whose handler failed unexpectedly
	// (a recovered panic, logged by the broker). The request in flight may
	// or may not have been processed; the connection and its other streams
	// are unaffected.
	StreamCodeInternal quic.StreamErrorCode = 4
	// StreamCodeResourceLimit ends a stream whose partial frame would exceed
	// the broker's memory budget for frames being received (per connection
	// or broker-wide). A stream-level ErrorResponse with THROTTLED precedes
	// it; the frame was not processed and may be retried after a back-off,
	// on a connection with fewer large requests in flight.
	StreamCodeResourceLimit quic.StreamErrorCode = 5
)

// IsRefused reports whether err is a stream reset by a server that refused
// the stream because it is shutting down (the request was not processed).
func IsRefused(err error) bool {
	se, ok := errors.AsType[*quic.StreamError](err)
	return ok && se.Remote && se.ErrorCode == StreamCodeRefused
}
