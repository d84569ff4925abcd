package wire

// Replica consistency checks (docs/replication.md, "Consistency checks").
//
// APIVerify is a control request any broker serves: it forwards each
// partition to its leader, which compares the digests of its committed log
// with every replica's and reports per replica. APIReplicaDigests is what
// the leader asks each replica for: first its log start and high watermark
// (no ranges), then the digests of the ranges both hold.

// VerifyRequest (APIVerify) asks for the replicas of a topic's partitions
// to be compared now.
type VerifyRequest struct {
	_msgpack   struct{} `msgpack:",as_array"`
	Topic      string
	Partitions []int32 // nil or empty: every partition; at most MaxListLen
	// Forwarded is set by a broker passing the request on to a partition's
	// leader: a broker that does not lead the partition then answers
	// NOT_LEADER for it instead of forwarding again.
	Forwarded bool
}

// VerifyResponse reports each partition asked for, in partition order.
// Error is set when the request as a whole failed (unknown topic).
type VerifyResponse struct {
	_msgpack   struct{} `msgpack:",as_array"`
	Error      ErrorCode
	Message    string
	Partitions []VerifyPartition // at most MaxListLen
}

// VerifyPartition is the comparison of one partition's replicas. From and
// To bound the offsets compared: the committed range every replica that
// answered holds (To <= From: nothing to compare yet). Error is set when
// the partition could not be checked at all (no leader, offline).
type VerifyPartition struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Partition int32
	Error     ErrorCode
	Message   string
	Leader    string // broker id of the leader that compared
	From, To  int64
	Replicas  []VerifyReplica // the leader first; at most MaxListLen
}

// VerifyReplica is one replica's result. Ranges is the number of ranges
// compared (one per segment of the leader's log in [From, To)), Divergent
// those whose digest differs from the leader's, FirstFrom and FirstTo the
// first of them (-1 and -1 when none), Bytes the bytes of the leader's
// batches in the ranges compared. Error is set when the replica could not
// be compared (unreachable, or a batch failing its checksum on its disk).
type VerifyReplica struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Broker    string
	Error     ErrorCode
	Message   string
	Ranges    int32
	Divergent int32
	FirstFrom int64
	FirstTo   int64
	Bytes     int64
}

// ReplicaDigestsRequest (APIReplicaDigests, broker to broker, broker
// certificate only) asks a replica of a partition for the digests of
// Ranges, computed as segment.Digest describes (xxhash64 of the first 28
// bytes of each batch whose base offset lies in the range). Group is the
// partition's raft group, so that a replica of another incarnation of the
// topic does not answer. With no ranges it reports its log start and high
// watermark only.
type ReplicaDigestsRequest struct {
	_msgpack  struct{} `msgpack:",as_array"`
	ClusterID string
	Topic     string
	Partition int32
	Group     uint64
	Ranges    []DigestRange // at most MaxListLen
}

// DigestRange is a range of offsets [From, To).
type DigestRange struct {
	_msgpack struct{} `msgpack:",as_array"`
	From, To int64
}

// ReplicaDigestsResponse answers with the replica's log start and high
// watermark and one digest per range asked for, in order.
type ReplicaDigestsResponse struct {
	_msgpack       struct{} `msgpack:",as_array"`
	Error          ErrorCode
	Message        string
	LogStartOffset int64
	HighWatermark  int64
	Digests        []RangeDigest // at most MaxListLen
}

// RangeDigest is the digest of one range, or why there is none (the range
// not held: OFFSET_OUT_OF_RANGE; a batch failing its checksum:
// CORRUPT_MESSAGE).
type RangeDigest struct {
	_msgpack struct{} `msgpack:",as_array"`
	Error    ErrorCode
	Message  string
	Batches  int64
	Bytes    int64
	Sum      uint64
}

const (
	minVerifyPartitionSize = 1 + 7
	minVerifyReplicaSize   = 1 + 8
	minDigestRangeSize     = 1 + 2
	minRangeDigestSize     = 1 + 5
)

// mpInt32s appends a list of int32: nil for a nil slice.
func mpInt32s(dst []byte, l []int32) []byte {
	if l == nil {
		return mpNil(dst)
	}
	dst = mpArray(dst, len(l))
	for _, v := range l {
		dst = mpInt32(dst, v)
	}
	return dst
}

// int32s decodes a list of int32 (nil stays nil).
func (r *mpReader) int32s(what string) []int32 {
	n := r.listLen(1, MaxListLen, what)
	if n < 0 || r.err != nil {
		return nil
	}
	l := make([]int32, n)
	for i := range l {
		l[i] = r.int32()
	}
	if r.err != nil {
		return nil
	}
	return l
}

// AppendMsgpack appends the header's msgpack encoding.
func (m VerifyRequest) AppendMsgpack(b []byte) []byte {
	return mpBool(mpInt32s(mpString(mpArray(b, 3), m.Topic), m.Partitions), m.Forwarded)
}

// ParseMsgpack decodes exactly one header from b.
func (m *VerifyRequest) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	r.fields(3)
	r.string(&m.Topic)
	m.Partitions = r.int32s("partitions")
	m.Forwarded = r.bool()
	return r.finish("verify request")
}

// AppendMsgpack appends the header's msgpack encoding.
func (m VerifyResponse) AppendMsgpack(b []byte) []byte {
	b = mpString(mpCode(mpArray(b, 3), m.Error), m.Message)
	return mpList(b, m.Partitions, appendVerifyPartition)
}

