package meta

import (
	"fmt"
	"time"
)

// CommandVersion is the first byte of every encoded command: the format of
// what follows. Part of the metadata log format: a broker refuses (as
// ErrInvalidCommand) a version it does not know, so a new version may only be
// proposed once every broker reads it.
const CommandVersion = 1

// Command is one entry of the metadata log: InitCluster, RegisterBroker,
// FenceBroker, CreateTopic, DeleteTopic, SetTopicConfigs, RemoveBroker,
// StartMove, FinishMove, CancelMove or SetBrokerDrain (moves.go).
// Encode it with EncodeCommand; State.Apply decodes and applies it.
type Command interface {
	kind() commandKind
	// appendBody writes the fields after the version and kind bytes.
	appendBody(b []byte) []byte
}

// commandKind is the second byte of an encoded command. Part of the
// metadata log format: never renumber.
type commandKind uint8

const (
	kindInitCluster     commandKind = 1
	kindRegisterBroker  commandKind = 2
	kindFenceBroker     commandKind = 3
	kindCreateTopic     commandKind = 4
	kindDeleteTopic     commandKind = 5
	kindSetTopicConfigs commandKind = 6
	kindRemoveBroker    commandKind = 7
	kindStartMove       commandKind = 8
	kindFinishMove      commandKind = 9
	kindCancelMove      commandKind = 10
	kindSetBrokerDrain  commandKind = 11
	// kindStartMoveAt is StartMove with the move's term; kind 8, written
	// by brokers before moves recorded it, is still read (term 0).
	kindStartMoveAt commandKind = 12
)

// InitCluster is the first entry of a new cluster's metadata log. Applied
// again with the same id it changes nothing; with another id it fails with
// ErrClusterMismatch. Every other command fails with ErrNotInitialized
// before it.
type InitCluster struct {
	ClusterID string
}

// RegisterBroker adds a broker, or registers it again when it restarts or
// comes back after being fenced: a new Epoch, state alive, the given address,
// zone and raft id. It fails with ErrDuplicateBrokerID when the id is held by
// an alive broker with another Instance (see Broker.Instance), with
// ErrDuplicateRaftID when another broker holds RaftID, and with
// ErrInvalidBroker when a field is empty (Zone may be) or too long, or when
// the same alive instance names another raft id.
type RegisterBroker struct {
	ID       string
	RaftID   uint64
	Instance string
	Addr     string
	Zone     string
}

// FenceBroker marks a broker fenced (dead to the cluster) if it is still at
// Epoch and alive; otherwise (it registered again since, or is fenced
// already) it changes nothing and succeeds. ErrUnknownBroker if there is no
// such broker.
type FenceBroker struct {
	ID    string
	Epoch uint64
}

// CreateTopic adds Topic, whose ID and Replicas the proposer chose (see
// PlaceTopic); Apply sets its CreatedIndex. ErrTopicExists if the name is
// taken, ErrInvalidTopic for a bad name, partition count, empty or oversized
// ID, or a replica list that does not have one entry per partition, each of
// 1 to MaxReplicas distinct registered brokers.
type CreateTopic struct {
	Topic Topic
}

// DeleteTopic removes a topic: ErrUnknownTopic if there is none.
type DeleteTopic struct {
	Name string
}

// SetTopicConfigs replaces a topic's config overrides: ErrUnknownTopic if
// there is none.
type SetTopicConfigs struct {
	Name    string
	Configs map[string]string
}

// RemoveBroker forgets a fenced broker that holds no replica (an operator
// decommissioning it): ErrUnknownBroker if there is none, ErrBrokerInUse if
// it is alive or named in a topic's replicas.
type RemoveBroker struct {
	ID string
}

func (InitCluster) kind() commandKind     { return kindInitCluster }
func (RegisterBroker) kind() commandKind  { return kindRegisterBroker }
func (FenceBroker) kind() commandKind     { return kindFenceBroker }
func (CreateTopic) kind() commandKind     { return kindCreateTopic }
func (DeleteTopic) kind() commandKind     { return kindDeleteTopic }
func (SetTopicConfigs) kind() commandKind { return kindSetTopicConfigs }
func (RemoveBroker) kind() commandKind    { return kindRemoveBroker }

func (c InitCluster) appendBody(b []byte) []byte { return appendString(b, c.ClusterID) }

func (c RegisterBroker) appendBody(b []byte) []byte {
	b = appendString(b, c.ID)
	b = appendUvarint(b, c.RaftID)
	b = appendString(b, c.Instance)
	b = appendString(b, c.Addr)
	return appendString(b, c.Zone)
}

