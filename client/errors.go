package client

import (
	"context"
	"errors"
	"fmt"
	"time"

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
	// ErrPartitionOffline: the partition exists but no replica can serve it
	// (its only replica's broker is fenced, or its log could not be opened);
	// the message says why. Not retried: produce fails the partition's
	// records at once (and reads metadata again before routing to it later),
	// and a consumer reports it once per outage and keeps the partition
	// assigned, subscribing again until it is back.
	ErrPartitionOffline = wire.ErrPartitionOffline
	// ErrClusterMismatch: the broker belongs to another cluster than the one
	// it was asked about (broker-to-broker calls).
	ErrClusterMismatch = wire.ErrClusterMismatch
	// ErrMetadataUnavailable: the cluster's metadata group has no leader or
	// no quorum. Reads still work; topic changes (create, delete, alter)
	// wait and then fail with it. Retriable: control calls retry it.
	ErrMetadataUnavailable = wire.ErrMetadataUnavailable
	// ErrNotAuthorized: a broker-only API was called without a broker
	// certificate of the cluster CA.
	ErrNotAuthorized = wire.ErrNotAuthorized
	// ErrDuplicateBrokerID: another live broker instance holds the broker id
	// (broker-to-broker calls).
	ErrDuplicateBrokerID = wire.ErrDuplicateBrokerID
	// ErrOutOfOrderSequence: an idempotent producer's batch did not carry
	// the sequence the partition expected next (an earlier batch failed, or
	// is still in flight). Retried internally: the producer sends its
	// batches again in order.
	ErrOutOfOrderSequence = wire.ErrOutOfOrderSequence
	// ErrDuplicateSequence: an idempotent producer's batch repeated a
	// sequence older than what the partition remembers of the producer; it
	// was probably stored before, at offsets the broker no longer knows. The
	// batch's records fail with it, without being stored again.
	ErrDuplicateSequence = wire.ErrDuplicateSequence
)

// Client-side errors.
var (
	// ErrClosed: the Client, Producer or Consumer was closed before or during
	// the call.
	ErrClosed = errors.New("client: closed")
	// ErrInvalidOption: New, NewProducer or NewConsumer got an option value or
	// a combination of options that cannot work; the message lists them all.
	ErrInvalidOption = errors.New("client: invalid option")
	// ErrNoBrokers: no broker could be reached for a call (New's bootstrap,
	// or a request with no broker known). The error also matches the last
	// failure's cause, for example context.DeadlineExceeded when a dial got
	// no answer in time.
	ErrNoBrokers = errors.New("client: no broker reachable")
	// ErrProtocol: a broker answered with a frame that does not fit the
	// protocol (wrong API, correlation id or header); the stream is dropped.
	ErrProtocol = errors.New("client: protocol violation")
	// ErrCorruptBatch: a consumer received a batch it cannot decode. Poll
	// returns a *CorruptBatchError, which also matches wire.ErrCorruptBatch
	// and tells where to resume past the batch.
	ErrCorruptBatch = errors.New("client: corrupt batch")
)

// CorruptBatchError is what Poll returns for a batch that passed the
// transport but could not be decoded (bad checksum, malformed records). The
// records before it were delivered; the partition stays assigned but is
// paused at the batch: call Consumer.Seek with Next to skip it, or with
// Offset to try it again. errors.Is matches ErrCorruptBatch and
// wire.ErrCorruptBatch.
type CorruptBatchError struct {
	Topic     string
	Partition int32
	Offset    int64 // the batch's base offset: the first record not delivered
	Next      int64 // the offset after the batch, where to resume to skip it
	Err       error // what is wrong with it
}

func (e *CorruptBatchError) Error() string {
	return fmt.Sprintf("client: consume %s/%d: corrupt batch at offset %d (resume at %d to skip it): %v",
		e.Topic, e.Partition, e.Offset, e.Next, e.Err)
}

// Is makes errors.Is(err, ErrCorruptBatch) and errors.Is(err,
// wire.ErrCorruptBatch) true.
func (e *CorruptBatchError) Is(target error) bool {
	return target == ErrCorruptBatch || target == wire.ErrCorruptBatch
}

func (e *CorruptBatchError) Unwrap() error { return e.Err }

// detailError is a detailed instance of one of the sentinels above: it
// matches the sentinel (and err, when set) with errors.Is, and its text
// leaves out the sentinel's "client: " prefix, which the public call that
// returns it adds once.
type detailError struct {
	sentinel error
	msg      string
	err      error
}

func (e *detailError) Error() string {
	if e.err == nil {
		return e.msg
	}
	return e.msg + ": " + e.err.Error()
}

func (e *detailError) Unwrap() []error {
	if e.err == nil {
		return []error{e.sentinel}
	}
	return []error{e.sentinel, e.err}
}

func protocolErrorf(format string, args ...any) error {
	return &detailError{sentinel: ErrProtocol, msg: "protocol violation: " + fmt.Sprintf(format, args...)}
}

// opError prefixes err with "client: op: ", the one place where the
// package's prefix enters an error chain. An error of a closed client, producer or
// consumer is ErrClosed whatever the operation.
func opError(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrClosed) {
		return ErrClosed
	}
	return fmt.Errorf("client: %s: %w", op, err)
}

// noAnswerError: a peer did not answer within d; it matches
// context.DeadlineExceeded.
type noAnswerError struct {
	what string // "dial", "metadata to 127.0.0.1:9092", ...
	d    time.Duration
	hint string // appended in parentheses when not empty
}

func (e *noAnswerError) Error() string {
	s := fmt.Sprintf("%s: no answer within %v", e.what, roundDuration(e.d))
	if e.hint != "" {
		s += " (" + e.hint + ")"
	}
	return s
}

func (e *noAnswerError) Unwrap() error { return context.DeadlineExceeded }

// roundDuration keeps a duration readable in messages: 2s rather than
// 1.999873s.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(time.Millisecond)
	}
	return d
}

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

// definite reports whether err is an answer that settles the matter: a
// broker's non-retriable error code (the topic or partition is gone, the
// partition is offline, the request is invalid). Anything else, a timeout
// or a broken connection included, may go away and is worth retrying
// within the caller's budget.
func definite(err error) bool {
	var we *wire.Error
	return errors.As(err, &we) && !we.Code.Retriable()
}

// transportError marks a failure of the connection or stream rather than an
// answer from the broker. It adds nothing to the message.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
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
