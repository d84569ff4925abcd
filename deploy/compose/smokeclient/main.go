// Command smokeclient is the client side of deploy/compose/smoke.sh: it
// produces numbered records at a steady pace and logs each acknowledgement,
// names the leader of a partition, and checks that every acknowledged record
// is in the log.
//
//	smokeclient produce --topic T --records N --rate R --acked FILE
//	smokeclient leader  --topic T --partition P
//	smokeclient verify  --topic T --acked FILE
//
// Every command takes --brokers and --tls-ca as rafka does, and --timeout,
// which bounds the whole command.
//
// Record i has key "k<i>" (six digits) and a value derived from i only, so
// verify checks content as well as presence. produce writes one line per
// acknowledged record to the acked file, at once (the smoke script counts
// lines while it runs):
//
//	SEQ PARTITION OFFSET ACK_UNIX_MS
//
// and prints, at the end, one line of JSON: {"produced":N,"acked":A,"failed":F}.
// Delivery is at least once: a record retried after a leader change may be
// stored twice, which verify counts but accepts.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rafka/rafka/client"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "produce":
		err = produce(ctx, os.Args[2:])
	case "leader":
		err = leader(ctx, os.Args[2:])
	case "verify":
		err = verify(ctx, os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "smokeclient:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: smokeclient produce|leader|verify [flags] (see the package documentation)")
	os.Exit(2)
}

// common are the flags every command takes.
type common struct {
	brokers string
	tlsCA   string
	topic   string
	timeout time.Duration
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.brokers, "brokers", "127.0.0.1:9092", "bootstrap brokers, comma separated")
	fs.StringVar(&c.tlsCA, "tls-ca", "", "PEM CA the brokers' certificates chain to")
	fs.StringVar(&c.topic, "topic", "smoke", "topic")
	fs.DurationVar(&c.timeout, "timeout", time.Minute, "bound on the whole command")
}

func (c *common) connect(ctx context.Context) (*client.Client, error) {
	opts := []client.Option{client.WithBrokers(strings.Split(c.brokers, ",")...), client.WithDialTimeout(2 * time.Second)}
	if c.tlsCA != "" {
		opts = append(opts, client.WithCAFile(c.tlsCA))
	}
	return client.New(ctx, opts...)
}

func key(seq int) string { return fmt.Sprintf("k%06d", seq) }

// value is record seq's value: its number and 64 bytes that depend on it.
func value(seq int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "v%06d-", seq)
	for i := range 64 {
		b.WriteByte('a' + byte((seq*31+i*7)%26))
	}
	return b.String()
}

