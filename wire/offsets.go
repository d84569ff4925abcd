package wire

// ListOffsetsRequest resolves Timestamp (unix ms, or OffsetLatest /
// OffsetEarliest) to an offset of one partition.
type ListOffsetsRequest struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Topic     string
	Partition int32
	Timestamp int64
}

// ListOffsetsResponse gives the first offset whose timestamp is at or after the
// requested one (the log end when there is none). With NOT_LEADER, LeaderID
// and LeaderAddr name the leader when known.
type ListOffsetsResponse struct {
	_msgpack   struct{} `msgpack:",as_array"`
	Error      ErrorCode
	Message    string
	LeaderID   string
	LeaderAddr string
	Offset     int64
	Timestamp  int64 // max timestamp of the batch found, -1 for latest/earliest
}

// AppendMsgpack appends the header's msgpack encoding.
func (m ListOffsetsRequest) AppendMsgpack(b []byte) []byte {
	return mpInt64(mpInt32(mpString(mpArray(b, 3), m.Topic), m.Partition), m.Timestamp)
}

// ParseMsgpack decodes exactly one header from b.
func (m *ListOffsetsRequest) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	r.fields(3)
	r.string(&m.Topic)
	m.Partition, m.Timestamp = r.int32(), r.int64()
	return r.finish("list offsets request")
}

// AppendMsgpack appends the header's msgpack encoding.
func (m ListOffsetsResponse) AppendMsgpack(b []byte) []byte {
	b = mpString(mpCode(mpArray(b, 6), m.Error), m.Message)
	b = mpString(mpString(b, m.LeaderID), m.LeaderAddr)
	return mpInt64(mpInt64(b, m.Offset), m.Timestamp)
}

// ParseMsgpack decodes exactly one header from b.
func (m *ListOffsetsResponse) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	r.fields(6)
	m.Error = r.code16()
	r.string(&m.Message)
	r.string(&m.LeaderID)
	r.string(&m.LeaderAddr)
	m.Offset, m.Timestamp = r.int64(), r.int64()
	return r.finish("list offsets response")
}

// Err returns the response's error as an *Error (nil for ErrNone), leader
// hint included.
func (m *ListOffsetsResponse) Err() error {
	return leaderError(m.Error, m.Message, m.LeaderID, m.LeaderAddr)
}
