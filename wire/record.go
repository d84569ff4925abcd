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
	// The records are checked as Next decodes them, so that the good
	// records before a malformed one are still delivered.
	h, n, err := verifyChecksum(batch, len(batch))
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

// lz4Length splits an lz4 records section into its declared uncompressed
// length and its block, checking the length against MaxRecordsSize and
// against what the block's size can possibly hold.
func lz4Length(section []byte) (uint64, []byte, error) {
	if len(section) < lz4LengthSize {
		return 0, nil, fmt.Errorf("%w: lz4 section of %d bytes lacks its length", ErrCorruptBatch, len(section))
	}
	ulen := uint64(binary.LittleEndian.Uint32(section))
	block := section[lz4LengthSize:]
	if ulen > MaxRecordsSize || ulen > lz4MaxRatio*uint64(len(block))+16 {
		return 0, nil, fmt.Errorf("%w: lz4 section claims %d bytes from %d", ErrCorruptBatch, ulen, len(block))
	}
	return ulen, block, nil
}

// decompress decodes an lz4 records section into the iterator's scratch
// buffer, sized by the declared length (bounded by lz4Length) and never
// written past it.
func (it *RecordIter) decompress(section []byte) ([]byte, error) {
	ulen, block, err := lz4Length(section)
	if err != nil {
		return nil, err
	}
	if uint64(it.hdr.RecordCount) > ulen/minRecordSize {
		return nil, fmt.Errorf("%w: %d records cannot fit %d uncompressed bytes", ErrCorruptBatch, it.hdr.RecordCount, ulen)
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

// DetachScratch hands the decompression buffer to the records decoded from
// the current batch: they stay valid after Reset, and the next compressed
// batch is decompressed into a buffer of its own.
func (it *RecordIter) DetachScratch() { it.scratch = nil }

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
		it.err = fmt.Errorf("%w (record %d, offset %d)", err, it.i, it.hdr.BaseOffset+int64(it.i))
		return false
	}
	it.i++
	return true
}

func (it *RecordIter) decode(r *Record) error {
	if len(it.rest) == 0 {
		return fmt.Errorf("%w: %d records, header says %d", ErrCorruptBatch, it.i, it.hdr.RecordCount)
	}
	rec, rest, err := nextRecord(it.rest, int64(it.i))
	if err != nil {
		return err
	}
	if it.i == 0 && rec.tsDelta != 0 {
		return fmt.Errorf("%w: first record's timestamp delta is %d, not 0", ErrCorruptBatch, rec.tsDelta)
	}
	it.rest = rest
	ts := it.hdr.FirstTimestamp + rec.tsDelta
	if it.i == 0 || ts > it.maxTs {
		it.maxTs = ts
	}
	*r = Record{
		Offset:    it.hdr.BaseOffset + int64(it.i),
		Timestamp: ts,
		Key:       rec.key,
		Value:     rec.value,
		Headers:   RecordHeaders{raw: rec.headers, n: rec.nh},
	}
	return nil
}

// rawRecord is one record's fields as sub-slices of the batch.
type rawRecord struct {
	tsDelta int64
	key     []byte // nil for a null key
	value   []byte
	headers []byte // the encoded headers, count excluded
	nh      int
}

// nextRecord decodes the record at the start of b, which must have offset
// delta want, and returns it and the bytes after it. Every length is checked
// against the bytes present before it is used; nothing is allocated. It walks
// positions with an inlined one-byte varint path, as the broker runs it on
// every record it stores; errors are described only once one is found.
func nextRecord(b []byte, want int64) (rawRecord, []byte, error) {
	var r rawRecord
	length, p := varintAt(b, 0)
	if p < 0 {
		return r, nil, varintError(b, 0)
	}
	if length < 0 || length > int64(len(b)-p) {
		return r, nil, fmt.Errorf("%w: record length %d with %d bytes left", ErrCorruptBatch, length, len(b)-p)
	}
	rec, rest := b[p:p+int(length)], b[p+int(length):]
	var q int
	if r.tsDelta, q = varintAt(rec, 0); q < 0 {
		return r, nil, varintError(rec, 0)
	}
	offDelta, q2 := varintAt(rec, q)
	if q2 < 0 {
		return r, nil, varintError(rec, q)
	}
	if offDelta != want {
		return r, nil, fmt.Errorf("%w: offset delta %d where %d belongs", ErrCorruptBatch, offDelta, want)
	}
	keyLen, q3 := varintAt(rec, q2)
	if q3 < 0 {
		return r, nil, varintError(rec, q2)
	}
	switch {
	case keyLen == -1:
	case keyLen < 0 || keyLen > int64(len(rec)-q3):
		return r, nil, fmt.Errorf("%w: key length %d with %d bytes left", ErrCorruptBatch, keyLen, len(rec)-q3)
	default:
		r.key = rec[q3 : q3+int(keyLen) : q3+int(keyLen)]
		q3 += int(keyLen)
	}
	var err error
	if r.value, q, err = bytesAt(rec, q3); err != nil {
		return r, nil, err
	}
	nh, q2 := varintAt(rec, q)
	if q2 < 0 {
		return r, nil, varintError(rec, q)
	}
	if nh < 0 || nh > int64(len(rec)-q2)/2 {
		return r, nil, fmt.Errorf("%w: %d headers in %d bytes", ErrCorruptBatch, nh, len(rec)-q2)
	}
	r.headers, r.nh = rec[q2:], int(nh)
	for q = q2; nh > 0; nh-- {
		if _, q, err = bytesAt(rec, q); err != nil {
			return r, nil, err
		}
		if _, q, err = bytesAt(rec, q); err != nil {
			return r, nil, err
		}
	}
	if q != len(rec) {
		return r, nil, fmt.Errorf("%w: %d bytes left inside the record", ErrCorruptBatch, len(rec)-q)
	}
	return r, rest, nil
}

// varintAt decodes the varint at b[p:] (see readVarint) and returns it and the
// position after it, or a negative position when it is malformed.
func varintAt(b []byte, p int) (int64, int) {
	if uint(p) < uint(len(b)) {
		if c := b[p]; c < 0x80 {
			return int64(c>>1) ^ -int64(c&1), p + 1
		}
	}
	return varintAtLong(b, p)
}

func varintAtLong(b []byte, p int) (int64, int) {
	if p+1 < len(b) && b[p+1] < 0x80 && b[p+1] != 0 { // two bytes: lengths up to 8 KiB
		u := uint64(b[p]&0x7f) | uint64(b[p+1])<<7
		return int64(u>>1) ^ -int64(u&1), p + 2
	}
	if p >= len(b) {
		return 0, -1
	}
	v, n := binary.Varint(b[p:])
	if n <= 0 || (n > 1 && b[p+n-1] == 0) {
		return 0, -1
	}
	return v, p + n
}

// varintError describes why the varint at b[p:] is malformed.
func varintError(b []byte, p int) error {
	if _, _, err := readVarint(b[min(p, len(b)):]); err != nil {
		return err
	}
	panic("BUG: varintError on a valid varint")
}

// bytesAt reads a varint length >= 0 at b[p:] and that many bytes.
func bytesAt(b []byte, p int) ([]byte, int, error) {
	n, q := varintAt(b, p)
	if q < 0 {
		return nil, 0, varintError(b, p)
	}
	if n < 0 || n > int64(len(b)-q) {
		return nil, 0, fmt.Errorf("%w: length %d with %d bytes left", ErrCorruptBatch, n, len(b)-q)
	}
	return b[q : q+int(n) : q+int(n)], q + int(n), nil
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
	h, n, err := verifyChecksum(it.rest, it.max)
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
