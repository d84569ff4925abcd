package meta

import (
	"fmt"
	"slices"

	"github.com/rafka/rafka/routing/placement"
)

// Replica moves and drains (docs/replication.md, "Moves and drains").
//
// A partition's replica list changes one broker at a time. The leader of the
// partition's raft group records its intent first (StartMove: the target
// now hosts the partition, as a learner, and reconcile opens it there), then
// changes the raft configuration (learner, catch-up, promotion of the target
// and removal of the old replica in one joint change), and records the
// result last (FinishMove: the new replica list), or gives up (CancelMove).
// The raft configuration is the truth for membership; these records say
// what was intended and what was reached, so that a leader taking over a
// half-done move knows which broker it concerns.

// DrainMode is how far a broker is being emptied.
type DrainMode uint8

// Drain modes. Part of the snapshot and command formats: never renumber.
const (
	// DrainNone: the broker takes replicas and leaderships as placement says.
	DrainNone DrainMode = 0
	// DrainLeaders: the broker keeps its replicas but leads nothing.
	DrainLeaders DrainMode = 1
	// DrainFull: the broker leads nothing and placement leaves it out, so
	// its replicas move to other brokers.
	DrainFull DrainMode = 2
)

func (m DrainMode) String() string {
	switch m {
	case DrainNone:
		return "none"
	case DrainLeaders:
		return "leaders-only"
	case DrainFull:
		return "full"
	}
	return fmt.Sprintf("DrainMode(%d)", uint8(m))
}

// Move is a replica move in progress: Add (the target) joins the
// partition's replicas in place of Remove, the data coming from Source (the
// partition's leader when the move started).
//
// Term is the partition's raft term in which Source started the move (0:
// not recorded, a move started by an older broker). The target's empty
// replica starts at that term, so it refuses a leader of an earlier term:
// one cut off since before the target last left the partition still counts
// the target among its voters and, answered by an empty replica, could
// make a majority of it with that replica.
type Move struct {
	Partition int32
	Add       string
	Remove    string
	Source    string
	Term      uint64
}

// Involves reports whether broker id takes part in the move.
func (m Move) Involves(id string) bool { return m.Add == id || m.Remove == id || m.Source == id }

// MoveOf returns the move in progress of partition p, if any.
func (t *Topic) MoveOf(p int32) (Move, bool) {
	for _, m := range t.Moves {
		if m.Partition == p {
			return m, true
		}
	}
	return Move{}, false
}

// Hosts returns the brokers that hold partition p: its replicas and the
// target of a move in progress.
func (t *Topic) Hosts(p int32) []string {
	if p < 0 || int(p) >= len(t.Replicas) {
		return nil
	}
	out := slices.Clone(t.Replicas[p])
	if m, ok := t.MoveOf(p); ok {
		out = append(out, m.Add)
	}
	return out
}

// StartMove records that partition Partition of Topic moves a replica from
// Remove to Add, driven by Source. Applied again with the same fields it
// changes nothing. ErrUnknownTopic; ErrInvalidMove when the partition does
// not exist, Add is not a registered broker or already a replica, Remove is
// not a replica, Source is unknown, or the partition has another move in
// progress; ErrMoveConflict when one of the three brokers takes part in a
// move of another partition (one move at a time per broker).
type StartMove struct {
	Topic string
	Move  Move
}

// FinishMove sets the replica list of a partition to Replicas (the raft
// configuration the move reached, the preferred leader first) and ends its
// move, if any. ErrUnknownTopic; ErrInvalidMove for a missing partition or
// a list that is not 1 to MaxReplicas distinct registered brokers.
type FinishMove struct {
	Topic     string
	Partition int32
	Replicas  []string
}

// CancelMove ends a partition's move without changing its replicas (the
// target never joined, or left again). Without a move it changes nothing.
// ErrUnknownTopic.
type CancelMove struct {
	Topic     string
	Partition int32
}

// SetBrokerDrain sets a broker's drain mode. ErrUnknownBroker;
// ErrInvalidBroker for an unknown mode.
type SetBrokerDrain struct {
	ID   string
	Mode DrainMode
}

