package replica

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/rafka/rafka/wire"
)

// ErrNotReady: a replicated partition's leader has not yet applied its log
// up to the first entry of its term; until it has, it cannot tell a retried
// batch from a new one, so it takes no produce (the broker answers
// NOT_LEADER, retriable).
var ErrNotReady = errors.New("replica: leader still applying its log")

// InFlight is a batch a replicated partition's leader proposed and has not
// seen applied yet.
type InFlight interface {
	// Failed reports whether the batch is known never to reach the log
	// under the term it was proposed in (it failed before being saved).
	Failed() bool
}

// Slot is what became of one batch of a produce request on a replicated
// partition's leader: either a duplicate of a committed batch (Duplicate,
// with its offsets) or a proposal to wait for (a new one, or the one an
// earlier request made of the same batch).
type Slot struct {
	Duplicate  bool
	Base, Last int64
	InFlight   InFlight
}

type pendingBatch struct {
	first, count int32
	epoch        int16
	f            InFlight // nil while a request is being checked
}

// Sequencer is the producer state of a replicated partition. Every replica
// keeps Producers up to date as committed entries apply (Applied), in log
// order, so that whichever replica leads next knows every producer's
// stored batches. The leader also knows the batches it proposed in its term
// and has not seen applied: a retry of one of them waits for that proposal
// instead of being proposed again. It serves produce (Propose) only once it
// has applied its log up to the first entry of its term (Lead, AppliedIndex):
// every batch of earlier terms that will ever commit is then in Producers,
// and every later one is its own proposal.
//
// Safe for concurrent use: mu guards everything; Propose calls its propose
// function with mu held, so the checks and the proposals of concurrent
// requests happen in one order.
type Sequencer struct {
	mu       sync.Mutex
	applied  *Producers
	pending  map[int64][]pendingBatch // by producer id, in proposal order
	npending int
	// term is the term this replica leads in, 0 when it does not lead;
	// readyAt the raft index to apply before serving produce in it.
	term, readyAt, appliedIndex uint64
}

// maxPending bounds the proposals the leader remembers; past it, failed
// ones are pruned at once.
const maxPending = 4096

// NewSequencer returns an empty state remembering at most maxProducers
// producers (MaxProducers when <= 0).
func NewSequencer(maxProducers int) *Sequencer {
	return &Sequencer{applied: NewProducers(maxProducers), pending: make(map[int64][]pendingBatch)}
}

// Lead records that this replica leads in term; it serves produce once the
// entry at raft index readyAt (the first of its term, or later) is applied.
// The proposals of an earlier term are forgotten: their outcome is in the
// log.
func (s *Sequencer) Lead(term, readyAt uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.term, s.readyAt = term, readyAt
	s.clearPendingLocked()
}

// Follow records that this replica does not lead.
func (s *Sequencer) Follow() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.term, s.readyAt = 0, 0
	s.clearPendingLocked()
}

func (s *Sequencer) clearPendingLocked() {
	clear(s.pending)
	s.npending = 0
}

// AppliedIndex records that the raft log is applied up to index (control
// entries included).
func (s *Sequencer) AppliedIndex(index uint64) {
	s.mu.Lock()
	s.appliedIndex = max(s.appliedIndex, index)
	s.mu.Unlock()
}

// Ready reports whether the leader of term may take produce requests.
func (s *Sequencer) Ready(term uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readyLocked(term)
}

func (s *Sequencer) readyLocked(term uint64) bool {
	return term != 0 && s.term == term && s.appliedIndex >= s.readyAt
}

// Applied records a committed batch (as stored: data's header holds the
// producer fields) applied at raft index index, at offsets [base, last].
// Every replica calls it in log order.
func (s *Sequencer) Applied(index uint64, data []byte, base, last int64) {
	h, _, err := wire.ParseBatchHeader(data, math.MaxInt32)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appliedIndex = max(s.appliedIndex, index)
	if err != nil || h.ProducerID < 0 {
		return
	}
	s.applied.Record(&h, base, last)
	q := s.pending[h.ProducerID]
	for i, p := range q {
		if p.first == h.BaseSequence && p.count == h.RecordCount {
			q = append(q[:i], q[i+1:]...)
			s.npending--
			break
		}
	}
	s.setPendingLocked(h.ProducerID, q)
}

// Reset forgets every producer: the log was replaced by a snapshot.
func (s *Sequencer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied.Reset()
	s.clearPendingLocked()
}

// Producers is the number of producers remembered.
func (s *Sequencer) Producers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied.Len()
}

func (s *Sequencer) setPendingLocked(id int64, q []pendingBatch) {
	if len(q) == 0 {
		delete(s.pending, id)
		return
	}
	s.pending[id] = q
}

// pruneLocked drops the failed proposals of producer id.
func (s *Sequencer) pruneLocked(id int64) []pendingBatch {
	q := s.pending[id]
	kept := q[:0]
	for _, p := range q {
		if p.f != nil && p.f.Failed() {
			s.npending--
			continue
		}
		kept = append(kept, p)
	}
	clear(q[len(kept):])
	s.setPendingLocked(id, kept)
	return kept
}

