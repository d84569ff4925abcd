package wire

// ProduceRequest appends the batches of the payload (one or more, concatenated)
// to one partition. With AcksNone the broker sends no response.
type ProduceRequest struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Topic     string
	Partition int32
	Acks      int8
	TimeoutMs int32
}

// ProduceResponse acknowledges a produce request. With NOT_LEADER, LeaderID
// and LeaderAddr name the partition's leader when the broker knows it.
type ProduceResponse struct {
	_msgpack   struct{} `msgpack:",as_array"`
	Error      ErrorCode
	Message    string
	LeaderID   string
	LeaderAddr string
	BaseOffset int64 // offset of the first record stored
	LastOffset int64 // offset of the last record stored
}

// AppendMsgpack appends the header's msgpack encoding.
func (m ProduceRequest) AppendMsgpack(b []byte) []byte {
	b = mpString(mpArray(b, 4), m.Topic)
	return mpInt32(mpInt8(mpInt32(b, m.Partition), m.Acks), m.TimeoutMs)
}

// ParseMsgpack decodes exactly one header from b.
func (m *ProduceRequest) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	r.fields(4)
	r.string(&m.Topic)
	m.Partition, m.Acks, m.TimeoutMs = r.int32(), r.int8(), r.int32()
	return r.finish("produce request")
}

// AppendMsgpack appends the header's msgpack encoding.
func (m ProduceResponse) AppendMsgpack(b []byte) []byte {
	b = mpString(mpCode(mpArray(b, 6), m.Error), m.Message)
	b = mpString(mpString(b, m.LeaderID), m.LeaderAddr)
	return mpInt64(mpInt64(b, m.BaseOffset), m.LastOffset)
}

// ParseMsgpack decodes exactly one header from b.
func (m *ProduceResponse) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	r.fields(6)
	m.Error = r.code16()
	r.string(&m.Message)
	r.string(&m.LeaderID)
	r.string(&m.LeaderAddr)
	m.BaseOffset, m.LastOffset = r.int64(), r.int64()
	return r.finish("produce response")
}

// Err returns the response's error as an *Error (nil for ErrNone), leader
// hint included.
func (m *ProduceResponse) Err() error {
	return leaderError(m.Error, m.Message, m.LeaderID, m.LeaderAddr)
}
