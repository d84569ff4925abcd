package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rafka/rafka/client"
)

func newClusterCmd() *cobra.Command {
	var cf connFlags
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Show the cluster's brokers and metadata group",
	}
	cf.register(cmd)

	var jsonOut bool
	info := &cobra.Command{
		Use:   "info",
		Short: "Show the brokers, their leases and the metadata group, as one broker sees them",
		Long: `Show the cluster as the broker that answers sees it: a header line with the
cluster id, the metadata leader, its raft term and the commit and applied
indexes, then one line per registered broker:

  ID       broker id
  ADDRESS  its address
  ZONE     its zone ("-" when it declares none)
  STATE    alive (holds a lease) or fenced (its lease expired)
  LEASE    time since its last heartbeat ("-" when unknown: only the
           metadata leader sees heartbeats)
  LEADS    partitions it leads
  HOSTS    partitions it hosts a replica of
  VOTER    yes for a voter of the metadata group, no for a learner

--json prints one object instead, with these stable field names:
  cluster_id, meta_leader, meta_term, meta_commit, meta_applied,
  voters, learners (lists of broker ids), brokers: a list of
  {id, addr, zone, state, lease_age_ms (-1 unknown), epoch, leads,
  hosts, voter, applied}, moves: the replica moves in progress, a list of
  {topic, partition, from, to, source}, drains: the brokers being drained,
  a list of {id, mode} (mode leaders-only or full).

Replica moves in progress and brokers being drained are listed under the
table when there are any.`,
		Example: `  rafka cluster info
  rafka cluster info -b 10.0.0.1:9092 --tls-ca ca.pem --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cf.with(cmd, func(ctx context.Context, c *client.Client) error {
				ci, err := c.ClusterInfo(ctx)
				if err != nil {
					return err
				}
				if jsonOut {
					return json.NewEncoder(cmd.OutOrStdout()).Encode(clusterJSONOf(&ci))
				}
				return writeClusterInfo(cmd.OutOrStdout(), &ci)
			})
		},
	}
	info.Flags().BoolVar(&jsonOut, "json", false, "print JSON (field names in --help)")
	cmd.AddCommand(info)
	addDrainCmds(cmd, &cf)
	return cmd
}

// writeClusterInfo prints the human form of `rafka cluster info`.
func writeClusterInfo(out io.Writer, ci *client.ClusterInfo) error {
	leader := ci.MetaLeader
	if leader == "" {
		leader = "none"
	}
	fmt.Fprintf(out, "Cluster %s  metadata leader %s  term %d  commit %d  applied %d\n\n",
		orDash(ci.ClusterID), leader, ci.MetaTerm, ci.MetaCommit, ci.MetaApplied)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tADDRESS\tZONE\tSTATE\tLEASE\tLEADS\tHOSTS\tVOTER")
	for _, b := range ci.Brokers {
		lease := "-"
		if b.LeaseAgeKnown() {
			lease = leaseAge(b.LeaseAge)
		}
		voter := "no"
		if b.Voter {
			voter = "yes"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n",
			b.ID, orDash(b.Addr), orDash(b.Zone), orDash(b.State), lease, b.Leads, b.Hosts, voter)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return writeMovesAndDrains(out, ci)
}

// leaseAge rounds a lease age for people: 1.2s, 850ms, 3m4s.
func leaseAge(d time.Duration) string {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// JSON output of `rafka cluster info`: snake_case field names, documented
// in the command's help. Lists are never null.
type (
	clusterJSON struct {
		ClusterID   string              `json:"cluster_id"`
		MetaLeader  string              `json:"meta_leader"`
		MetaTerm    uint64              `json:"meta_term"`
		MetaCommit  uint64              `json:"meta_commit"`
		MetaApplied uint64              `json:"meta_applied"`
		Voters      []string            `json:"voters"`
		Learners    []string            `json:"learners"`
		Brokers     []clusterBrokerJSON `json:"brokers"`
		Moves       []clusterMoveJSON   `json:"moves"`
		Drains      []clusterDrainJSON  `json:"drains"`
	}
	clusterBrokerJSON struct {
		ID         string `json:"id"`
		Addr       string `json:"addr"`
		Zone       string `json:"zone"`
		State      string `json:"state"`
		LeaseAgeMs int64  `json:"lease_age_ms"` // -1 unknown
		Epoch      uint64 `json:"epoch"`
		Leads      int32  `json:"leads"`
		Hosts      int32  `json:"hosts"`
		Voter      bool   `json:"voter"`
		Applied    uint64 `json:"applied"`
	}
)

func clusterJSONOf(ci *client.ClusterInfo) clusterJSON {
	out := clusterJSON{
		ClusterID: ci.ClusterID, MetaLeader: ci.MetaLeader, MetaTerm: ci.MetaTerm, MetaCommit: ci.MetaCommit,
		MetaApplied: ci.MetaApplied, Voters: append([]string{}, ci.Voters...), Learners: append([]string{}, ci.Learners...),
		Brokers: []clusterBrokerJSON{},
	}
	out.Moves, out.Drains = movesJSONOf(ci)
	for _, b := range ci.Brokers {
		age := int64(-1)
		if b.LeaseAgeKnown() {
			age = b.LeaseAge.Milliseconds()
		}
		out.Brokers = append(out.Brokers, clusterBrokerJSON{
			ID: b.ID, Addr: b.Addr, Zone: b.Zone, State: b.State, LeaseAgeMs: age, Epoch: b.Epoch,
			Leads: b.Leads, Hosts: b.Hosts, Voter: b.Voter, Applied: b.Applied,
		})
	}
	return out
}
