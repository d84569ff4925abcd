package wire

import (
	"encoding/binary"
	"fmt"
	"iter"

	"github.com/pierrec/lz4/v4"
)

// Record section limits. They are part of the format: a decoder rejects
// batches beyond them whatever its batch size limit.
const (
	// lz4LengthSize is the size of the uncompressed-length prefix of an lz4
	// records section.
	lz4LengthSize = 4
	// MaxRecordsSize bounds the uncompressed records section of a batch. It
	// bounds the memory a decoder allocates for a compressed batch.
	MaxRecordsSize = 4 * DefaultMaxBatchSize
	// lz4MaxRatio is an upper bound on what one byte of an lz4 block can
	// expand to; a declared uncompressed length beyond it cannot be genuine and
	// is rejected before any buffer is sized for it.
	lz4MaxRatio = 255
)

// Header is one record header. Keys are strings (they name things); values are
// bytes. Neither may be null.
type Header struct {
	Key   string
	Value []byte
}

// Record is one decoded record. Key, Value and Headers point into the batch or
// into the iterator's decompression buffer: they are valid until the batch
// bytes change or the iterator moves to another batch.
type Record struct {
	Offset    int64
	Timestamp int64  // unix ms
	Key       []byte // nil for a null key; empty non-nil for an empty key
	Value     []byte
	Headers   RecordHeaders
}

// RecordHeaders are the encoded headers of a record, already validated by the
// iterator that produced them. Iterating them does not allocate.
type RecordHeaders struct {
	raw []byte // the encoded headers, count excluded
	n   int
}

// Len is the number of headers.
func (h RecordHeaders) Len() int { return h.n }

// Iter returns an iterator over the headers.
func (h RecordHeaders) Iter() HeaderIter { return HeaderIter{rest: h.raw, n: h.n} }

// All yields each header's key and value (sub-slices of the batch).
func (h RecordHeaders) All() iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		it := h.Iter()
		for {
			k, v, ok := it.Next()
			if !ok || !yield(k, v) {
				return
			}
		}
	}
}

// HeaderIter walks a record's headers.
type HeaderIter struct {
	rest []byte
	n    int
}

// Next returns the next header's key and value, or ok == false after the last.
func (it *HeaderIter) Next() (key, value []byte, ok bool) {
	if it.n <= 0 {
		return nil, nil, false
	}
	it.n--
	// The iterator that built RecordHeaders validated these bytes; a failure
	// here can only come from a caller that modified the batch since.
	var err error
	if key, it.rest, err = readBytes(it.rest); err != nil {
		it.n = 0
		return nil, nil, false
	}
	if value, it.rest, err = readBytes(it.rest); err != nil {
		it.n = 0
		return nil, nil, false
	}
	return key, value, true
}

// readVarint reads a zigzag varint (encoding/binary's Varint) in its minimal
// encoding; overlong encodings are rejected so that every accepted batch has
// exactly one encoding.
func readVarint(b []byte) (int64, []byte, error) {
	if len(b) > 0 && b[0] < 0x80 { // one byte: most lengths and deltas
		u := uint64(b[0])
		return int64(u>>1) ^ -int64(u&1), b[1:], nil
	}
	return readVarintLong(b)
}

func readVarintLong(b []byte) (int64, []byte, error) {
	v, n := binary.Varint(b)
	switch {
	case n == 0:
		return 0, nil, fmt.Errorf("%w: varint runs past the end", ErrCorruptBatch)
	case n < 0:
		return 0, nil, fmt.Errorf("%w: varint overflows 64 bits", ErrCorruptBatch)
	case n > 1 && b[n-1] == 0:
		return 0, nil, fmt.Errorf("%w: overlong varint", ErrCorruptBatch)
	}
	return v, b[n:], nil
}

// readBytes reads a varint length >= 0 and that many bytes.
func readBytes(b []byte) ([]byte, []byte, error) {
	n, b, err := readVarint(b)
	if err != nil {
		return nil, nil, err
	}
	if n < 0 || n > int64(len(b)) {
		return nil, nil, fmt.Errorf("%w: length %d with %d bytes left", ErrCorruptBatch, n, len(b))
	}
	return b[:n:n], b[n:], nil
}

