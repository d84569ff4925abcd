package wire

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/pierrec/lz4/v4"
)

// Defaults of the producer fields of a batch without idempotence.
const (
	NoProducerID    int64 = -1
	NoProducerEpoch int16 = -1
	NoSequence      int32 = -1
)

// BatchBuilder accumulates records and encodes them as one batch. It is
// reusable: after Reset it keeps its buffers, so building allocates nothing
// per record once they have grown. It is not safe for concurrent use.
type BatchBuilder struct {
	// buf is a batch under construction: BatchHeaderSize bytes reserved for
	// the header, then the encoded records, uncompressed. Finish fills the
	// header in place, so an uncompressed batch is never copied.
	buf []byte
	// out is the lz4 batch, reused: BatchHeaderSize bytes for the header,
	// then the compressed records section. packed says it holds the
	// compression of the records appended so far (packedOK: and that it
	// paid), so that Finish only writes the header and checksum.
	out              []byte
	packed, packedOK bool
	count            int32
	firstTs          int64
	maxTs            int64

	producerID    int64
	producerEpoch int16
	baseSequence  int32

	comp *lz4.Compressor // allocated on first lz4 build, then reused
}

// NewBatchBuilder returns an empty builder.
func NewBatchBuilder() *BatchBuilder {
	b := &BatchBuilder{}
	b.Reset()
	return b
}

// Reset empties the builder and clears its producer fields, keeping buffers.
func (b *BatchBuilder) Reset() {
	b.buf = b.prefixed()[:BatchHeaderSize]
	b.packed = false
	b.count, b.firstTs, b.maxTs = 0, 0, 0
	b.producerID, b.producerEpoch, b.baseSequence = NoProducerID, NoProducerEpoch, NoSequence
}

// SetProducer sets the idempotence fields of the batch: producer id and epoch,
// and the sequence number of its first record. Without it they are
// NoProducerID, NoProducerEpoch and NoSequence.
func (b *BatchBuilder) SetProducer(id int64, epoch int16, baseSequence int32) {
	b.producerID, b.producerEpoch, b.baseSequence = id, epoch, baseSequence
}

// Len is the number of records appended since the last Reset.
func (b *BatchBuilder) Len() int { return int(b.count) }

// Size is the encoded size of the batch built without compression; lz4 gives
// at most this many bytes. A producer compares Size()+MaxRecordSize(...) with
// its batch limit before appending.
func (b *BatchBuilder) Size() int { return len(b.prefixed()) }

// prefixed returns buf, making sure it starts with the reserved header.
func (b *BatchBuilder) prefixed() []byte {
	if len(b.buf) >= BatchHeaderSize {
		return b.buf
	}
	if cap(b.buf) < BatchHeaderSize {
		b.buf = make([]byte, 0, 4096)
	}
	return b.buf[:BatchHeaderSize]
}

// Cap is the capacity of the builder's buffer in bytes, for callers that
// keep builders for reuse and want to bound the memory they hold.
func (b *BatchBuilder) Cap() int { return cap(b.buf) + cap(b.out) }

// recs is the encoded records section.
func (b *BatchBuilder) recs() []byte { return b.prefixed()[BatchHeaderSize:] }

// Grow makes room for n more bytes of records, so that filling a batch up to
// a known size does not grow the buffer step by step.
func (b *BatchBuilder) Grow(n int) { b.buf = slices.Grow(b.prefixed(), n) }

// MaxRecordSize is an upper bound of the bytes one record with these fields
// adds to a batch.
func MaxRecordSize(key, value []byte, headers []Header) int {
	n := 3*binary.MaxVarintLen64 + varintLen(int64(len(key))) + len(key) +
		varintLen(int64(len(value))) + len(value) + varintLen(int64(len(headers)))
	for i := range headers {
		h := &headers[i]
		n += varintLen(int64(len(h.Key))) + len(h.Key) + varintLen(int64(len(h.Value))) + len(h.Value)
	}
	return n
}

