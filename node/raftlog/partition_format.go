package raftlog

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// On-disk formats of a partition's raft state (see doc.go, "Partition
// files"). All integers are little-endian; the constants below are format
// constants.
const (
	sideIndexName   = "raft.idx"
	sideIndexTmp    = "raft.idx.tmp"
	stateFileName   = "raft.state"
	stateFileTmp    = "raft.state.tmp"
	commitFileName  = "raft.commit"
	sideIndexMagic  = "RAFKPIX1"
	stateFileMagic  = "RAFKPST2"
	stateFileMagic1 = "RAFKPST1" // without the configuration's index; read, never written
	sideHeaderSize  = 24         // magic, u64 index of the first record, u32 CRC of bytes 0..15, u32 zero
	sideRecordSize  = 20         // i64 base offset, u64 term, u32 CRC of (index, base offset, term)
	commitFileSize  = 12         // u64 commit, u32 CRC of bytes 0..7
	controlVersion  = 1          // first byte of a control entry body
	snapDataVersion = 2          // first byte of a partition snapshot's data
	snapDataSize    = 25         // version, i64 log start offset, u64 first index, u64 configuration index
	snapDataSize1   = 17         // version 1: without the configuration index
	maxConfStateLen = 1 << 20
)

// appendControlBody encodes the body of the control batch that stores a
// raft entry without a record batch: a no-op (empty normal entry) or a
// configuration change.
//
//	0  u8  controlVersion (1)
//	1  u8  entry type (raftpb.EntryType)
//	2  …   entry data
func appendControlBody(dst []byte, t pb.EntryType, data []byte) []byte {
	dst = append(dst, controlVersion, byte(t))
	return append(dst, data...)
}

// parseControlBody decodes a control entry body. The data is a sub-slice of
// b. A normal entry must have no data (a normal entry with data is stored
// as its own batch).
func parseControlBody(b []byte) (pb.EntryType, []byte, error) {
	if len(b) < 2 {
		return 0, nil, fmt.Errorf("%w: control entry body of %d bytes", ErrCorrupt, len(b))
	}
	if b[0] != controlVersion {
		return 0, nil, fmt.Errorf("%w: control entry body version %d", ErrCorrupt, b[0])
	}
	t := pb.EntryType(b[1])
	switch t {
	case pb.EntryNormal:
		if len(b) > 2 {
			return 0, nil, fmt.Errorf("%w: control entry of type normal with %d bytes of data", ErrCorrupt, len(b)-2)
		}
	case pb.EntryConfChange, pb.EntryConfChangeV2:
	default:
		return 0, nil, fmt.Errorf("%w: control entry of unknown type %d", ErrCorrupt, b[1])
	}
	return t, b[2:], nil
}

// sideRec is one side-index record: where entry i's batch starts and its
// term.
type sideRec struct {
	base int64
	term uint64
}

func appendSideHeader(dst []byte, first uint64) []byte {
	dst = append(dst, sideIndexMagic...)
	dst = binary.LittleEndian.AppendUint64(dst, first)
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[len(dst)-16:], castagnoli))
	return binary.LittleEndian.AppendUint32(dst, 0)
}

func appendSideRecord(dst []byte, index uint64, r sideRec) []byte {
	var b [24]byte
	binary.LittleEndian.PutUint64(b[0:], index)
	binary.LittleEndian.PutUint64(b[8:], uint64(r.base))
	binary.LittleEndian.PutUint64(b[16:], r.term)
	dst = append(dst, b[8:]...)
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(b[:], castagnoli))
}

// parseSideIndex decodes a side index file: the index of its first record
// and the records of its longest valid prefix (whole, checksummed, base
// offsets strictly increasing). A bad header is ErrCorrupt.
func parseSideIndex(b []byte) (uint64, []sideRec, error) {
	if len(b) < sideHeaderSize || string(b[:8]) != sideIndexMagic ||
		binary.LittleEndian.Uint32(b[16:]) != crc32.Checksum(b[:16], castagnoli) || binary.LittleEndian.Uint32(b[20:]) != 0 {
		return 0, nil, fmt.Errorf("%w: side index header", ErrCorrupt)
	}
	first := binary.LittleEndian.Uint64(b[8:])
	if first == 0 {
		return 0, nil, fmt.Errorf("%w: side index starts at index 0", ErrCorrupt)
	}
	b = b[sideHeaderSize:]
	recs := make([]sideRec, 0, len(b)/sideRecordSize)
	var buf [24]byte
	for k := 0; len(b) >= sideRecordSize; k++ {
		binary.LittleEndian.PutUint64(buf[0:], first+uint64(k))
		copy(buf[8:], b[:16])
		r := sideRec{base: int64(binary.LittleEndian.Uint64(b)), term: binary.LittleEndian.Uint64(b[8:])}
		if binary.LittleEndian.Uint32(b[16:]) != crc32.Checksum(buf[:], castagnoli) || r.base < 0 ||
			len(recs) > 0 && r.base <= recs[len(recs)-1].base {
			break
		}
		recs = append(recs, r)
		b = b[sideRecordSize:]
	}
	return first, recs, nil
}

