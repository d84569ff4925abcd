package client_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/rafka/rafka/client"
)

// BenchmarkConsume measures reading a partition from the start through an
// in-process broker: one op reads all of it (64 MiB of values), so B/op and
// allocs/op divided by the record count are per record (see the ns/record
// metric), and cpu-ns/record is the process's CPU time (client and broker,
// user and system) per record: less sensitive than ns/record to other
// processes competing for the cores.
func BenchmarkConsume(b *testing.B) {
	for _, size := range []int{100, 1024} {
		for _, api := range consumeAPIs {
			b.Run(fmt.Sprintf("%s/%dB", api.name, size), func(b *testing.B) {
				ctx := context.Background()
				tb := startBroker(b)
				c := tb.client()
				if err := c.CreateTopic(ctx, "bench", 1, nil); err != nil {
					b.Fatal(err)
				}
				p, err := c.NewProducer(client.WithLinger(time.Millisecond))
				if err != nil {
					b.Fatal(err)
				}
				n := (64 << 20) / size
				value := make([]byte, size)
				for range n {
					if err := p.Produce(ctx, &client.Record{Topic: "bench", Partition: 0, Value: value}, nil); err != nil {
						b.Fatal(err)
					}
				}
				if err := p.Close(ctx); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(n * size))
				b.ReportAllocs()
				cpu0 := cpuTime(b)
				for b.Loop() {
					cs, err := c.NewConsumer()
					if err != nil {
						b.Fatal(err)
					}
					if err := cs.Assign(ctx, client.Assignment{Topic: "bench", Partition: 0}); err != nil {
						b.Fatal(err)
					}
					if got := api.read(ctx, b, cs, n); got != n*size {
						b.Fatalf("read %d bytes of %d", got, n*size)
					}
					cs.Close()
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
				b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N*n), "cpu-ns/record")
			})
		}
	}
}

// cpuTime is the process's user and system CPU time so far, in ns.
func cpuTime(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// consumeAPIs are the ways of reading BenchmarkConsume compares: each reads
// n records and returns the bytes of their values.
var consumeAPIs = []struct {
	name string
	read func(ctx context.Context, b *testing.B, cs *client.Consumer, n int) int
}{
	{"Poll", func(ctx context.Context, b *testing.B, cs *client.Consumer, n int) int {
		bytes := 0
		for seen := 0; seen < n; {
			recs, err := cs.Poll(ctx)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range recs {
				bytes += len(r.Value)
			}
			seen += len(recs)
		}
		return bytes
	}},
	{"PollBatch", func(ctx context.Context, b *testing.B, cs *client.Consumer, n int) int {
		bytes := 0
		for seen := 0; seen < n; {
			bt, err := cs.PollBatch(ctx)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range bt.Records() {
				bytes += len(r.Value)
			}
			seen += bt.Len()
			bt.Release()
		}
		return bytes
	}},
}
