package node

import "github.com/rafka/rafka/segment"

// SetFS makes the broker open partition logs through fs.
func SetFS(c *Config, fs segment.FS) { c.fs = fs }

// Waiters reports how many readers (long-polling fetches, subscriptions)
// wait on a partition, so tests can await a parked reader.
func Waiters(b *Broker, topic string, id int32) int {
	p, err := b.lookup(topic, id)
	if err != nil {
		return 0
	}
	return p.Watchers()
}
