package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/rafka/rafka/client"
	"github.com/rafka/rafka/wire"
)

type consumeFlags struct {
	partition     int32
	fromBeginning bool
	offset        string
	fromTime      string
	follow        bool
	format        string
	binary        string
	exitAfter     int
	printKey      bool
	keySep        string
}

func newConsumeCmd() *cobra.Command {
	var (
		cf connFlags
		f  consumeFlags
	)
	cmd := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Print records of a topic",
		Long: `Print the records of a topic, in order within each partition. Without
--follow it stops at the end of the log as it was when it started; with
--follow it keeps printing new records until interrupted (Ctrl-C or
SIGTERM end it normally, exit code 0); with --exit-after N it stops after
N records, waiting for them if needed.

Start position, in each partition read (the end of the log, that is only
new records, by default):
  --from-beginning        the oldest record
  --offset N, -o N        offset N (N >= 0; needs --partition)
  --offset -N, -o -N      N records before the end, or the oldest record
                          when the log holds fewer (as kcat's -o -N)
  --offset beginning|end  the oldest record | the end
  --from-time T           the first record at or after T (RFC 3339)

Output: --format text prints each value on a line (with --print-key, the key
and --key-separator before it); --format json prints one JSON object per
record:
  {"topic": "orders", "partition": 1, "offset": 42,
   "timestamp": "2026-01-02T15:04:05.123Z", "key": "alice", "value": "book",
   "headers": [{"key": "k", "value": "v"}]}
(key is null for a record without one; headers is left out when empty).
Keys, values and header values are written as they are (--binary text),
which suits UTF-8 text; bytes that are not UTF-8 cannot be carried by a JSON
string and are replaced by U+FFFD, with a warning on stderr. --binary base64
writes them base64-encoded (standard alphabet, padded) in both formats: an
exact copy of any bytes.`,
		Example: `  rafka consume orders --from-beginning
  rafka consume orders --partition 0 --offset -10       # the last ten records of partition 0
  rafka consume orders --partition 2 --offset 100 --exit-after 10 --format json
  rafka consume orders --follow --print-key
  rafka consume images --from-beginning --format json --binary base64`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return consume(cmd, &cf, &f, args[0])
		},
	}
	cf.register(cmd)
	fl := cmd.Flags()
	fl.Int32VarP(&f.partition, "partition", "p", -1, "read only this partition (default: all)")
	fl.BoolVar(&f.fromBeginning, "from-beginning", false, "start at the oldest record")
	fl.StringVarP(&f.offset, "offset", "o", "", "start at offset N (needs --partition), -N (N before the end), beginning or end")
	fl.StringVar(&f.fromTime, "from-time", "", "start at the first record at or after this time (RFC 3339)")
	fl.BoolVarP(&f.follow, "follow", "f", false, "keep printing new records until interrupted")
	fl.StringVar(&f.format, "format", "text", "text | json (one object per line)")
	fl.StringVar(&f.binary, "binary", "text", "how keys and values are written: text (as is) | base64")
	fl.IntVarP(&f.exitAfter, "exit-after", "n", 0, "exit after this many records (0: no limit)")
	fl.BoolVar(&f.printKey, "print-key", false, "text format: print the key before the value")
	fl.StringVar(&f.keySep, "key-separator", "\t", "text format: separator between key and value")
	return cmd
}

// startKind is where reading a partition starts.
type startKind int

const (
	startLatest   startKind = iota // the end of the log: new records only
	startEarliest                  // the oldest record
	startAbsolute                  // a given offset
	startRelative                  // n records before the end, clamped at the log start
	startTime                      // the first record at or after a time
)

type startSpec struct {
	kind startKind
	n    int64 // the offset (absolute) or the count before the end (relative)
	t    time.Time
}

// parseOffset reads --offset: N, -N, beginning or end.
func parseOffset(s string) (startSpec, error) {
	switch s {
	case "beginning":
		return startSpec{kind: startEarliest}, nil
	case "end":
		return startSpec{kind: startLatest}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return startSpec{}, usagef("--offset %q: want an offset N, -N (N before the end), beginning or end", s)
	}
	if n < 0 || strings.HasPrefix(s, "-") {
		if n == -n && n != 0 { // math.MinInt64 has no positive counterpart
			return startSpec{}, usagef("--offset %q: out of range", s)
		}
		return startSpec{kind: startRelative, n: -n}, nil
	}
	return startSpec{kind: startAbsolute, n: n}, nil
}

