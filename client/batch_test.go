package client_test

import (
	"fmt"
	"testing"

	"github.com/rafka/rafka/client"
)

// Poll and PollBatch may be mixed: every record comes once, in order, and
// the records Poll returned keep their values while batches are released
// and their buffers reused. Frames above 64 KiB come in pooled buffers.
func TestPollBatchMixedWithPoll(t *testing.T) {
	tb := startBroker(t)
	c := tb.client()
	createTopic(t, c, "mix", 1)
	p := newProducer(t, c)
	const n = 3000
	value := func(i int) string { return fmt.Sprintf("value-%05d-%01000d", i, i) }
	ctx := testCtx(t)
	for i := 0; i < n; i += 100 {
		rs := make([]*client.Record, 100)
		for j := range rs {
			rs[j] = &client.Record{Topic: "mix", Partition: 0, Value: []byte(value(i + j))}
		}
		if err := p.ProduceSync(ctx, rs...); err != nil {
			t.Fatal(err)
		}
	}

	cs, err := c.NewConsumer(client.WithCreditBytes(256<<10), client.WithMaxPollRecords(7))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if err := cs.Assign(ctx, client.Assignment{Topic: "mix", Partition: 0}); err != nil {
		t.Fatal(err)
	}
	var kept []*client.Record
	next := int64(0)
	check := func(off int64, v []byte) {
		t.Helper()
		if off != next || string(v) != value(int(off)) {
			t.Fatalf("record %d (%q), want %d", off, v, next)
		}
		next++
	}
	for round := 0; next < n; round++ {
		if round%2 == 0 {
			recs, err := cs.Poll(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				check(r.Offset, r.Value)
			}
			kept = append(kept, recs...)
			continue
		}
		b, err := cs.PollBatch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if b.Topic != "mix" || b.Partition != 0 || b.Len() == 0 {
			t.Fatalf("batch of %s/%d with %d records", b.Topic, b.Partition, b.Len())
		}
		for _, r := range b.Records() {
			check(r.Offset, r.Value)
		}
		b.Release()
	}
	for _, r := range kept {
		if string(r.Value) != value(int(r.Offset)) {
			t.Fatalf("polled record %d changed to %q", r.Offset, r.Value)
		}
	}
}
