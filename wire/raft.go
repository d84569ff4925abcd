package wire

import "fmt"

// MaxRaftBatch bounds the raft messages of one APIRaft frame (format: a
// receiver rejects a frame that claims more).
const MaxRaftBatch = 4096

// RaftMessages is the header of an APIRaft frame. A broker opens one
// long-lived stream to each peer broker and sends these frames one way,
// never answered: each carries Count raft messages, of any groups, as an
// opaque payload whose encoding belongs to the broker's raft transport. This
// package checks only Count (at most MaxRaftBatch) and the frame size.
type RaftMessages struct {
	_msgpack  struct{} `msgpack:",as_array"`
	ClusterID string
	From      uint64 // sender's raft id
	FromAddr  string // sender's address, so the receiver can answer on its own stream
	Count     uint32 // messages in the payload, at most MaxRaftBatch
}

// AppendMsgpack appends the header's msgpack encoding.
func (m RaftMessages) AppendMsgpack(b []byte) []byte {
	b = mpString(mpUint64(mpString(mpArray(b, 4), m.ClusterID), m.From), m.FromAddr)
	return mpUint32(b, m.Count)
}

// ParseMsgpack decodes exactly one header from b; a Count above MaxRaftBatch
// is malformed.
func (m *RaftMessages) ParseMsgpack(b []byte) error {
	r := mpReader{b: b}
	r.fields(4)
	r.string(&m.ClusterID)
	m.From = r.uint64()
	r.string(&m.FromAddr)
	m.Count = r.uint32()
	if m.Count > MaxRaftBatch {
		r.failf("%d raft messages, limit %d", m.Count, MaxRaftBatch)
	}
	return r.finish("raft messages")
}

// SizeMsgpack is the length of the header's msgpack encoding.
func (m *RaftMessages) SizeMsgpack() int {
	return 1 + mpStringSize(m.ClusterID) + 9 + mpStringSize(m.FromAddr) + 5
}

// CheckFrame checks a raft frame before it is sent: Count at most
// MaxRaftBatch, and the whole frame (fixed fields, this header and a payload
// of payloadLen bytes) within maxFrameSize (<= 0 means DefaultMaxFrameSize),
// the limit the receiving FrameReader applies. Errors wrap ErrMalformedFrame
// or ErrFrameTooLarge.
func (m *RaftMessages) CheckFrame(payloadLen, maxFrameSize int) error {
	if maxFrameSize <= 0 {
		maxFrameSize = DefaultMaxFrameSize
	}
	if m.Count > MaxRaftBatch {
		return fmt.Errorf("%w: %d raft messages, limit %d", ErrMalformedFrame, m.Count, MaxRaftBatch)
	}
	if payloadLen < 0 {
		return fmt.Errorf("%w: raft payload of %d bytes", ErrMalformedFrame, payloadLen)
	}
	if n := FrameFixedSize + m.SizeMsgpack() + payloadLen; n > maxFrameSize {
		return fmt.Errorf("%w: raft frame of %d bytes, limit %d", ErrFrameTooLarge, n, maxFrameSize)
	}
	return nil
}
