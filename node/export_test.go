package node

import (
	"context"
	"errors"

	"github.com/rafka/rafka/segment"
)

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

// DHTPeers looks up the other brokers of b's cluster in the DHT.
func DHTPeers(ctx context.Context, b *Broker) ([]string, error) {
	d := b.cluster.dhtNode()
	if d == nil {
		return nil, errors.New("no DHT node")
	}
	aps, err := d.Peers(ctx)
	var out []string
	for _, ap := range aps {
		out = append(out, ap.String())
	}
	return out, err
}
