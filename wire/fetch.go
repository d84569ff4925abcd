package wire

// FetchRequest reads batches from one partition starting at the batch that
// holds Offset. The broker waits up to MaxWaitMs for MinBytes to be available.
type FetchRequest struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Topic     string
	Partition int32
	Offset    int64
	MaxBytes  int32
	MinBytes  int32
	MaxWaitMs int32
}

// FetchResponse carries whole batches in its payload (possibly none). The
// first batch may start before the requested offset; clients skip records
// below it. With NOT_LEADER, LeaderID and LeaderAddr name the leader when
// known.
type FetchResponse struct {
	_msgpack       struct{} `msgpack:",as_array"`
	Error          ErrorCode
	Message        string
	LeaderID       string
	LeaderAddr     string
	HighWatermark  int64 // offset after the last committed record
	LogStartOffset int64
}

// AppendMsgpack appends the header's msgpack encoding.
func (m FetchRequest) AppendMsgpack(b []byte) []byte {
	b = mpInt64(mpInt32(mpString(mpArray(b, 6), m.Topic), m.Partition), m.Offset)
	return mpInt32(mpInt32(mpInt32(b, m.MaxBytes), m.MinBytes), m.MaxWaitMs)
}

// ParseMsgpack decodes exactly one header from b.
func (m *FetchRequest) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	r.fields(6)
	r.string(&m.Topic)
	m.Partition, m.Offset = r.int32(), r.int64()
	m.MaxBytes, m.MinBytes, m.MaxWaitMs = r.int32(), r.int32(), r.int32()
	return r.finish("fetch request")
}

// AppendMsgpack appends the header's msgpack encoding.
func (m FetchResponse) AppendMsgpack(b []byte) []byte {
	b = mpString(mpCode(mpArray(b, 6), m.Error), m.Message)
	b = mpString(mpString(b, m.LeaderID), m.LeaderAddr)
	return mpInt64(mpInt64(b, m.HighWatermark), m.LogStartOffset)
}

// ParseMsgpack decodes exactly one header from b.
func (m *FetchResponse) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	r.fields(6)
	m.Error = r.code16()
	r.string(&m.Message)
	r.string(&m.LeaderID)
	r.string(&m.LeaderAddr)
	m.HighWatermark, m.LogStartOffset = r.int64(), r.int64()
	return r.finish("fetch response")
}

// Err returns the response's error as an *Error (nil for ErrNone), leader
// hint included.
func (m *FetchResponse) Err() error { return leaderError(m.Error, m.Message, m.LeaderID, m.LeaderAddr) }
