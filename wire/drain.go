package wire

// Drain modes of a DrainBrokerRequest.
const (
	// DrainLeadersOnly: the broker keeps its replicas and leads nothing.
	DrainLeadersOnly int8 = 1
	// DrainFull: the broker leads nothing and its replicas move to other
	// brokers.
	DrainFull int8 = 2
)

// Drain states in DrainBrokerResponse.Mode and ClusterDrain.Mode.
const (
	DrainStateNone        = "none"
	DrainStateLeadersOnly = "leaders-only"
	DrainStateFull        = "full"
)

// DrainBrokerRequest (APIDrainBroker) marks a broker draining (Mode), or
// clears the mark (Undrain; Mode is then ignored), through any broker. The
// mark is committed to the cluster metadata before the answer. Sent again
// with the same fields it changes nothing and reports progress, which is how
// a caller waits for a drain to finish.
type DrainBrokerRequest struct {
	_msgpack struct{} `msgpack:",as_array"`
	BrokerID string
	Mode     int8 // DrainLeadersOnly or DrainFull
	Undrain  bool
}

// DrainBrokerResponse reports the broker's drain state after the request.
type DrainBrokerResponse struct {
	_msgpack struct{} `msgpack:",as_array"`
	Error    ErrorCode
	Message  string
	BrokerID string
	Mode     string // DrainStateNone, DrainStateLeadersOnly or DrainStateFull
	Hosts    int32  // partitions it still hosts (replicas and move targets)
	Leads    int32  // partitions it still leads; -1 when it could not be asked
	Moves    int32  // replica moves in progress that involve it
}

// ClusterMove is a replica move in progress in a ClusterInfoResponse.
type ClusterMove struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Topic     string
	Partition int32
	From      string // broker id of the replica being replaced
	To        string // broker id of the new replica
	Source    string // broker id of the partition's leader when the move began
}

// ClusterDrain is a broker being drained in a ClusterInfoResponse.
type ClusterDrain struct {
	_msgpack struct{} `msgpack:",as_array"`
	ID       string
	Mode     string // DrainStateLeadersOnly or DrainStateFull
}

const (
	minClusterMoveSize  = 1 + 5
	minClusterDrainSize = 1 + 2
)

// AppendMsgpack appends the header's msgpack encoding.
func (m DrainBrokerRequest) AppendMsgpack(b []byte) []byte {
	return mpBool(mpInt8(mpString(mpArray(b, 3), m.BrokerID), m.Mode), m.Undrain)
}

// ParseMsgpack decodes exactly one header from b.
func (m *DrainBrokerRequest) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	r.fields(3)
	r.string(&m.BrokerID)
	m.Mode = r.int8()
	m.Undrain = r.bool()
	return r.finish("drain broker request")
}

// AppendMsgpack appends the header's msgpack encoding.
func (m DrainBrokerResponse) AppendMsgpack(b []byte) []byte {
	b = mpString(mpString(mpCode(mpArray(b, 7), m.Error), m.Message), m.BrokerID)
	return mpInt32(mpInt32(mpInt32(mpString(b, m.Mode), m.Hosts), m.Leads), m.Moves)
}

// ParseMsgpack decodes exactly one header from b.
func (m *DrainBrokerResponse) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	r.fields(7)
	m.Error = r.code16()
	r.string(&m.Message)
	r.string(&m.BrokerID)
	r.string(&m.Mode)
	m.Hosts, m.Leads, m.Moves = r.int32(), r.int32(), r.int32()
	return r.finish("drain broker response")
}

// AppendMsgpack appends the msgpack encoding.
func (m ClusterMove) AppendMsgpack(b []byte) []byte { return appendClusterMove(b, &m) }

func appendClusterMove(b []byte, m *ClusterMove) []byte {
	b = mpInt32(mpString(mpArray(b, 5), m.Topic), m.Partition)
	return mpString(mpString(mpString(b, m.From), m.To), m.Source)
}

func (m *ClusterMove) read(r *mpReader) {
	r.fields(5)
	r.string(&m.Topic)
	m.Partition = r.int32()
	r.string(&m.From)
	r.string(&m.To)
	r.string(&m.Source)
}

// ParseMsgpack decodes exactly one value from b.
func (m *ClusterMove) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	m.read(&r)
	return r.finish("cluster move")
}

// AppendMsgpack appends the msgpack encoding.
func (m ClusterDrain) AppendMsgpack(b []byte) []byte { return appendClusterDrain(b, &m) }

func appendClusterDrain(b []byte, m *ClusterDrain) []byte {
	return mpString(mpString(mpArray(b, 2), m.ID), m.Mode)
}

func (m *ClusterDrain) read(r *mpReader) {
	r.fields(2)
	r.string(&m.ID)
	r.string(&m.Mode)
}

// ParseMsgpack decodes exactly one value from b.
func (m *ClusterDrain) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	m.read(&r)
	return r.finish("cluster drain")
}
