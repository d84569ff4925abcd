// Package meta is the cluster's catalog of topics: their names, partition
// counts and config overrides. The broker reads and changes topics only
// through the Catalog interface; FileCatalog keeps them in files under the
// data directory (one broker), and a metadata raft group will implement the
// same interface for a cluster.
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
