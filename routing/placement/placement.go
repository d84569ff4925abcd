package placement

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// Errors returned by NewSet.
var (
	// ErrEmptyID: a broker has an empty ID.
	ErrEmptyID = errors.New("placement: empty broker id")
	// ErrDuplicateID: two brokers have the same ID (whatever their zones).
	ErrDuplicateID = errors.New("placement: duplicate broker id")
)

// Broker is one member of the cluster as placement sees it.
type Broker struct {
	// ID identifies the broker; it is hashed, so it must be the same string
	// on every broker of the cluster. Not empty.
	ID string
	// Zone is the failure domain (rack, availability zone). Brokers with the
	// same Zone share a zone; "" is a zone like any other, so when no broker
	// declares a zone they all share one and placement is plain rendezvous
	// hashing.
	Zone string
}

// Set is an immutable, validated set of brokers: IDs distinct and not
// empty. Build one with NewSet when membership changes and use it for every
// placement until the next change. A nil *Set is the empty set. A Set is
// safe for concurrent use.
type Set struct {
	// Brokers sorted by ID: a lower index is a lower ID, which breaks ties
	// between equal scores without comparing strings.
	brokers []Broker
	zone    []int32  // zone[i]: index of brokers[i].Zone among the distinct zones
	key     [][]byte // key[i]: uvarint(len(ID)) || ID, the broker's part of the hashed key
	maxKey  int      // longest key[i]
	nzones  int
}

// NewSet validates brokers and returns them as a Set; brokers is not
// retained. Duplicate IDs are rejected, not merged: two entries with one ID
// can only come from a membership bug, and merging them would need a rule for
// which zone wins. The error joins every problem found (ErrEmptyID,
// ErrDuplicateID, each naming the broker).
func NewSet(brokers []Broker) (*Set, error) {
	s := &Set{brokers: slices.Clone(brokers)}
	slices.SortFunc(s.brokers, func(a, b Broker) int { return strings.Compare(a.ID, b.ID) })
	var errs []error
	for i, b := range s.brokers {
		if b.ID == "" {
			if i == 0 || s.brokers[i-1].ID != "" {
				errs = append(errs, ErrEmptyID)
			}
			continue
		}
		if i > 0 && s.brokers[i-1].ID == b.ID && (i == 1 || s.brokers[i-2].ID != b.ID) {
			errs = append(errs, fmt.Errorf("%w %q", ErrDuplicateID, b.ID))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	zones := make(map[string]int32)
	s.zone = make([]int32, len(s.brokers))
	s.key = make([][]byte, len(s.brokers))
	for i, b := range s.brokers {
		z, ok := zones[b.Zone]
		if !ok {
			z = int32(len(zones))
			zones[b.Zone] = z
		}
		s.zone[i] = z
		k := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(b.ID)), uint64(len(b.ID)))
		s.key[i] = append(k, b.ID...)
		s.maxKey = max(s.maxKey, len(s.key[i]))
	}
	s.nzones = len(zones)
	return s, nil
}

// Len is the number of brokers.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.brokers)
}

// Brokers returns a copy of the brokers, sorted by ID.
func (s *Set) Brokers() []Broker {
	if s == nil {
		return nil
	}
	return slices.Clone(s.brokers)
}

// stackR and stackKey bound the scratch Replicas keeps on the stack; beyond
// them (r > 16, or a topic plus broker ID longer than about 200 bytes) it
// allocates once per call.
const (
	stackR   = 16
	stackKey = 256
)

// cand is a broker with its score for one partition.
type cand struct {
	score uint64
	i     int32 // index into Set.brokers
	zone  int32
}

// before is the preference order: higher score first, then lower ID.
func (a cand) before(b cand) bool {
	return a.score > b.score || a.score == b.score && a.i < b.i
}

