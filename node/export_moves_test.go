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

// MoveLearners counts the moves b drives whose learner is catching up.
func MoveLearners(b *Broker) int {
	n := 0
	for _, t := range b.topics() {
		for _, rp := range t.rafts {
			if rp == nil || rp.leader.Load() != b.cluster.raftID {
				continue
			}
			if st, ok := b.cluster.driver.Status(rp.group); ok && len(st.Learners) > 0 {
				n++
			}
		}
	}
	return n
}

// MoveThrottled counts the appends to learners b's throttle dropped.
func MoveThrottled(b *Broker) uint64 { return b.moves.dropped.Get() }
