package wire

// MetadataRequest asks for the given topics, or all when Topics is empty.
type MetadataRequest struct {
	_msgpack struct{} `msgpack:",as_array"`
	Topics   []string // at most MaxListLen
}

// BrokerInfo names a broker, its client address and its zone ("" when the
// broker declares none).
type BrokerInfo struct {
	_msgpack struct{} `msgpack:",as_array"`
	ID       string
	Addr     string
	Zone     string
}

// PartitionMetadata describes where a partition lives and which keys it owns:
// a key whose xxhash64 h satisfies HashStart <= h <= HashEnd belongs to it.
// Error is ErrNone, or ErrPartitionOffline when no replica can serve the
// partition (its only replica's broker is fenced, or its log could not be
// opened); Leader then names the last known leader, if any.
type PartitionMetadata struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Partition int32
	Leader    string // broker ID
	Term      uint64
	HashStart uint64
	HashEnd   uint64
	Error     ErrorCode
}

// TopicMetadata is one topic of a metadata response.
type TopicMetadata struct {
	_msgpack   struct{} `msgpack:",as_array"`
	Error      ErrorCode
	Message    string
	Name       string
	Partitions []PartitionMetadata // at most MaxListLen
}

// MetadataResponse lists brokers and topics.
type MetadataResponse struct {
	_msgpack struct{} `msgpack:",as_array"`
	Error    ErrorCode
	Message  string
	Brokers  []BrokerInfo    // at most MaxListLen
	Topics   []TopicMetadata // at most MaxListLen
}

// Smallest encodings of the list elements: the array byte and one byte per
// field.
const (
	minBrokerInfoSize        = 1 + 3
	minPartitionMetadataSize = 1 + 6
	minTopicMetadataSize     = 1 + 4
)

// AppendMsgpack appends the header's msgpack encoding.
func (m MetadataRequest) AppendMsgpack(b []byte) []byte { return mpStrings(mpArray(b, 1), m.Topics) }

// ParseMsgpack decodes exactly one header from b.
func (m *MetadataRequest) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	r.fields(1)
	m.Topics = r.strings("topics")
	return r.finish("metadata request")
}

// AppendMsgpack appends the msgpack encoding.
func (m BrokerInfo) AppendMsgpack(b []byte) []byte { return appendBrokerInfo(b, &m) }

func appendBrokerInfo(b []byte, m *BrokerInfo) []byte {
	return mpString(mpString(mpString(mpArray(b, 3), m.ID), m.Addr), m.Zone)
}

func (m *BrokerInfo) read(r *mpReader) {
	r.fields(3)
	r.string(&m.ID)
	r.string(&m.Addr)
	r.string(&m.Zone)
}

// ParseMsgpack decodes exactly one value from b.
func (m *BrokerInfo) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	m.read(&r)
	return r.finish("broker info")
}

// AppendMsgpack appends the msgpack encoding.
func (m PartitionMetadata) AppendMsgpack(b []byte) []byte { return appendPartitionMetadata(b, &m) }

func appendPartitionMetadata(b []byte, m *PartitionMetadata) []byte {
	b = mpString(mpInt32(mpArray(b, 6), m.Partition), m.Leader)
	return mpCode(mpUint64(mpUint64(mpUint64(b, m.Term), m.HashStart), m.HashEnd), m.Error)
}

func (m *PartitionMetadata) read(r *mpReader) {
	r.fields(6)
	m.Partition = r.int32()
	r.string(&m.Leader)
	m.Term, m.HashStart, m.HashEnd = r.uint64(), r.uint64(), r.uint64()
	m.Error = r.code16()
}

// ParseMsgpack decodes exactly one value from b.
func (m *PartitionMetadata) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	m.read(&r)
	return r.finish("partition metadata")
}

// AppendMsgpack appends the msgpack encoding.
func (m TopicMetadata) AppendMsgpack(b []byte) []byte { return appendTopicMetadata(b, &m) }

func appendTopicMetadata(b []byte, m *TopicMetadata) []byte {
	b = mpString(mpString(mpCode(mpArray(b, 4), m.Error), m.Message), m.Name)
	return mpList(b, m.Partitions, appendPartitionMetadata)
}

func (m *TopicMetadata) read(r *mpReader) {
	r.fields(4)
	m.Error = r.code16()
	r.string(&m.Message)
	r.string(&m.Name)
	m.Partitions = readList(r, minPartitionMetadataSize, "partitions", (*PartitionMetadata).read)
}

// ParseMsgpack decodes exactly one value from b.
func (m *TopicMetadata) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	m.read(&r)
	return r.finish("topic metadata")
}

// AppendMsgpack appends the header's msgpack encoding.
func (m MetadataResponse) AppendMsgpack(b []byte) []byte {
	b = mpString(mpCode(mpArray(b, 4), m.Error), m.Message)
	b = mpList(b, m.Brokers, appendBrokerInfo)
	return mpList(b, m.Topics, appendTopicMetadata)
}

// ParseMsgpack decodes exactly one header from b.
func (m *MetadataResponse) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	r.fields(4)
	m.Error = r.code16()
	r.string(&m.Message)
	m.Brokers = readList(&r, minBrokerInfoSize, "brokers", (*BrokerInfo).read)
	m.Topics = readList(&r, minTopicMetadataSize, "topics", (*TopicMetadata).read)
	return r.finish("metadata response")
}
