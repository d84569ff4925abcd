package meta

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// Limits the state enforces on what commands carry.
const (
	// MaxIDLen bounds a cluster id, broker id, instance, address, zone and
	// topic id, in bytes.
	MaxIDLen = 255
	// MaxReplicas bounds a partition's replica count.
	MaxReplicas = 16
)

// BrokerState is whether the cluster counts a broker alive.
type BrokerState uint8

// Broker states. Part of the snapshot format: never renumber.
const (
	// BrokerAlive: registered and holding its lease.
	BrokerAlive BrokerState = 0
	// BrokerFenced: its lease expired and the metadata leader fenced it; it
	// is dead to the cluster until it registers again.
	BrokerFenced BrokerState = 1
)

func (s BrokerState) String() string {
	switch s {
	case BrokerAlive:
		return "alive"
	case BrokerFenced:
		return "fenced"
	}
	return fmt.Sprintf("BrokerState(%d)", uint8(s))
}

// Broker is a member of the cluster as the metadata log records it.
type Broker struct {
	// ID names the broker (its configured broker id); placement hashes it.
	ID string
	// RaftID is the broker's node id in raft groups: not 0, distinct.
	RaftID uint64
	// Instance is random per data directory: a second broker claiming an
	// alive broker's ID from another data directory is refused
	// (ErrDuplicateBrokerID).
	Instance string
	// Addr is the advertised QUIC address clients and peers dial.
	Addr string
	// Zone is the failure domain; "" is none.
	Zone  string
	State BrokerState
	// Epoch counts registrations, from 1; a fence names the epoch it
	// fences, so a fence decided before a re-registration does nothing.
	Epoch uint64
	// Registered is the raft index of the first registration.
	Registered uint64
	// Drain is whether the broker is being emptied (SetBrokerDrain).
	Drain DrainMode
}

// Topic is a topic as the metadata log records it.
type Topic struct {
	TopicInfo
	// ID is random per creation: a topic deleted and created again under
	// the same name gets another ID.
	ID string
	// CreatedIndex is the raft index of the creation.
	CreatedIndex uint64
	// Replicas lists, per partition, the brokers holding it; the first is
	// the preferred leader.
	Replicas [][]string
	// Moves are the replica moves in progress, by partition, at most one
	// per partition (StartMove). Commands creating a topic do not carry
	// them; snapshots do.
	Moves []Move
}

// clone returns a deep copy of t.
func (t Topic) clone() Topic {
	t.Configs = maps.Clone(t.Configs)
	if t.Replicas != nil {
		r := make([][]string, len(t.Replicas))
		for i, l := range t.Replicas {
			r[i] = slices.Clone(l)
		}
		t.Replicas = r
	}
	t.Moves = slices.Clone(t.Moves)
	return t
}

// Versions tells a reader whether brokers or topics changed: each is the raft
// index of the last applied command that changed them (0: none yet).
// Snapshots carry them, so they only grow along the log.
type Versions struct {
	Brokers uint64
	Topics  uint64
}

// Result is the outcome of applying one entry. Err is nil on success; a
// failed command changes nothing but the applied index.
type Result struct {
	Err error
	// Changed reports whether brokers or topics changed.
	Changed bool
	// Broker is the broker after RegisterBroker or FenceBroker.
	Broker Broker
	// Topic is the topic after CreateTopic or SetTopicConfigs (a copy).
	Topic Topic
}

// State is the cluster metadata every broker holds: the cluster id, the
// brokers and the topics, as of an applied raft index. One goroutine (the
// metadata group's driver) applies entries in log order; any number read
// concurrently. Values returned are copies the caller may keep and change.
type State struct {
	// mu guards every field below: Apply and Restore hold it for writing,
	// readers for reading.
	mu        sync.RWMutex
	clusterID string
	applied   uint64
	versions  Versions
	brokers   map[string]Broker
	raftIDs   map[uint64]string // RaftID -> broker ID
	topics    map[string]*Topic // never handed out: readers get clones
}

// NewState returns the state before the first entry: no cluster id, no
// brokers, no topics, applied index 0.
func NewState() *State {
	return &State{
		brokers: make(map[string]Broker),
		raftIDs: make(map[uint64]string),
		topics:  make(map[string]*Topic),
	}
}

// ClusterID is the id InitCluster set, "" before.
func (s *State) ClusterID() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.clusterID
}

// Applied is the raft index of the last entry applied (or restored).
func (s *State) Applied() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.applied
}

// Versions returns the change counters.
func (s *State) Versions() Versions {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.versions
}

// Broker returns a broker, alive or fenced.
func (s *State) Broker(id string) (Broker, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.brokers[id]
	return b, ok
}

// BrokerByRaftID returns the broker with that raft id.
func (s *State) BrokerByRaftID(raftID uint64) (Broker, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.raftIDs[raftID]
	if !ok {
		return Broker{}, false
	}
	return s.brokers[id], true
}

// Brokers returns every broker, alive or fenced, sorted by ID.
func (s *State) Brokers() []Broker {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.brokersLocked()
}

