package wire

// Broker states in ClusterBroker.State.
const (
	BrokerStateAlive  = "alive"  // holds a lease
	BrokerStateFenced = "fenced" // its lease expired and the fence is committed
)

// BrokerHeartbeatRequest (APIBrokerHeartbeat) is sent by every broker to the
// metadata leader, once per heartbeat interval, on a connection that presents
// a broker certificate of the cluster CA. It both registers (or re-registers)
// the broker and renews its lease: the first heartbeat of a broker id, or of
// a new Instance of it, registers it and starts a new Epoch.
type BrokerHeartbeatRequest struct {
	_msgpack  struct{} `msgpack:",as_array"`
	ClusterID string   // "" when joining for the first time
	BrokerID  string
	Instance  string // differs on every broker process start
	RaftID    uint64 // the broker's raft node id, the same in every group
	Addr      string // address for clients and brokers
	Zone      string // "" when the broker declares none
	Applied   uint64 // metadata log index the sender has applied
}

// BrokerHeartbeatResponse answers a heartbeat. With NOT_LEADER, LeaderID and
// LeaderAddr name the metadata leader when known; the sender retries there.
type BrokerHeartbeatResponse struct {
	_msgpack   struct{} `msgpack:",as_array"`
	Error      ErrorCode
	Message    string
	ClusterID  string
	LeaderID   string // metadata leader
	LeaderAddr string
	Epoch      uint64 // the sender's registration epoch
	LeaseMs    int64  // lease granted, from when the leader received the request
}

// ClusterInfoRequest (APIClusterInfo) asks any broker for its view of the
// cluster. It has no fields: an empty array.
type ClusterInfoRequest struct {
	_msgpack struct{} `msgpack:",as_array"`
}

// ClusterBroker is one registered broker in a ClusterInfoResponse.
type ClusterBroker struct {
	_msgpack   struct{} `msgpack:",as_array"`
	ID         string
	Addr       string
	Zone       string
	State      string // BrokerStateAlive or BrokerStateFenced
	LeaseAgeMs int64  // since its last heartbeat; -1 unknown (answered by a non-leader)
	Epoch      uint64 // registration epoch
	Leads      int32  // partitions it leads
	Hosts      int32  // partitions it hosts a replica of
	Voter      bool   // a voter of the metadata group (else a learner)
	Applied    uint64 // metadata log index it has applied
}

// ClusterInfoResponse is the answering broker's view of the cluster: its
// copy of the metadata (brokers, voters) and of the metadata group's raft
// state.
type ClusterInfoResponse struct {
	_msgpack    struct{} `msgpack:",as_array"`
	Error       ErrorCode
	Message     string
	ClusterID   string
	Brokers     []ClusterBroker // at most MaxListLen
	MetaLeader  string          // broker id of the metadata leader, "" unknown
	MetaTerm    uint64
	MetaCommit  uint64
	MetaApplied uint64   // applied by the answering broker
	Voters      []string // broker ids, at most MaxListLen
	Learners    []string // broker ids, at most MaxListLen
	// Moves are the replica moves in progress, at most MaxListLen.
	Moves []ClusterMove
	// Drains are the brokers being drained, at most MaxListLen.
	Drains []ClusterDrain
}

const minClusterBrokerSize = 1 + 10

// AppendMsgpack appends the header's msgpack encoding.
func (m BrokerHeartbeatRequest) AppendMsgpack(b []byte) []byte {
	b = mpString(mpString(mpString(mpArray(b, 7), m.ClusterID), m.BrokerID), m.Instance)
	b = mpString(mpString(mpUint64(b, m.RaftID), m.Addr), m.Zone)
	return mpUint64(b, m.Applied)
}

// ParseMsgpack decodes exactly one header from b.
func (m *BrokerHeartbeatRequest) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	r.fields(7)
	r.string(&m.ClusterID)
	r.string(&m.BrokerID)
	r.string(&m.Instance)
	m.RaftID = r.uint64()
	r.string(&m.Addr)
	r.string(&m.Zone)
	m.Applied = r.uint64()
	return r.finish("broker heartbeat request")
}