// start validates the start flags.
func (f *consumeFlags) start() (startSpec, error) {
	n := 0
	for _, set := range []bool{f.fromBeginning, f.offset != "", f.fromTime != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return startSpec{}, usagef("--from-beginning, --offset and --from-time exclude each other")
	}
	switch {
	case f.fromBeginning:
		return startSpec{kind: startEarliest}, nil
	case f.offset != "":
		s, err := parseOffset(f.offset)
		if err != nil {
			return startSpec{}, err
		}
		if s.kind == startAbsolute && f.partition < 0 {
			return startSpec{}, usagef("--offset %d needs --partition (offsets are per partition; -N works on all)", s.n)
		}
		return s, nil
	case f.fromTime != "":
		t, err := time.Parse(time.RFC3339, f.fromTime)
		if err != nil {
			return startSpec{}, usagef("--from-time: %w", err)
		}
		return startSpec{kind: startTime, t: t}, nil
	}
	return startSpec{kind: startLatest}, nil
}

// resolve returns where reading partition p starts, as an offset, given
// its end now.
func (s startSpec) resolve(ctx context.Context, c *client.Client, topic string, p int32, end int64) (int64, error) {
	switch s.kind {
	case startEarliest:
		return c.ListOffset(ctx, topic, p, wire.OffsetEarliest)
	case startAbsolute:
		return s.n, nil
	case startRelative:
		first, err := c.ListOffset(ctx, topic, p, wire.OffsetEarliest)
		if err != nil {
			return 0, err
		}
		return max(first, end-s.n), nil
	case startTime:
		return c.ListOffset(ctx, topic, p, s.t.UnixMilli())
	}
	return end, nil
}

func consume(cmd *cobra.Command, cf *connFlags, f *consumeFlags, topic string) error {
	spec, err := f.start()
	if err != nil {
		return err
	}
	if f.format != "text" && f.format != "json" {
		return usagef("--format %q: text or json", f.format)
	}
	if f.binary != "text" && f.binary != "base64" {
		return usagef("--binary %q: text or base64", f.binary)
	}
	if f.exitAfter < 0 {
		return usagef("--exit-after %d: must not be negative", f.exitAfter)
	}
	// Connecting, looking the topic up and subscribing run under
	// --timeout; reading records then takes as long as it takes.
	ctx := cmd.Context()
	setup, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	c, err := cf.connect(setup)
	if err != nil {
		return err
	}
	defer c.Close()
	cons, end, pending, err := subscribe(setup, c, f, spec, topic)
	if err != nil {
		return cf.explain(setup, err)
	}
	defer cons.Close()
	cancel()
	bounded := end != nil
	if bounded && len(pending) == 0 {
		return nil
	}
	out := bufio.NewWriter(cmd.OutOrStdout())
	defer out.Flush()
	pr := &printer{f: f, w: out, warn: cmd.ErrOrStderr()}
	printed := 0
	for {
		recs, err := cons.Poll(ctx)
		if err != nil {
			if ctx.Err() != nil && f.follow {
				return nil // interrupted while following: the normal end
			}
			return err
		}
		for _, r := range recs {
			if bounded && r.Offset >= end[r.Partition] {
				continue
			}
			if err := pr.print(r); err != nil {
				return err
			}
			printed++
			if f.exitAfter > 0 && printed >= f.exitAfter {
				return nil
			}
			if bounded && r.Offset+1 >= end[r.Partition] {
				delete(pending, r.Partition)
			}
		}
		if bounded && len(pending) == 0 {
			return nil
		}
		if err := out.Flush(); err != nil {
			return err
		}
	}
}

