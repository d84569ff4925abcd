package segment

import (
	"errors"
	"fmt"
	"syscall"
)

// Errors returned by a Log. Each is wrapped with context (file, offset, range)
// by %w, so callers classify them with errors.Is.
var (
	// ErrOffsetOutOfRange: Read was asked for an offset below StartOffset (it
	// was deleted by retention) or above NextOffset (not written yet). The
	// message carries the range the log holds.
	ErrOffsetOutOfRange = errors.New("segment: offset out of range")
	// ErrCorrupt: stored data failed verification (header, checksum or offset
	// continuity) where recovery cannot truncate it away: in a sealed segment,
	// or found while serving a read. Corrupt bytes are never returned.
	ErrCorrupt = errors.New("segment: corrupt data")
	// ErrClosed: the Log was closed.
	ErrClosed = errors.New("segment: log closed")
	// ErrSyncFailed: an fsync failed. The error is sticky: every waiter the
	// failed fsync covered gets it, and the Log refuses appends until it is
	// reopened (and recovery has re-read what really reached the disk).
	ErrSyncFailed = errors.New("segment: fsync failed")
	// ErrDiskFull: a write or a preallocation failed with ENOSPC or EDQUOT.
	// Nothing was published; the Log stays readable and a later Append may
	// succeed once space is freed (for example by EnforceRetention).
	ErrDiskFull = errors.New("segment: disk full")
	// ErrBadTruncation: TruncateFrom was given an offset that is not a batch
	// boundary within [StartOffset, NextOffset]. Nothing was changed.
	ErrBadTruncation = errors.New("segment: truncation offset is not a batch boundary of the log")
)

// ioError wraps an error from the file layer with the operation and file, and
// classifies ENOSPC/EDQUOT as ErrDiskFull.
func ioError(op, name string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("segment: %s %s: %w: %w", op, name, ErrDiskFull, err)
	}
	return fmt.Errorf("segment: %s %s: %w", op, name, err)
}