func (c FenceBroker) appendBody(b []byte) []byte {
	b = appendString(b, c.ID)
	return appendUvarint(b, c.Epoch)
}

func (c CreateTopic) appendBody(b []byte) []byte { return appendTopic(b, &c.Topic) }

func (c DeleteTopic) appendBody(b []byte) []byte { return appendString(b, c.Name) }

func (c SetTopicConfigs) appendBody(b []byte) []byte {
	b = appendString(b, c.Name)
	return appendConfigs(b, c.Configs)
}

func (c RemoveBroker) appendBody(b []byte) []byte { return appendString(b, c.ID) }

// EncodeCommand returns c as a metadata log entry: CommandVersion, the
// command's kind, then its fields (see the package documentation). It fails
// only for a nil command or a topic creation time outside the years 1 to
// 9999; whether the command makes sense is Apply's to decide.
func EncodeCommand(c Command) ([]byte, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: nil command", ErrInvalidCommand)
	}
	if ct, ok := c.(CreateTopic); ok {
		if err := checkTime(ct.Topic.Created); err != nil {
			return nil, err
		}
	}
	return c.appendBody([]byte{CommandVersion, byte(c.kind())}), nil
}

func checkTime(t time.Time) error {
	if s := t.Unix(); s < minUnix || s > maxUnix {
		return fmt.Errorf("%w: time %v outside the years 1 to 9999", ErrInvalidCommand, t)
	}
	return nil
}

// DecodeCommand parses an entry written by EncodeCommand. Errors wrap
// ErrInvalidCommand. It never panics, and allocates at most a small multiple
// of len(b). The command does not share memory with b.
func DecodeCommand(b []byte) (Command, error) {
	d := decoder{b: b, base: ErrInvalidCommand}
	if v := d.byte("version"); d.err == nil && v != CommandVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrInvalidCommand, v, CommandVersion)
	}
	k := commandKind(d.byte("kind"))
	var c Command
	switch k {
	case kindInitCluster:
		c = InitCluster{ClusterID: d.string("cluster id")}
	case kindRegisterBroker:
		c = RegisterBroker{
			ID:       d.string("broker id"),
			RaftID:   d.uvarint("raft id"),
			Instance: d.string("instance"),
			Addr:     d.string("addr"),
			Zone:     d.string("zone"),
		}
	case kindFenceBroker:
		c = FenceBroker{ID: d.string("broker id"), Epoch: d.uvarint("epoch")}
	case kindCreateTopic:
		c = CreateTopic{Topic: d.topic()}
	case kindDeleteTopic:
		c = DeleteTopic{Name: d.string("topic name")}
	case kindSetTopicConfigs:
		c = SetTopicConfigs{Name: d.string("topic name"), Configs: d.configs("configs")}
	case kindRemoveBroker:
		c = RemoveBroker{ID: d.string("broker id")}
	default:
		var ok bool
		if c, ok = d.moveCommand(k); !ok && d.err == nil {
			d.fail("unknown kind %d", k)
		}
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return c, nil
}

// appendTopic writes a topic, in commands and snapshots alike:
//
//	string name | varint partitions | map configs | time created |
//	string id | uvarint created index |
//	uvarint(len(replicas)) | (uvarint(n) | string broker id * n)*
func appendTopic(b []byte, t *Topic) []byte {
	b = appendString(b, t.Name)
	b = appendVarint(b, int64(t.Partitions))
	b = appendConfigs(b, t.Configs)
	b = appendTime(b, t.Created)
	b = appendString(b, t.ID)
	b = appendUvarint(b, t.CreatedIndex)
	b = appendUvarint(b, uint64(len(t.Replicas)))
	for _, r := range t.Replicas {
		b = appendUvarint(b, uint64(len(r)))
		for _, id := range r {
			b = appendString(b, id)
		}
	}
	return b
}

func (d *decoder) topic() Topic {
	var t Topic
	t.Name = d.string("topic name")
	t.Partitions = d.int32("partitions")
	t.Configs = d.configs("configs")
	t.Created = d.time("created")
	t.ID = d.string("topic id")
	t.CreatedIndex = d.uvarint("created index")
	n := d.count("replicas")
	if n > 0 {
		t.Replicas = make([][]string, n)
		for i := range t.Replicas {
			m := d.count("replica list")
			if d.err != nil {
				return Topic{}
			}
			if m > 0 {
				r := make([]string, m)
				for j := range r {
					r[j] = d.string("replica")
				}
				t.Replicas[i] = r
			}
		}
	}
	if d.err != nil {
		return Topic{}
	}
	return t
}
