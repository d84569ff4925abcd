package replica

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/rafka/rafka/segment"
	"github.com/rafka/rafka/wire"
)

func hdr(id int64, epoch int16, seq, count int32) wire.BatchHeader {
	return wire.BatchHeader{ProducerID: id, ProducerEpoch: epoch, BaseSequence: seq, RecordCount: count}
}

func TestProducersCheck(t *testing.T) {
	ps := NewProducers(0)
	h0 := hdr(1, 0, 0, 3)
	if c, err := ps.Check(&h0); err != nil || c.Verdict != SeqStore {
		t.Fatalf("unknown producer: %+v %v", c, err)
	}
	ps.Record(&h0, 10, 12)
	h1 := hdr(1, 0, 3, 2)
	ps.Record(&h1, 20, 21)
	cases := []struct {
		name string
		h    wire.BatchHeader
		want SeqCheck
		code wire.ErrorCode
	}{
		{"next", hdr(1, 0, 5, 1), SeqCheck{}, 0},
		{"duplicate of the first", h0, SeqCheck{Verdict: SeqDuplicate, Base: 10, Last: 12}, 0},
		{"duplicate of the last", h1, SeqCheck{Verdict: SeqDuplicate, Base: 20, Last: 21}, 0},
		{"gap", hdr(1, 0, 7, 1), SeqCheck{}, wire.ErrOutOfOrderSequence},
		{"same sequence, other count", hdr(1, 0, 3, 1), SeqCheck{}, wire.ErrDuplicateSequence},
		{"new epoch", hdr(1, 1, 0, 1), SeqCheck{}, 0},
		{"new epoch, not at 0", hdr(1, 1, 4, 1), SeqCheck{}, wire.ErrOutOfOrderSequence},
		{"old epoch", hdr(1, -1, 0, 1), SeqCheck{}, wire.ErrInvalidRequest},
		{"negative sequence", hdr(1, 0, -4, 1), SeqCheck{}, wire.ErrInvalidRequest},
		{"no producer", hdr(-1, -1, -1, 5), SeqCheck{}, 0},
		{"another producer", hdr(2, 0, 0, 1), SeqCheck{}, 0},
		{"another producer, not at 0", hdr(2, 0, 77, 1), SeqCheck{}, wire.ErrOutOfOrderSequence},
	}
	for _, tc := range cases {
		c, err := ps.Check(&tc.h)
		if tc.code != 0 {
			if !errors.Is(err, tc.code) {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.code)
			}
			continue
		}
		if err != nil || c != tc.want {
			t.Errorf("%s: %+v %v, want %+v", tc.name, c, err, tc.want)
		}
	}
	// Older than the batches remembered.
	seq := int32(5)
	for i := range ProducerBatches {
		h := hdr(1, 0, seq, 1)
		ps.Record(&h, int64(30+i), int64(30+i))
		seq++
	}
	if _, err := ps.Check(&h0); !errors.Is(err, wire.ErrDuplicateSequence) {
		t.Fatalf("forgotten batch: %v", err)
	}
	// A new epoch forgets the batches of the old one.
	h := hdr(1, 1, 0, 1)
	ps.Record(&h, 50, 50)
	if c, err := ps.Check(&h); err != nil || c.Base != 50 {
		t.Fatalf("new epoch: %+v %v", c, err)
	}
}

func TestSequenceWraps(t *testing.T) {
	if NextSequence(math.MaxInt32, 1) != 0 || NextSequence(math.MaxInt32-1, 3) != 1 {
		t.Fatal("NextSequence does not wrap")
	}
	ps := NewProducers(0)
	h := hdr(3, 0, math.MaxInt32-1, 2)
	ps.Record(&h, 0, 1)
	n := hdr(3, 0, 0, 1)
	if c, err := ps.Check(&n); err != nil || c.Verdict != SeqStore {
		t.Fatalf("after the wrap: %+v %v", c, err)
	}
}

