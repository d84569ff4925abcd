package node

import (
	"context"
	"errors"

	"github.com/rafka/rafka/node/group"
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

// LeadsPartition reports whether b leads a replicated partition's raft
// group (or hosts an unreplicated one).
func LeadsPartition(b *Broker, topic string, id int32) bool {
	t := b.topics()[topic]
	if t.partition(id) == nil {
		return false
	}
	rp := t.raft(id)
	return rp == nil || rp.leader.Load() == b.cluster.raftID
}

// CommittedLog returns the bytes of a hosted partition's log below its high
// watermark.
func CommittedLog(b *Broker, topic string, id int32) ([]byte, error) {
	p, e := b.lookup(topic, id)
	if e != nil {
		return nil, e
	}
	var out []byte
	for off := p.LogStartOffset(); off < p.HighWatermark(); {
		r, err := p.Read(off, 1<<20)
		if err != nil {
			return nil, err
		}
		if len(r.Data) == 0 {
			r.Release()
			break
		}
		out = append(out, r.Data...)
		next := r.Next
		r.Release()
		if next <= off {
			break
		}
		off = next
	}
	return out, nil
}

// ReplicationCounts is what the rafka_partitions_led and
// rafka_partitions_under_replicated gauges report.
func ReplicationCounts(b *Broker) (led, under int) { return b.replicationCounts() }

// PartitionStatus is the raft status of a hosted replicated partition.
func PartitionStatus(b *Broker, topic string, id int32) (group.Status, bool) {
	rp := b.topics()[topic].raft(id)
	if rp == nil {
		return group.Status{}, false
	}
	return b.cluster.driver.Status(rp.group)
}
