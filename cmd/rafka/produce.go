package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/rafka/rafka/client"
)

func newProduceCmd() *cobra.Command {
	var (
		cf          connFlags
		keySep      string
		partition   int32
		acks        string
		compression string
		linger      time.Duration
		maxLine     int
	)
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Write records read from standard input, one per line",
		Long: `Write one record per line of standard input. With --key-separator, the
text before the first separator is the record key (records with the same key
go to the same partition). Prints a summary to stderr; exits non-zero if any
record was not acknowledged.`,
		Example: `  printf 'alice:book\nbob:pen\n' | rafka produce orders --key-separator :
  seq 1000 | rafka produce numbers --compression lz4`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := []client.ProducerOption{}
			switch acks {
			case "none", "0":
				opts = append(opts, client.WithAcks(client.AcksNone))
			case "leader", "1":
				opts = append(opts, client.WithAcks(client.AcksLeader))
			case "all", "-1":
				opts = append(opts, client.WithAcks(client.AcksAll))
			default:
				return usagef("--acks %q: none, leader or all", acks)
			}
			switch compression {
			case "none":
			case "lz4":
				opts = append(opts, client.WithCompression(client.CompressionLZ4))
			default:
				return usagef("--compression %q: none or lz4", compression)
			}
			opts = append(opts, client.WithLinger(linger))
			return produceLines(cmd, &cf, args[0], keySep, partition, maxLine, opts)
		},
	}
	cf.register(cmd)
	f := cmd.Flags()
	f.StringVarP(&keySep, "key-separator", "k", "", "split each line into key and value at the first occurrence of this string")
	f.Int32VarP(&partition, "partition", "p", -1, "write every record to this partition (default: by key, or spread)")
	f.StringVar(&acks, "acks", "leader", "none | leader | all")
	f.StringVar(&compression, "compression", "none", "none | lz4")
	f.DurationVar(&linger, "linger", 5*time.Millisecond, "how long to wait to fill a batch")
	f.IntVar(&maxLine, "max-line-bytes", 1<<20, "longest input line accepted")
	return cmd
}

func produceLines(cmd *cobra.Command, cf *connFlags, topic, keySep string, partition int32, maxLine int, opts []client.ProducerOption) error {
	ctx := cmd.Context()
	c, err := cf.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	p, err := c.NewProducer(opts...)
	if err != nil {
		return usageError{err}
	}
	var (
		sent, failed atomic.Int64
		firstErrMu   sync.Mutex
		firstErr     error
	)
	onDelivery := func(_ *client.Record, err error) {
		if err != nil {
			failed.Add(1)
			firstErrMu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			firstErrMu.Unlock()
		}
	}
	in := bufio.NewScanner(cmd.InOrStdin())
	in.Buffer(make([]byte, 64<<10), maxLine)
	for in.Scan() {
		line := in.Bytes()
		r := &client.Record{Topic: topic, Partition: partition}
		if keySep != "" {
			if k, v, ok := bytes.Cut(line, []byte(keySep)); ok {
				r.Key = bytes.Clone(k)
				line = v
			}
		}
		r.Value = bytes.Clone(line)
		if err := p.Produce(ctx, r, onDelivery); err != nil {
			p.Close(ctx)
			return err
		}
		sent.Add(1)
	}
	scanErr := in.Err()
	if err := p.Close(ctx); err != nil && firstErr == nil {
		firstErr = err
	}
	fmt.Fprintf(os.Stderr, "produced %d records to %s (%d failed)\n", sent.Load()-failed.Load(), topic, failed.Load())
	if scanErr != nil {
		return fmt.Errorf("reading stdin: %w", scanErr)
	}
	if firstErr != nil {
		return fmt.Errorf("%d records not acknowledged, first error: %w", failed.Load(), firstErr)
	}
	return nil
}
