package wire

import "fmt"

// ErrorCode is the error carried by every response header. The table below is
// part of the protocol: codes are never renumbered or reused.
type ErrorCode uint16

const (
	ErrNone                    ErrorCode = 0
	ErrUnknown                 ErrorCode = 1
	ErrUnknownTopicOrPartition ErrorCode = 2
	ErrCorruptMessage          ErrorCode = 3
	ErrMessageTooLarge         ErrorCode = 4
	ErrOffsetOutOfRange        ErrorCode = 5
	ErrNotLeader               ErrorCode = 6
	ErrTopicAlreadyExists      ErrorCode = 7
	ErrInvalidRequest          ErrorCode = 8
	ErrUnsupportedAPI          ErrorCode = 9
	ErrUnsupportedVersion      ErrorCode = 10
	ErrInvalidConfig           ErrorCode = 11
	ErrRequestTimedOut         ErrorCode = 12
	ErrBrokerShuttingDown      ErrorCode = 13
	ErrStorage                 ErrorCode = 14
	ErrFrameTooLargeCode       ErrorCode = 15
	ErrInvalidPartitions       ErrorCode = 16
	ErrInvalidTopicName        ErrorCode = 17
	ErrNotEnoughReplicas       ErrorCode = 18
	ErrThrottled               ErrorCode = 19
	ErrInvalidTimestamp        ErrorCode = 20
	ErrPartitionOffline        ErrorCode = 21
	ErrClusterMismatch         ErrorCode = 22
	ErrMetadataUnavailable     ErrorCode = 23
	ErrNotAuthorized           ErrorCode = 24
	ErrDuplicateBrokerID       ErrorCode = 25
	ErrOutOfOrderSequence      ErrorCode = 26
	ErrDuplicateSequence       ErrorCode = 27
)

// CodeInfo describes one error code.
type CodeInfo struct {
	Code      ErrorCode
	Name      string
	Meaning   string
	Retriable bool
}

// Codes is the protocol's error table, indexed by code.
var Codes = [...]CodeInfo{
	{ErrNone, "NONE", "success", false},
	{ErrUnknown, "UNKNOWN", "unexpected server error; see the message and the broker log", false},
	{ErrUnknownTopicOrPartition, "UNKNOWN_TOPIC_OR_PARTITION", "the topic or partition does not exist on this broker", false},
	{ErrCorruptMessage, "CORRUPT_MESSAGE", "a batch failed its checksum or is malformed; nothing of the request was stored", false},
	{ErrMessageTooLarge, "MESSAGE_TOO_LARGE", "a batch exceeds the topic's max.message.bytes or the broker's batch limit", false},
	{ErrOffsetOutOfRange, "OFFSET_OUT_OF_RANGE", "the requested offset is below the log start or above the log end", false},
	{ErrNotLeader, "NOT_LEADER", "this broker does not lead the partition; the response's leader_id and leader_addr name the leader when known (empty otherwise)", true},
	{ErrTopicAlreadyExists, "TOPIC_ALREADY_EXISTS", "a topic with this name exists", false},
	{ErrInvalidRequest, "INVALID_REQUEST", "the request header is malformed or its fields are inconsistent", false},
	{ErrUnsupportedAPI, "UNSUPPORTED_API", "the broker does not know this API", false},
	{ErrUnsupportedVersion, "UNSUPPORTED_VERSION", "the broker does not support this version of the API", false},
	{ErrInvalidConfig, "INVALID_CONFIG", "a topic configuration key or value is invalid", false},
	{ErrRequestTimedOut, "REQUEST_TIMED_OUT", "the request did not complete within its timeout", true},
	{ErrBrokerShuttingDown, "BROKER_SHUTTING_DOWN", "the broker is stopping; retry on another connection", true},
	{ErrStorage, "STORAGE_ERROR", "the broker failed to read or write its log (disk full, I/O error)", true},
	{ErrFrameTooLargeCode, "FRAME_TOO_LARGE", "the frame exceeds the broker's maximum frame size; the stream is closed", false},
	{ErrInvalidPartitions, "INVALID_PARTITIONS", "the partition count is out of range", false},
	{ErrInvalidTopicName, "INVALID_TOPIC_NAME", "topic names are 1-249 characters of [a-zA-Z0-9._-] and not '.' or '..'", false},
	{ErrNotEnoughReplicas, "NOT_ENOUGH_REPLICAS", "too few in-sync replicas to accept the write", true},
	{ErrThrottled, "THROTTLED", "the client exceeded its quota; retry after a back-off", true},
	{ErrInvalidTimestamp, "INVALID_TIMESTAMP", "the batch's timestamps are inconsistent", false},
	{ErrPartitionOffline, "PARTITION_OFFLINE", "the partition exists but no replica can serve it (its log could not be opened, or its only replica's broker is fenced); the message says why", false},
	{ErrClusterMismatch, "CLUSTER_MISMATCH", "the peer belongs to another cluster (the cluster ids differ)", false},
	{ErrMetadataUnavailable, "METADATA_UNAVAILABLE", "the metadata group has no leader or no quorum: reads still work, topic changes wait and then fail with this", true},
	{ErrNotAuthorized, "NOT_AUTHORIZED", "a broker-only API was called without a broker certificate from the cluster CA", false},
	{ErrDuplicateBrokerID, "DUPLICATE_BROKER_ID", "another live broker instance holds this broker id", false},
	{ErrOutOfOrderSequence, "OUT_OF_ORDER_SEQUENCE", "a batch's base sequence is not the next one the partition expects from its producer (an earlier batch was not stored, or is still in flight): nothing of the request was stored; send the producer's batches again from the first unacknowledged one", true},
	{ErrDuplicateSequence, "DUPLICATE_SEQUENCE", "a batch repeats a sequence older than the batches the partition remembers for its producer: it was probably stored, at offsets the broker no longer knows; nothing of the request was stored", false},
}