func TestProducersEvictOldest(t *testing.T) {
	ps := NewProducers(3)
	for id := range int64(3) {
		h := hdr(id, 0, 0, 1)
		ps.Record(&h, id, id)
	}
	h := hdr(0, 0, 1, 1) // producer 0 writes again: 1 is now the oldest
	ps.Record(&h, 3, 3)
	h = hdr(9, 0, 0, 1)
	ps.Record(&h, 4, 4)
	if ps.Len() != 3 {
		t.Fatalf("%d producers remembered, cap 3", ps.Len())
	}
	if ps.m[1] != nil || ps.m[0] == nil || ps.m[2] == nil || ps.m[9] == nil {
		t.Fatal("evicted another producer than the one whose last batch is oldest")
	}
}

// TestProducersRebuild: the state read back from a log's tail matches the
// one recorded while appending, and a small budget keeps the newest.
func TestProducersRebuild(t *testing.T) {
	l, err := segment.Open(t.TempDir(), segment.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	live := NewProducers(0)
	bb := wire.NewBatchBuilder()
	for i := range 200 {
		id := int64(i % 7)
		bb.Reset()
		bb.SetProducer(id, 0, int32(i/7*4))
		for range 4 {
			bb.Append(1, nil, make([]byte, 500), nil)
		}
		b, err := bb.Build(wire.CodecNone)
		if err != nil {
			t.Fatal(err)
		}
		res, err := l.Append(b, 1)
		if err != nil {
			t.Fatal(err)
		}
		h, _, _ := wire.ParseBatchHeader(b, len(b))
		live.Record(&h, res.BaseOffset, res.LastOffset)
	}
	for _, budget := range []int64{1 << 30, 64 << 10} {
		got := NewProducers(0)
		if err := got.Rebuild(l, budget); err != nil {
			t.Fatal(err)
		}
		for id, s := range live.m {
			g := got.m[id]
			if g == nil || (budget > 1<<20 && g.n != s.n) || *g.latest() != *s.latest() {
				t.Fatalf("budget %d: producer %d rebuilt as %+v, want %+v", budget, id, g, s)
			}
		}
	}
}

type flight struct{ failed bool }

func (f *flight) Failed() bool { return f.failed }

// TestSequencer: a leader takes produce only once ready in its term; a
// retry of a batch in flight gets that proposal, of a committed one its
// offsets; a gap refuses the request and proposes nothing; a failed
// proposal's batch may be sent again once nothing after it is in flight.
func TestSequencer(t *testing.T) {
	s := NewSequencer(0)
	var proposed []int
	propose := func(i int, _ InFlight) InFlight { proposed = append(proposed, i); return &flight{} }
	hs := []wire.BatchHeader{hdr(5, 0, 0, 2)}
	if _, err := s.Propose(3, hs, propose); !errors.Is(err, ErrNotReady) {
		t.Fatalf("before leading: %v", err)
	}
	s.Lead(3, 10)
	s.AppliedIndex(9)
	if _, err := s.Propose(3, hs, propose); !errors.Is(err, ErrNotReady) {
		t.Fatalf("before applying the term's first entry: %v", err)
	}
	s.AppliedIndex(10)
	if _, err := s.Propose(2, hs, propose); !errors.Is(err, ErrNotReady) {
		t.Fatalf("in another term: %v", err)
	}
	slots, err := s.Propose(3, []wire.BatchHeader{hdr(5, 0, 0, 2), hdr(5, 0, 2, 1), hdr(-1, -1, -1, 1)}, propose)
	if err != nil || len(proposed) != 3 {
		t.Fatalf("three new batches: %v, proposed %v", err, proposed)
	}
	again, err := s.Propose(3, []wire.BatchHeader{hdr(5, 0, 2, 1)}, propose)
	if err != nil || again[0].InFlight != slots[1].InFlight || len(proposed) != 3 {
		t.Fatalf("a retry in flight: %+v %v", again, err)
	}
	if _, err := s.Propose(3, []wire.BatchHeader{hdr(5, 0, 3, 1), hdr(5, 0, 9, 1)}, propose); !errors.Is(err, wire.ErrOutOfOrderSequence) || len(proposed) != 3 {
		t.Fatalf("a request with a gap: %v, proposed %v", err, proposed)
	}
	// The first proposal commits, the second fails before being saved.
	s.Applied(11, mustBatch(t, 5, 0, 0, 2), 100, 101)
	slots[1].InFlight.(*flight).failed = true
	dup, err := s.Propose(3, []wire.BatchHeader{hdr(5, 0, 0, 2)}, propose)
	if err != nil || !dup[0].Duplicate || dup[0].Base != 100 || dup[0].Last != 101 {
		t.Fatalf("a retry of a committed batch: %+v %v", dup, err)
	}
	if _, err := s.Propose(3, []wire.BatchHeader{hdr(5, 0, 2, 1)}, propose); err != nil || len(proposed) != 4 {
		t.Fatalf("the failed batch again: %v, proposed %v", err, proposed)
	}
	// Leading again in a later term forgets what was in flight: the
	// outcome is in the log, applied before the leader is ready.
	s.Lead(5, 20)
	s.AppliedIndex(20)
	if _, err := s.Propose(5, []wire.BatchHeader{hdr(5, 0, 2, 1)}, propose); err != nil || len(proposed) != 5 {
		t.Fatalf("after a new term: %v, proposed %v", err, proposed)
	}
	s.Follow()
	if s.Ready(5) {
		t.Fatal("ready while following")
	}
}

// TestSequencerFailedBeforeLater: with a failed proposal followed by one
// still in flight, the failed batch's retry waits (retriable) until the
// later one's fate is known.
func TestSequencerFailedBeforeLater(t *testing.T) {
	s := NewSequencer(0)
	s.Lead(1, 0)
	var flights []*flight
	propose := func(int, InFlight) InFlight { f := &flight{}; flights = append(flights, f); return f }
	if _, err := s.Propose(1, []wire.BatchHeader{hdr(8, 0, 0, 1), hdr(8, 0, 1, 1)}, propose); err != nil {
		t.Fatal(err)
	}
	flights[0].failed = true
	if _, err := s.Propose(1, []wire.BatchHeader{hdr(8, 0, 0, 1)}, propose); !errors.Is(err, wire.ErrThrottled) {
		t.Fatalf("retry before a later batch in flight: %v", err)
	}
	flights[1].failed = true
	if _, err := s.Propose(1, []wire.BatchHeader{hdr(8, 0, 0, 1)}, propose); err != nil {
		t.Fatalf("retry once nothing is in flight: %v", err)
	}
}

// TestSequencerProposesAfterPredecessor: each batch of a producer is
// proposed after the one of the same epoch it follows, while in flight, so
// that it cannot enter the log if that one failed; a batch without producer,
// the first of a producer and the first of a new epoch follow nothing.
func TestSequencerProposesAfterPredecessor(t *testing.T) {
	s := NewSequencer(0)
	s.Lead(1, 0)
	var afters []InFlight
	propose := func(_ int, after InFlight) InFlight { afters = append(afters, after); return &flight{} }
	slots, err := s.Propose(1, []wire.BatchHeader{hdr(4, 0, 0, 2), hdr(-1, -1, -1, 1), hdr(4, 0, 2, 1)}, propose)
	if err != nil {
		t.Fatal(err)
	}
	if afters[0] != nil || afters[1] != nil || afters[2] != slots[0].InFlight {
		t.Fatalf("one request: proposed after %v, want nil, nil, the first batch", afters)
	}
	if _, err := s.Propose(1, []wire.BatchHeader{hdr(4, 0, 3, 1)}, propose); err != nil || afters[3] != slots[2].InFlight {
		t.Fatalf("the next request: %v, after %v, want the last batch in flight", err, afters[3])
	}
	// Its predecessor applied, the next batch follows nothing in flight.
	s.Applied(1, mustBatch(t, 4, 0, 0, 2), 0, 1)
	s.Applied(2, mustBatch(t, 4, 0, 2, 1), 2, 2)
	s.Applied(3, mustBatch(t, 4, 0, 3, 1), 3, 3)
	if _, err := s.Propose(1, []wire.BatchHeader{hdr(4, 0, 4, 1)}, propose); err != nil || afters[4] != nil {
		t.Fatalf("after everything applied: %v, after %v", err, afters[4])
	}
	// A new epoch starts afresh.
	if _, err := s.Propose(1, []wire.BatchHeader{hdr(4, 1, 0, 1)}, propose); err != nil || afters[5] != nil {
		t.Fatalf("a new epoch: %v, after %v", err, afters[5])
	}
}

func mustBatch(t testing.TB, id int64, epoch int16, seq int32, n int) []byte {
	t.Helper()
	bb := wire.NewBatchBuilder()
	bb.SetProducer(id, epoch, seq)
	for range n {
		bb.Append(1, nil, []byte("v"), nil)
	}
	b, err := bb.Build(wire.CodecNone)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), b...)
}

