package client_test

import (
	"bytes"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/rafka/rafka/client"
	"github.com/rafka/rafka/wire"
)

// sent is a produce request a fake broker saw.
type sent struct {
	h       wire.BatchHeader
	payload []byte
}

// scriptedBroker is a fake broker of one partition that stores batches
// (offsets counted from 0) and answers the produce requests whose index
// (from 0) is in fail with NOT_LEADER naming itself, without storing them.
func scriptedBroker(t *testing.T, fail map[int]bool) (*fakeBroker, func() []sent) {
	var mu sync.Mutex
	var seen []sent
	var next int64
	fb := &fakeBroker{topic: "idem", parts: 1}
	fb.produce = func(_ *wire.ProduceRequest, payload []byte) *wire.ProduceResponse {
		mu.Lock()
		defer mu.Unlock()
		h, _, err := wire.ParseBatchHeader(payload, math.MaxInt32)
		if err != nil {
			t.Errorf("produce payload: %v", err)
			return &wire.ProduceResponse{Error: wire.ErrCorruptMessage, BaseOffset: -1, LastOffset: -1}
		}
		i := len(seen)
		seen = append(seen, sent{h, payload})
		if fail[i] {
			return &wire.ProduceResponse{Error: wire.ErrNotLeader, Message: "scripted", LeaderID: "fake", LeaderAddr: fb.addr, BaseOffset: -1, LastOffset: -1}
		}
		base := next
		next += int64(h.RecordCount)
		return &wire.ProduceResponse{BaseOffset: base, LastOffset: next - 1}
	}
	startFakeBroker(t, fb)
	return fb, func() []sent {
		mu.Lock()
		defer mu.Unlock()
		return append([]sent(nil), seen...)
	}
}

