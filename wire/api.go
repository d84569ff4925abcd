package wire

// API numbers. They are part of the protocol: never renumbered or reused.
const (
	APIProduce          API = 1  // long-lived stream, pipelined
	APIFetch            API = 2  // long-lived stream or one-shot
	APIListOffsets      API = 3  // control
	APIMetadata         API = 4  // control
	APICreateTopic      API = 5  // control
	APIDeleteTopic      API = 6  // control
	APIDescribeTopic    API = 7  // control
	APIAlterTopicConfig API = 8  // control
	APISubscribe        API = 9  // opens a push stream
	APISubscribeCredit  API = 10 // client -> broker on a subscribe stream, no response
	APISubscribeData    API = 11 // broker -> client on a subscribe stream
)

// Version is the only version of every API this release speaks.
const Version uint16 = 0

var apiNames = map[API]string{
	APIProduce: "produce", APIFetch: "fetch", APIListOffsets: "list_offsets",
	APIMetadata: "metadata", APICreateTopic: "create_topic", APIDeleteTopic: "delete_topic",
	APIDescribeTopic: "describe_topic", APIAlterTopicConfig: "alter_topic_config",
	APISubscribe: "subscribe", APISubscribeCredit: "subscribe_credit", APISubscribeData: "subscribe_data",
}

// String returns the API's name as used in metrics and logs.
func (a API) String() string {
	if n, ok := apiNames[a]; ok {
		return n
	}
	return "unknown"
}

// Known reports whether a is an API of this protocol.
func (a API) Known() bool { _, ok := apiNames[a]; return ok }

// Special offsets and timestamps accepted where an offset or a timestamp is asked.
const (
	OffsetLatest   int64 = -1 // the log end: the next offset to be written
	OffsetEarliest int64 = -2 // the log start
)

// Acks levels of a produce request.
const (
	AcksNone   int8 = 0  // no response is sent
	AcksLeader int8 = 1  // appended by the leader under the topic's fsync policy
	AcksAll    int8 = -1 // committed by the replica quorum
)

// Every header is a msgpack array of its fields in declaration order
// (`as_array`); hot headers also have hand-written codecs that produce the
// same bytes.

// ProduceRequest appends the batches of the payload (one or more, concatenated)
// to one partition. With AcksNone the broker sends no response.
type ProduceRequest struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Topic     string
	Partition int32
	Acks      int8
	TimeoutMs int32
}

// ProduceResponse acknowledges a produce request.
type ProduceResponse struct {
	_msgpack   struct{} `msgpack:",as_array"`
	Error      ErrorCode
	Message    string
	BaseOffset int64 // offset of the first record stored
	LastOffset int64 // offset of the last record stored
}

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
// below it.
type FetchResponse struct {
	_msgpack       struct{} `msgpack:",as_array"`
	Error          ErrorCode
	Message        string
	HighWatermark  int64 // offset after the last committed record
	LogStartOffset int64
}

// ListOffsetsRequest resolves Timestamp (unix ms, or OffsetLatest /
// OffsetEarliest) to an offset of one partition.
type ListOffsetsRequest struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Topic     string
	Partition int32
	Timestamp int64
}

// ListOffsetsResponse gives the first offset whose timestamp is at or after the
// requested one (the log end when there is none).
type ListOffsetsResponse struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Error     ErrorCode
	Message   string
	Offset    int64
	Timestamp int64 // max timestamp of the batch found, -1 for latest/earliest
}

// MetadataRequest asks for the given topics, or all when Topics is empty.
type MetadataRequest struct {
	_msgpack struct{} `msgpack:",as_array"`
	Topics   []string
}

// BrokerInfo names a broker and its client address.
type BrokerInfo struct {
	_msgpack struct{} `msgpack:",as_array"`
	ID       string
	Addr     string
}

// PartitionMetadata describes where a partition lives and which keys it owns:
// a key whose xxhash64 h satisfies HashStart <= h <= HashEnd belongs to it.
type PartitionMetadata struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Partition int32
	Leader    string // broker ID
	Term      uint64
	HashStart uint64
	HashEnd   uint64
}

// TopicMetadata is one topic of a metadata response.
type TopicMetadata struct {
	_msgpack   struct{} `msgpack:",as_array"`
	Error      ErrorCode
	Message    string
	Name       string
	Partitions []PartitionMetadata
}

// MetadataResponse lists brokers and topics.
type MetadataResponse struct {
	_msgpack struct{} `msgpack:",as_array"`
	Error    ErrorCode
	Message  string
	Brokers  []BrokerInfo
	Topics   []TopicMetadata
}

// CreateTopicRequest creates a topic; unknown config keys are rejected.
type CreateTopicRequest struct {
	_msgpack   struct{} `msgpack:",as_array"`
	Name       string
	Partitions int32
	Configs    map[string]string
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
	Configs  map[string]string
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
	Configs    map[string]string
	Partitions []PartitionInfo
}

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
	_msgpack   struct{} `msgpack:",as_array"`
	Partitions []SubscribePartition
	Credit     int64 // initial byte credit
}

// SubscribeResponse confirms a subscription; per-partition errors and
// resolved start offsets are in Partitions, in request order.
type SubscribeResponse struct {
	_msgpack   struct{} `msgpack:",as_array"`
	Error      ErrorCode
	Message    string
	Partitions []SubscribePartitionResult
}

// SubscribePartitionResult is the outcome for one subscribed partition.
type SubscribePartitionResult struct {
	_msgpack struct{} `msgpack:",as_array"`
	Error    ErrorCode
	Message  string
	Offset   int64 // resolved start offset
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
// others).
type SubscribeData struct {
	_msgpack      struct{} `msgpack:",as_array"`
	Topic         string
	Partition     int32
	Error         ErrorCode
	Message       string
	HighWatermark int64
}