// Propose checks the batches of one produce request (headers hs, in
// order) on the leader of term and proposes the new ones, calling propose
// with each one's position in hs, in order, under the sequencer's lock
// (propose must not block). after is the proposal of the same producer the
// batch follows, still in flight (nil if none): the batch must not enter
// the log if that one does not (a hole in the producer's sequence), so
// propose must fail it when after fails before it is saved. It returns one Slot per batch. When a batch is
// refused nothing is proposed: the error is ErrNotReady (not ready in
// term) or a *wire.Error (OUT_OF_ORDER_SEQUENCE, DUPLICATE_SEQUENCE,
// INVALID_REQUEST).
func (s *Sequencer) Propose(term uint64, hs []wire.BatchHeader, propose func(i int, after InFlight) InFlight) ([]Slot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.readyLocked(term) {
		return nil, ErrNotReady
	}
	slots := make([]Slot, len(hs))
	isNew := make([]bool, len(hs))
	// Batches checked new are queued as pending (f nil) so that the next
	// batch of the same producer in this request follows them; on a
	// refusal they are removed again.
	var added []int64
	undo := func() {
		for _, id := range added {
			q := s.pending[id]
			kept := q[:0]
			for _, p := range q {
				if p.f != nil {
					kept = append(kept, p)
				} else {
					s.npending--
				}
			}
			clear(q[len(kept):])
			s.setPendingLocked(id, kept)
		}
	}
	for i := range hs {
		h := &hs[i]
		if h.ProducerID < 0 {
			isNew[i] = true
			continue
		}
		slot, fresh, err := s.checkLocked(h)
		if err != nil {
			undo()
			return nil, err
		}
		if !fresh {
			slots[i] = slot
			continue
		}
		isNew[i] = true
		s.pending[h.ProducerID] = append(s.pending[h.ProducerID], pendingBatch{first: h.BaseSequence, count: h.RecordCount, epoch: h.ProducerEpoch})
		s.npending++
		added = append(added, h.ProducerID)
	}
	// Every batch passed: propose the new ones, in order.
	for i := range hs {
		if !isNew[i] {
			continue
		}
		h := &hs[i]
		if h.ProducerID < 0 {
			slots[i] = Slot{InFlight: propose(i, nil)}
			continue
		}
		q := s.pending[h.ProducerID]
		for k := range q {
			if q[k].f == nil && q[k].first == h.BaseSequence {
				var after InFlight
				if k > 0 && q[k-1].epoch == h.ProducerEpoch {
					after = q[k-1].f
				}
				q[k].f = propose(i, after)
				slots[i] = Slot{InFlight: q[k].f}
				break
			}
		}
	}
	if s.npending > maxPending {
		for id := range s.pending {
			s.pruneLocked(id)
		}
	}
	return slots, nil
}

// checkLocked checks one batch of a producer: a duplicate of a committed
// batch or of a pending proposal (fresh false, slot says which), a new
// batch (fresh true), or an error.
func (s *Sequencer) checkLocked(h *wire.BatchHeader) (slot Slot, fresh bool, err error) {
	if err := checkFields(h); err != nil {
		return Slot{}, false, err
	}
	q := s.pruneLocked(h.ProducerID)
	for _, p := range q {
		if p.first == h.BaseSequence && p.count == h.RecordCount && p.epoch == h.ProducerEpoch {
			if p.f == nil {
				return Slot{}, false, &wire.Error{Code: wire.ErrInvalidRequest, Message: fmt.Sprintf(
					"producer %d: sequence %d twice in one request", h.ProducerID, h.BaseSequence)}
			}
			return Slot{InFlight: p.f}, false, nil
		}
	}
	c, cerr := s.applied.Check(h)
	if cerr == nil && c.Verdict == SeqDuplicate {
		return Slot{Duplicate: true, Base: c.Base, Last: c.Last}, false, nil
	}
	if len(q) == 0 || q[len(q)-1].epoch != h.ProducerEpoch {
		if len(q) > 0 && h.ProducerEpoch < q[len(q)-1].epoch {
			return Slot{}, false, &wire.Error{Code: wire.ErrInvalidRequest, Message: fmt.Sprintf(
				"producer %d: epoch %d is older than the one in flight (%d)", h.ProducerID, h.ProducerEpoch, q[len(q)-1].epoch)}
		}
		if len(q) > 0 {
			// A new epoch starts afresh, at sequence 0.
			if h.BaseSequence != 0 {
				return Slot{}, false, outOfOrder(h, 0)
			}
			return Slot{}, true, nil
		}
		return Slot{}, cerr == nil, cerr
	}
	// Batches of the producer are in flight: this one must follow them.
	last := q[len(q)-1]
	next := NextSequence(last.first, last.count)
	switch {
	case h.BaseSequence == next:
		return Slot{}, true, nil
	case seqAhead(h.BaseSequence, next):
		return Slot{}, false, outOfOrder(h, next)
	case seqAhead(q[0].first, h.BaseSequence) && (cerr == nil || errors.Is(cerr, wire.ErrOutOfOrderSequence)):
		// Before the batches in flight but not stored: an earlier
		// proposal failed while later ones are still in flight. Their
		// fate decides; the retry is refused meanwhile (THROTTLED, not
		// OUT_OF_ORDER_SEQUENCE: the producer must not take it for a
		// partition that forgot it).
		return Slot{}, false, &wire.Error{Code: wire.ErrThrottled, Message: fmt.Sprintf(
			"producer %d: batch at sequence %d while later batches (from %d) are in flight: retry once they are answered",
			h.ProducerID, h.BaseSequence, q[0].first)}
	}
	return Slot{}, false, duplicateSeq(h, next)
}
