package raftlog

import "errors"

// Errors returned by a FileStorage. Each is wrapped with context by %w, so
// callers classify them with errors.Is.
var (
	// ErrCorrupt: the file is not a raft log (wrong magic, unreadable base
	// record), or a record with a valid checksum contradicts the log before
	// it. Open refuses such a file rather than cut acknowledged entries.
	ErrCorrupt = errors.New("raftlog: corrupt log")
	// ErrTorn: a record is incomplete or fails its checksum. Open truncates
	// the file at the first such record; the record decoder returns it.
	ErrTorn = errors.New("raftlog: torn record")
	// ErrRecordTooLarge: a Save or rewrite would write a record larger than
	// Options.MaxRecordBytes. Nothing was written.
	ErrRecordTooLarge = errors.New("raftlog: record too large")
	// ErrFailed: an earlier write or fsync failed. The error is sticky: every
	// later Save, CreateSnapshot and Compact fails until the storage is
	// reopened.
	ErrFailed = errors.New("raftlog: storage failed")
	// ErrClosed: the storage was closed.
	ErrClosed = errors.New("raftlog: storage closed")
	// ErrInvalid: the arguments contradict the log (entries leaving a gap,
	// a snapshot or compaction index outside the log, compaction past the
	// latest snapshot). Nothing was written.
	ErrInvalid = errors.New("raftlog: invalid argument")
	// ErrLocked: another FileStorage holds the directory.
	ErrLocked = errors.New("raftlog: directory locked by another storage")
)