// Info returns the table entry of c; unknown codes get a synthetic entry.
func (c ErrorCode) Info() CodeInfo {
	if int(c) < len(Codes) {
		return Codes[c]
	}
	return CodeInfo{Code: c, Name: fmt.Sprintf("CODE_%d", uint16(c)), Meaning: "unknown error code"}
}

func (c ErrorCode) String() string { return c.Info().Name }

// Retriable reports whether a request that failed with c may succeed if sent again.
func (c ErrorCode) Retriable() bool { return c.Info().Retriable }

// Error is an ErrorCode with the broker's message; it is what clients return.
// errors.Is(err, ErrorCode) matches on the code alone. For NOT_LEADER,
// LeaderID and LeaderAddr carry the response's leader hint (empty when the
// broker does not know the leader), so a client can route on them.
type Error struct {
	Code       ErrorCode
	Message    string
	LeaderID   string
	LeaderAddr string
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Code.Info().Meaning
	}
	switch {
	case e.LeaderID != "" && e.LeaderAddr != "":
		return e.Code.String() + ": " + msg + " (leader " + e.LeaderID + " at " + e.LeaderAddr + ")"
	case e.LeaderID != "":
		return e.Code.String() + ": " + msg + " (leader " + e.LeaderID + ")"
	case e.LeaderAddr != "":
		return e.Code.String() + ": " + msg + " (leader at " + e.LeaderAddr + ")"
	}
	return e.Code.String() + ": " + msg
}

// Is makes errors.Is(err, code) and errors.Is(err, &Error{Code: code}) work.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case ErrorCode:
		return e.Code == t
	case *Error:
		return e.Code == t.Code
	}
	return false
}

// Error makes an ErrorCode usable as a sentinel error.
func (c ErrorCode) Error() string { return c.String() }

// AsError returns nil for ErrNone and an *Error otherwise.
func AsError(c ErrorCode, msg string) error {
	if c == ErrNone {
		return nil
	}
	return &Error{Code: c, Message: msg}
}

// leaderError is AsError with the leader hint of a per-partition response.
func leaderError(c ErrorCode, msg, leaderID, leaderAddr string) error {
	if c == ErrNone {
		return nil
	}
	return &Error{Code: c, Message: msg, LeaderID: leaderID, LeaderAddr: leaderAddr}
}