func (StartMove) kind() commandKind      { return kindStartMoveAt }
func (FinishMove) kind() commandKind     { return kindFinishMove }
func (CancelMove) kind() commandKind     { return kindCancelMove }
func (SetBrokerDrain) kind() commandKind { return kindSetBrokerDrain }

// appendMove writes a move: varint partition | string add | string remove |
// string source | uvarint term.
func appendMove(b []byte, m *Move) []byte {
	b = appendVarint(b, int64(m.Partition))
	b = appendString(b, m.Add)
	b = appendString(b, m.Remove)
	b = appendString(b, m.Source)
	return appendUvarint(b, m.Term)
}

// move reads a move; withTerm is false for the formats written before
// moves recorded their term (snapshot version 2, command kind 8).
func (d *decoder) move(withTerm bool) Move {
	m := Move{
		Partition: d.int32("partition"),
		Add:       d.string("add"),
		Remove:    d.string("remove"),
		Source:    d.string("source"),
	}
	if withTerm {
		m.Term = d.uvarint("term")
	}
	return m
}

// strings reads uvarint(n) | string*n; nil for none.
func (d *decoder) strings(what string) []string {
	n := d.count(what)
	if d.err != nil || n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.string(what)
	}
	if d.err != nil {
		return nil
	}
	return out
}

func appendStrings(b []byte, l []string) []byte {
	b = appendUvarint(b, uint64(len(l)))
	for _, s := range l {
		b = appendString(b, s)
	}
	return b
}

func (c StartMove) appendBody(b []byte) []byte {
	return appendMove(appendString(b, c.Topic), &c.Move)
}

func (c FinishMove) appendBody(b []byte) []byte {
	b = appendString(b, c.Topic)
	b = appendVarint(b, int64(c.Partition))
	return appendStrings(b, c.Replicas)
}

func (c CancelMove) appendBody(b []byte) []byte {
	return appendVarint(appendString(b, c.Topic), int64(c.Partition))
}

func (c SetBrokerDrain) appendBody(b []byte) []byte {
	return append(appendString(b, c.ID), byte(c.Mode))
}

// decodeMoveCommand decodes the body of the move and drain commands; ok is
// false for another kind.
func (d *decoder) moveCommand(k commandKind) (Command, bool) {
	switch k {
	case kindStartMove:
		return StartMove{Topic: d.string("topic name"), Move: d.move(false)}, true
	case kindStartMoveAt:
		return StartMove{Topic: d.string("topic name"), Move: d.move(true)}, true
	case kindFinishMove:
		return FinishMove{Topic: d.string("topic name"), Partition: d.int32("partition"), Replicas: d.strings("replicas")}, true
	case kindCancelMove:
		return CancelMove{Topic: d.string("topic name"), Partition: d.int32("partition")}, true
	case kindSetBrokerDrain:
		return SetBrokerDrain{ID: d.string("broker id"), Mode: DrainMode(d.byte("drain mode"))}, true
	}
	return nil, false
}

// checkMoveLocked reports what is wrong with move m of topic t, given the
// brokers and the other topics' moves.
func (s *State) checkMoveLocked(t *Topic, m Move) error {
	if m.Partition < 0 || int(m.Partition) >= len(t.Replicas) {
		return fmt.Errorf("%w: %s has no partition %d", ErrInvalidMove, t.Name, m.Partition)
	}
	reps := t.Replicas[m.Partition]
	for _, id := range []string{m.Add, m.Remove, m.Source} {
		if _, ok := s.brokers[id]; !ok {
			return fmt.Errorf("%w: unknown broker %q", ErrInvalidMove, id)
		}
	}
	switch {
	case slices.Contains(reps, m.Add):
		return fmt.Errorf("%w: %q already holds %s/%d", ErrInvalidMove, m.Add, t.Name, m.Partition)
	case !slices.Contains(reps, m.Remove):
		return fmt.Errorf("%w: %q does not hold %s/%d", ErrInvalidMove, m.Remove, t.Name, m.Partition)
	}
	return nil
}

