// Command producer writes -n records to a Rafka topic, creating the topic
// when it does not exist, and prints where each record was stored.
//
//	producer -brokers 127.0.0.1:9092 -ca /var/lib/rafka/tls/cert.pem -topic demo -n 10
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/rafka/rafka/client"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "comma-separated bootstrap brokers (host:port)")
	topic := flag.String("topic", "demo", "topic to write to")
	ca := flag.String("ca", "", "PEM file of the CA that signed the brokers' certificate (default: system roots)")
	n := flag.Int("n", 10, "number of records")
	partitions := flag.Int("partitions", 3, "partition count when the topic is created")
	timeout := flag.Duration("timeout", 30*time.Second, "give up after this long")
	flag.Parse()
	if err := run(*brokers, *topic, *ca, *n, int32(*partitions), *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "producer:", err)
		os.Exit(1)
	}
}

func run(brokers, topic, ca string, n int, partitions int32, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	opts := []client.Option{client.WithBrokers(strings.Split(brokers, ",")...)}
	if ca != "" {
		opts = append(opts, client.WithCAFile(ca))
	}
	c, err := client.New(ctx, opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.CreateTopic(ctx, topic, partitions, nil); err != nil && !errors.Is(err, client.ErrTopicAlreadyExists) {
		return err
	}
	p, err := c.NewProducer(client.WithCompression(client.CompressionLZ4))
	if err != nil {
		return err
	}
	records := make([]*client.Record, n)
	for i := range records {
		records[i] = &client.Record{
			Topic:     topic,
			Partition: client.AnyPartition,
			Key:       fmt.Appendf(nil, "key-%d", i),
			Value:     fmt.Appendf(nil, "message-%d", i),
		}
	}
	if err := p.ProduceSync(ctx, records...); err != nil {
		p.Close(ctx)
		return err
	}
	for _, r := range records {
		fmt.Printf("produced %s/%d@%d %s=%s\n", r.Topic, r.Partition, r.Offset, r.Key, r.Value)
	}
	return p.Close(ctx)
}