func (s *State) brokersLocked() []Broker {
	l := slices.Collect(maps.Values(s.brokers))
	slices.SortFunc(l, func(a, b Broker) int { return cmp.Compare(a.ID, b.ID) })
	return l
}

// Topic returns a topic.
func (s *State) Topic(name string) (Topic, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.topics[name]
	if !ok {
		return Topic{}, false
	}
	return t.clone(), true
}

// Topics returns every topic, sorted by name.
func (s *State) Topics() []Topic {
	s.mu.RLock()
	defer s.mu.RUnlock()
	l := make([]Topic, 0, len(s.topics))
	for _, name := range slices.Sorted(maps.Keys(s.topics)) {
		l = append(l, s.topics[name].clone())
	}
	return l
}

// Apply applies the log entry cmd (from EncodeCommand) at raft index index.
// The outcome depends only on the state and the entry, so every broker
// applying the same log reaches the same state. An index not above Applied
// fails with ErrStaleIndex and changes nothing. Any other entry advances
// Applied to index, even when the command fails (a failed command is still
// a committed entry) or is empty (raft appends empty entries on a leader
// change).
func (s *State) Apply(index uint64, cmd []byte) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	if index <= s.applied {
		return Result{Err: fmt.Errorf("%w: index %d, applied %d", ErrStaleIndex, index, s.applied)}
	}
	s.applied = index
	if len(cmd) == 0 {
		return Result{}
	}
	c, err := DecodeCommand(cmd)
	if err != nil {
		return Result{Err: fmt.Errorf("%w (entry %d)", err, index)}
	}
	if ic, ok := c.(InitCluster); ok {
		return s.initCluster(ic)
	}
	if s.clusterID == "" {
		return Result{Err: ErrNotInitialized}
	}
	var r Result
	switch c := c.(type) {
	case RegisterBroker:
		r = s.registerBroker(index, c)
	case FenceBroker:
		r = s.fenceBroker(c)
	case RemoveBroker:
		r = s.removeBroker(c)
	case CreateTopic:
		r = s.createTopic(index, c)
	case DeleteTopic:
		r = s.deleteTopic(c)
	case SetTopicConfigs:
		r = s.setTopicConfigs(c)
	case StartMove:
		r = s.startMove(c)
	case FinishMove:
		r = s.finishMove(c)
	case CancelMove:
		r = s.cancelMove(c)
	case SetBrokerDrain:
		r = s.setBrokerDrain(c)
	default:
		panic(fmt.Sprintf("BUG: meta: decoded command %T has no apply", c))
	}
	if r.Changed {
		switch c.(type) {
		case RegisterBroker, FenceBroker, RemoveBroker, SetBrokerDrain:
			s.versions.Brokers = index
		default:
			s.versions.Topics = index
		}
	}
	return r
}

func (s *State) initCluster(c InitCluster) Result {
	if err := checkID("cluster id", c.ClusterID); err != nil {
		return Result{Err: fmt.Errorf("%w: %w", ErrInvalidCommand, err)}
	}
	switch s.clusterID {
	case "":
		s.clusterID = c.ClusterID
		return Result{Changed: true}
	case c.ClusterID:
		return Result{}
	}
	return Result{Err: fmt.Errorf("%w: have %q, entry names %q", ErrClusterMismatch, s.clusterID, c.ClusterID)}
}

// checkID reports an empty or oversized id.
func checkID(what, v string) error {
	if v == "" || len(v) > MaxIDLen {
		return fmt.Errorf("%s %q: 1 to %d bytes", what, v, MaxIDLen)
	}
	return nil
}

// validBroker reports what is wrong with a broker's own fields.
func validBroker(b Broker) error {
	if err := checkID("broker id", b.ID); err != nil {
		return err
	}
	if err := checkID("instance", b.Instance); err != nil {
		return err
	}
	if err := checkID("addr", b.Addr); err != nil {
		return err
	}
	if len(b.Zone) > MaxIDLen {
		return fmt.Errorf("zone of %d bytes: at most %d", len(b.Zone), MaxIDLen)
	}
	if b.RaftID == 0 {
		return fmt.Errorf("broker %q: raft id 0", b.ID)
	}
	return nil
}

func (s *State) registerBroker(index uint64, c RegisterBroker) Result {
	nb := Broker{ID: c.ID, RaftID: c.RaftID, Instance: c.Instance, Addr: c.Addr, Zone: c.Zone,
		State: BrokerAlive, Epoch: 1, Registered: index}
	if err := validBroker(nb); err != nil {
		return Result{Err: fmt.Errorf("%w: %w", ErrInvalidBroker, err)}
	}
	old, exists := s.brokers[c.ID]
	if exists && old.State == BrokerAlive {
		if old.Instance != c.Instance {
			return Result{Err: fmt.Errorf("%w: %q is alive as instance %q, refusing instance %q until it is fenced",
				ErrDuplicateBrokerID, c.ID, old.Instance, c.Instance)}
		}
		if old.RaftID != c.RaftID {
			return Result{Err: fmt.Errorf("%w: alive broker %q cannot change raft id %d to %d",
				ErrInvalidBroker, c.ID, old.RaftID, c.RaftID)}
		}
	}
	if holder, ok := s.raftIDs[c.RaftID]; ok && holder != c.ID {
		return Result{Err: fmt.Errorf("%w: raft id %d is broker %q's", ErrDuplicateRaftID, c.RaftID, holder)}
	}
	if exists {
		nb.Epoch = old.Epoch + 1
		nb.Registered = old.Registered
		nb.Drain = old.Drain // a registration does not end a drain (a leaders-only one ends when its broker starts: node/drain.go)
		delete(s.raftIDs, old.RaftID)
	}
	s.brokers[c.ID] = nb
	s.raftIDs[nb.RaftID] = nb.ID
	return Result{Changed: true, Broker: nb}
}