// busyLocked returns the move of another partition than (topic, p) that
// broker id takes part in.
func (s *State) busyLocked(topic string, p int32, id string) (string, bool) {
	for _, t := range s.topics {
		for _, m := range t.Moves {
			if (t.Name != topic || m.Partition != p) && m.Involves(id) {
				return fmt.Sprintf("%s/%d", t.Name, m.Partition), true
			}
		}
	}
	return "", false
}

func (s *State) startMove(c StartMove) Result {
	old, ok := s.topics[c.Topic]
	if !ok {
		return Result{Err: fmt.Errorf("%w: %q", ErrUnknownTopic, c.Topic)}
	}
	if cur, ok := old.MoveOf(c.Move.Partition); ok {
		if cur == c.Move {
			return Result{Topic: old.clone()}
		}
		return Result{Err: fmt.Errorf("%w: %s/%d is moving from %q to %q", ErrInvalidMove, c.Topic, cur.Partition, cur.Remove, cur.Add)}
	}
	if err := s.checkMoveLocked(old, c.Move); err != nil {
		return Result{Err: err}
	}
	for _, id := range []string{c.Move.Add, c.Move.Remove, c.Move.Source} {
		if other, busy := s.busyLocked(c.Topic, c.Move.Partition, id); busy {
			return Result{Err: fmt.Errorf("%w: %q takes part in the move of %s", ErrMoveConflict, id, other)}
		}
	}
	t := old.clone()
	t.Moves = append(t.Moves, c.Move)
	slices.SortFunc(t.Moves, func(a, b Move) int { return int(a.Partition) - int(b.Partition) })
	s.topics[c.Topic] = &t
	return Result{Changed: true, Topic: t.clone()}
}

func (s *State) finishMove(c FinishMove) Result {
	old, ok := s.topics[c.Topic]
	if !ok {
		return Result{Err: fmt.Errorf("%w: %q", ErrUnknownTopic, c.Topic)}
	}
	if c.Partition < 0 || int(c.Partition) >= len(old.Replicas) {
		return Result{Err: fmt.Errorf("%w: %s has no partition %d", ErrInvalidMove, c.Topic, c.Partition)}
	}
	if len(c.Replicas) == 0 || len(c.Replicas) > MaxReplicas {
		return Result{Err: fmt.Errorf("%w: %d replicas, want 1 to %d", ErrInvalidMove, len(c.Replicas), MaxReplicas)}
	}
	for i, id := range c.Replicas {
		if _, ok := s.brokers[id]; !ok {
			return Result{Err: fmt.Errorf("%w: unknown broker %q", ErrInvalidMove, id)}
		}
		if slices.Contains(c.Replicas[:i], id) {
			return Result{Err: fmt.Errorf("%w: broker %q twice", ErrInvalidMove, id)}
		}
	}
	t := old.clone()
	t.Replicas[c.Partition] = slices.Clone(c.Replicas)
	t.endMove(c.Partition)
	s.topics[c.Topic] = &t
	return Result{Changed: true, Topic: t.clone()}
}

// endMove drops the move of partition p from t, leaving Moves nil when
// none is left (as a topic that never had one, for equality and snapshots).
func (t *Topic) endMove(p int32) {
	t.Moves = slices.DeleteFunc(t.Moves, func(m Move) bool { return m.Partition == p })
	if len(t.Moves) == 0 {
		t.Moves = nil
	}
}

func (s *State) cancelMove(c CancelMove) Result {
	old, ok := s.topics[c.Topic]
	if !ok {
		return Result{Err: fmt.Errorf("%w: %q", ErrUnknownTopic, c.Topic)}
	}
	if _, moving := old.MoveOf(c.Partition); !moving {
		return Result{Topic: old.clone()}
	}
	t := old.clone()
	t.endMove(c.Partition)
	s.topics[c.Topic] = &t
	return Result{Changed: true, Topic: t.clone()}
}

