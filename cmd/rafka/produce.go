package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/rafka/rafka/client"
)

// produceOpts are the produce command's settings besides the connection.
type produceOpts struct {
	topic        string
	keySep       string
	partition    int32
	maxLine      int
	headers      []client.Header
	printOffsets bool
	acksNone     bool
	producer     []client.ProducerOption
}

func newProduceCmd() *cobra.Command {
	var (
		cf          connFlags
		o           produceOpts
		acks        string
		compression string
		linger      time.Duration
		headers     []string
	)
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Write records read from standard input, one per line",
		Long: `Write one record per line of standard input. With --key-separator, the
text before the first separator is the record key (records with the same key
go to the same partition). Every --header KEY=VALUE is added to every record.

With --acks leader (the default) or all, every record is acknowledged by the
broker: the summary on stderr says how many were, and the command exits
non-zero if any failed. --print-offsets prints one line per acknowledged
record on stdout, as they are acknowledged:
  LINE<TAB>PARTITION<TAB>OFFSET
where LINE is the record's input line number (from 1).

With --acks none the broker sends no acknowledgements: when standard input
ends, the command waits until the broker has read everything sent, then
reports the records as sent; it exits non-zero if it cannot confirm that.`,
		Example: `  printf 'alice:book\nbob:pen\n' | rafka produce orders --key-separator :
  seq 1000 | rafka produce numbers --compression lz4 --header source=seq
  seq 3 | rafka produce numbers --print-offsets`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.topic = args[0]
			switch acks {
			case "none", "0":
				o.acksNone = true
				o.producer = append(o.producer, client.WithAcks(client.AcksNone))
			case "leader", "1":
				o.producer = append(o.producer, client.WithAcks(client.AcksLeader))
			case "all", "-1":
				o.producer = append(o.producer, client.WithAcks(client.AcksAll))
			default:
				return usagef("--acks %q: none, leader or all", acks)
			}
			if o.acksNone && o.printOffsets {
				return usagef("--print-offsets needs acknowledgements: --acks leader or all")
			}
			switch compression {
			case "none":
			case "lz4":
				o.producer = append(o.producer, client.WithCompression(client.CompressionLZ4))
			default:
				return usagef("--compression %q: none or lz4", compression)
			}
			for _, h := range headers {
				k, v, ok := strings.Cut(h, "=")
				if !ok || k == "" {
					return usagef("--header %q: want KEY=VALUE", h)
				}
				o.headers = append(o.headers, client.Header{Key: k, Value: []byte(v)})
			}
			o.producer = append(o.producer, client.WithLinger(linger))
			return produceLines(cmd, &cf, &o)
		},
	}
	cf.register(cmd)
	f := cmd.Flags()
	f.StringVarP(&o.keySep, "key-separator", "k", "", "split each line into key and value at the first occurrence of this string")
	f.Int32VarP(&o.partition, "partition", "p", -1, "write every record to this partition (default: by key, or spread)")
	f.StringVar(&acks, "acks", "leader", "none | leader | all")
	f.StringVar(&compression, "compression", "none", "none | lz4")
	f.DurationVar(&linger, "linger", 5*time.Millisecond, "how long to wait to fill a batch")
	f.IntVar(&o.maxLine, "max-line-bytes", 1<<20, "longest input line accepted")
	f.StringArrayVarP(&headers, "header", "H", nil, "add header KEY=VALUE to every record (repeatable)")
	f.BoolVar(&o.printOffsets, "print-offsets", false, "print LINE, PARTITION and OFFSET of each acknowledged record to stdout")
	return cmd
}

// produceStats counts deliveries; callbacks run on producer goroutines.
type produceStats struct {
	mu       sync.Mutex
	acked    int64
	failed   int64
	firstErr error
}

