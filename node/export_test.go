package node

// Waiters reports how many readers (long-polling fetches, subscriptions)
// wait on a partition, so tests can await a parked reader.
func Waiters(b *Broker, topic string, id int32) int {
	p, err := b.lookup(topic, id)
	if err != nil {
		return 0
	}
	return p.Watchers()
}
