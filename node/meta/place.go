package meta

import (
	"fmt"
	"maps"
	"slices"

	"github.com/rafka/rafka/routing/placement"
)

// PartitionRef names one partition of a topic.
type PartitionRef struct {
	Topic     string
	Partition int32
}

// aliveSetLocked returns the alive brokers as a placement set.
func (s *State) aliveSetLocked() *placement.Set {
	var l []placement.Broker
	for _, b := range s.brokers {
		if b.State == BrokerAlive {
			l = append(l, placement.Broker{ID: b.ID, Zone: b.Zone})
		}
	}
	set, err := placement.NewSet(l)
	if err != nil {
		// Broker ids are map keys, and Apply refuses empty ones.
		panic(fmt.Sprintf("BUG: meta: alive brokers are not a placement set: %v", err))
	}
	return set
}

// PlaceTopic returns the replicas of each partition of a new topic, for
// CreateTopic: the top min(rf, alive brokers) alive brokers by rendezvous
// hashing (routing/placement), spread over zones when brokers declare them;
// the first of each list is the preferred leader. ErrInvalidTopic for a bad
// name, partition count or rf (1 to MaxReplicas); ErrNoBrokers when no
// broker is alive. The metadata leader calls it when it proposes the
// creation; Apply checks the lists again against the state it applies to.
func PlaceTopic(state *State, name string, partitions int32, rf int) ([][]string, error) {
	if err := ValidTopicName(name); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidTopic, err)
	}
	if err := ValidPartitions(partitions); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidTopic, err)
	}
	if rf < 1 || rf > MaxReplicas {
		return nil, fmt.Errorf("%w: replication factor %d: 1 to %d", ErrInvalidTopic, rf, MaxReplicas)
	}
	state.mu.RLock()
	set := state.aliveSetLocked()
	state.mu.RUnlock()
	if set.Len() == 0 {
		return nil, ErrNoBrokers
	}
	r := min(rf, set.Len())
	out := make([][]string, partitions)
	for p := range partitions {
		out[p] = set.Replicas(name, p, r, make([]string, 0, r))
	}
	return out, nil
}

// Hosted returns the partitions whose replicas name brokerID, sorted by
// topic then partition.
func Hosted(state *State, brokerID string) []PartitionRef {
	state.mu.RLock()
	defer state.mu.RUnlock()
	var out []PartitionRef
	for _, name := range slices.Sorted(maps.Keys(state.topics)) {
		for p, r := range state.topics[name].Replicas {
			if slices.Contains(r, brokerID) {
				out = append(out, PartitionRef{Topic: name, Partition: int32(p)})
			}
		}
	}
	return out
}

// Leader returns the broker that leads a partition: with one replica per
// partition, its first replica while that broker is alive. ok is false when
// the topic or partition does not exist, or the broker is fenced (the
// partition is offline until it comes back).
func Leader(state *State, topic string, partition int32) (brokerID string, ok bool) {
	state.mu.RLock()
	defer state.mu.RUnlock()
	t, found := state.topics[topic]
	if !found || partition < 0 || int(partition) >= len(t.Replicas) {
		return "", false
	}
	id := t.Replicas[partition][0]
	if b, found := state.brokers[id]; !found || b.State != BrokerAlive {
		return "", false
	}
	return id, true
}
