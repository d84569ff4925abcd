package node

import (
	"errors"

	"github.com/rafka/rafka/node/replica"
	"github.com/rafka/rafka/segment"
	"github.com/rafka/rafka/wire"
)

// readResult is a read's payload as the stream writer sends it, and what to
// release once it is written.
type readResult struct {
	data []byte
	src  replica.ReadResult
}

func newReadResult(r replica.ReadResult) readResult { return readResult{data: r.Data, src: r} }

func (r *readResult) release() {
	r.src.Release()
	r.data = nil
}

// errorCode maps a partition or log error onto the protocol's codes.
func errorCode(err error) wire.ErrorCode {
	var we *wire.Error
	switch {
	case err == nil:
		return wire.ErrNone
	case errors.As(err, &we):
		return we.Code
	case errors.Is(err, replica.ErrOffline):
		return wire.ErrPartitionOffline
	case errors.Is(err, replica.ErrClosed), errors.Is(err, segment.ErrClosed):
		return wire.ErrUnknownTopicOrPartition
	case errors.Is(err, segment.ErrOffsetOutOfRange):
		return wire.ErrOffsetOutOfRange
	case errors.Is(err, wire.ErrBatchTooLarge):
		return wire.ErrMessageTooLarge
	case errors.Is(err, wire.ErrCorruptBatch), errors.Is(err, wire.ErrShortBatch):
		return wire.ErrCorruptMessage
	case errors.Is(err, segment.ErrDiskFull), errors.Is(err, segment.ErrSyncFailed), errors.Is(err, segment.ErrCorrupt):
		return wire.ErrStorage
	}
	return wire.ErrUnknown
}