func produceLines(cmd *cobra.Command, cf *connFlags, o *produceOpts) error {
	ctx := cmd.Context()
	c, err := cf.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	p, err := c.NewProducer(o.producer...)
	if err != nil {
		return usageError{err}
	}
	var (
		st    produceStats
		outMu sync.Mutex
		out   = bufio.NewWriter(cmd.OutOrStdout())
	)
	onDelivery := func(line int64) func(*client.Record, error) {
		return func(r *client.Record, err error) {
			st.mu.Lock()
			defer st.mu.Unlock()
			if err != nil {
				st.failed++
				if st.firstErr == nil {
					st.firstErr = err
				}
				return
			}
			st.acked++
			if o.printOffsets {
				outMu.Lock()
				fmt.Fprintf(out, "%d\t%d\t%d\n", line, r.Partition, r.Offset)
				out.Flush() // a reader of the offsets sees each as it is acknowledged
				outMu.Unlock()
			}
		}
	}
	sent, readErr := produceInput(ctx, p, cmd.InOrStdin(), o, onDelivery)

	// Close sends what is buffered and, with acks=none, waits until the
	// broker has read all of it: only then are the records known to be
	// there. The producer's request timeout and retries bound it. After an
	// interrupt, what was read is still delivered, within --timeout.
	closeCtx := ctx
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		closeCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), cf.timeout)
		defer cancel()
	}
	closeErr := p.Close(closeCtx)
	outMu.Lock()
	flushErr := out.Flush()
	outMu.Unlock()

	st.mu.Lock()
	defer st.mu.Unlock()
	stderr := cmd.ErrOrStderr()
	switch {
	case o.acksNone && closeErr == nil && readErr == nil:
		fmt.Fprintf(stderr, "sent %d records to %s\n", sent, o.topic)
	case o.acksNone:
		fmt.Fprintf(stderr, "%d records written for %s, but the broker did not confirm it read them all\n", sent, o.topic)
	default:
		fmt.Fprintf(stderr, "acknowledged %d records to %s (%d failed)\n", st.acked, o.topic, st.failed)
	}
	switch {
	case readErr != nil:
		return readErr
	case closeErr != nil:
		return closeErr
	case st.failed > 0:
		return fmt.Errorf("%d records not acknowledged, first error: %w", st.failed, st.firstErr)
	case flushErr != nil:
		return fmt.Errorf("writing offsets: %w", flushErr)
	}
	return nil
}

// produceInput produces one record per line of in and returns how many it
// queued, and the error that stopped it early (reading, or producing).
func produceInput(ctx context.Context, p *client.Producer, in io.Reader, o *produceOpts,
	onDelivery func(line int64) func(*client.Record, error),
) (int64, error) {
	// Lines are read on their own goroutine so that an interrupt stops the
	// command while it waits for input (a blocking read of stdin cannot be
	// cancelled; the goroutine ends with the process or the input).
	type line struct {
		b   []byte
		err error // set on the last one: why reading stopped (nil at EOF)
		end bool
	}
	lines := make(chan line, 64)
	go func() {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), o.maxLine)
		for sc.Scan() {
			select {
			case lines <- line{b: bytes.Clone(sc.Bytes())}:
			case <-ctx.Done():
				return
			}
		}
		select {
		case lines <- line{err: sc.Err(), end: true}:
		case <-ctx.Done():
		}
	}()
	var n int64
	for {
		var l line
		select {
		case l = <-lines:
		case <-ctx.Done():
			return n, ctx.Err()
		}
		if l.end {
			if l.err != nil {
				return n, fmt.Errorf("reading stdin at line %d: %w", n+1, l.err)
			}
			return n, nil
		}
		line := l.b
		r := &client.Record{Topic: o.topic, Partition: o.partition, Headers: o.headers}
		if o.keySep != "" {
			if k, v, ok := bytes.Cut(line, []byte(o.keySep)); ok {
				r.Key = k
				line = v
			}
		}
		r.Value = line
		if err := p.Produce(ctx, r, onDelivery(n+1)); err != nil {
			return n, err
		}
		n++
	}
}