// Replicas appends to dst[:0] the IDs of the min(r, s.Len()) brokers that
// hold (topic, partition), in preference order (the first is the preferred
// leader), and returns it. Nothing when r <= 0 or the set is empty. See the
// package documentation for the rule. It does not allocate when cap(dst) >=
// r, r <= 16 and len(topic) plus the longest ID is under 200 bytes.
func (s *Set) Replicas(topic string, partition int32, r int, dst []string) []string {
	dst = dst[:0]
	r = min(r, s.Len())
	if r <= 0 {
		return dst
	}

	// The hashed key is prefix || key[i]: the prefix is written once.
	var kbuf [stackKey]byte
	buf := kbuf[:0]
	if need := binary.MaxVarintLen64 + len(topic) + 4 + s.maxKey; need > stackKey {
		buf = make([]byte, 0, need)
	}
	buf = appendPrefix(buf, topic, partition)
	plen := len(buf)

	// top: the best r brokers, best first. zl: the best broker of each of
	// the best r zones (ranked by their best broker), best first. The
	// result is zl followed by the rest of top (see the package doc for
	// why nothing outside them can be chosen).
	var tbuf, zbuf [stackR]cand
	top, zl := tbuf[:0], zbuf[:0]
	if r > stackR {
		top, zl = make([]cand, 0, r), make([]cand, 0, r)
	}
	zoned := s.nzones > 1
	for i, k := range s.key {
		buf = append(buf[:plen], k...)
		c := cand{score: xxhash.Sum64(buf), i: int32(i), zone: s.zone[i]}
		top = insertTop(top, r, c)
		if zoned {
			zl = insertZone(zl, r, c)
		}
	}

	if !zoned {
		for _, c := range top {
			dst = append(dst, s.brokers[c.i].ID)
		}
		return dst
	}
	for _, c := range zl {
		dst = append(dst, s.brokers[c.i].ID)
	}
	for _, c := range top {
		if len(dst) == r {
			break
		}
		if !slices.ContainsFunc(zl, func(z cand) bool { return z.i == c.i }) {
			dst = append(dst, s.brokers[c.i].ID)
		}
	}
	return dst
}

// appendPrefix appends the topic and partition part of the hashed key:
// uvarint(len(topic)) || topic || partition as 4 bytes big-endian.
func appendPrefix(b []byte, topic string, partition int32) []byte {
	b = binary.AppendUvarint(b, uint64(len(topic)))
	b = append(b, topic...)
	return binary.BigEndian.AppendUint32(b, uint32(partition))
}

// score is the rendezvous weight of broker id for (topic, partition), the
// value Replicas ranks by; written out for the tests.
func score(topic string, partition int32, id string) uint64 {
	b := appendPrefix(nil, topic, partition)
	b = binary.AppendUvarint(b, uint64(len(id)))
	return xxhash.Sum64(append(b, id...))
}

// insertTop inserts c into top (at most r entries, sorted by before) if it
// belongs among the best r.
func insertTop(top []cand, r int, c cand) []cand {
	if len(top) == r {
		if !c.before(top[r-1]) {
			return top
		}
		top[r-1] = c
	} else {
		top = append(top, c)
	}
	bubble(top, len(top)-1)
	return top
}

// insertZone keeps zl as the best broker of each of the best r zones, one
// entry per zone, sorted by before. A zone dropped from zl can come back
// with a better broker: its dropped entry was worse than every entry kept,
// and entries only ever improve, so nothing of it is lost.
func insertZone(zl []cand, r int, c cand) []cand {
	if len(zl) == r && !c.before(zl[r-1]) {
		// Worse than every zone's best: also worse than the best of its
		// own zone if that is in zl.
		return zl
	}
	for j := range zl {
		if zl[j].zone == c.zone {
			if c.before(zl[j]) {
				zl[j] = c
				bubble(zl, j)
			}
			return zl
		}
	}
	return insertTop(zl, r, c)
}

// bubble moves l[j] up to its place in an otherwise sorted l.
func bubble(l []cand, j int) {
	for ; j > 0 && l[j].before(l[j-1]); j-- {
		l[j], l[j-1] = l[j-1], l[j]
	}
}