func (s *State) setBrokerDrain(c SetBrokerDrain) Result {
	b, ok := s.brokers[c.ID]
	if !ok {
		return Result{Err: fmt.Errorf("%w: %q", ErrUnknownBroker, c.ID)}
	}
	if c.Mode > DrainFull {
		return Result{Err: fmt.Errorf("%w: drain mode %d", ErrInvalidBroker, c.Mode)}
	}
	// A full drain already takes every leadership off the broker: a
	// leaders-only drain (a stopping pod's preStop hook asks for one after
	// an operator drained the broker to remove it) keeps it full, or
	// placement would count the broker again and move replicas back to it.
	if b.Drain == c.Mode || (c.Mode == DrainLeaders && b.Drain == DrainFull) {
		return Result{Broker: b}
	}
	b.Drain = c.Mode
	s.brokers[c.ID] = b
	return Result{Changed: true, Broker: b}
}

// Moves returns every move in progress, by topic then partition.
func (s *State) Moves() []TopicMove {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []TopicMove
	for _, name := range s.sortedTopicsLocked() {
		for _, m := range s.topics[name].Moves {
			out = append(out, TopicMove{Topic: name, Move: m})
		}
	}
	return out
}

// TopicMove is a move with its topic.
type TopicMove struct {
	Topic string
	Move
}

func (s *State) sortedTopicsLocked() []string {
	out := make([]string, 0, len(s.topics))
	for name := range s.topics {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// appendMoves writes the moves of every topic, for snapshots:
// uvarint(n) | (string topic | move)*, by topic then partition.
func (s *State) appendMovesLocked(b []byte) []byte {
	var n uint64
	for _, t := range s.topics {
		n += uint64(len(t.Moves))
	}
	b = appendUvarint(b, n)
	for _, name := range s.sortedTopicsLocked() {
		for _, m := range s.topics[name].Moves {
			b = appendString(b, name)
			b = appendMove(b, &m)
		}
	}
	return b
}

// readMoves reads what appendMovesLocked wrote into n, checking each move
// as StartMove would (and that they come sorted, one per partition).
func (n *State) readMoves(d *decoder, version byte) error {
	count := d.count("moves")
	prevTopic, prevPart := "", int32(-1)
	for range count {
		name := d.string("topic name")
		m := d.move(version >= 3)
		if d.err != nil {
			return nil
		}
		t, ok := n.topics[name]
		if !ok {
			return fmt.Errorf("move of unknown topic %q", name)
		}
		if name < prevTopic || name == prevTopic && m.Partition <= prevPart {
			return fmt.Errorf("moves of %q not sorted and distinct", name)
		}
		prevTopic, prevPart = name, m.Partition
		if err := n.checkMoveLocked(t, m); err != nil {
			return err
		}
		for _, id := range []string{m.Add, m.Remove, m.Source} {
			if other, busy := n.busyLocked(name, m.Partition, id); busy {
				return fmt.Errorf("%q moves in %s and %s/%d", id, other, name, m.Partition)
			}
		}
		t.Moves = append(t.Moves, m)
	}
	return nil
}

// DesiredReplicas returns where partition p of topic should live: the top
// min(rf, eligible brokers) brokers for which eligible holds, by rendezvous
// hashing with zones honoured, as PlaceTopic places a new topic. The first
// is the preferred leader.
func DesiredReplicas(state *State, topic string, p int32, rf int, eligible func(Broker) bool) []string {
	state.mu.RLock()
	var l []placement.Broker
	for _, b := range state.brokers {
		if eligible(b) {
			l = append(l, placement.Broker{ID: b.ID, Zone: b.Zone})
		}
	}
	state.mu.RUnlock()
	return placeAmong(l, topic, p, rf)
}

// OrderReplicas returns ids (registered brokers) in the preference order
// placement gives them for partition p of topic: the replica list a
// finished move records.
func OrderReplicas(state *State, topic string, p int32, ids []string) []string {
	state.mu.RLock()
	l := make([]placement.Broker, 0, len(ids))
	for _, id := range ids {
		l = append(l, placement.Broker{ID: id, Zone: state.brokers[id].Zone})
	}
	state.mu.RUnlock()
	return placeAmong(l, topic, p, len(ids))
}

func placeAmong(l []placement.Broker, topic string, p int32, r int) []string {
	set, err := placement.NewSet(l)
	if err != nil {
		panic(fmt.Sprintf("BUG: meta: brokers are not a placement set: %v", err))
	}
	return set.Replicas(topic, p, min(r, set.Len()), nil)
}
