// Package meta holds what the cluster knows about itself: its topics, and,
// in a cluster, its brokers.
//
// # Catalog
//
// The broker reads and changes topics only through the Catalog interface.
// FileCatalog keeps them in files under the data directory (one broker); a
// cluster's catalog is the metadata raft group's State.
//
// # State
//
// State is the cluster metadata state machine. The metadata raft group
// (driven elsewhere) replicates a log of commands; every broker applies the
// committed entries, in order, to its own State with Apply(index, entry).
// Apply does no I/O, starts no goroutine and reads no clock (times travel in
// the commands), so brokers that applied the same entries hold equal states
// and byte-identical Snapshots. A failed command (Result.Err) changes nothing
// but the applied index: it is still a committed entry. Snapshot and Restore
// carry the whole state for raft snapshots; Restore checks what Apply
// guarantees and never panics on bad bytes.
//
// Commands (commands.go) are InitCluster, RegisterBroker, FenceBroker,
// RemoveBroker, CreateTopic, DeleteTopic and SetTopicConfigs; EncodeCommand
// and DecodeCommand are their one codec. An entry is
//
//	byte CommandVersion (1) | byte kind | fields
//
// fields being uvarints, varints and length-prefixed strings in a fixed order
// (codec.go); maps are written with sorted keys. The version and kind bytes
// are part of the log format: a command changes only by a new version.
// Decoding is bounded: every length and count is checked against the bytes
// left before anything is allocated.
//
// Brokers. A broker registers (RegisterBroker) when it starts and holds a
// lease by heartbeating the metadata leader; when the lease runs out the
// leader proposes FenceBroker naming the epoch it saw, and the broker is dead
// to the cluster (fenced) until it registers again, which gives it a new
// epoch (so a fence decided before the re-registration does nothing). A
// fenced broker comes back with RegisterBroker; there is no separate unfence.
// Each data directory has a random Instance: a broker registering the id of
// an alive broker from another data directory (an operator wiped a directory
// and reused the id, or two brokers share a config) is refused with
// ErrDuplicateBrokerID until the old one is fenced, that is one lease
// timeout after it stops heartbeating. RemoveBroker forgets a fenced broker
// that holds no replica.
//
// Reads and writes. One goroutine applies; any number read. An RWMutex
// guards the state: Apply and Restore hold it for writing, the readers for
// reading, and nothing else is locked while it is held. Values returned are
// copies the caller may keep and change. Versions tells a reader whether
// brokers or topics changed since it last looked: each is the raft index of
// the last command that changed them.
//
// # Leader logic
//
// Pure functions the metadata leader runs over a State, given the time:
// Leases (lease.go) decides which brokers to fence; DesiredVoters and
// NextVoterChange (voters.go) choose the metadata group's voters (an odd
// number, alive brokers, spread over zones, current voters kept) and the one
// membership step to take next; PlaceTopic places a new topic's partitions
// on alive brokers by rendezvous hashing (routing/placement). Hosted and
// Leader answer which partitions a broker holds and which broker leads one.
package meta

import (
	"errors"
	"fmt"
	"time"
)

// Limits on topics, checked by ValidTopicName and Create.
const (
	MaxTopicNameLen = 249
	MaxPartitions   = 10000
)

