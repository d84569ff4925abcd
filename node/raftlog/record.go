package raftlog

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Format constants (see the package documentation).
const (
	// fileMagic starts every log file; its last byte is the format version.
	fileMagic = "RAFKRLG1"
	// recordHeaderSize is the length and checksum before each payload.
	recordHeaderSize = 8
)

// maxRecordLimit is the largest MaxRecordBytes accepted: the length field is
// a u32, and a slice length must fit an int on every platform.
const maxRecordLimit = math.MaxInt32

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendRecord appends m as one record to dst. It fails with
// ErrRecordTooLarge when the payload exceeds maxBytes.
func appendRecord(dst []byte, m *pb.Message, maxBytes int) ([]byte, error) {
	start := len(dst)
	dst = append(dst, make([]byte, recordHeaderSize)...)
	dst, err := proto.MarshalOptions{Deterministic: true}.MarshalAppend(dst, m)
	if err != nil {
		return dst[:start], fmt.Errorf("raftlog: encode record: %w", err)
	}
	n := len(dst) - start - recordHeaderSize
	if n > maxBytes {
		return dst[:start], fmt.Errorf("%w: %d bytes, limit %d", ErrRecordTooLarge, n, maxBytes)
	}
	if n == 0 {
		// m.Type is always set, so the payload is never empty; a zero
		// length is what a zero-filled tail reads as.
		panic("BUG: raftlog: empty record payload")
	}
	binary.LittleEndian.PutUint32(dst[start:], uint32(n))
	crc := crc32.Update(0, castagnoli, dst[start:start+4])
	crc = crc32.Update(crc, castagnoli, dst[start+recordHeaderSize:])
	binary.LittleEndian.PutUint32(dst[start+4:], crc)
	return dst, nil
}

// parseRecord decodes the record at the start of b. It returns the payload
// (a sub-slice of b, valid as long as b) and the bytes consumed. A record
// that is incomplete, longer than maxBytes, or fails its checksum is
// ErrTorn; parseRecord never reads past b nor allocates.
func parseRecord(b []byte, maxBytes int) (payload []byte, n int, err error) {
	if len(b) < recordHeaderSize {
		return nil, 0, fmt.Errorf("%w: %d header bytes of %d", ErrTorn, len(b), recordHeaderSize)
	}
	size := binary.LittleEndian.Uint32(b)
	if size == 0 || uint64(size) > uint64(maxBytes) {
		return nil, 0, fmt.Errorf("%w: length %d outside [1, %d]", ErrTorn, size, maxBytes)
	}
	if uint64(size) > uint64(len(b)-recordHeaderSize) {
		return nil, 0, fmt.Errorf("%w: length %d, %d bytes left", ErrTorn, size, len(b)-recordHeaderSize)
	}
	end := recordHeaderSize + int(size)
	crc := crc32.Update(0, castagnoli, b[:4])
	crc = crc32.Update(crc, castagnoli, b[recordHeaderSize:end])
	if want := binary.LittleEndian.Uint32(b[4:]); crc != want {
		return nil, 0, fmt.Errorf("%w: checksum %#08x, want %#08x", ErrTorn, crc, want)
	}
	return b[recordHeaderSize:end], end, nil
}

// decodeSave decodes a record payload into the Save it carries. The result
// does not alias payload.
func decodeSave(payload []byte) (*pb.Message, error) {
	m := new(pb.Message)
	if err := proto.Unmarshal(payload, m); err != nil {
		return nil, fmt.Errorf("%w: decode record: %w", ErrCorrupt, err)
	}
	if m.Type == nil || m.GetType() != pb.MsgStorageAppend {
		return nil, fmt.Errorf("%w: record of type %v", ErrCorrupt, m.GetType())
	}
	return m, nil
}

// saveMessage builds the payload of a Save. Nil or empty arguments are left
// out.
func saveMessage(hs *pb.HardState, ents []*pb.Entry, snap *pb.Snapshot) *pb.Message {
	m := &pb.Message{Type: pb.MsgStorageAppend.Enum(), Entries: ents}
	if hs != nil {
		m.Term, m.Vote, m.Commit = new(hs.GetTerm()), new(hs.GetVote()), new(hs.GetCommit())
	}
	if snap.GetMetadata().GetIndex() != 0 {
		m.Snapshot = snap
	}
	return m
}

// hardState returns the hard state m carries, or nil.
func hardState(m *pb.Message) *pb.HardState {
	if m.Term == nil && m.Vote == nil && m.Commit == nil {
		return nil
	}
	return &pb.HardState{Term: new(m.GetTerm()), Vote: new(m.GetVote()), Commit: new(m.GetCommit())}
}