// RecordIter iterates the records of one batch. The zero value is ready for
// Reset; reusing one iterator across batches reuses its decompression buffer,
// so iteration allocates nothing once the buffer has grown.
//
//	var it wire.RecordIter
//	if err := it.Reset(batch); err != nil { ... }
//	var r wire.Record
//	for it.Next(&r) { ... }
//	if err := it.Err(); err != nil { ... }
type RecordIter struct {
	hdr     BatchHeader
	rest    []byte // undecoded records
	i       int32  // records decoded so far
	maxTs   int64  // largest timestamp seen
	done    bool   // the end checks ran
	err     error
	scratch []byte // decompressed records section
}

// Reset verifies batch (exactly one complete batch: header, checksum and
// limits) and positions the iterator before its first record. A control batch
// has no records: Next returns false at once.
func (it *RecordIter) Reset(batch []byte) error {
	it.rest, it.i, it.err, it.done = nil, 0, nil, false
	h, n, err := VerifyBatch(batch, len(batch))
	if err != nil {
		it.hdr, it.err = BatchHeader{}, err
		return err
	}
	it.hdr = h
	if n != len(batch) {
		it.err = fmt.Errorf("%w: %d trailing bytes after the batch", ErrCorruptBatch, len(batch)-n)
		return it.err
	}
	if h.IsControl() {
		return nil
	}
	body := batch[BatchHeaderSize:n]
	if h.Codec() == CodecLZ4 {
		if body, err = it.decompress(body); err != nil {
			it.err = err
			return err
		}
	}
	it.rest = body
	return nil
}

func (it *RecordIter) decompress(block []byte) ([]byte, error) {
	if len(block) < lz4LengthSize {
		return nil, fmt.Errorf("%w: lz4 section of %d bytes lacks its length", ErrCorruptBatch, len(block))
	}
	ulen := uint64(binary.LittleEndian.Uint32(block))
	block = block[lz4LengthSize:]
	if ulen > MaxRecordsSize || ulen > lz4MaxRatio*uint64(len(block))+16 {
		return nil, fmt.Errorf("%w: lz4 section claims %d bytes from %d", ErrCorruptBatch, ulen, len(block))
	}
	if uint64(cap(it.scratch)) < ulen {
		it.scratch = make([]byte, ulen)
	}
	dst := it.scratch[:ulen]
	n, err := lz4.UncompressBlock(block, dst)
	if err != nil {
		return nil, fmt.Errorf("%w: lz4: %v", ErrCorruptBatch, err)
	}
	if uint64(n) != ulen {
		return nil, fmt.Errorf("%w: lz4 section gave %d bytes, header says %d", ErrCorruptBatch, n, ulen)
	}
	return dst, nil
}

// Header returns the header of the current batch.
func (it *RecordIter) Header() BatchHeader { return it.hdr }

// Err returns the error that ended iteration, if any.
func (it *RecordIter) Err() error { return it.err }

// Next decodes the next record into r and reports whether there was one. At the
// end it checks that the batch held exactly its record count, nothing after
// them, and that the header's max timestamp is right.
func (it *RecordIter) Next(r *Record) bool {
	if it.err != nil || it.done || it.hdr.IsControl() {
		return false
	}
	if it.i == it.hdr.RecordCount {
		switch {
		case len(it.rest) != 0:
			it.err = fmt.Errorf("%w: %d bytes after the last record", ErrCorruptBatch, len(it.rest))
		case it.maxTs != it.hdr.MaxTimestamp:
			it.err = fmt.Errorf("%w: max timestamp %d, records say %d", ErrCorruptBatch, it.hdr.MaxTimestamp, it.maxTs)
		}
		it.done = true
		return false
	}
	if err := it.decode(r); err != nil {
		it.err = fmt.Errorf("%w (record %d)", err, it.i)
		return false
	}
	it.i++
	return true
}