// Errors of a Catalog.
var (
	// ErrTopicExists: Create of a topic that exists.
	ErrTopicExists = errors.New("meta: topic exists")
	// ErrUnknownTopic: Delete or SetConfigs of a topic that does not exist.
	ErrUnknownTopic = errors.New("meta: unknown topic")
	// ErrInvalidTopic: Create with a bad name or partition count; in the
	// cluster state also a bad topic ID or replica list (wrong length,
	// repeated or unknown brokers).
	ErrInvalidTopic = errors.New("meta: invalid topic")

	// The errors below come from the cluster state (State.Apply, Restore,
	// DecodeCommand) and the leader logic over it.

	// ErrNotInitialized: a command other than InitCluster applied before
	// the cluster was initialised.
	ErrNotInitialized = errors.New("meta: cluster not initialized")
	// ErrClusterMismatch: InitCluster naming another cluster id than the
	// one the state already has.
	ErrClusterMismatch = errors.New("meta: cluster id mismatch")
	// ErrDuplicateBrokerID: RegisterBroker with the id of an alive broker
	// but another Instance (data directory). The joining broker is refused
	// until the old one is fenced.
	ErrDuplicateBrokerID = errors.New("meta: broker id registered by another instance")
	// ErrDuplicateRaftID: RegisterBroker with a raft id that another broker
	// id holds.
	ErrDuplicateRaftID = errors.New("meta: raft id held by another broker")
	// ErrInvalidBroker: RegisterBroker with an empty or oversized field, or
	// a raft id of 0.
	ErrInvalidBroker = errors.New("meta: invalid broker")
	// ErrUnknownBroker: FenceBroker or RemoveBroker of an id never
	// registered (or removed).
	ErrUnknownBroker = errors.New("meta: unknown broker")
	// ErrBrokerInUse: RemoveBroker of a broker that is alive or still
	// holds replicas.
	ErrBrokerInUse = errors.New("meta: broker in use")
	// ErrNoBrokers: PlaceTopic with no alive broker to place on.
	ErrNoBrokers = errors.New("meta: no alive brokers")
	// ErrStaleIndex: Apply with a raft index not above the applied one;
	// the state is unchanged.
	ErrStaleIndex = errors.New("meta: index already applied")
	// ErrInvalidCommand: a command that does not decode (unknown version or
	// kind, truncated, trailing bytes, a count the input cannot hold).
	ErrInvalidCommand = errors.New("meta: invalid command")
	// ErrInvalidSnapshot: Restore of bytes that do not decode or describe
	// an inconsistent state; the state is unchanged.
	ErrInvalidSnapshot = errors.New("meta: invalid snapshot")
	// ErrInvalidMove: a StartMove or FinishMove that does not fit the
	// partition (see the commands).
	ErrInvalidMove = errors.New("meta: invalid replica move")
	// ErrMoveConflict: StartMove naming a broker that takes part in the
	// move of another partition.
	ErrMoveConflict = errors.New("meta: broker busy with another move")
)

// TopicInfo is what the catalog holds about one topic. Configs holds the
// overrides given at creation and by later changes only; the broker merges
// them with its defaults.
type TopicInfo struct {
	Name       string            `json:"name"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs"`
	Created    time.Time         `json:"created"`
}

// Catalog is the set of topics. Every change is durable (and, in a cluster,
// agreed) when it returns. Implementations are safe for concurrent use;
// TopicInfo values returned are copies the caller may keep.
type Catalog interface {
	// Create adds a topic: ErrTopicExists if one has the name,
	// ErrInvalidTopic for a bad name or partition count.
	Create(t TopicInfo) error
	// Delete removes a topic: ErrUnknownTopic if there is none.
	Delete(name string) error
	// SetConfigs replaces a topic's config overrides and returns the
	// updated topic: ErrUnknownTopic if there is none.
	SetConfigs(name string, configs map[string]string) (TopicInfo, error)
	// Get returns a topic; ok is false if there is none.
	Get(name string) (t TopicInfo, ok bool)
	// List returns every topic, sorted by name.
	List() []TopicInfo
}

// ValidTopicName reports why name cannot be a topic name, or nil: 1 to
// MaxTopicNameLen characters of [a-zA-Z0-9._-], not "." or "..".
func ValidTopicName(name string) error {
	if name == "" || len(name) > MaxTopicNameLen || name == "." || name == ".." {
		return fmt.Errorf("topic name %q: 1-%d characters, not '.' or '..'", name, MaxTopicNameLen)
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("topic name %q: only [a-zA-Z0-9._-] allowed", name)
		}
	}
	return nil
}

// ValidPartitions reports why n cannot be a topic's partition count, or nil.
func ValidPartitions(n int32) error {
	if n < 1 || n > MaxPartitions {
		return fmt.Errorf("partition count %d: between 1 and %d", n, MaxPartitions)
	}
	return nil
}