// FuzzSequencer feeds arbitrary entries to a sequencer's apply path and
// arbitrary headers to its checks: it must never panic, and its state stays
// within its bounds.
func FuzzSequencer(f *testing.F) {
	f.Add(mustBatch(f, 1, 0, 0, 2), int64(1), int16(0), int32(2), int32(1))
	f.Add([]byte{1, 2, 3}, int64(-1), int16(-1), int32(-1), int32(0))
	f.Fuzz(func(t *testing.T, entry []byte, id int64, epoch int16, seq, count int32) {
		s := NewSequencer(4)
		s.Lead(1, 0)
		for i := range 3 {
			s.Applied(uint64(i+1), entry, int64(i), int64(i))
		}
		h := hdr(id, epoch, seq, count)
		for range 3 {
			if _, err := s.Propose(1, []wire.BatchHeader{h, h}, func(int, InFlight) InFlight { return &flight{} }); err != nil {
				var we *wire.Error
				if !errors.As(err, &we) {
					t.Fatalf("error %v is not a protocol error", err)
				}
			}
			h.BaseSequence = NextSequence(max(h.BaseSequence, 0), max(h.RecordCount, 0))
		}
		if n := s.Producers(); n > 4 {
			t.Fatalf("%d producers, cap 4", n)
		}
		ps := NewProducers(2)
		_ = ps.RecordBatches(entry)
		if _, err := ps.Check(&h); err != nil {
			var we *wire.Error
			if !errors.As(err, &we) {
				t.Fatalf("error %v is not a protocol error", err)
			}
		}
	})
}

