package wire

import "errors"

// Decoding errors. Every decoder in this package wraps one of these with %w, so
// callers can classify failures with errors.Is.
var (
	// ErrShortBatch: fewer bytes than the batch header or its length field says.
	ErrShortBatch = errors.New("wire: short batch")
	// ErrCorruptBatch: a batch whose header, checksum or records are malformed.
	ErrCorruptBatch = errors.New("wire: corrupt batch")
	// ErrBatchTooLarge: a batch larger than the configured maximum.
	ErrBatchTooLarge = errors.New("wire: batch too large")
	// ErrShortFrame: a frame cut off before its declared length.
	ErrShortFrame = errors.New("wire: short frame")
	// ErrFrameTooLarge: a frame whose length field exceeds the configured maximum.
	ErrFrameTooLarge = errors.New("wire: frame too large")
	// ErrMalformedFrame: a frame whose fixed fields or msgpack header are
	// invalid, including a header beyond the limits in msgpack.go.
	ErrMalformedFrame = errors.New("wire: malformed frame")
	// ErrFrameBudget: FrameReader.Next's FrameBudget refused memory for a
	// frame (Next's error wraps it and the budget's own error). The stream is
	// then out of step and must be closed.
	ErrFrameBudget = errors.New("wire: frame memory budget exhausted")
	// ErrNoCodec: DecodeHeader, EncodeHeader or a FrameWriter was given a
	// value that is not one of this package's header types.
	ErrNoCodec = errors.New("wire: not a header type of this package")
)
