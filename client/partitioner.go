package client

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/rafka/rafka/wire"
)

// Partitioner chooses the partition of records produced with Partition set
// to AnyPartition. The producer calls it without holding its locks, possibly
// from several goroutines at once.
type Partitioner interface {
	// Partition returns one of t.Partitions' partition numbers for r.
	Partition(r *Record, t *TopicMetadata) int32
	// BatchSealed tells that the open batch of topic/partition was closed to
	// new records (it is full or its linger expired); a sticky partitioner
	// moves on to another partition.
	BatchSealed(topic string, partition int32)
}

// NewHashPartitioner returns the default partitioner. A keyed record goes to
// the partition whose hash range (from metadata) holds wire.KeyHash(key), so a
// key always lands in the same partition and a partition split moves no other
// key. Unkeyed records stick to one partition until its batch is sealed, then
// move to the next partition (round robin per batch): batches fill up, and
// load spreads evenly over time. Unkeyed records skip partitions the metadata
// reports offline while another partition is online; keyed records go to
// their partition regardless (Produce then fails them with
// ErrPartitionOffline).
func NewHashPartitioner() Partitioner {
	return &hashPartitioner{sticky: make(map[string]int32)}
}

type hashPartitioner struct {
	mu     sync.Mutex
	sticky map[string]int32 // topic -> partition unkeyed records go to
}

func (hp *hashPartitioner) Partition(r *Record, t *TopicMetadata) int32 {
	n := len(t.Partitions)
	if n == 0 {
		return 0
	}
	if r.Key != nil {
		return partitionForHash(t, wire.KeyHash(r.Key))
	}
	hp.mu.Lock()
	p, ok := hp.sticky[t.Name]
	var i int
	pm := t.partition(p)
	switch {
	case !ok:
		i = rand.IntN(n)
	case pm == nil: // moved past the last partition
		i = 0
	case !pm.Offline:
		hp.mu.Unlock()
		return p
	default:
		i, _ = slices.BinarySearchFunc(t.Partitions, p, func(m PartitionMetadata, p int32) int { return cmp.Compare(m.Partition, p) })
	}
	// Unkeyed records skip offline partitions while any other is online.
	for k := range n {
		if pm := &t.Partitions[(i+k)%n]; !pm.Offline {
			i = (i + k) % n
			break
		}
	}
	p = t.Partitions[i].Partition
	hp.sticky[t.Name] = p
	hp.mu.Unlock()
	return p
}

func (hp *hashPartitioner) BatchSealed(topic string, partition int32) {
	hp.mu.Lock()
	defer hp.mu.Unlock()
	if p, ok := hp.sticky[topic]; ok && p == partition {
		hp.sticky[topic] = p + 1 // Partition wraps it to the first one
	}
}

// partitionForHash finds the partition whose hash range holds h. Ranges are
// contiguous and sorted with the partitions at creation; after splits they
// may not follow partition order, so the search is linear when the sorted
// assumption fails.
func partitionForHash(t *TopicMetadata, h uint64) int32 {
	ps := t.Partitions
	lo, hi := 0, len(ps)-1
	for lo <= hi {
		mid := (lo + hi) / 2
		switch p := &ps[mid]; {
		case h < p.HashStart:
			hi = mid - 1
		case h > p.HashEnd:
			lo = mid + 1
		default:
			return p.Partition
		}
	}
	for i := range ps {
		if ps[i].HashStart <= h && h <= ps[i].HashEnd {
			return ps[i].Partition
		}
	}
	// Metadata without ranges (or with a gap): equal ranges by count.
	return ps[wire.PartitionForHash(h, int32(len(ps)))].Partition
}