// TestAppendIdempotentRequests: requests of several batches on an
// unreplicated partition: batches stored before are answered with their
// offsets and not stored again when they lead the request, later batches
// of the same producer must follow the ones before them, and a duplicate
// after a new batch refuses the request.
func TestAppendIdempotentRequests(t *testing.T) {
	p := open(t, Config{Topic: "t"})
	b0, b1, b2 := mustBatch(t, 4, 0, 0, 2), mustBatch(t, 4, 0, 2, 3), mustBatch(t, 4, 0, 5, 1)
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	res, _, err := p.Append(cat(b0, b1), wire.AcksLeader)
	if err != nil || res.BaseOffset != 0 || res.LastOffset != 4 {
		t.Fatalf("two new batches: %+v %v", res, err)
	}
	res, _, err = p.Append(cat(b0, b1), wire.AcksLeader)
	if err != nil || res.BaseOffset != 0 || res.LastOffset != 4 || p.HighWatermark() != 5 {
		t.Fatalf("both again: %+v %v, log end %d", res, err, p.HighWatermark())
	}
	res, _, err = p.Append(cat(b1, b2), wire.AcksLeader)
	if err != nil || res.BaseOffset != 2 || res.LastOffset != 5 || p.HighWatermark() != 6 {
		t.Fatalf("a stored batch then a new one: %+v %v, log end %d", res, err, p.HighWatermark())
	}
	if _, _, err := p.Append(cat(mustBatch(t, 4, 0, 6, 1), mustBatch(t, 4, 0, 9, 1)), wire.AcksLeader); !errors.Is(err, wire.ErrOutOfOrderSequence) {
		t.Fatalf("a gap inside a request: %v", err)
	}
	if _, _, err := p.Append(cat(mustBatch(t, 5, 0, 0, 1), b2), wire.AcksLeader); !errors.Is(err, wire.ErrInvalidRequest) {
		t.Fatalf("a stored batch after a new one: %v", err)
	}
	if p.HighWatermark() != 6 {
		t.Fatalf("refused requests stored something: log end %d", p.HighWatermark())
	}
}
