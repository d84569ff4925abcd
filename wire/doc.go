// Package wire is Rafka's byte formats: record batches (identical on the wire
// and on disk), frames, the msgpack request and response headers, the error
// code table and key partitioning. It is a leaf: it imports only msgpack,
// xxhash, lz4 and the standard library, and does no I/O beyond the io.Reader
// and io.Writer it is handed.
//
// # Contract
//
// Every decoder takes untrusted bytes: it rejects malformed input with an
// error wrapping one of the sentinels in errors.go (ErrCorruptBatch,
// ErrShortBatch, ErrBatchTooLarge, ErrShortFrame, ErrFrameTooLarge,
// ErrMalformedFrame, ErrFrameBudget) and never panics, nor sizes anything
// from a count or length it has not bounded by the bytes present. Parsers
// return sub-slices of their input; the doc of each says how long they stay
// valid. Encoders append to a
// caller's slice. The hot paths (batch build and iteration, the produce,
// fetch and subscribe headers, frame encode and decode) allocate nothing per
// record or per frame once their buffers have grown; the benchmarks in
// wire_bench_test.go show it.
//
// Constants marked "format" below are part of the protocol and the on-disk
// format: changing one breaks every stored log and every client.
//
// # Record batch
//
// All integers little-endian. The leader stamps baseOffset and term; the
// checksum covers bytes [28, end) so that stamping needs no recomputation.
//
//	off  size  field
//	  0     8  baseOffset      int64   set by the leader (0 from a producer)
//	  8     4  length          uint32  bytes after this field: the batch is length+12 bytes
//	 12     8  term            uint64  raft term of the leader that appended it
//	 20     8  checksum        uint64  xxhash64 (seed 0) of bytes [28, end)
//	 28     1  version         uint8   BatchVersion = 1
//	 29     1  attributes      uint8   bits 0-2 codec (0 none, 1 lz4), bit 3 control,
//	                                   bits 4-7 reserved: must be 0
//	 30     4  recordCount     int32   0 exactly when the control bit is set
//	 34     8  firstTimestamp  int64   unix ms of the first record
//	 42     8  maxTimestamp    int64   largest record timestamp
//	 50     8  producerID      int64   NoProducerID (-1) without idempotence
//	 58     2  producerEpoch   int16   NoProducerEpoch (-1)
//	 60     4  baseSequence    int32   NoSequence (-1)
//	 64     …  records section
//
// Format constants: the offsets off*, BatchHeaderSize (64), BatchVersion (1),
// CodecMask, AttrControl, CodecNone, CodecLZ4 and MaxRecordsSize.
// DefaultMaxBatchSize is a default limit, not a format constant.
//
// The records section holds recordCount records back to back. With codec lz4
// it is instead
//
//	u32 LE   uncompressed length of the records section (<= MaxRecordsSize)
//	…        one raw LZ4 block (the LZ4 block format, not the frame format)
//	         that decompresses to exactly that many bytes
//
// A writer stores the section uncompressed (codec 0) when the lz4 form would
// not be strictly smaller, so codec 1 always means "this saved space".
//
// # Record
//
// Every varint is a zigzag signed varint (encoding/binary PutVarint, the
// protobuf sint64 encoding) in its shortest form; longer encodings are
// rejected, so a valid batch has exactly one encoding.
//
//	varint  length          bytes of the record after this field
//	varint  timestampDelta  timestamp - firstTimestamp (0 for the first record)
//	varint  offsetDelta     index of the record in the batch: 0, 1, 2, …
//	varint  keyLength       -1 for a null key
//	bytes   key
//	varint  valueLength     >= 0 (values are never null)
//	bytes   value
//	varint  headerCount     >= 0
//	        headerCount times:
//	varint    headerKeyLength  >= 0
//	bytes     headerKey        UTF-8 by convention, not checked
//	varint    headerValueLength >= 0
//	bytes     headerValue
//
// The record at index i has offset baseOffset+i. A decoder rejects a batch
// whose records do not fill the section exactly, whose count differs from
// recordCount, whose offset deltas are not 0..n-1, whose first timestamp delta
// is not 0 or whose maxTimestamp is not the largest record timestamp.
//
// # Control batches
//
// A control batch (attribute bit 3, recordCount 0, codec none) carries no
// records for consumers; it still occupies one offset (BatchHeader.OffsetCount)
// so every batch has a distinct base offset. Its section is an opaque body
// (empty for a raft no-op) read with ControlBody.
//
// # Frame
//
// A stream carries frames back to back, little-endian:
//
//	off  size  field
//	  0     4  length         uint32  bytes after this field (>= 12)
//	  4     2  api            uint16  API* constants
//	  6     2  api version    uint16
//	  8     4  correlation id uint32  echoed by the response
//	 12     4  header length  uint32
//	 16     …  header         msgpack, header length bytes
//	  …     …  payload        raw record batches, the rest of the frame
//
// Format constants: FrameFixedSize (16), the API numbers, Version and the
// error codes. DefaultMaxFrameSize is a default limit.
//
// # Headers
//
// Each header is a msgpack array of its struct's fields in declaration order
// (msgpack `as_array`): strings as msgpack str, ErrorCode as uint16, intN as
// intN, uintN as uintN, bools as msgpack booleans, lists as arrays (nil when
// nil), config maps as maps with sorted keys.
// Every header type has one hand-written codec, AppendMsgpack and
// ParseMsgpack (msgpack.go), that writes exactly what reflection writes; no
// header is decoded by reflection. Decoders accept any msgpack integer
// encoding whose value fits the field, and bound every list, map and string
// by the bytes present and by MaxListLen, MaxConfigEntries and
// MaxHeaderElements before allocating. The types live by API family:
// produce.go, fetch.go, offsets.go, metadata.go, topic_admin.go,
// subscribe.go, cluster.go (broker heartbeat, cluster info), raft.go and
// verify.go (verify, replica digests).
//
// # Broker-to-broker APIs
//
// APIBrokerHeartbeat is a control request a broker sends the metadata
// leader; APIRaft frames ride one long-lived stream per broker pair, one
// way, and carry raft messages as an opaque payload whose encoding belongs to
// the broker's raft transport: this package bounds their count by
// MaxRaftBatch (format) and their size by the frame limit
// (RaftMessages.CheckFrame). APIReplicaDigests is a control request a
// partition leader sends each replica during a consistency check. Who may
// call them is the broker's business.
//
// # Frame memory
//
// A FrameReader's memory follows the bytes received: a frame's buffer grows
// as data arrives (in size classes, never past the announced length by more
// than a class), a reader keeps at most a small buffer between frames, and
// larger buffers go back to a shared pool when the next frame starts. An
// optional FrameBudget is charged for what a reader holds while a frame is
// read and used (see FrameBudget).
//
// # What VerifyBatch checks
//
// Header, checksum and record framing, without allocating and without
// decompressing: see VerifyBatch. RecordIter checks the rest (timestamps, and
// the records of a compressed section) as it decodes.
//
// # Key partitioning
//
// A key's hash is KeyHash (xxhash64, seed 0). A topic created with n
// partitions gives partition i the inclusive hash range PartitionRange(i, n) =
// [ceil(i*2^64/n), ceil((i+1)*2^64/n)-1], and PartitionForHash(h, n) =
// floor(h*n/2^64) is the partition whose range holds h. Later splits are
// described by each partition's own range in the metadata (HashStart, HashEnd).
package wire