// persisted is the content of the state file: the hard state, the
// configuration and the log's base (the entry before the first one kept,
// whose successor starts at baseOffset).
//
//	0   8  stateFileMagic "RAFKPST2"
//	8   8  u64 term
//	16  8  u64 vote
//	24  8  u64 commit
//	32  8  i64 base offset: where entry baseIndex+1 starts
//	40  8  u64 base index
//	48  8  u64 base term
//	56  8  u64 configuration index: the last configuration change the
//	          configuration includes (0: unknown)
//	64  1  u8 resetting: 1 while a snapshot replaces the log
//	65  4  u32 length of the configuration
//	69  …  raftpb.ConfState, protobuf-encoded
//	…   4  u32 CRC-32C of every byte before
//
// A file of the first version ("RAFKPST1") has no configuration index: the
// fields from resetting on start 8 bytes earlier, and it reads as index 0.
type persisted struct {
	term, vote, commit uint64
	baseOffset         int64
	baseIndex          uint64
	baseTerm           uint64
	confIndex          uint64
	resetting          bool
	cs                 *pb.ConfState
}

func appendState(dst []byte, p *persisted) ([]byte, error) {
	cs, err := proto.Marshal(pb.EnsureConfState(p.cs))
	if err != nil {
		return dst, fmt.Errorf("raftlog: encode configuration: %w", err)
	}
	start := len(dst)
	dst = append(dst, stateFileMagic...)
	for _, v := range []uint64{p.term, p.vote, p.commit, uint64(p.baseOffset), p.baseIndex, p.baseTerm, p.confIndex} {
		dst = binary.LittleEndian.AppendUint64(dst, v)
	}
	r := byte(0)
	if p.resetting {
		r = 1
	}
	dst = append(dst, r)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(cs)))
	dst = append(dst, cs...)
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli)), nil
}

func parseState(b []byte) (persisted, error) {
	var p persisted
	fixed := 73 // the fields around the configuration, of the current version
	if len(b) >= 8 && string(b[:8]) == stateFileMagic1 {
		fixed = 65
	} else if len(b) >= 8 && string(b[:8]) != stateFileMagic {
		return p, fmt.Errorf("%w: state file with bad magic", ErrCorrupt)
	}
	if len(b) < fixed {
		return p, fmt.Errorf("%w: state file of %d bytes", ErrCorrupt, len(b))
	}
	if binary.LittleEndian.Uint32(b[len(b)-4:]) != crc32.Checksum(b[:len(b)-4], castagnoli) {
		return p, fmt.Errorf("%w: state file checksum", ErrCorrupt)
	}
	u := func(off int) uint64 { return binary.LittleEndian.Uint64(b[off:]) }
	p.term, p.vote, p.commit = u(8), u(16), u(24)
	p.baseOffset, p.baseIndex, p.baseTerm = int64(u(32)), u(40), u(48)
	at := 56
	if fixed == 73 {
		p.confIndex = u(56)
		at = 64
	}
	p.resetting = b[at] == 1
	n := binary.LittleEndian.Uint32(b[at+1:])
	if b[at] > 1 || p.baseOffset < 0 || n > maxConfStateLen || int(n) != len(b)-fixed {
		return p, fmt.Errorf("%w: state file fields", ErrCorrupt)
	}
	p.cs = &pb.ConfState{}
	if err := proto.Unmarshal(b[at+5:at+5+int(n)], p.cs); err != nil {
		return p, fmt.Errorf("%w: state file configuration: %w", ErrCorrupt, err)
	}
	return p, nil
}

// appendSnapData encodes a partition snapshot's data: the position the log
// restarts at, and the index of the last configuration change the
// snapshot's configuration includes (which may lie after the snapshot's
// index: the configuration is the leader's latest).
//
//	0  u8   snapDataVersion (2)
//	1  i64  log start offset
//	9  u64  index of the first entry (the snapshot's index + 1)
//	17 u64  configuration index (0: unknown)
//
// Version 1 data ends before the configuration index.
func appendSnapData(dst []byte, start int64, firstIndex, confIndex uint64) []byte {
	dst = append(dst, snapDataVersion)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(start))
	dst = binary.LittleEndian.AppendUint64(dst, firstIndex)
	return binary.LittleEndian.AppendUint64(dst, confIndex)
}

// ParseSnapshotData decodes a partition snapshot's data (see Snapshot): the
// offset the log starts at, the index of its first entry and the index of
// the last configuration change its configuration includes (0 when the
// data does not say).
func ParseSnapshotData(b []byte) (start int64, firstIndex, confIndex uint64, err error) {
	switch {
	case len(b) == snapDataSize && b[0] == snapDataVersion:
		confIndex = binary.LittleEndian.Uint64(b[17:])
	case len(b) == snapDataSize1 && b[0] == 1:
	default:
		return 0, 0, 0, fmt.Errorf("%w: partition snapshot data of %d bytes", ErrCorrupt, len(b))
	}
	start = int64(binary.LittleEndian.Uint64(b[1:]))
	firstIndex = binary.LittleEndian.Uint64(b[9:])
	if start < 0 || firstIndex == 0 {
		return 0, 0, 0, fmt.Errorf("%w: partition snapshot data: start %d, first index %d", ErrCorrupt, start, firstIndex)
	}
	return start, firstIndex, confIndex, nil
}

func appendCommit(dst []byte, commit uint64) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, commit)
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[len(dst)-8:], castagnoli))
}

func parseCommit(b []byte) (uint64, bool) {
	if len(b) != commitFileSize || binary.LittleEndian.Uint32(b[8:]) != crc32.Checksum(b[:8], castagnoli) {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b), true
}
