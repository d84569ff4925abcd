package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rafka/rafka/client"
)

func newVerifyCmd() *cobra.Command {
	var (
		cf         connFlags
		partitions []int32
		jsonOut    bool
	)
	cmd := &cobra.Command{
		Use:   "verify TOPIC",
		Short: "Compare the replicas of a topic's partitions",
		Long: `Compare the committed log of every replica of a topic's partitions with
its leader's, now (brokers also do it in the background, every
--verify-interval of rafka serve). The leader of each partition splits the
committed range all replicas hold at its segment boundaries and compares a
digest of each range (offsets, terms and checksums of its batches) with
each replica's. See docs/replication.md, "Consistency checks".

A row per replica: the leader first (the reference), then each other
replica: identical, the first range that differs (and how many do), or why
it could not be compared. Exit status 1 when a replica diverges or a
partition or replica could not be checked; docs/operations.md says what to
do then.

Brokers pace their reads (64 MiB/s by default), so checking a large log
takes a while: raise --timeout accordingly.`,
		Example: `  rafka verify orders
  rafka verify orders --partition 3 --json --timeout 10m`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.with(cmd, func(ctx context.Context, c *client.Client) error {
				checks, err := c.Verify(ctx, args[0], partitions...)
				if err != nil {
					return err
				}
				if jsonOut {
					err = json.NewEncoder(cmd.OutOrStdout()).Encode(verifyJSONOf(args[0], checks))
				} else {
					err = printVerify(cmd.OutOrStdout(), checks)
				}
				if err != nil {
					return err
				}
				bad := 0
				for i := range checks {
					if !checks[i].Consistent() {
						bad++
					}
				}
				if bad > 0 {
					return fmt.Errorf("%d of %d partitions of %s: replicas diverge or could not be compared", bad, len(checks), args[0])
				}
				return nil
			})
		},
	}
	cf.register(cmd)
	cmd.Flags().Int32SliceVar(&partitions, "partition", nil, "check only these partitions (repeatable or comma separated; default: all)")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON")
	return cmd
}

// replicaResult is the RESULT column of a replica's row.
func replicaResult(r *client.ReplicaCheck, leader bool) string {
	switch {
	case r.Divergent > 0 && r.Err != nil:
		return fmt.Sprintf("DIVERGES: %d range(s), first [%d, %d): %v", r.Divergent, r.FirstFrom, r.FirstTo, r.Err)
	case r.Divergent > 0:
		return fmt.Sprintf("DIVERGES: %d range(s), first [%d, %d)", r.Divergent, r.FirstFrom, r.FirstTo)
	case r.Err != nil:
		return "error: " + r.Err.Error()
	case leader:
		return "reference"
	}
	return "identical"
}

func printVerify(out io.Writer, checks []client.PartitionCheck) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PARTITION\tFROM\tTO\tREPLICA\tRANGES\tBYTES\tRESULT")
	for _, p := range checks {
		if p.Err != nil {
			fmt.Fprintf(w, "%d\t-\t-\t-\t-\t-\terror: %v\n", p.Partition, p.Err)
			continue
		}
		for i := range p.Replicas {
			r := &p.Replicas[i]
			name := r.Broker
			if i == 0 {
				name += " (leader)"
			}
			fmt.Fprintf(w, "%d\t%d\t%d\t%s\t%d\t%d\t%s\n", p.Partition, p.From, p.To, name, r.Ranges, r.Bytes, replicaResult(r, i == 0))
		}
	}
	return w.Flush()
}

// JSON output of rafka verify (snake_case, as every JSON the rafka
// commands print).
type (
	verifyOutput struct {
		Topic      string          `json:"topic"`
		Consistent bool            `json:"consistent"`
		Partitions []verifyPartRow `json:"partitions"`
	}
	verifyPartRow struct {
		Partition  int32           `json:"partition"`
		Leader     string          `json:"leader"`
		From       int64           `json:"from"`
		To         int64           `json:"to"`
		Consistent bool            `json:"consistent"`
		Error      string          `json:"error,omitempty"`
		Replicas   []verifyReplRow `json:"replicas"`
	}
	verifyReplRow struct {
		Broker    string `json:"broker"`
		Leader    bool   `json:"leader"`
		Ranges    int32  `json:"ranges"`
		Divergent int32  `json:"divergent"`
		// FirstDivergent is [from, to) of the first divergent range, null
		// when none.
		FirstDivergent *[2]int64 `json:"first_divergent"`
		Bytes          int64     `json:"bytes"`
		Error          string    `json:"error,omitempty"`
	}
)

func verifyJSONOf(topic string, checks []client.PartitionCheck) verifyOutput {
	out := verifyOutput{Topic: topic, Consistent: true, Partitions: []verifyPartRow{}}
	for i := range checks {
		p := &checks[i]
		row := verifyPartRow{Partition: p.Partition, Leader: p.Leader, From: p.From, To: p.To, Consistent: p.Consistent(),
			Replicas: []verifyReplRow{}}
		if p.Err != nil {
			row.Error = p.Err.Error()
		}
		out.Consistent = out.Consistent && row.Consistent
		for k, r := range p.Replicas {
			rr := verifyReplRow{Broker: r.Broker, Leader: k == 0, Ranges: r.Ranges, Divergent: r.Divergent, Bytes: r.Bytes}
			if r.Divergent > 0 {
				rr.FirstDivergent = &[2]int64{r.FirstFrom, r.FirstTo}
			}
			if r.Err != nil {
				rr.Error = r.Err.Error()
			}
			row.Replicas = append(row.Replicas, rr)
		}
		out.Partitions = append(out.Partitions, row)
	}
	return out
}