// ParseMsgpack decodes exactly one header from b.
func (m *VerifyResponse) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	r.fields(3)
	m.Error = r.code16()
	r.string(&m.Message)
	m.Partitions = readList(&r, minVerifyPartitionSize, "partitions", (*VerifyPartition).read)
	return r.finish("verify response")
}

// AppendMsgpack appends the msgpack encoding.
func (m VerifyPartition) AppendMsgpack(b []byte) []byte { return appendVerifyPartition(b, &m) }

func appendVerifyPartition(b []byte, m *VerifyPartition) []byte {
	b = mpString(mpCode(mpInt32(mpArray(b, 7), m.Partition), m.Error), m.Message)
	b = mpInt64(mpInt64(mpString(b, m.Leader), m.From), m.To)
	return mpList(b, m.Replicas, appendVerifyReplica)
}

func (m *VerifyPartition) read(r *mpReader) {
	r.fields(7)
	m.Partition, m.Error = r.int32(), r.code16()
	r.string(&m.Message)
	r.string(&m.Leader)
	m.From, m.To = r.int64(), r.int64()
	m.Replicas = readList(r, minVerifyReplicaSize, "replicas", (*VerifyReplica).read)
}

// ParseMsgpack decodes exactly one value from b.
func (m *VerifyPartition) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	m.read(&r)
	return r.finish("verify partition")
}

// AppendMsgpack appends the msgpack encoding.
func (m VerifyReplica) AppendMsgpack(b []byte) []byte { return appendVerifyReplica(b, &m) }

func appendVerifyReplica(b []byte, m *VerifyReplica) []byte {
	b = mpString(mpCode(mpString(mpArray(b, 8), m.Broker), m.Error), m.Message)
	b = mpInt64(mpInt32(mpInt32(b, m.Ranges), m.Divergent), m.FirstFrom)
	return mpInt64(mpInt64(b, m.FirstTo), m.Bytes)
}

func (m *VerifyReplica) read(r *mpReader) {
	r.fields(8)
	r.string(&m.Broker)
	m.Error = r.code16()
	r.string(&m.Message)
	m.Ranges, m.Divergent = r.int32(), r.int32()
	m.FirstFrom, m.FirstTo, m.Bytes = r.int64(), r.int64(), r.int64()
}

// ParseMsgpack decodes exactly one value from b.
func (m *VerifyReplica) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	m.read(&r)
	return r.finish("verify replica")
}

// AppendMsgpack appends the header's msgpack encoding.
func (m ReplicaDigestsRequest) AppendMsgpack(b []byte) []byte {
	b = mpString(mpString(mpArray(b, 5), m.ClusterID), m.Topic)
	b = mpUint64(mpInt32(b, m.Partition), m.Group)
	return mpList(b, m.Ranges, appendDigestRange)
}

// ParseMsgpack decodes exactly one header from b.
func (m *ReplicaDigestsRequest) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	r.fields(5)
	r.string(&m.ClusterID)
	r.string(&m.Topic)
	m.Partition, m.Group = r.int32(), r.uint64()
	m.Ranges = readList(&r, minDigestRangeSize, "ranges", (*DigestRange).read)
	return r.finish("replica digests request")
}

// AppendMsgpack appends the msgpack encoding.
func (m DigestRange) AppendMsgpack(b []byte) []byte { return appendDigestRange(b, &m) }

func appendDigestRange(b []byte, m *DigestRange) []byte {
	return mpInt64(mpInt64(mpArray(b, 2), m.From), m.To)
}

func (m *DigestRange) read(r *mpReader) {
	r.fields(2)
	m.From, m.To = r.int64(), r.int64()
}

// ParseMsgpack decodes exactly one value from b.
func (m *DigestRange) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	m.read(&r)
	return r.finish("digest range")
}

// AppendMsgpack appends the header's msgpack encoding.
func (m ReplicaDigestsResponse) AppendMsgpack(b []byte) []byte {
	b = mpString(mpCode(mpArray(b, 5), m.Error), m.Message)
	b = mpInt64(mpInt64(b, m.LogStartOffset), m.HighWatermark)
	return mpList(b, m.Digests, appendRangeDigest)
}

// ParseMsgpack decodes exactly one header from b.
func (m *ReplicaDigestsResponse) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	r.fields(5)
	m.Error = r.code16()
	r.string(&m.Message)
	m.LogStartOffset, m.HighWatermark = r.int64(), r.int64()
	m.Digests = readList(&r, minRangeDigestSize, "digests", (*RangeDigest).read)
	return r.finish("replica digests response")
}

// AppendMsgpack appends the msgpack encoding.
func (m RangeDigest) AppendMsgpack(b []byte) []byte { return appendRangeDigest(b, &m) }

func appendRangeDigest(b []byte, m *RangeDigest) []byte {
	b = mpString(mpCode(mpArray(b, 5), m.Error), m.Message)
	return mpUint64(mpInt64(mpInt64(b, m.Batches), m.Bytes), m.Sum)
}

func (m *RangeDigest) read(r *mpReader) {
	r.fields(5)
	m.Error = r.code16()
	r.string(&m.Message)
	m.Batches, m.Bytes, m.Sum = r.int64(), r.int64(), r.uint64()
}

// ParseMsgpack decodes exactly one value from b.
func (m *RangeDigest) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	m.read(&r)
	return r.finish("range digest")
}

// Err returns the response's error as an *Error, nil for ErrNone.
func (m *VerifyResponse) Err() error { return AsError(m.Error, m.Message) }