// subscribe assigns the partitions to read to a new consumer. For a bounded
// read (no --follow, no --exit-after) it returns each partition's end as of
// now and the partitions that have records to print before it; end is nil
// otherwise.
func subscribe(ctx context.Context, c *client.Client, f *consumeFlags, spec startSpec, topic string) (
	cons *client.Consumer, end map[int32]int64, pending map[int32]bool, err error) {
	md, err := c.DescribeTopic(ctx, topic)
	if err != nil {
		return nil, nil, nil, err
	}
	var parts []int32
	for _, p := range md.Partitions {
		if f.partition < 0 || p.Partition == f.partition {
			parts = append(parts, p.Partition)
		}
	}
	if len(parts) == 0 {
		return nil, nil, nil, fmt.Errorf("topic %s has no partition %d: %w", topic, f.partition, client.ErrUnknownTopicOrPartition)
	}
	bounded := !f.follow && f.exitAfter == 0
	if bounded {
		end, pending = map[int32]int64{}, map[int32]bool{}
	}
	var as []client.Assignment
	for _, p := range parts {
		a := client.Assignment{Topic: topic, Partition: p}
		switch spec.kind {
		case startLatest:
			a.Start = client.Latest()
		case startEarliest:
			a.Start = client.Earliest()
		case startAbsolute:
			a.Start = client.AtOffset(spec.n)
		case startTime:
			a.Start = client.AtTime(spec.t)
		}
		if bounded || spec.kind == startRelative {
			last, err := c.ListOffset(ctx, topic, p, wire.OffsetLatest)
			if err != nil {
				return nil, nil, nil, err
			}
			from, err := spec.resolve(ctx, c, topic, p, last)
			if err != nil {
				return nil, nil, nil, err
			}
			if spec.kind == startRelative {
				a.Start = client.AtOffset(from)
			}
			if bounded {
				end[p] = last
				if from < last {
					pending[p] = true
				}
			}
		}
		as = append(as, a)
	}
	cons, err = c.NewConsumer()
	if err != nil {
		return nil, nil, nil, err
	}
	if err := cons.Assign(ctx, as...); err != nil {
		cons.Close()
		return nil, nil, nil, err
	}
	return cons, end, pending, nil
}

// jsonRecord is a record in --format json; field names are snake_case, as
// in every JSON the rafka commands print.
type jsonRecord struct {
	Topic     string       `json:"topic"`
	Partition int32        `json:"partition"`
	Offset    int64        `json:"offset"`
	Timestamp string       `json:"timestamp"`
	Key       *string      `json:"key"`
	Value     string       `json:"value"`
	Headers   []jsonHeader `json:"headers,omitempty"`
}

type jsonHeader struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// printer writes records in the chosen format.
type printer struct {
	f      *consumeFlags
	w      io.Writer
	warn   io.Writer
	warned bool // the not-UTF-8 warning was given
}

func (pr *printer) print(r *client.Record) error {
	if pr.f.format == "json" {
		jr := jsonRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
			Timestamp: r.Timestamp.UTC().Format(time.RFC3339Nano), Value: pr.text(r, r.Value)}
		if r.Key != nil {
			k := pr.text(r, r.Key)
			jr.Key = &k
		}
		for _, h := range r.Headers {
			jr.Headers = append(jr.Headers, jsonHeader{Key: h.Key, Value: pr.text(r, h.Value)})
		}
		b, err := json.Marshal(jr)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(pr.w, "%s\n", b)
		return err
	}
	key, value := r.Key, r.Value
	if pr.f.binary == "base64" {
		key, value = []byte(base64.StdEncoding.EncodeToString(key)), []byte(base64.StdEncoding.EncodeToString(value))
	}
	var err error
	if pr.f.printKey {
		_, err = fmt.Fprintf(pr.w, "%s%s%s\n", key, pr.f.keySep, value)
	} else {
		_, err = fmt.Fprintf(pr.w, "%s\n", value)
	}
	return err
}

// text renders bytes as a JSON string value: base64 with --binary base64,
// else as is, invalid UTF-8 replaced by U+FFFD (with a warning, once).
func (pr *printer) text(r *client.Record, b []byte) string {
	if pr.f.binary == "base64" {
		return base64.StdEncoding.EncodeToString(b)
	}
	if utf8.Valid(b) {
		return string(b)
	}
	if !pr.warned {
		pr.warned = true
		fmt.Fprintf(pr.warn, "rafka: warning: record %s/%d@%d holds bytes that are not UTF-8, printed as U+FFFD; use --binary base64 for an exact copy\n",
			r.Topic, r.Partition, r.Offset)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}