// AppendMsgpack appends the header's msgpack encoding.
func (m BrokerHeartbeatResponse) AppendMsgpack(b []byte) []byte {
	b = mpString(mpString(mpCode(mpArray(b, 7), m.Error), m.Message), m.ClusterID)
	b = mpString(mpString(b, m.LeaderID), m.LeaderAddr)
	return mpInt64(mpUint64(b, m.Epoch), m.LeaseMs)
}

// ParseMsgpack decodes exactly one header from b.
func (m *BrokerHeartbeatResponse) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	r.fields(7)
	m.Error = r.code16()
	r.string(&m.Message)
	r.string(&m.ClusterID)
	r.string(&m.LeaderID)
	r.string(&m.LeaderAddr)
	m.Epoch, m.LeaseMs = r.uint64(), r.int64()
	return r.finish("broker heartbeat response")
}

// Err returns the response's error as an *Error (nil for ErrNone), the
// metadata leader hint included.
func (m *BrokerHeartbeatResponse) Err() error {
	return leaderError(m.Error, m.Message, m.LeaderID, m.LeaderAddr)
}

// AppendMsgpack appends the header's msgpack encoding.
func (m ClusterInfoRequest) AppendMsgpack(b []byte) []byte { return mpArray(b, 0) }

// ParseMsgpack decodes exactly one header from b.
func (m *ClusterInfoRequest) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	r.fields(0)
	return r.finish("cluster info request")
}

// AppendMsgpack appends the msgpack encoding.
func (m ClusterBroker) AppendMsgpack(b []byte) []byte { return appendClusterBroker(b, &m) }

func appendClusterBroker(b []byte, m *ClusterBroker) []byte {
	b = mpString(mpString(mpString(mpArray(b, 10), m.ID), m.Addr), m.Zone)
	b = mpUint64(mpInt64(mpString(b, m.State), m.LeaseAgeMs), m.Epoch)
	return mpUint64(mpBool(mpInt32(mpInt32(b, m.Leads), m.Hosts), m.Voter), m.Applied)
}

func (m *ClusterBroker) read(r *mpReader) {
	r.fields(10)
	r.string(&m.ID)
	r.string(&m.Addr)
	r.string(&m.Zone)
	r.string(&m.State)
	m.LeaseAgeMs, m.Epoch = r.int64(), r.uint64()
	m.Leads, m.Hosts = r.int32(), r.int32()
	m.Voter, m.Applied = r.bool(), r.uint64()
}

// ParseMsgpack decodes exactly one value from b.
func (m *ClusterBroker) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	m.read(&r)
	return r.finish("cluster broker")
}

// AppendMsgpack appends the header's msgpack encoding.
func (m ClusterInfoResponse) AppendMsgpack(b []byte) []byte {
	b = mpString(mpString(mpCode(mpArray(b, 12), m.Error), m.Message), m.ClusterID)
	b = mpString(mpList(b, m.Brokers, appendClusterBroker), m.MetaLeader)
	b = mpUint64(mpUint64(mpUint64(b, m.MetaTerm), m.MetaCommit), m.MetaApplied)
	b = mpStrings(mpStrings(b, m.Voters), m.Learners)
	return mpList(mpList(b, m.Moves, appendClusterMove), m.Drains, appendClusterDrain)
}

// ParseMsgpack decodes exactly one header from b.
func (m *ClusterInfoResponse) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	r.fields(12)
	m.Error = r.code16()
	r.string(&m.Message)
	r.string(&m.ClusterID)
	m.Brokers = readList(&r, minClusterBrokerSize, "brokers", (*ClusterBroker).read)
	r.string(&m.MetaLeader)
	m.MetaTerm, m.MetaCommit, m.MetaApplied = r.uint64(), r.uint64(), r.uint64()
	m.Voters = r.strings("voters")
	m.Learners = r.strings("learners")
	m.Moves = readList(&r, minClusterMoveSize, "moves", (*ClusterMove).read)
	m.Drains = readList(&r, minClusterDrainSize, "drains", (*ClusterDrain).read)
	return r.finish("cluster info response")
}
