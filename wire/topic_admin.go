package wire

// CreateTopicRequest creates a topic; unknown config keys are rejected.
type CreateTopicRequest struct {
	_msgpack   struct{} `msgpack:",as_array"`
	Name       string
	Partitions int32
	Configs    map[string]string // at most MaxConfigEntries
	// ReplicationFactor is the number of replicas of each partition; 0
	// takes the broker's default. Capped by the number of live brokers.
	ReplicationFactor int32
}

// DeleteTopicRequest deletes a topic and its data.
type DeleteTopicRequest struct {
	_msgpack struct{} `msgpack:",as_array"`
	Name     string
}

// AlterTopicConfigRequest sets the given config keys of a topic.
type AlterTopicConfigRequest struct {
	_msgpack struct{} `msgpack:",as_array"`
	Name     string
	Configs  map[string]string // at most MaxConfigEntries
}

// ErrorResponse answers requests that return nothing but success or an
// error (create, delete, alter), and any request the broker cannot parse.
type ErrorResponse struct {
	_msgpack struct{} `msgpack:",as_array"`
	Error    ErrorCode
	Message  string
}

// DescribeTopicRequest asks for a topic's configuration and partitions.
type DescribeTopicRequest struct {
	_msgpack struct{} `msgpack:",as_array"`
	Name     string
}

// PartitionInfo describes one partition's log.
type PartitionInfo struct {
	_msgpack       struct{} `msgpack:",as_array"`
	Partition      int32
	Leader         string
	LogStartOffset int64
	LogEndOffset   int64
	HighWatermark  int64
	SizeBytes      int64
	Segments       int32
}

// DescribeTopicResponse returns the topic's effective configuration (defaults
// included) and its partitions.
type DescribeTopicResponse struct {
	_msgpack   struct{} `msgpack:",as_array"`
	Error      ErrorCode
	Message    string
	Name       string
	Configs    map[string]string // at most MaxConfigEntries
	Partitions []PartitionInfo   // at most MaxListLen
}

const minPartitionInfoSize = 1 + 7

// AppendMsgpack appends the header's msgpack encoding.
func (m CreateTopicRequest) AppendMsgpack(b []byte) []byte {
	return mpInt32(mpConfigs(mpInt32(mpString(mpArray(b, 4), m.Name), m.Partitions), m.Configs), m.ReplicationFactor)
}

// ParseMsgpack decodes exactly one header from b.
func (m *CreateTopicRequest) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	r.fields(4)
	r.string(&m.Name)
	m.Partitions = r.int32()
	m.Configs = r.configs()
	m.ReplicationFactor = r.int32()
	return r.finish("create topic request")
}

// AppendMsgpack appends the header's msgpack encoding.
func (m DeleteTopicRequest) AppendMsgpack(b []byte) []byte { return mpString(mpArray(b, 1), m.Name) }

// ParseMsgpack decodes exactly one header from b.
func (m *DeleteTopicRequest) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	r.fields(1)
	r.string(&m.Name)
	return r.finish("delete topic request")
}

// AppendMsgpack appends the header's msgpack encoding.
func (m AlterTopicConfigRequest) AppendMsgpack(b []byte) []byte {
	return mpConfigs(mpString(mpArray(b, 2), m.Name), m.Configs)
}

// ParseMsgpack decodes exactly one header from b.
func (m *AlterTopicConfigRequest) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	r.fields(2)
	r.string(&m.Name)
	m.Configs = r.configs()
	return r.finish("alter topic config request")
}

// AppendMsgpack appends the header's msgpack encoding.
func (m ErrorResponse) AppendMsgpack(b []byte) []byte {
	return mpString(mpCode(mpArray(b, 2), m.Error), m.Message)
}

// ParseMsgpack decodes exactly one header from b.
func (m *ErrorResponse) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	r.fields(2)
	m.Error = r.code16()
	r.string(&m.Message)
	return r.finish("error response")
}

// AppendMsgpack appends the header's msgpack encoding.
func (m DescribeTopicRequest) AppendMsgpack(b []byte) []byte { return mpString(mpArray(b, 1), m.Name) }

// ParseMsgpack decodes exactly one header from b.
func (m *DescribeTopicRequest) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	r.fields(1)
	r.string(&m.Name)
	return r.finish("describe topic request")
}

// AppendMsgpack appends the msgpack encoding.
func (m PartitionInfo) AppendMsgpack(b []byte) []byte { return appendPartitionInfo(b, &m) }

func appendPartitionInfo(b []byte, m *PartitionInfo) []byte {
	b = mpString(mpInt32(mpArray(b, 7), m.Partition), m.Leader)
	b = mpInt64(mpInt64(mpInt64(b, m.LogStartOffset), m.LogEndOffset), m.HighWatermark)
	return mpInt32(mpInt64(b, m.SizeBytes), m.Segments)
}

func (m *PartitionInfo) read(r *mpReader) {
	r.fields(7)
	m.Partition = r.int32()
	r.string(&m.Leader)
	m.LogStartOffset, m.LogEndOffset, m.HighWatermark, m.SizeBytes = r.int64(), r.int64(), r.int64(), r.int64()
	m.Segments = r.int32()
}

// ParseMsgpack decodes exactly one value from b.
func (m *PartitionInfo) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	m.read(&r)
	return r.finish("partition info")
}

// AppendMsgpack appends the header's msgpack encoding.
func (m DescribeTopicResponse) AppendMsgpack(b []byte) []byte {
	b = mpString(mpString(mpCode(mpArray(b, 5), m.Error), m.Message), m.Name)
	return mpList(mpConfigs(b, m.Configs), m.Partitions, appendPartitionInfo)
}

// ParseMsgpack decodes exactly one header from b.
func (m *DescribeTopicResponse) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	r.fields(5)
	m.Error = r.code16()
	r.string(&m.Message)
	r.string(&m.Name)
	m.Configs = r.configs()
	m.Partitions = readList(&r, minPartitionInfoSize, "partitions", (*PartitionInfo).read)
	return r.finish("describe topic response")
}
