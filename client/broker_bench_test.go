package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/rafka/rafka/client"
)

// BenchmarkProduce measures Produce plus delivery per record against an
// in-process broker; allocs/op are per record (batching amortises the
// per-batch ones).
func BenchmarkProduce(b *testing.B) {
	for _, size := range []int{100, 1000} {
		b.Run(map[int]string{100: "100B", 1000: "1KiB"}[size], func(b *testing.B) {
			tb := startBroker(b)
			c := tb.client()
			ctx := context.Background()
			if err := c.CreateTopic(ctx, "bench", 1, nil); err != nil {
				b.Fatal(err)
			}
			p, err := c.NewProducer(client.WithLinger(time.Millisecond))
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close(ctx)
			value := make([]byte, size)
			rs := make([]client.Record, 16384)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r := &rs[i%len(rs)]
				*r = client.Record{Topic: "bench", Partition: 0, Value: value}
				if err := p.Produce(ctx, r, nil); err != nil {
					b.Fatal(err)
				}
				if i++; i%len(rs) == 0 {
					// Records are reused: wait until the previous round is delivered.
					if err := p.Flush(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := p.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}
