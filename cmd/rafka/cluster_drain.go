package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rafka/rafka/client"
)

// addDrainCmds adds `rafka cluster drain` and `rafka cluster undrain`.
func addDrainCmds(cmd *cobra.Command, cf *connFlags) {
	var leadersOnly, wait bool
	drain := &cobra.Command{
		Use:   "drain [BROKER]",
		Short: "Move leaderships (and, by default, replicas) off a broker before it is removed",
		Long: `Mark a broker draining in the cluster metadata. It then leads no partition
(it hands each leadership to another caught-up replica) and, unless
--leaders-only, placement leaves it out, so its replicas move to other
brokers one at a time (docs/replication.md, "Moves and drains"). A full
drain survives restarts of the broker until "rafka cluster undrain" clears
it; a leaders-only drain ends when the broker starts again (it is meant
for a restart).

Without --wait the command returns once the mark is committed. With --wait
it returns once the broker hosts no replica (or, with --leaders-only, leads
no partition); --timeout bounds the whole command, waiting included, so give
a full drain a longer one. It prints the broker's state: its drain mode, the
partitions it still hosts and leads (-1: it could not be asked) and the
replica moves involving it.

Without BROKER it drains the broker named by $RAFKA_BROKER_ID, which a
broker's own environment sets (a Kubernetes pod's preStop hook runs
"rafka cluster drain --leaders-only --wait" that way: hooks get no shell).

Partitions with one replica are not moved: a full drain of a broker that
holds one waits until the topic is deleted.`,
		Example: `  rafka cluster drain b3 --wait --timeout 30m
  rafka cluster drain b3 --leaders-only --wait`,
		Args: rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := os.Getenv("RAFKA_BROKER_ID")
			if len(args) == 1 {
				id = args[0]
			}
			if id == "" {
				return usagef("%s: name the broker to drain (or set RAFKA_BROKER_ID)", cmd.CommandPath())
			}
			return cf.with(cmd, func(ctx context.Context, c *client.Client) error {
				var opts []client.DrainOption
				if leadersOnly {
					opts = append(opts, client.DrainLeadersOnly())
				}
				if wait {
					opts = append(opts, client.DrainWait(0))
				}
				st, err := c.DrainBroker(ctx, id, opts...)
				if err != nil {
					return err
				}
				return writeDrainState(cmd.OutOrStdout(), st)
			})
		},
	}
	drain.Flags().BoolVar(&leadersOnly, "leaders-only", false, "move leaderships only: the broker keeps its replicas")
	drain.Flags().BoolVar(&wait, "wait", false, "return once the drain is over (bounded by --timeout)")
	undrain := &cobra.Command{
		Use:   "undrain BROKER",
		Short: "Clear a broker's drain mark: it takes replicas and leaderships again",
		Long: `Clear the drain mark of a broker. Placement counts it again, so replicas move
back to it (one at a time, as to a broker that joined) and leadership
rebalancing hands it the partitions it is the preferred leader of.`,
		Example: `  rafka cluster undrain b3`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.with(cmd, func(ctx context.Context, c *client.Client) error {
				st, err := c.DrainBroker(ctx, args[0], client.Undrain())
				if err != nil {
					return err
				}
				return writeDrainState(cmd.OutOrStdout(), st)
			})
		},
	}
	cmd.AddCommand(drain, undrain)
}

// rangeArgs accepts between lo and hi positional arguments.
func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return usagef("%s takes %d to %d argument(s), got %d (see --help)", cmd.CommandPath(), lo, hi, len(args))
		}
		return nil
	}
}

// writeDrainState prints a broker's drain state.
func writeDrainState(out io.Writer, st client.DrainState) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "BROKER\tDRAIN\tHOSTS\tLEADS\tMOVES")
	fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\n", st.BrokerID, st.Mode, st.Hosts, st.Leads, st.Moves)
	return w.Flush()
}

// writeMovesAndDrains prints the moves in progress and the brokers being
// drained under `rafka cluster info`'s table, when there are any.
func writeMovesAndDrains(out io.Writer, ci *client.ClusterInfo) error {
	if len(ci.Moves) > 0 {
		fmt.Fprintln(out, "\nReplica moves in progress:")
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "TOPIC\tPARTITION\tFROM\tTO\tSOURCE")
		for _, m := range ci.Moves {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\n", m.Topic, m.Partition, m.From, m.To, m.Source)
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if len(ci.Drains) > 0 {
		fmt.Fprintln(out, "\nDraining:")
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "BROKER\tMODE")
		for _, d := range ci.Drains {
			fmt.Fprintf(w, "%s\t%s\n", d.ID, d.Mode)
		}
		return w.Flush()
	}
	return nil
}

// JSON of the moves and drains in `rafka cluster info --json`.
type (
	clusterMoveJSON struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		From      string `json:"from"`
		To        string `json:"to"`
		Source    string `json:"source"`
	}
	clusterDrainJSON struct {
		ID   string `json:"id"`
		Mode string `json:"mode"`
	}
)

func movesJSONOf(ci *client.ClusterInfo) ([]clusterMoveJSON, []clusterDrainJSON) {
	moves, drains := []clusterMoveJSON{}, []clusterDrainJSON{}
	for _, m := range ci.Moves {
		moves = append(moves, clusterMoveJSON{Topic: m.Topic, Partition: m.Partition, From: m.From, To: m.To, Source: m.Source})
	}
	for _, d := range ci.Drains {
		drains = append(drains, clusterDrainJSON{ID: d.ID, Mode: d.Mode})
	}
	return moves, drains
}