func varintLen(v int64) int {
	u := uint64(v) << 1
	if v < 0 {
		u = ^u
	}
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

// Append adds a record. A nil key is a null key (length -1); a non-nil empty
// key is an empty key. The builder copies key, value and headers.
func (b *BatchBuilder) Append(timestampMs int64, key, value []byte, headers []Header) {
	if b.count == 0 {
		b.firstTs, b.maxTs = timestampMs, timestampMs
	} else if timestampMs > b.maxTs {
		b.maxTs = timestampMs
	}
	tsDelta := timestampMs - b.firstTs
	offDelta := int64(b.count)
	keyLen := int64(len(key))
	if key == nil {
		keyLen = -1
	}
	body := varintLen(tsDelta) + varintLen(offDelta) + varintLen(keyLen) + len(key) +
		varintLen(int64(len(value))) + len(value) + varintLen(int64(len(headers)))
	for i := range headers {
		h := &headers[i]
		body += varintLen(int64(len(h.Key))) + len(h.Key) + varintLen(int64(len(h.Value))) + len(h.Value)
	}
	r := b.prefixed()
	r = binary.AppendVarint(r, int64(body))
	r = binary.AppendVarint(r, tsDelta)
	r = binary.AppendVarint(r, offDelta)
	r = binary.AppendVarint(r, keyLen)
	r = append(r, key...)
	r = binary.AppendVarint(r, int64(len(value)))
	r = append(r, value...)
	r = binary.AppendVarint(r, int64(len(headers)))
	for i := range headers {
		h := &headers[i]
		r = binary.AppendVarint(r, int64(len(h.Key)))
		r = append(r, h.Key...)
		r = binary.AppendVarint(r, int64(len(h.Value)))
		r = append(r, h.Value...)
	}
	b.buf = r
	b.count++
	b.packed = false
}

// Build returns the batch in a newly allocated slice (see AppendBatch).
func (b *BatchBuilder) Build(codec Codec) ([]byte, error) {
	return b.AppendBatch(make([]byte, 0, b.Size()), codec)
}

// AppendBatch appends the complete batch to dst: base offset 0, term 0, the
// producer fields, first and max timestamps, record count, codec and checksum.
// With CodecLZ4 the records section is a u32 uncompressed length followed by
// one lz4 block; when that is not smaller than the plain section the batch is
// stored with CodecNone instead. It fails for an empty builder, an unknown
// codec or a records section over MaxRecordsSize.
func (b *BatchBuilder) AppendBatch(dst []byte, codec Codec) ([]byte, error) {
	if b.count == 0 {
		return dst, fmt.Errorf("wire: build: a data batch needs at least one record")
	}
	if codec > CodecLZ4 {
		return dst, fmt.Errorf("wire: build: unknown codec %d", codec)
	}
	recs := b.recs()
	if len(recs) > MaxRecordsSize {
		return dst, fmt.Errorf("%w: records section of %d bytes, limit %d", ErrBatchTooLarge, len(recs), MaxRecordsSize)
	}
	start := len(dst)
	dst = b.appendHeader(dst, b.count, b.firstTs, b.maxTs)
	if codec == CodecLZ4 {
		var ok bool
		if dst, ok = b.appendLZ4(dst); !ok {
			codec = CodecNone
		}
	}
	if codec == CodecNone {
		dst = append(dst, recs...)
	}
	dst[start+offAttributes] = byte(codec)
	finishBatch(dst[start:])
	return dst, nil
}

// Finish completes the batch inside the builder and returns it: the same
// bytes AppendBatch would append, without copying the records when they are
// not compressed. The batch stays valid, and is the builder's, until the next
// Reset, Append, Compress or Finish; a producer keeps the builder with its
// batch until the batch is acknowledged. With CodecLZ4, records compressed
// by Compress (and not appended to since) are not compressed again: Finish
// then only writes the header and checksum.
func (b *BatchBuilder) Finish(codec Codec) ([]byte, error) {
	if b.count == 0 {
		return nil, fmt.Errorf("wire: build: a data batch needs at least one record")
	}
	if codec > CodecLZ4 {
		return nil, fmt.Errorf("wire: build: unknown codec %d", codec)
	}
	if len(b.recs()) > MaxRecordsSize {
		return nil, fmt.Errorf("%w: records section of %d bytes, limit %d", ErrBatchTooLarge, len(b.recs()), MaxRecordsSize)
	}
	batch := b.buf
	if codec == CodecLZ4 {
		b.Compress(codec)
		if b.packedOK {
			batch = b.out
		} else {
			codec = CodecNone // lz4 did not pay: the batch is built in place
		}
	}
	b.appendHeader(batch[:0], b.count, b.firstTs, b.maxTs)
	batch[offAttributes] = byte(codec)
	finishBatch(batch)
	return batch, nil
}

// Compress does ahead of time the costly part of Finish(codec): with
// CodecLZ4 it compresses the records appended so far, once; with CodecNone
// it does nothing. A producer calls it on a full batch outside its locks,
// before the producer fields (which the checksum covers) are known, so that
// compression runs on the goroutine that filled the batch, in parallel with
// the network writes of earlier batches. Appending after it undoes it.
func (b *BatchBuilder) Compress(codec Codec) {
	if codec != CodecLZ4 || b.packed || b.count == 0 || len(b.recs()) > MaxRecordsSize {
		return
	}
	b.out, b.packedOK = b.appendLZ4(growLen(b.out[:0], BatchHeaderSize))
	b.packed = true
}

// appendLZ4 appends the compressed records section, or leaves dst as it was
// and returns false when compression does not save a byte.
func (b *BatchBuilder) appendLZ4(dst []byte) ([]byte, bool) {
	if b.comp == nil {
		b.comp = new(lz4.Compressor)
	}
	base := len(dst)
	recs := b.recs()
	limit := len(recs) - lz4LengthSize - 1 // must be strictly smaller
	if limit <= 0 {
		return dst, false
	}
	dst = growLen(dst, lz4LengthSize+limit)
	n, err := b.comp.CompressBlock(recs, dst[base+lz4LengthSize:])
	if err != nil || n == 0 || n > limit {
		return dst[:base], false
	}
	binary.LittleEndian.PutUint32(dst[base:], uint32(len(recs)))
	return dst[:base+lz4LengthSize+n], true
}

// growLen extends b by n bytes, reallocating only when its capacity is short.
func growLen(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, 2*cap(b)+n)
	copy(nb, b)
	return nb
}

