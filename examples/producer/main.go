// Command producer writes -n records to a Rafka topic, creating the topic
// when it does not exist, and prints where each record was stored.
//
//	producer -b 127.0.0.1:9092 --tls-ca /var/lib/rafka/tls/cert.pem --topic demo -n 10
//
// The connection flags are those of the rafka command: -b/--brokers,
// --tls-ca (default: ./rafka-data/tls/cert.pem, the certificate `rafka
// serve` generates, when it exists) and --insecure-skip-verify.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rafka/rafka/client"
	"github.com/rafka/rafka/quicnet"
)

// devCertPath is where `rafka serve` run from the same directory keeps its
// generated certificate.
var devCertPath = quicnet.SelfSignedCertPath("rafka-data")

type config struct {
	brokers    string
	caFile     string
	insecure   bool
	topic      string
	n          int
	partitions int
	timeout    time.Duration
}

func main() {
	var cfg config
	flag.StringVar(&cfg.brokers, "brokers", "127.0.0.1:9092", "comma-separated bootstrap brokers (host:port)")
	flag.StringVar(&cfg.brokers, "b", "127.0.0.1:9092", "shorthand for --brokers")
	flag.StringVar(&cfg.caFile, "tls-ca", "", "PEM CA bundle to verify the brokers (default: "+devCertPath+" when it exists, else the system roots)")
	flag.BoolVar(&cfg.insecure, "insecure-skip-verify", false, "do not verify the brokers' certificate (development only)")
	flag.StringVar(&cfg.topic, "topic", "demo", "topic to write to")
	flag.IntVar(&cfg.n, "n", 10, "number of records")
	flag.IntVar(&cfg.partitions, "partitions", 3, "partition count when the topic is created")
	flag.DurationVar(&cfg.timeout, "timeout", 30*time.Second, "give up after this long")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "producer:", err)
		os.Exit(1)
	}
}

// connect opens a client the way the rafka command does.
func connect(ctx context.Context, cfg config) (*client.Client, error) {
	opts := []client.Option{client.WithBrokers(strings.Split(cfg.brokers, ",")...)}
	ca := cfg.caFile
	if ca == "" && !cfg.insecure {
		if _, err := os.Stat(devCertPath); err == nil {
			ca = devCertPath
		}
	}
	if ca != "" {
		opts = append(opts, client.WithCAFile(ca))
	}
	if cfg.insecure {
		opts = append(opts, client.WithInsecureSkipVerify())
	}
	return client.New(ctx, opts...)
}

func run(ctx context.Context, cfg config, out io.Writer) error {
	c, err := connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.CreateTopic(ctx, cfg.topic, int32(cfg.partitions), nil); err != nil && !errors.Is(err, client.ErrTopicAlreadyExists) {
		return err
	}
	p, err := c.NewProducer(client.WithCompression(client.CompressionLZ4))
	if err != nil {
		return err
	}
	records := make([]*client.Record, cfg.n)
	for i := range records {
		records[i] = &client.Record{
			Topic:     cfg.topic,
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
		fmt.Fprintf(out, "produced %s/%d@%d %s=%s\n", r.Topic, r.Partition, r.Offset, r.Key, r.Value)
	}
	return p.Close(ctx)
}
