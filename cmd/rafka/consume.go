package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/rafka/rafka/client"
	"github.com/rafka/rafka/wire"
)

type consumeFlags struct {
	partition     int32
	fromBeginning bool
	offset        int64
	fromTime      string
	follow        bool
	format        string
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
--follow it keeps printing new records until interrupted; with --exit-after N
it stops after N records, waiting for them if needed.

Start position: the end of the log (only new records) by default,
--from-beginning, --offset N (with --partition), or --from-time.`,
		Example: `  rafka consume orders --from-beginning
  rafka consume orders --partition 2 --offset 100 --exit-after 10 --format json
  rafka consume orders --follow --print-key`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return consume(cmd, &cf, &f, args[0])
		},
	}
	cf.register(cmd)
	fl := cmd.Flags()
	fl.Int32VarP(&f.partition, "partition", "p", -1, "read only this partition (default: all)")
	fl.BoolVar(&f.fromBeginning, "from-beginning", false, "start at the oldest record")
	fl.Int64Var(&f.offset, "offset", -1, "start at this offset (needs --partition)")
	fl.StringVar(&f.fromTime, "from-time", "", "start at the first record at or after this time (RFC 3339)")
	fl.BoolVarP(&f.follow, "follow", "f", false, "keep printing new records until interrupted")
	fl.StringVar(&f.format, "format", "text", "text | json (one object per line)")
	fl.IntVarP(&f.exitAfter, "exit-after", "n", 0, "exit after this many records (0: no limit)")
	fl.BoolVar(&f.printKey, "print-key", false, "text format: print the key before the value")
	fl.StringVar(&f.keySep, "key-separator", "\t", "text format: separator between key and value")
	return cmd
}

func (f *consumeFlags) start() (client.StartOffset, error) {
	n := 0
	for _, set := range []bool{f.fromBeginning, f.offset >= 0, f.fromTime != ""} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return client.StartOffset{}, usagef("--from-beginning, --offset and --from-time exclude each other")
	case f.offset >= 0 && f.partition < 0:
		return client.StartOffset{}, usagef("--offset needs --partition")
	case f.fromBeginning:
		return client.Earliest(), nil
	case f.offset >= 0:
		return client.AtOffset(f.offset), nil
	case f.fromTime != "":
		t, err := time.Parse(time.RFC3339, f.fromTime)
		if err != nil {
			return client.StartOffset{}, usagef("--from-time: %w", err)
		}
		return client.AtTime(t), nil
	}
	return client.Latest(), nil
}

// startOffset resolves where reading partition p starts, to know whether a
// bounded read has anything to print.
func (f *consumeFlags) startOffset(ctx context.Context, c *client.Client, topic string, p int32, end int64) (int64, error) {
	switch {
	case f.fromBeginning:
		return c.ListOffset(ctx, topic, p, wire.OffsetEarliest)
	case f.offset >= 0:
		return f.offset, nil
	case f.fromTime != "":
		t, _ := time.Parse(time.RFC3339, f.fromTime)
		return c.ListOffset(ctx, topic, p, t.UnixMilli())
	}
	return end, nil
}

func consume(cmd *cobra.Command, cf *connFlags, f *consumeFlags, topic string) error {
	start, err := f.start()
	if err != nil {
		return err
	}
	if f.format != "text" && f.format != "json" {
		return usagef("--format %q: text or json", f.format)
	}
	if f.exitAfter < 0 {
		return usagef("--exit-after %d: must not be negative", f.exitAfter)
	}
	ctx := cmd.Context()
	c, err := cf.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	md, err := c.DescribeTopic(ctx, topic)
	if err != nil {
		return err
	}
	var parts []int32
	for _, p := range md.Partitions {
		if f.partition < 0 || p.Partition == f.partition {
			parts = append(parts, p.Partition)
		}
	}
	if len(parts) == 0 {
		return fmt.Errorf("topic %s has no partition %d: %w", topic, f.partition, client.ErrUnknownTopicOrPartition)
	}
	// Without --follow or --exit-after, stop at the end as of now.
	bounded := !f.follow && f.exitAfter == 0
	end := map[int32]int64{}
	if bounded {
		for _, p := range parts {
			off, err := c.ListOffset(ctx, topic, p, wire.OffsetLatest)
			if err != nil {
				return err
			}
			end[p] = off
		}
	}
	cons, err := c.NewConsumer()
	if err != nil {
		return err
	}
	defer cons.Close()
	var as []client.Assignment
	for _, p := range parts {
		as = append(as, client.Assignment{Topic: topic, Partition: p, Start: start})
	}
	if err := cons.Assign(ctx, as...); err != nil {
		return err
	}
	out := bufio.NewWriter(cmd.OutOrStdout())
	defer out.Flush()
	// pending: partitions that have not reached their end yet.
	pending := map[int32]bool{}
	if bounded {
		for _, p := range parts {
			from, err := f.startOffset(ctx, c, topic, p, end[p])
			if err != nil {
				return err
			}
			if from < end[p] {
				pending[p] = true
			}
		}
		if len(pending) == 0 {
			return nil
		}
	}
	printed := 0
	for {
		recs, err := cons.Poll(ctx)
		if err != nil {
			if ctx.Err() != nil && f.follow {
				return nil // interrupted while following: a normal end
			}
			return err
		}
		for _, r := range recs {
			if bounded && r.Offset >= end[r.Partition] {
				continue
			}
			if err := printRecord(out, f, r); err != nil {
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

type jsonRecord struct {
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Timestamp string            `json:"timestamp"`
	Key       *string           `json:"key"`
	Value     string            `json:"value"`
	Headers   map[string]string `json:"headers,omitempty"`
}

func printRecord(w io.Writer, f *consumeFlags, r *client.Record) error {
	if f.format == "json" {
		jr := jsonRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
			Timestamp: r.Timestamp.UTC().Format(time.RFC3339Nano), Value: text(r.Value)}
		if r.Key != nil {
			k := text(r.Key)
			jr.Key = &k
		}
		for _, h := range r.Headers {
			if jr.Headers == nil {
				jr.Headers = map[string]string{}
			}
			jr.Headers[h.Key] = text(h.Value)
		}
		b, err := json.Marshal(jr)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	var err error
	if f.printKey {
		_, err = fmt.Fprintf(w, "%s%s%s\n", r.Key, f.keySep, r.Value)
	} else {
		_, err = fmt.Fprintf(w, "%s\n", r.Value)
	}
	return err
}

// text renders bytes as a JSON string, replacing invalid UTF-8.
func text(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return string([]rune(string(b)))
}