// TestIdempotentSequences: an idempotent producer (the default) numbers the
// records of a partition from 0 with one producer id, and a batch retried
// after a failure is sent again byte for byte, with its first sequence.
func TestIdempotentSequences(t *testing.T) {
	fb, seen := scriptedBroker(t, map[int]bool{1: true})
	c := newFakeClient(t, fb)
	// A long linger: ProduceSync sends each call's records as one batch.
	p := newProducer(t, c, client.WithLinger(time.Hour), client.WithMaxInFlight(1), client.WithRetryBackoff(1e6, 1e7))
	ctx := testCtx(t)
	for _, n := range []int{2, 3, 1} {
		var rs []*client.Record
		for range n {
			rs = append(rs, &client.Record{Topic: "idem", Partition: 0, Value: []byte("v")})
		}
		if err := p.ProduceSync(ctx, rs...); err != nil {
			t.Fatal(err)
		}
	}
	got := seen()
	if len(got) != 4 {
		t.Fatalf("%d produce requests, want 4 (one retried)", len(got))
	}
	id := got[0].h.ProducerID
	if id < 0 {
		t.Fatalf("producer id %d", id)
	}
	wantSeq := []int32{0, 2, 2, 5}
	wantCount := []int32{2, 3, 3, 1}
	for i, s := range got {
		if s.h.ProducerID != id || s.h.ProducerEpoch != 0 || s.h.BaseSequence != wantSeq[i] || s.h.RecordCount != wantCount[i] {
			t.Errorf("request %d: producer %d epoch %d sequence %d records %d, want %d 0 %d %d",
				i, s.h.ProducerID, s.h.ProducerEpoch, s.h.BaseSequence, s.h.RecordCount, id, wantSeq[i], wantCount[i])
		}
	}
	if !bytes.Equal(got[1].payload[8:12], got[2].payload[8:12]) || !bytes.Equal(got[1].payload[20:], got[2].payload[20:]) {
		t.Error("the retry did not send the same batch")
	}

	// Another producer gets another id; without idempotence there is none.
	fb2, seen2 := scriptedBroker(t, nil)
	c2 := newFakeClient(t, fb2)
	p2 := newProducer(t, c2, client.WithLinger(0))
	p3 := newProducer(t, c2, client.WithLinger(0), client.WithIdempotence(false))
	if err := p2.ProduceSync(ctx, &client.Record{Topic: "idem", Value: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	if err := p3.ProduceSync(ctx, &client.Record{Topic: "idem", Value: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	got2 := seen2()
	if len(got2) != 2 || got2[0].h.ProducerID < 0 || got2[0].h.ProducerID == id || got2[0].h.BaseSequence != 0 {
		t.Fatalf("second producer: %+v", got2)
	}
	if h := got2[1].h; h.ProducerID != wire.NoProducerID || h.BaseSequence != wire.NoSequence {
		t.Fatalf("without idempotence: producer %d sequence %d", h.ProducerID, h.BaseSequence)
	}
}

// TestIdempotentNewEpochAfterHole: a batch that fails for good leaves a
// hole in the partition's sequences; the producer starts a new epoch from
// sequence 0 for the next batch rather than sending a gap the broker
// would refuse.
func TestIdempotentNewEpochAfterHole(t *testing.T) {
	var mu sync.Mutex
	var seen []wire.BatchHeader
	fb := &fakeBroker{topic: "idem", parts: 1}
	fb.produce = func(_ *wire.ProduceRequest, payload []byte) *wire.ProduceResponse {
		mu.Lock()
		defer mu.Unlock()
		h, _, _ := wire.ParseBatchHeader(payload, math.MaxInt32)
		seen = append(seen, h)
		if len(seen) == 2 {
			return &wire.ProduceResponse{Error: wire.ErrInvalidTimestamp, Message: "scripted", BaseOffset: -1, LastOffset: -1}
		}
		return &wire.ProduceResponse{BaseOffset: 0, LastOffset: int64(h.RecordCount) - 1}
	}
	startFakeBroker(t, fb)
	c := newFakeClient(t, fb)
	p := newProducer(t, c, client.WithLinger(0), client.WithMaxInFlight(1))
	ctx := testCtx(t)
	if err := p.ProduceSync(ctx, &client.Record{Topic: "idem", Value: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &client.Record{Topic: "idem", Value: []byte("b")}); err == nil {
		t.Fatal("the scripted failure did not fail the record")
	}
	if err := p.ProduceSync(ctx, &client.Record{Topic: "idem", Value: []byte("c")}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 || seen[1].BaseSequence != 1 || seen[2].ProducerEpoch != 1 || seen[2].BaseSequence != 0 {
		t.Fatalf("batches sent: %+v", seen)
	}
}

// newFakeClient returns a client of fb, closed by t.Cleanup.
func newFakeClient(t *testing.T, fb *fakeBroker) *client.Client {
	t.Helper()
	c, err := client.New(testCtx(t), client.WithBrokers(fb.addr), client.WithInsecureSkipVerify())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestLeaderProbeFailsOver: a leader that stops answering (its broker
// hangs or died) is noticed by the leader probe once another broker names
// a new leader in a higher term: the outstanding batch is sent there well
// before the request timeout, with the same bytes.
func TestLeaderProbeFailsOver(t *testing.T) {
	var mu sync.Mutex
	var atOld, atNew [][]byte
	var moved bool
	var oldAddr, newAddr string
	// The new leader answers produce; both brokers' metadata name the old
	// leader (term 1) until moved, then the new one (term 2).
	newLead := &fakeBroker{topic: "idem", parts: 1}
	oldLead := &fakeBroker{topic: "idem", parts: 1}
	leader := func() (string, string, uint64) {
		mu.Lock()
		defer mu.Unlock()
		if moved {
			return "new", newAddr, 2
		}
		return "old", oldAddr, 1
	}
	newLead.leader, oldLead.leader = leader, leader
	newLead.produce = func(_ *wire.ProduceRequest, payload []byte) *wire.ProduceResponse {
		mu.Lock()
		defer mu.Unlock()
		atNew = append(atNew, payload)
		return &wire.ProduceResponse{BaseOffset: 0, LastOffset: 0}
	}
	oldLead.produce = func(_ *wire.ProduceRequest, payload []byte) *wire.ProduceResponse {
		mu.Lock()
		defer mu.Unlock()
		atOld = append(atOld, payload)
		moved = true // the next metadata answer names the new leader
		return nil   // no answer: the broker hangs
	}
	startFakeBroker(t, newLead)
	startFakeBroker(t, oldLead)
	mu.Lock()
	oldAddr, newAddr = oldLead.addr, newLead.addr
	mu.Unlock()
	c, err := client.New(testCtx(t), client.WithBrokers(oldLead.addr, newLead.addr), client.WithInsecureSkipVerify())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := newProducer(t, c, client.WithLinger(0), client.WithRequestTimeout(time.Hour),
		client.WithLeaderProbe(50*time.Millisecond), client.WithRetryBackoff(time.Millisecond, 10*time.Millisecond))
	// Bounded by the test's context, far below the request timeout: only
	// the probe can deliver it.
	if err := p.ProduceSync(testCtx(t), &client.Record{Topic: "idem", Partition: 0, Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(atOld) != 1 || len(atNew) != 1 || !bytes.Equal(atOld[0][20:], atNew[0][20:]) {
		t.Fatalf("sent %d to the old leader, %d to the new one (same batch: %v)", len(atOld), len(atNew),
			len(atOld) == 1 && len(atNew) == 1 && bytes.Equal(atOld[0][20:], atNew[0][20:]))
	}
}
