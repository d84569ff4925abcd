// Command consumer reads a Rafka topic's partitions from the beginning and
// prints each record, stopping after -n records (or at -timeout).
//
//	consumer -brokers 127.0.0.1:9092 -ca /var/lib/rafka/tls/cert.pem -topic demo -n 10
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/rafka/rafka/client"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "comma-separated bootstrap brokers (host:port)")
	topic := flag.String("topic", "demo", "topic to read")
	ca := flag.String("ca", "", "PEM file of the CA that signed the brokers' certificate (default: system roots)")
	n := flag.Int("n", 10, "stop after this many records")
	timeout := flag.Duration("timeout", 30*time.Second, "give up after this long")
	flag.Parse()
	if err := run(*brokers, *topic, *ca, *n, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(1)
	}
}

func run(brokers, topic, ca string, n int, timeout time.Duration) error {
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
	desc, err := c.DescribeTopic(ctx, topic)
	if err != nil {
		return err
	}
	cs, err := c.NewConsumer()
	if err != nil {
		return err
	}
	defer cs.Close()
	as := make([]client.Assignment, 0, len(desc.Partitions))
	for _, p := range desc.Partitions {
		as = append(as, client.Assignment{Topic: topic, Partition: p.Partition, Start: client.Earliest()})
	}
	if err := cs.Assign(ctx, as...); err != nil {
		return err
	}
	for seen := 0; seen < n; {
		recs, err := cs.Poll(ctx)
		if err != nil {
			return fmt.Errorf("after %d records: %w", seen, err)
		}
		for _, r := range recs {
			fmt.Printf("consumed %s/%d@%d %s=%s\n", r.Topic, r.Partition, r.Offset, r.Key, r.Value)
		}
		seen += len(recs)
	}
	return nil
}