func (it *RecordIter) decode(r *Record) error {
	if len(it.rest) == 0 {
		return fmt.Errorf("%w: %d records, header says %d", ErrCorruptBatch, it.i, it.hdr.RecordCount)
	}
	length, b, err := readVarint(it.rest)
	if err != nil {
		return err
	}
	if length < 0 || length > int64(len(b)) {
		return fmt.Errorf("%w: record length %d with %d bytes left", ErrCorruptBatch, length, len(b))
	}
	it.rest = b[length:]
	b = b[:length:length]

	tsDelta, b, err := readVarint(b)
	if err != nil {
		return err
	}
	offDelta, b, err := readVarint(b)
	if err != nil {
		return err
	}
	if offDelta != int64(it.i) {
		return fmt.Errorf("%w: offset delta %d out of order", ErrCorruptBatch, offDelta)
	}
	if it.i == 0 && tsDelta != 0 {
		return fmt.Errorf("%w: first record's timestamp delta is %d, not 0", ErrCorruptBatch, tsDelta)
	}
	keyLen, b, err := readVarint(b)
	if err != nil {
		return err
	}
	var key []byte
	switch {
	case keyLen == -1:
	case keyLen < 0 || keyLen > int64(len(b)):
		return fmt.Errorf("%w: key length %d with %d bytes left", ErrCorruptBatch, keyLen, len(b))
	default:
		key, b = b[:keyLen:keyLen], b[keyLen:]
	}
	value, b, err := readBytes(b)
	if err != nil {
		return err
	}
	nh, b, err := readVarint(b)
	if err != nil {
		return err
	}
	if nh < 0 || nh > int64(len(b))/2 {
		return fmt.Errorf("%w: %d headers in %d bytes", ErrCorruptBatch, nh, len(b))
	}
	raw := b
	for range nh {
		if _, b, err = readBytes(b); err != nil {
			return err
		}
		if _, b, err = readBytes(b); err != nil {
			return err
		}
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d bytes left inside the record", ErrCorruptBatch, len(b))
	}
	ts := it.hdr.FirstTimestamp + tsDelta
	if it.i == 0 || ts > it.maxTs {
		it.maxTs = ts
	}
	*r = Record{
		Offset:    it.hdr.BaseOffset + offDelta,
		Timestamp: ts,
		Key:       key,
		Value:     value,
		Headers:   RecordHeaders{raw: raw, n: int(nh)},
	}
	return nil
}

// ControlBody returns the opaque body of a verified control batch (see
// AppendControlBatch). It fails for a batch that is not a control batch.
func ControlBody(batch []byte) ([]byte, error) {
	h, n, err := VerifyBatch(batch, len(batch))
	if err != nil {
		return nil, err
	}
	if !h.IsControl() {
		return nil, fmt.Errorf("%w: not a control batch", ErrCorruptBatch)
	}
	if h.Codec() != CodecNone {
		return nil, fmt.Errorf("%w: compressed control batch", ErrCorruptBatch)
	}
	return batch[BatchHeaderSize:n:n], nil
}

// BatchIter walks the concatenated batches of a fetch response or a segment
// read. It checks each batch's header, size limit and checksum; it does not
// decode records (use a RecordIter on each batch).
//
//	it := wire.NewBatchIter(payload, 0)
//	for batch, h, ok := it.Next(); ok; batch, h, ok = it.Next() { ... }
//	if err := it.Err(); err != nil { ... }
type BatchIter struct {
	rest []byte
	max  int
	pos  int
	err  error
}

// NewBatchIter returns an iterator over b; maxSize bounds each batch
// (DefaultMaxBatchSize when <= 0).
func NewBatchIter(b []byte, maxSize int) BatchIter { return BatchIter{rest: b, max: maxSize} }

// Reset restarts the iterator on b.
func (it *BatchIter) Reset(b []byte, maxSize int) { *it = BatchIter{rest: b, max: maxSize} }

// Next returns the next batch (a sub-slice of the input) and its header. It
// returns ok == false at the end or at the first bad batch; Err tells which.
// A batch cut short at the end of the input is an error (ErrShortBatch):
// responses carry whole batches only.
func (it *BatchIter) Next() (batch []byte, h BatchHeader, ok bool) {
	if it.err != nil || len(it.rest) == 0 {
		return nil, BatchHeader{}, false
	}
	h, n, err := VerifyBatch(it.rest, it.max)
	if err != nil {
		it.err = fmt.Errorf("%w (at byte %d)", err, it.pos)
		return nil, BatchHeader{}, false
	}
	batch, it.rest = it.rest[:n:n], it.rest[n:]
	it.pos += n
	return batch, h, true
}

// Err returns the error that stopped the iterator, if any.
func (it *BatchIter) Err() error { return it.err }
