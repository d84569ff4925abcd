package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/rafka/rafka/bench"
	"github.com/rafka/rafka/bench/load"
)

// failoverBrokers is the default --local-brokers of the failover command.
const failoverBrokers = 3

func newFailoverCmd(g *globalFlags) *cobra.Command {
	var cfg load.FailoverConfig
	cmd := &cobra.Command{
		Use:   "failover",
		Short: "Kill a partition's leader while producing with acks=all: time to the next acknowledged write, and nothing acknowledged lost",
		Long: fmt.Sprintf(`failover starts --local-brokers brokers (default %d), creates a topic of one
partition with --replication-factor replicas (default 3) and produces to it
at --rate records/s with acks=all, retrying without end. --kills times, after
--settle of undisturbed producing, it asks the metadata for the partition's
leader, kills it with SIGKILL, keeps producing, and restarts it on its data
folder once a write was acknowledged after the kill (at once with one
replica: there is no other to take over). --duration caps the whole.

Per kill it reports the time from the kill to the first acknowledgement of
a record scheduled after it, and the ack latency (p99, max) of the records
scheduled from %v before the kill to %v after that acknowledgement;
then p50 and max over the kills. At the end it reads the partition back and
reports records acknowledged but absent (lost), records read more than once
(duplicates: the producer is idempotent, so a retried write whose answer was
lost must not be stored again) and records out of order. It exits 1 when an
acknowledged record is lost or a record is stored twice.`, failoverBrokers, bench.SpikeMargin, bench.SpikeMargin),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(g.brokers) > 0 {
				return usageError{fmt.Errorf("failover kills and restarts its own local brokers; --brokers does not apply")}
			}
			n := g.localN
			if !cmd.Flags().Changed("local-brokers") {
				n = failoverBrokers
			}
			cfg = cfg.WithDefaults()
			if err := cfg.Validate(n); err != nil {
				return usageError{err}
			}
			c, stop, err := g.localCluster(cmd.Context(), n, "")
			if err != nil {
				return err
			}
			r, runErr := load.RunFailover(cmd.Context(), c, cfg, g.options())
			if err := stop(); runErr == nil {
				runErr = err
			}
			if r != nil {
				var err error
				if g.json {
					err = jsonOut(r)
				} else {
					err = bench.WriteFailoverText(os.Stdout, r)
				}
				if err != nil {
					return err
				}
			}
			return runErr
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Topic, "topic", "", "topic to create (default rafka-failover-<random>)")
	f.Int32VarP(&cfg.ReplicationFactor, "replication-factor", "r", 3, "replicas of the partition")
	f.IntVar(&cfg.RecordSize, "size", 256, "record value size in bytes")
	f.Float64Var(&cfg.Rate, "rate", 2000, "produce rate in records/s")
	f.IntVar(&cfg.Kills, "kills", 3, "times the leader is killed")
	f.DurationVar(&cfg.Settle, "settle", 2*time.Second, "undisturbed producing before each kill and after the last restart")
	f.DurationVar(&cfg.Duration, "duration", 3*time.Minute, "cap on producing and killing")
	f.DurationVar(&cfg.RequestTimeout, "request-timeout", 2*time.Second, "producer: wait for one produce answer before retrying")
	f.DurationVar(&cfg.Linger, "linger", 0, "producer linger")
	f.StringVar(&cfg.Fsync, "fsync", "", "topic fsync policy: always | interval:<ms> | never (default: the broker's)")
	f.DurationVar(&cfg.DrainTimeout, "drain-timeout", 60*time.Second, "bound of the final flush and of the read-back")
	return cmd
}
