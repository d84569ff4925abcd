package client

import (
	"errors"
	"fmt"

	"github.com/rafka/rafka/wire"
)

// Broker error codes. A failed call returns a *wire.Error carrying the code and
// the broker's message; errors.Is(err, ErrX) matches it on the code alone.
var (
	// ErrUnknown: the broker failed in an unexpected way; see its message.
	ErrUnknown = wire.ErrUnknown
	// ErrUnknownTopicOrPartition: the topic or partition does not exist.
	ErrUnknownTopicOrPartition = wire.ErrUnknownTopicOrPartition
	// ErrCorruptMessage: the broker rejected a batch as corrupt.
	ErrCorruptMessage = wire.ErrCorruptMessage
	// ErrMessageTooLarge: a batch or record exceeds the topic's or broker's limit.
	ErrMessageTooLarge = wire.ErrMessageTooLarge
	// ErrOffsetOutOfRange: the offset is below the log start or above its end.
	ErrOffsetOutOfRange = wire.ErrOffsetOutOfRange
	// ErrNotLeader: the broker does not lead the partition (retried internally).
	ErrNotLeader = wire.ErrNotLeader
	// ErrTopicAlreadyExists: CreateTopic of a topic that exists.
	ErrTopicAlreadyExists = wire.ErrTopicAlreadyExists
	// ErrInvalidRequest: the broker found the request malformed.
	ErrInvalidRequest = wire.ErrInvalidRequest
	// ErrUnsupportedAPI: the broker does not know the API.
	ErrUnsupportedAPI = wire.ErrUnsupportedAPI
	// ErrUnsupportedVersion: the broker does not speak this API version.
	ErrUnsupportedVersion = wire.ErrUnsupportedVersion
	// ErrInvalidConfig: a topic configuration key or value was rejected.
	ErrInvalidConfig = wire.ErrInvalidConfig
	// ErrRequestTimedOut: the broker did not complete the request in time.
	ErrRequestTimedOut = wire.ErrRequestTimedOut
	// ErrBrokerShuttingDown: the broker is stopping (retried internally).
	ErrBrokerShuttingDown = wire.ErrBrokerShuttingDown
	// ErrStorage: the broker could not read or write its log.
	ErrStorage = wire.ErrStorage
	// ErrFrameTooLarge: a frame exceeded the broker's frame size limit.
	ErrFrameTooLarge = wire.ErrFrameTooLargeCode
	// ErrInvalidPartitions: the partition count is out of range.
	ErrInvalidPartitions = wire.ErrInvalidPartitions
	// ErrInvalidTopicName: the topic name is not allowed.
	ErrInvalidTopicName = wire.ErrInvalidTopicName
	// ErrNotEnoughReplicas: too few in-sync replicas to accept a write.
	ErrNotEnoughReplicas = wire.ErrNotEnoughReplicas
	// ErrThrottled: the client exceeded its quota.
	ErrThrottled = wire.ErrThrottled
	// ErrInvalidTimestamp: a batch's timestamps were inconsistent.
	ErrInvalidTimestamp = wire.ErrInvalidTimestamp
)

// Client-side errors.
var (
	// ErrClosed: the Client, Producer or Consumer was closed before or during
	// the call.
	ErrClosed = errors.New("client: closed")
	// ErrInvalidOption: New, NewProducer or NewConsumer got an option value or
	// a combination of options that cannot work; the message lists them all.
	ErrInvalidOption = errors.New("client: invalid option")
	// ErrNoBrokers: no broker could be reached for a call.
	ErrNoBrokers = errors.New("client: no broker reachable")
	// ErrProtocol: a broker answered with a frame that does not fit the
	// protocol (wrong API, correlation id or header); the stream is dropped.
	ErrProtocol = errors.New("client: protocol violation")
)

// retriable reports whether a call that failed with err may succeed when sent
// again: a retriable broker code, or a transport failure (the stream or the
// connection broke, or the broker could not be reached).
func retriable(err error) bool {
	if err == nil {
		return false
	}
	var we *wire.Error
	if errors.As(err, &we) {
		return we.Code.Retriable()
	}
	return isTransport(err)
}

// transportError marks a failure of the connection or stream rather than an
// answer from the broker.
type transportError struct{ err error }

func (e *transportError) Error() string { return "client: transport: " + e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

func transport(err error) error {
	if err == nil {
		return nil
	}
	var te *transportError
	if errors.As(err, &te) {
		return err
	}
	return &transportError{err: err}
}

func isTransport(err error) bool {
	var te *transportError
	return errors.As(err, &te)
}

func protocolErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrProtocol}, args...)...)
}
