package client_test

import (
	"math"
	"runtime"
	"sync"
	"testing"

	"github.com/rafka/rafka/client"
	"github.com/rafka/rafka/wire"
)

// TestBacklogLeavesAsOneBatch: with no linger, records produced while every
// in-flight request of their partition awaits its answer stay in one open
// batch, which leaves as one request once an answer frees a slot, instead
// of one request per record queued behind the slot.
func TestBacklogLeavesAsOneBatch(t *testing.T) {
	var mu sync.Mutex
	var counts []int32
	var next int64
	first, release := make(chan struct{}), make(chan struct{})
	fb := &fakeBroker{topic: "backlog", parts: 1}
	fb.produce = func(_ *wire.ProduceRequest, payload []byte) *wire.ProduceResponse {
		h, _, err := wire.ParseBatchHeader(payload, math.MaxInt32)
		if err != nil {
			t.Errorf("produce payload: %v", err)
			return &wire.ProduceResponse{Error: wire.ErrCorruptMessage, BaseOffset: -1, LastOffset: -1}
		}
		mu.Lock()
		counts = append(counts, h.RecordCount)
		n := len(counts)
		base := next
		next += int64(h.RecordCount)
		mu.Unlock()
		if n == 1 {
			close(first)
			<-release // the answer to the first request is late
		}
		return &wire.ProduceResponse{BaseOffset: base, LastOffset: base + int64(h.RecordCount) - 1}
	}
	startFakeBroker(t, fb)
	c := newFakeClient(t, fb)
	p := newProducer(t, c, client.WithLinger(0), client.WithMaxInFlight(1))
	ctx := testCtx(t)

	const backlog = 99
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var errs []error
	produce := func() {
		wg.Add(1)
		err := p.Produce(ctx, &client.Record{Topic: "backlog", Partition: 0, Value: []byte("v")}, func(_ *client.Record, err error) {
			if err != nil {
				errMu.Lock()
				errs = append(errs, err)
				errMu.Unlock()
			}
			wg.Done()
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	produce()
	<-first
	for range backlog {
		produce()
		// Let the writer run between records, as it would between
		// records that come some time apart.
		for range 20 {
			runtime.Gosched()
		}
	}
	close(release)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d records failed, first: %v", len(errs), errs[0])
	}
	mu.Lock()
	defer mu.Unlock()
	if len(counts) != 2 || counts[0] != 1 || counts[1] != backlog {
		t.Fatalf("records per request %v, want [1 %d]", counts, backlog)
	}
}