func produce(ctx context.Context, args []string) error {
	var (
		c       common
		records int
		rate    float64
		acked   string
	)
	fs := flag.NewFlagSet("produce", flag.ExitOnError)
	c.register(fs)
	fs.IntVar(&records, "records", 3000, "records to produce")
	fs.Float64Var(&rate, "rate", 150, "records per second")
	fs.StringVar(&acked, "acked", "acked.txt", "file to log acknowledged records to")
	fs.Parse(args)
	if records < 1 || rate <= 0 {
		return errors.New("produce: --records and --rate must be positive")
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cl, err := c.connect(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	// Retries outlast a leader election (about a second) with room to
	// spare; a request to a killed broker is given up after 5 s.
	p, err := cl.NewProducer(client.WithAcks(client.AcksAll), client.WithRetries(30),
		client.WithRetryBackoff(100*time.Millisecond, time.Second), client.WithRequestTimeout(5*time.Second))
	if err != nil {
		return err
	}
	f, err := os.Create(acked)
	if err != nil {
		return err
	}
	defer f.Close()

	var (
		mu      sync.Mutex // guards the counts, the errors and writes to f
		nAcked  int
		nFailed int
		werr    error
		lastErr error
	)
	onDelivery := func(seq int) func(*client.Record, error) {
		return func(r *client.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				nFailed++
				lastErr = err
				return
			}
			nAcked++
			// Unbuffered: the smoke script follows the file while we run.
			if _, err := fmt.Fprintf(f, "%d %d %d %d\n", seq, r.Partition, r.Offset, time.Now().UnixMilli()); err != nil && werr == nil {
				werr = err
			}
		}
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	produced := 0
	for seq := 0; seq < records; seq++ {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		if ctx.Err() != nil {
			break
		}
		r := &client.Record{Topic: c.topic, Partition: client.AnyPartition, Key: []byte(key(seq)), Value: []byte(value(seq))}
		if err := p.Produce(ctx, r, onDelivery(seq)); err != nil {
			if ctx.Err() != nil {
				break
			}
			return fmt.Errorf("produce record %d: %w", seq, err)
		}
		produced++
	}
	// Close waits for every callback, failing what is left after 30 s.
	closeCtx, cancelClose := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancelClose()
	closeErr := p.Close(closeCtx)
	mu.Lock()
	defer mu.Unlock()
	out, _ := json.Marshal(map[string]int{"produced": produced, "acked": nAcked, "failed": nFailed})
	fmt.Println(string(out))
	if lastErr != nil {
		fmt.Fprintf(os.Stderr, "smokeclient: %d records not acknowledged, the last because: %v\n", nFailed, lastErr)
	}
	if werr != nil {
		return fmt.Errorf("writing %s: %w", acked, werr)
	}
	if closeErr != nil {
		return fmt.Errorf("closing the producer: %w", closeErr)
	}
	return ctx.Err()
}

func leader(ctx context.Context, args []string) error {
	var (
		c         common
		partition int
	)
	fs := flag.NewFlagSet("leader", flag.ExitOnError)
	c.register(fs)
	fs.IntVar(&partition, "partition", 0, "partition")
	fs.Parse(args)
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cl, err := c.connect(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	d, err := cl.DescribeTopic(ctx, c.topic)
	if err != nil {
		return err
	}
	for _, p := range d.Partitions {
		if int(p.Partition) == partition && p.Leader != "" {
			fmt.Println(p.Leader)
			return nil
		}
	}
	return fmt.Errorf("partition %d of %s has no leader", partition, c.topic)
}

// ack is one line of the acked file.
type ack struct {
	seq       int
	partition int32
	offset    int64
}

func readAcked(path string) ([]ack, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []ack
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		var a ack
		var ms int64
		if _, err := fmt.Sscanf(sc.Text(), "%d %d %d %d", &a.seq, &a.partition, &a.offset, &ms); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		out = append(out, a)
	}
	return out, sc.Err()
}

func verify(ctx context.Context, args []string) error {
	var (
		c     common
		acked string
	)
	fs := flag.NewFlagSet("verify", flag.ExitOnError)
	c.register(fs)
	fs.StringVar(&acked, "acked", "acked.txt", "file produce logged acknowledged records to")
	fs.Parse(args)
	acks, err := readAcked(acked)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cl, err := c.connect(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	d, err := cl.DescribeTopic(ctx, c.topic)
	if err != nil {
		return err
	}
	cs, err := cl.NewConsumer()
	if err != nil {
		return err
	}
	defer cs.Close()
	// Read every partition from its start to its high watermark: every
	// acknowledged record is below it.
	end := make(map[int32]int64)
	var as []client.Assignment
	for _, p := range d.Partitions {
		if p.HighWatermark > p.LogStartOffset {
			end[p.Partition] = p.HighWatermark
			as = append(as, client.Assignment{Topic: c.topic, Partition: p.Partition, Start: client.Earliest()})
		}
	}
	type at struct {
		partition int32
		offset    int64
	}
	stored := make(map[at]string) // key at each offset
	copies := make(map[string]int)
	read := 0
	if len(as) > 0 {
		if err := cs.Assign(ctx, as...); err != nil {
			return err
		}
	}
	// Read until every acknowledged record has been seen, then on until
	// each partition's high watermark or until nothing more comes for a
	// few seconds: the log may end with raft's control batches, which
	// take offsets and are never handed to consumers.
	want := make(map[at]string, len(acks))
	for _, a := range acks {
		want[at{a.partition, a.offset}] = key(a.seq)
	}
	found := 0
	for len(end) > 0 {
		pctx, cancelPoll := ctx, context.CancelFunc(func() {})
		if found == len(want) {
			pctx, cancelPoll = context.WithTimeout(ctx, 3*time.Second)
		}
		rs, err := cs.Poll(pctx)
		cancelPoll()
		if err != nil {
			if ctx.Err() == nil && pctx.Err() != nil {
				break // idle after the last acknowledged record
			}
			if ctx.Err() != nil {
				fmt.Fprintf(os.Stderr, "smokeclient: stopped reading: %v\n", ctx.Err())
				break // report what is missing
			}
			return fmt.Errorf("reading back (%d records read): %w", read, err)
		}
		for _, r := range rs {
			read++
			k := string(r.Key)
			var seq int
			if _, err := fmt.Sscanf(k, "k%06d", &seq); err != nil || key(seq) != k {
				return fmt.Errorf("partition %d offset %d: unexpected key %q", r.Partition, r.Offset, k)
			}
			if string(r.Value) != value(seq) {
				return fmt.Errorf("partition %d offset %d: key %s has value %q, want %q", r.Partition, r.Offset, k, r.Value, value(seq))
			}
			pos := at{r.Partition, r.Offset}
			if _, dup := stored[pos]; !dup && want[pos] == k {
				found++
			}
			stored[pos] = k
			copies[k]++
			if e, ok := end[r.Partition]; ok && r.Offset+1 >= e {
				delete(end, r.Partition)
			}
		}
	}
	var missing []string
	for _, a := range acks {
		if got, ok := stored[at{a.partition, a.offset}]; !ok || got != key(a.seq) {
			missing = append(missing, fmt.Sprintf("%s (acknowledged at partition %d offset %d, found %q)", key(a.seq), a.partition, a.offset, got))
		}
	}
	dups := 0
	for _, n := range copies {
		dups += n - 1
	}
	out, _ := json.Marshal(map[string]int{"acked": len(acks), "read": read, "distinct": len(copies), "duplicates": dups, "missing": len(missing)})
	fmt.Println(string(out))
	if len(missing) > 0 {
		if len(missing) > 10 {
			missing = append(missing[:10], "...")
		}
		return fmt.Errorf("%d acknowledged records not in the log: %s", len(missing), strings.Join(missing, "; "))
	}
	return nil
}
