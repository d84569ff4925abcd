package group

import (
	"encoding/binary"
	"fmt"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Envelope is one raft message of one group, as the transport carries it.
type Envelope struct {
	Group uint64
	Msg   *pb.Message
}

// AppendEnvelopes appends the encoding of a batch of envelopes to dst (see
// the package documentation for the layout). It fails only if a message
// cannot be encoded.
func AppendEnvelopes(dst []byte, envs []Envelope) ([]byte, error) {
	dst = binary.AppendUvarint(dst, uint64(len(envs)))
	opts := proto.MarshalOptions{UseCachedSize: true}
	for i, e := range envs {
		if e.Group == 0 || e.Msg == nil {
			return dst, fmt.Errorf("group: envelope %d: group %d, message %v: %w", i, e.Group, e.Msg != nil, ErrMalformedEnvelopes)
		}
		dst = binary.AppendUvarint(dst, e.Group)
		dst = binary.AppendUvarint(dst, uint64(proto.Size(e.Msg)))
		var err error
		if dst, err = opts.MarshalAppend(dst, e.Msg); err != nil {
			return dst, fmt.Errorf("group: encode envelope %d: %w", i, err)
		}
	}
	return dst, nil
}

// ParseEnvelopes decodes a batch of at most maxCount envelopes that must
// fill b exactly. The messages do not alias b. It never panics, and sizes
// nothing from a count or length it has not bounded by the bytes present.
func ParseEnvelopes(b []byte, maxCount int) ([]Envelope, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, fmt.Errorf("%w: bad count", ErrMalformedEnvelopes)
	}
	b = b[n:]
	// Each envelope takes at least 2 bytes (group and length varints).
	if count > uint64(maxCount) || count > uint64(len(b)/2) {
		return nil, fmt.Errorf("%w: %d envelopes in %d bytes, limit %d", ErrMalformedEnvelopes, count, len(b), maxCount)
	}
	envs := make([]Envelope, 0, count)
	for i := range count {
		group, n := binary.Uvarint(b)
		if n <= 0 || group == 0 {
			return nil, fmt.Errorf("%w: envelope %d: bad group", ErrMalformedEnvelopes, i)
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size > uint64(len(b)-n) {
			return nil, fmt.Errorf("%w: envelope %d: bad length", ErrMalformedEnvelopes, i)
		}
		b = b[n:]
		m := new(pb.Message)
		if err := proto.Unmarshal(b[:size], m); err != nil {
			return nil, fmt.Errorf("%w: envelope %d: %w", ErrMalformedEnvelopes, i, err)
		}
		b = b[size:]
		envs = append(envs, Envelope{Group: group, Msg: m})
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformedEnvelopes, len(b))
	}
	return envs, nil
}
