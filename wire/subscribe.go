package wire

// SubscribePartition is one partition of a subscription and its start offset
// (an offset, OffsetLatest or OffsetEarliest).
type SubscribePartition struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Topic     string
	Partition int32
	Offset    int64
}

// SubscribeRequest turns its stream into a push stream: after the
// SubscribeResponse the broker sends SubscribeData frames while the consumer
// has credit, and the consumer sends SubscribeCredit frames.
type SubscribeRequest struct {
	_msgpack   struct{}             `msgpack:",as_array"`
	Partitions []SubscribePartition // at most MaxListLen
	Credit     int64                // initial byte credit
}

// SubscribeResponse confirms a subscription; per-partition errors and
// resolved start offsets are in Partitions, in request order.
type SubscribeResponse struct {
	_msgpack   struct{} `msgpack:",as_array"`
	Error      ErrorCode
	Message    string
	Partitions []SubscribePartitionResult // at most MaxListLen
}

// SubscribePartitionResult is the outcome for one subscribed partition. With
// NOT_LEADER, LeaderID and LeaderAddr name the leader when known.
type SubscribePartitionResult struct {
	_msgpack   struct{} `msgpack:",as_array"`
	Error      ErrorCode
	Message    string
	LeaderID   string
	LeaderAddr string
	Offset     int64 // resolved start offset
}

// SubscribeCredit grants the broker more bytes to push. The broker sends data
// while its credit is positive and subtracts each data frame's payload size,
// so credit may go negative by at most one frame.
type SubscribeCredit struct {
	_msgpack struct{} `msgpack:",as_array"`
	Bytes    int64
}

// SubscribeData carries committed batches of one partition. A non-zero Error
// ends that partition's part of the subscription (the stream continues for the
// others); with NOT_LEADER, LeaderID and LeaderAddr name the leader when known.
type SubscribeData struct {
	_msgpack      struct{} `msgpack:",as_array"`
	Topic         string
	Partition     int32
	Error         ErrorCode
	Message       string
	LeaderID      string
	LeaderAddr    string
	HighWatermark int64
}

const (
	minSubscribePartitionSize       = 1 + 3
	minSubscribePartitionResultSize = 1 + 5
)

// AppendMsgpack appends the msgpack encoding.
func (m SubscribePartition) AppendMsgpack(b []byte) []byte { return appendSubscribePartition(b, &m) }

func appendSubscribePartition(b []byte, m *SubscribePartition) []byte {
	return mpInt64(mpInt32(mpString(mpArray(b, 3), m.Topic), m.Partition), m.Offset)
}

func (m *SubscribePartition) read(r *mpReader) {
	r.fields(3)
	r.string(&m.Topic)
	m.Partition, m.Offset = r.int32(), r.int64()
}

// ParseMsgpack decodes exactly one value from b.
func (m *SubscribePartition) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	m.read(&r)
	return r.finish("subscribe partition")
}

// AppendMsgpack appends the header's msgpack encoding.
func (m SubscribeRequest) AppendMsgpack(b []byte) []byte {
	return mpInt64(mpList(mpArray(b, 2), m.Partitions, appendSubscribePartition), m.Credit)
}

// ParseMsgpack decodes exactly one header from b.
func (m *SubscribeRequest) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	r.fields(2)
	m.Partitions = readList(&r, minSubscribePartitionSize, "partitions", (*SubscribePartition).read)
	m.Credit = r.int64()
	return r.finish("subscribe request")
}

// AppendMsgpack appends the header's msgpack encoding.
func (m SubscribeResponse) AppendMsgpack(b []byte) []byte {
	b = mpString(mpCode(mpArray(b, 3), m.Error), m.Message)
	return mpList(b, m.Partitions, appendSubscribePartitionResult)
}

// ParseMsgpack decodes exactly one header from b.
func (m *SubscribeResponse) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	r.fields(3)
	m.Error = r.code16()
	r.string(&m.Message)
	m.Partitions = readList(&r, minSubscribePartitionResultSize, "partitions", (*SubscribePartitionResult).read)
	return r.finish("subscribe response")
}

// AppendMsgpack appends the msgpack encoding.
func (m SubscribePartitionResult) AppendMsgpack(b []byte) []byte {
	return appendSubscribePartitionResult(b, &m)
}

func appendSubscribePartitionResult(b []byte, m *SubscribePartitionResult) []byte {
	b = mpString(mpCode(mpArray(b, 5), m.Error), m.Message)
	return mpInt64(mpString(mpString(b, m.LeaderID), m.LeaderAddr), m.Offset)
}

func (m *SubscribePartitionResult) read(r *mpReader) {
	r.fields(5)
	m.Error = r.code16()
	r.string(&m.Message)
	r.string(&m.LeaderID)
	r.string(&m.LeaderAddr)
	m.Offset = r.int64()
}

// ParseMsgpack decodes exactly one value from b.
func (m *SubscribePartitionResult) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	m.read(&r)
	return r.finish("subscribe partition result")
}

// Err returns the partition's error as an *Error (nil for ErrNone), leader
// hint included.
func (m *SubscribePartitionResult) Err() error {
	return leaderError(m.Error, m.Message, m.LeaderID, m.LeaderAddr)
}

// AppendMsgpack appends the header's msgpack encoding.
func (m SubscribeCredit) AppendMsgpack(b []byte) []byte { return mpInt64(mpArray(b, 1), m.Bytes) }

// ParseMsgpack decodes exactly one header from b.
func (m *SubscribeCredit) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	r.fields(1)
	m.Bytes = r.int64()
	return r.finish("subscribe credit")
}

// AppendMsgpack appends the header's msgpack encoding.
func (m SubscribeData) AppendMsgpack(b []byte) []byte {
	b = mpCode(mpInt32(mpString(mpArray(b, 7), m.Topic), m.Partition), m.Error)
	b = mpString(mpString(mpString(b, m.Message), m.LeaderID), m.LeaderAddr)
	return mpInt64(b, m.HighWatermark)
}

// ParseMsgpack decodes exactly one header from b.
func (m *SubscribeData) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	r.fields(7)
	r.string(&m.Topic)
	m.Partition, m.Error = r.int32(), r.code16()
	r.string(&m.Message)
	r.string(&m.LeaderID)
	r.string(&m.LeaderAddr)
	m.HighWatermark = r.int64()
	return r.finish("subscribe data")
}

// Err returns the partition's error as an *Error (nil for ErrNone), leader
// hint included.
func (m *SubscribeData) Err() error { return leaderError(m.Error, m.Message, m.LeaderID, m.LeaderAddr) }
