package meta

import (
	"fmt"
	"maps"
	"slices"
)

// SnapshotVersion is the first byte of a snapshot. Part of the snapshot
// format: Restore refuses a version it does not know. Version 1 had no drain
// mode per broker and no moves, version 2 no term per move; Restore still
// reads both.
const SnapshotVersion = 3

// Snapshot returns the whole state as bytes for a raft snapshot:
//
//	byte SnapshotVersion | string cluster id | uvarint applied |
//	uvarint brokers version | uvarint topics version |
//	uvarint(n) | broker* (sorted by id) | uvarint(m) | topic* (sorted by name) |
//	uvarint(k) | (string topic | move)* (by topic, then partition)
//
//	broker: string id | uvarint raft id | string instance | string addr |
//	        string zone | byte state | uvarint epoch | uvarint registered |
//	        byte drain mode
//	move:   varint partition | string add | string remove | string source |
//	        uvarint term
//
// and topics as in commands. Two states that applied the same entries give
// the same bytes. The error is always nil today; it is there for formats
// that can fail.
func (s *State) Snapshot() ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b := []byte{SnapshotVersion}
	b = appendString(b, s.clusterID)
	b = appendUvarint(b, s.applied)
	b = appendUvarint(b, s.versions.Brokers)
	b = appendUvarint(b, s.versions.Topics)
	b = appendUvarint(b, uint64(len(s.brokers)))
	for _, br := range s.brokersLocked() {
		b = appendBroker(b, &br)
	}
	b = appendUvarint(b, uint64(len(s.topics)))
	for _, name := range slices.Sorted(maps.Keys(s.topics)) {
		b = appendTopic(b, s.topics[name])
	}
	return s.appendMovesLocked(b), nil
}

func appendBroker(b []byte, br *Broker) []byte {
	b = appendString(b, br.ID)
	b = appendUvarint(b, br.RaftID)
	b = appendString(b, br.Instance)
	b = appendString(b, br.Addr)
	b = appendString(b, br.Zone)
	b = append(b, byte(br.State))
	b = appendUvarint(b, br.Epoch)
	b = appendUvarint(b, br.Registered)
	return append(b, byte(br.Drain))
}

func (d *decoder) broker(version byte) Broker {
	br := Broker{
		ID:         d.string("broker id"),
		RaftID:     d.uvarint("raft id"),
		Instance:   d.string("instance"),
		Addr:       d.string("addr"),
		Zone:       d.string("zone"),
		State:      BrokerState(d.byte("broker state")),
		Epoch:      d.uvarint("epoch"),
		Registered: d.uvarint("registered"),
	}
	if version >= 2 {
		br.Drain = DrainMode(d.byte("drain mode"))
	}
	return br
}

// Restore replaces the state with a Snapshot's. It checks what Apply would
// have guaranteed (sorted distinct ids, distinct raft ids, valid fields,
// replicas naming known brokers, indexes not above the applied one) and fails
// with ErrInvalidSnapshot, leaving the state unchanged, when the bytes do not
// decode or do not describe such a state. It never panics and allocates at
// most a small multiple of len(b).
func (s *State) Restore(b []byte) error {
	n, err := decodeSnapshot(b)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clusterID, s.applied, s.versions = n.clusterID, n.applied, n.versions
	s.brokers, s.raftIDs, s.topics = n.brokers, n.raftIDs, n.topics
	return nil
}

func decodeSnapshot(b []byte) (*State, error) {
	d := decoder{b: b, base: ErrInvalidSnapshot}
	v := d.byte("version")
	if d.err == nil && (v < 1 || v > SnapshotVersion) {
		return nil, fmt.Errorf("%w: version %d, want 1 to %d", ErrInvalidSnapshot, v, SnapshotVersion)
	}
	n := NewState()
	n.clusterID = d.string("cluster id")
	n.applied = d.uvarint("applied")
	n.versions.Brokers = d.uvarint("brokers version")
	n.versions.Topics = d.uvarint("topics version")
	invalid := func(format string, args ...any) (*State, error) {
		return nil, fmt.Errorf("%w: %s", ErrInvalidSnapshot, fmt.Sprintf(format, args...))
	}
	if d.err == nil && n.clusterID != "" {
		if err := checkID("cluster id", n.clusterID); err != nil {
			return invalid("%v", err)
		}
	}
	if n.versions.Brokers > n.applied || n.versions.Topics > n.applied {
		return invalid("versions %+v above applied %d", n.versions, n.applied)
	}
	nb := d.count("brokers")
	prev := ""
	for i := range nb {
		br := d.broker(v)
		if d.err != nil {
			break
		}
		if err := validBroker(br); err != nil {
			return invalid("%v", err)
		}
		if i > 0 && br.ID <= prev {
			return invalid("broker %q: ids not sorted and distinct", br.ID)
		}
		prev = br.ID
		if br.State != BrokerAlive && br.State != BrokerFenced {
			return invalid("broker %q: state %d", br.ID, br.State)
		}
		if br.Drain > DrainFull {
			return invalid("broker %q: drain mode %d", br.ID, br.Drain)
		}
		if br.Epoch == 0 || br.Registered == 0 || br.Registered > n.applied {
			return invalid("broker %q: epoch %d, registered at %d, applied %d", br.ID, br.Epoch, br.Registered, n.applied)
		}
		if holder, ok := n.raftIDs[br.RaftID]; ok {
			return invalid("raft id %d held by %q and %q", br.RaftID, holder, br.ID)
		}
		n.brokers[br.ID] = br
		n.raftIDs[br.RaftID] = br.ID
	}
	nt := d.count("topics")
	prev = ""
	for i := range nt {
		t := d.topic()
		if d.err != nil {
			break
		}
		if err := n.validTopicLocked(&t); err != nil {
			return invalid("topic %q: %v", t.Name, err)
		}
		if i > 0 && t.Name <= prev {
			return invalid("topic %q: names not sorted and distinct", t.Name)
		}
		prev = t.Name
		if t.CreatedIndex == 0 || t.CreatedIndex > n.applied {
			return invalid("topic %q: created at %d, applied %d", t.Name, t.CreatedIndex, n.applied)
		}
		n.topics[t.Name] = &t
	}
	if v >= 2 && d.err == nil {
		if err := n.readMoves(&d, v); err != nil {
			return invalid("%v", err)
		}
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	if n.clusterID == "" && (len(n.brokers) > 0 || len(n.topics) > 0) {
		return invalid("brokers or topics without a cluster id")
	}
	return n, nil
}
