package placement

import "slices"

// Topic is what Moves needs to know of a topic.
type Topic struct {
	Name       string
	Partitions int32 // partitions 0 .. Partitions-1
	Replicas   int   // replication factor
}

// Move is a partition whose replica set differs between two broker sets.
type Move struct {
	Topic     string
	Partition int32
	// Old and New are Replicas under the old and the new set, in
	// preference order.
	Old, New []string
}

// Moves appends to dst one Move for each partition of topics whose replica
// set, compared as a set, differs between from and to (either may be nil,
// the empty set), in the order of topics then partitions. A partition whose
// replicas only change order is not a move.
func Moves(from, to *Set, topics []Topic, dst []Move) []Move {
	var oldBuf, newBuf []string
	for _, t := range topics {
		for p := range t.Partitions {
			oldBuf = from.Replicas(t.Name, p, t.Replicas, oldBuf)
			newBuf = to.Replicas(t.Name, p, t.Replicas, newBuf)
			if !sameSet(oldBuf, newBuf) {
				dst = append(dst, Move{Topic: t.Name, Partition: p,
					Old: slices.Clone(oldBuf), New: slices.Clone(newBuf)})
			}
		}
	}
	return dst
}

// sameSet reports whether a and b, each without repeats, hold the same IDs.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