func (s *State) fenceBroker(c FenceBroker) Result {
	b, ok := s.brokers[c.ID]
	if !ok {
		return Result{Err: fmt.Errorf("%w: %q", ErrUnknownBroker, c.ID)}
	}
	if b.State != BrokerAlive || b.Epoch != c.Epoch {
		return Result{Broker: b} // stale: it registered again, or is fenced already
	}
	b.State = BrokerFenced
	s.brokers[c.ID] = b
	return Result{Changed: true, Broker: b}
}

func (s *State) removeBroker(c RemoveBroker) Result {
	b, ok := s.brokers[c.ID]
	if !ok {
		return Result{Err: fmt.Errorf("%w: %q", ErrUnknownBroker, c.ID)}
	}
	if b.State == BrokerAlive {
		return Result{Err: fmt.Errorf("%w: %q is alive", ErrBrokerInUse, c.ID)}
	}
	for _, name := range slices.Sorted(maps.Keys(s.topics)) {
		for p, r := range s.topics[name].Replicas {
			if slices.Contains(r, c.ID) {
				return Result{Err: fmt.Errorf("%w: %q holds %s/%d", ErrBrokerInUse, c.ID, name, p)}
			}
		}
		for _, m := range s.topics[name].Moves {
			if m.Involves(c.ID) {
				return Result{Err: fmt.Errorf("%w: %q takes part in the move of %s/%d", ErrBrokerInUse, c.ID, name, m.Partition)}
			}
		}
	}
	delete(s.brokers, c.ID)
	delete(s.raftIDs, b.RaftID)
	return Result{Changed: true, Broker: b}
}

// validTopicLocked reports what is wrong with t given the brokers.
func (s *State) validTopicLocked(t *Topic) error {
	if err := ValidTopicName(t.Name); err != nil {
		return err
	}
	if err := ValidPartitions(t.Partitions); err != nil {
		return err
	}
	if err := checkID("topic id", t.ID); err != nil {
		return err
	}
	if len(t.Replicas) != int(t.Partitions) {
		return fmt.Errorf("%d replica lists for %d partitions", len(t.Replicas), t.Partitions)
	}
	for p, r := range t.Replicas {
		if len(r) == 0 || len(r) > MaxReplicas {
			return fmt.Errorf("partition %d: %d replicas, want 1 to %d", p, len(r), MaxReplicas)
		}
		for i, id := range r {
			if _, ok := s.brokers[id]; !ok {
				return fmt.Errorf("partition %d: unknown broker %q", p, id)
			}
			if slices.Contains(r[:i], id) {
				return fmt.Errorf("partition %d: broker %q twice", p, id)
			}
		}
	}
	return nil
}

func (s *State) createTopic(index uint64, c CreateTopic) Result {
	t := c.Topic.clone()
	t.CreatedIndex = index
	t.Moves = nil
	if len(t.Configs) == 0 {
		t.Configs = nil
	}
	if err := s.validTopicLocked(&t); err != nil {
		return Result{Err: fmt.Errorf("%w: %w", ErrInvalidTopic, err)}
	}
	if _, ok := s.topics[t.Name]; ok {
		return Result{Err: fmt.Errorf("%w: %q", ErrTopicExists, t.Name)}
	}
	s.topics[t.Name] = &t
	return Result{Changed: true, Topic: t.clone()}
}

func (s *State) deleteTopic(c DeleteTopic) Result {
	if _, ok := s.topics[c.Name]; !ok {
		return Result{Err: fmt.Errorf("%w: %q", ErrUnknownTopic, c.Name)}
	}
	delete(s.topics, c.Name)
	return Result{Changed: true}
}

func (s *State) setTopicConfigs(c SetTopicConfigs) Result {
	old, ok := s.topics[c.Name]
	if !ok {
		return Result{Err: fmt.Errorf("%w: %q", ErrUnknownTopic, c.Name)}
	}
	// Replace the topic rather than change it in place: nothing handed out
	// shares its map, but keeping stored topics immutable keeps that easy
	// to see.
	t := old.clone()
	t.Configs = maps.Clone(c.Configs)
	if len(t.Configs) == 0 {
		t.Configs = nil
	}
	s.topics[c.Name] = &t
	return Result{Changed: true, Topic: t.clone()}
}