func (b *BatchBuilder) appendHeader(dst []byte, count int32, firstTs, maxTs int64) []byte {
	return appendBatchHeader(dst, 0, count, firstTs, maxTs, b.producerID, b.producerEpoch, b.baseSequence)
}

func appendBatchHeader(dst []byte, attrs uint8, count int32, firstTs, maxTs, pid int64, epoch int16, seq int32) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, 0) // base offset
	dst = binary.LittleEndian.AppendUint32(dst, 0) // length, set by finishBatch
	dst = binary.LittleEndian.AppendUint64(dst, 0) // term
	dst = binary.LittleEndian.AppendUint64(dst, 0) // checksum, set by finishBatch
	dst = append(dst, BatchVersion, attrs)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(count))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(firstTs))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(maxTs))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(pid))
	dst = binary.LittleEndian.AppendUint16(dst, uint16(epoch))
	return binary.LittleEndian.AppendUint32(dst, uint32(seq))
}

// finishBatch stores the length and checksum of a complete batch.
func finishBatch(batch []byte) {
	binary.LittleEndian.PutUint32(batch[offLength:], uint32(len(batch)-batchLengthOverhead))
	binary.LittleEndian.PutUint64(batch[offChecksum:], BatchChecksum(batch))
}

// AppendControlBatch appends a control batch: record count 0, AttrControl,
// codec none, both timestamps timestampMs, no producer. body is opaque to this
// package (raft no-ops have none; membership changes carry their own
// encoding) and is returned by ControlBody. It fails only when body is larger
// than MaxRecordsSize.
func AppendControlBatch(dst []byte, timestampMs int64, body []byte) ([]byte, error) {
	if len(body) > MaxRecordsSize {
		return dst, fmt.Errorf("%w: control body of %d bytes, limit %d", ErrBatchTooLarge, len(body), MaxRecordsSize)
	}
	start := len(dst)
	dst = appendBatchHeader(dst, AttrControl, 0, timestampMs, timestampMs, NoProducerID, NoProducerEpoch, NoSequence)
	dst = append(dst, body...)
	finishBatch(dst[start:])
	return dst, nil
}
