package node

// MoveStats is what the replica move metrics of b report: moves in
// progress, estimated bytes remaining, moves completed, bytes sent to
// learners.
func MoveStats(b *Broker) (inProgress, remaining int64, done, sent uint64) {
	m := b.moves
	return m.inProgress.Load(), m.remaining.Load(), m.done.Get(), m.sent.Get()
}

// Replicas returns the replica lists of a topic in b's copy of the
// metadata, and how many moves it has in progress.
func Replicas(b *Broker, topic string) ([][]string, int) {
	t, ok := b.cluster.state.Topic(topic)
	if !ok {
		return nil, 0
	}
	return t.Replicas, len(t.Moves)
}

// HostsPartition reports whether b has a partition open.
func HostsPartition(b *Broker, topic string, id int32) bool {
	return b.topics()[topic].partition(id) != nil
}

// MoveLearners returns the group -> learner map the throttle applies to.
func MoveLearners(b *Broker) int {
	b.moves.mu.Lock()
	defer b.moves.mu.Unlock()
	return len(b.moves.learners)
}
