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
	APIBrokerHeartbeat  API = 12 // control, broker -> broker, broker certificate only
	APIRaft             API = 13 // long-lived stream broker -> broker, no responses
	APIClusterInfo      API = 14 // control
	APIDrainBroker      API = 15 // control
	APIVerify           API = 16 // control: compare a topic's replicas now
	APIReplicaDigests   API = 17 // control, broker -> broker, broker certificate only
)

// Version is the only version of every API this release speaks.
const Version uint16 = 0

var apiNames = map[API]string{
	APIProduce: "produce", APIFetch: "fetch", APIListOffsets: "list_offsets",
	APIMetadata: "metadata", APICreateTopic: "create_topic", APIDeleteTopic: "delete_topic",
	APIDescribeTopic: "describe_topic", APIAlterTopicConfig: "alter_topic_config",
	APISubscribe: "subscribe", APISubscribeCredit: "subscribe_credit", APISubscribeData: "subscribe_data",
	APIBrokerHeartbeat: "broker_heartbeat", APIRaft: "raft", APIClusterInfo: "cluster_info",
	APIDrainBroker: "drain_broker", APIVerify: "verify", APIReplicaDigests: "replica_digests",
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

// The request and response headers, one file per API family, each type with
// its codec (see msgpack.go): produce.go, fetch.go, offsets.go, metadata.go,
// topic_admin.go, subscribe.go, cluster.go, raft.go, verify.go.
