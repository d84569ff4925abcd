// Command consumer reads a Rafka topic's partitions from the beginning and
// prints each record, stopping after -n records (or at --timeout).
//
//	consumer -b 127.0.0.1:9092 --tls-ca /var/lib/rafka/tls/cert.pem --topic demo -n 10
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
	brokers  string
	caFile   string
	insecure bool
	topic    string
	n        int
	timeout  time.Duration
}

func main() {
	var cfg config
	flag.StringVar(&cfg.brokers, "brokers", "127.0.0.1:9092", "comma-separated bootstrap brokers (host:port)")
	flag.StringVar(&cfg.brokers, "b", "127.0.0.1:9092", "shorthand for --brokers")
	flag.StringVar(&cfg.caFile, "tls-ca", "", "PEM CA bundle to verify the brokers (default: "+devCertPath+" when it exists, else the system roots)")
	flag.BoolVar(&cfg.insecure, "insecure-skip-verify", false, "do not verify the brokers' certificate (development only)")
	flag.StringVar(&cfg.topic, "topic", "demo", "topic to read")
	flag.IntVar(&cfg.n, "n", 10, "stop after this many records")
	flag.DurationVar(&cfg.timeout, "timeout", 30*time.Second, "give up after this long")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	if err := run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
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

func run(ctx context.Context, cfg config, out, warn io.Writer) error {
	c, err := connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	desc, err := c.DescribeTopic(ctx, cfg.topic)
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
		as = append(as, client.Assignment{Topic: cfg.topic, Partition: p.Partition, Start: client.Earliest()})
	}
	if err := cs.Assign(ctx, as...); err != nil {
		return err
	}
	for seen := 0; seen < cfg.n; {
		recs, err := cs.Poll(ctx)
		var corrupt *client.CorruptBatchError
		if errors.As(err, &corrupt) {
			// A batch that cannot be decoded: skip it and go on.
			fmt.Fprintf(warn, "skipping: %v\n", corrupt)
			if err := cs.Seek(ctx, corrupt.Topic, corrupt.Partition, corrupt.Next); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("after %d records: %w", seen, err)
		}
		for _, r := range recs {
			fmt.Fprintf(out, "consumed %s/%d@%d %s=%s\n", r.Topic, r.Partition, r.Offset, r.Key, r.Value)
		}
		seen += len(recs)
	}
	return nil
}
