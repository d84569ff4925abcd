package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rafka/rafka/bench"
	"github.com/rafka/rafka/bench/load"
)

// globalFlags are the flags every command shares: where the cluster is and
// how to report.
type globalFlags struct {
	brokers    []string
	caFile     string
	insecure   bool
	adminURL   string
	rafkaBin   string
	brokerLog  string
	brokerArgs []string
	localN     int
	json       bool
	progress   time.Duration
	cpuProfile string
}

func (g *globalFlags) register(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	// --brokers, --tls-ca and --insecure-skip-verify mean what they mean
	// for the rafka command.
	f.StringSliceVarP(&g.brokers, "brokers", "b", nil, "bootstrap brokers host:port, comma separated (default: start a local rafka serve child)")
	f.StringVar(&g.caFile, "tls-ca", "", "PEM CA bundle that verifies the brokers (with --brokers)")
	f.BoolVar(&g.insecure, "insecure-skip-verify", false, "do not verify broker certificates (with --brokers; development only)")
	f.StringVar(&g.adminURL, "admin-url", "", "admin HTTP URL of a --brokers broker whose /metrics process_* gauges to report (http://host:port)")
	f.StringVar(&g.rafkaBin, "rafka-bin", "", "rafka binary for the local child (default: next to rafka-bench, else on PATH)")
	f.IntVar(&g.localN, "local-brokers", 1, fmt.Sprintf("without --brokers: local rafka serve children, 1 to %d; more than one form a cluster with a generated CA (broker 1 forms it, the others join)", bench.MaxLocalBrokers))
	f.StringVar(&g.brokerLog, "broker-log", "", "file to copy the local brokers' logs to, each line prefixed [bN] with several (- for stderr; default: keep only their last lines for errors)")
	f.StringArrayVar(&g.brokerArgs, "broker-arg", nil, "extra argument for each local `rafka serve` (repeatable), e.g. --broker-arg=--hotstore-bytes=1048576")
	f.BoolVar(&g.json, "json", false, "print the result as JSON on stdout")
	f.DurationVar(&g.progress, "progress", time.Second, "progress line interval on stderr (0 disables)")
	f.StringVar(&g.cpuProfile, "cpuprofile", "", "write a CPU profile of rafka-bench itself (the client side) to this file")
}

// target returns the cluster to run against and a function that stops the
// local children (a no-op for --brokers) and returns its error.
func (g *globalFlags) target(ctx context.Context, fsync string) (load.Target, func() error, error) {
	if len(g.brokers) > 0 {
		if g.localN != 1 {
			return nil, nil, usageError{fmt.Errorf("--local-brokers and --brokers exclude each other")}
		}
		return &load.Remote{Brokers: g.brokers, CAFile: g.caFile, Insecure: g.insecure, AdminURL: strings.TrimSuffix(g.adminURL, "/")},
			func() error { return nil }, nil
	}
	if g.caFile != "" || g.insecure || g.adminURL != "" {
		return nil, nil, usageError{fmt.Errorf("--tls-ca, --insecure-skip-verify and --admin-url need --brokers")}
	}
	if g.localN == 1 {
		return g.localBroker(ctx, fsync)
	}
	c, stop, err := g.localCluster(ctx, g.localN, fsync)
	if err != nil {
		return nil, nil, err
	}
	return &load.Cluster{C: c}, stop, nil
}

// brokerLogWriter opens --broker-log; close is never nil.
func (g *globalFlags) brokerLogWriter() (w io.Writer, close func(), err error) {
	switch g.brokerLog {
	case "":
		return nil, func() {}, nil
	case "-":
		return os.Stderr, func() {}, nil
	}
	f, err := os.Create(g.brokerLog)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// localBroker starts the single local child.
func (g *globalFlags) localBroker(ctx context.Context, fsync string) (load.Target, func() error, error) {
	bin, err := bench.FindRafkaBinary(g.rafkaBin)
	if err != nil {
		return nil, nil, err
	}
	logw, closeLog, err := g.brokerLogWriter()
	if err != nil {
		return nil, nil, err
	}
	b, err := bench.StartLocalBroker(ctx, bench.LocalBrokerConfig{Binary: bin, Fsync: fsync, Args: g.brokerArgs, Log: logw})
	if err != nil {
		closeLog()
		return nil, nil, err
	}
	l := &load.Local{B: b}
	return l, func() error {
		_, err := l.B.Stop()
		closeLog()
		return err
	}, nil
}

// localCluster starts n local children forming a cluster.
func (g *globalFlags) localCluster(ctx context.Context, n int, fsync string) (*bench.LocalCluster, func() error, error) {
	if n < 1 || n > bench.MaxLocalBrokers {
		return nil, nil, usageError{fmt.Errorf("--local-brokers %d: want 1 to %d", n, bench.MaxLocalBrokers)}
	}
	cfg := bench.LocalClusterConfig{Brokers: n, Fsync: fsync, Args: g.brokerArgs}
	bin, err := bench.FindRafkaBinary(g.rafkaBin)
	if err != nil {
		return nil, nil, err
	}
	cfg.Binary = bin
	logw, closeLog, err := g.brokerLogWriter()
	if err != nil {
		return nil, nil, err
	}
	cfg.Log = logw
	fmt.Fprintf(os.Stderr, "starting %d local brokers\n", n)
	c, err := bench.StartLocalCluster(ctx, cfg)
	if err != nil {
		closeLog()
		return nil, nil, err
	}
	return c, func() error {
		_, err := c.Stop()
		closeLog()
		return err
	}, nil
}

func (g *globalFlags) options() load.Options {
	if g.progress <= 0 {
		return load.Options{} // no progress line
	}
	return load.Options{Progress: os.Stderr, ProgressInterval: g.progress}
}

// jsonOut prints v as indented JSON on stdout.
func jsonOut(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// output prints results as text on stdout, or as JSON with --json.
func (g *globalFlags) output(results ...*bench.Result) error {
	if g.json {
		return bench.WriteJSON(os.Stdout, results...)
	}
	for _, r := range results {
		if err := bench.WriteText(os.Stdout, r); err != nil {
			return err
		}
	}
	return nil
}

// workloadFlags binds the knobs of a load.Config.
func workloadFlags(f *pflag.FlagSet, c *load.Config) {
	f.StringVar(&c.Topic, "topic", "", "topic to create for the run (default rafka-bench-<random>)")
	f.Int32Var(&c.Partitions, "partitions", 1, "partitions of the topic")
	f.Int32VarP(&c.ReplicationFactor, "replication-factor", "r", 1, "replicas of each partition of the topic (1 keeps figures comparable with single-broker runs; more needs as many --local-brokers)")
	f.IntVar(&c.RecordSize, "size", 1024, "record value size in bytes")
	f.Int64Var(&c.Count, "count", 0, "records to produce (0: bounded by --duration only)")
	f.DurationVar(&c.Duration, "duration", 0, "how long to produce (0: bounded by --count only; default 10s when neither is given)")
	f.IntVar(&c.Producers, "producers", 1, "producers, each with its own connection")
	f.IntVar(&c.Consumers, "consumers", 1, "consumers, each with its own connection (partitions are dealt round-robin)")
	f.StringVar(&c.Acks, "acks", "leader", "none | leader | all")
	f.StringVar(&c.Fsync, "fsync", "", "topic fsync policy: always | interval:<ms> | never (default: the broker's, always for rafka serve)")
	f.DurationVar(&c.Linger, "linger", 5*time.Millisecond, "producer linger: how long a batch waits for more records (0: none)")
	f.IntVar(&c.BatchBytes, "batch-bytes", 0, "producer max batch bytes (default the client's 1 MiB)")
	f.IntVar(&c.MaxInFlight, "max-in-flight", 0, "produce requests in flight per partition (default the client's 8; above 8 the producer is not idempotent)")
	f.StringVar(&c.Compression, "compression", "none", "none | lz4")
	f.Float64Var(&c.Compressibility, "compressibility", 0, "fraction of each value lz4 can remove, 0 (random) to 1")
	f.IntVar(&c.Keys, "keys", 0, "distinct keys cycled through (0: unkeyed records)")
	f.Float64Var(&c.Rate, "rate", 0, "target total produce rate in records/s (0: as fast as possible); latency counts from each record's scheduled time")
	f.StringVar(&c.From, "from", "earliest", "consume: earliest (fill, then read back) | latest (read at the tail while producing)")
	f.BoolVar(&c.Cold, "cold", false, "consume --from earliest: restart the local broker between fill and read, so reads come from segment files")
	f.Int64Var(&c.CreditBytes, "credit-bytes", 0, "consumer flow-control window (default the client's 4 MiB)")
	f.Uint64Var(&c.Seed, "seed", 1, "payload seed")
	f.DurationVar(&c.DrainTimeout, "drain-timeout", 60*time.Second, "how long consumers may lag once producing is done, and the final flush")
}

func newWorkloadCmd(g *globalFlags, name, short string) *cobra.Command {
	var cfg load.Config
	cmd := &cobra.Command{
		Use:   name,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Workload = name
			if cfg.Count == 0 && cfg.Duration == 0 {
				cfg.Duration = 10 * time.Second
			}
			cfg = cfg.WithDefaults()
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			t, stop, err := g.target(cmd.Context(), cfg.Fsync)
			if err != nil {
				return err
			}
			r, runErr := load.Run(cmd.Context(), t, cfg, g.options())
			stopErr := stop()
			if r != nil {
				if err := g.output(r); err != nil {
					return err
				}
			}
			if runErr != nil {
				return runErr
			}
			return stopErr
		},
	}
	workloadFlags(cmd.Flags(), &cfg)
	return cmd
}

func newTransportCmd(g *globalFlags) *cobra.Command {
	var (
		cfg       bench.TransportConfig
		processes int
	)
	cmd := &cobra.Command{
		Use:   "transport",
		Short: "Raw QUIC single-stream throughput and RTT on this machine with the broker's TLS settings: the ceiling",
		Long: `transport measures what one quicnet connection carries on one stream over
loopback, with TLS 1.3 and a self-signed P-256 certificate as a development
broker uses: upload (the produce direction), download (the consume
direction) and small-message round trips. Rafka's produce and consume MB/s
are divided by it.

By default client and server run in this process, one Go runtime moving
bytes with nothing else to do: the most the transport gives. With
--processes 2 the server runs in a child process, as a broker does apart
from its clients, and every byte crosses between two processes' threads.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var (
				r   *bench.Result
				err error
			)
			switch processes {
			case 1:
				r, err = bench.MeasureTransport(cmd.Context(), cfg)
			case 2:
				r, err = measureTransportApart(cmd.Context(), cfg)
			default:
				return usageError{fmt.Errorf("--processes %d: want 1 or 2", processes)}
			}
			if err != nil {
				return err
			}
			return g.output(r)
		},
	}
	f := cmd.Flags()
	f.DurationVar(&cfg.Duration, "duration", 3*time.Second, "duration of each direction (and bound of the round trips)")
	f.IntVar(&cfg.ChunkBytes, "chunk", 64<<10, "bytes per stream write")
	f.IntVar(&cfg.RTTCount, "rtt-count", 2000, "round trips to time")
	f.IntVar(&cfg.RTTBytes, "rtt-bytes", 64, "bytes per round-trip message")
	f.IntVar(&processes, "processes", 1, "1: client and server in this process; 2: the server in a child process")
	return cmd
}

func newCompareCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "compare",
		Short: "Run the same workloads against Rafka and another system, side by side",
	}
	var (
		cfg            load.Config
		dir, prog, srv string
		maxPending     int
	)
	nats := &cobra.Command{
		Use:   "nats",
		Short: "Produce and consume against Rafka, then NATS JetStream (file storage, one replica, async publish)",
		Long: `compare nats fills a Rafka topic and reads it back (produce, then consume
from earliest), then runs the same through nats-bench, the program of the
nested module bench/nats: a nats-server child with JetStream file storage,
a stream of one replica, async publish with --max-pending acks outstanding,
an ordered consumer reading back. Install the server first with
bench/nats/install-nats-server.sh. JetStream syncs to disk periodically by
default, so compare with --fsync never (the default here); --fsync always
syncs every JetStream write.

NATS publishes the number of records Rafka took in, for at most as long as
Rafka's produce took: whichever comes first ends it, so compare rates, not
times. --producers publishers each have their own connection, --partitions
become subjects of the one stream (bench.0, bench.1, ...), and --rate paces
the publishers as it paces Rafka's producers. Other workload flags
(--acks, --linger, --compression, --keys ...) apply to Rafka only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Count == 0 && cfg.Duration == 0 {
				cfg.Duration = 10 * time.Second
			}
			cfg.Workload, cfg.From = load.WorkloadConsume, load.FromEarliest
			cfg = cfg.WithDefaults()
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			t, stop, err := g.target(cmd.Context(), cfg.Fsync)
			if err != nil {
				return err
			}
			fmt.Fprintln(os.Stderr, "rafka: produce, then consume from earliest")
			rp, rc, runErr := load.RunProduceConsume(cmd.Context(), t, cfg, g.options())
			if err := stop(); runErr == nil {
				runErr = err
			}
			if runErr != nil {
				return runErr
			}
			args := natsArgs(cfg, rp, maxPending)
			fmt.Fprintln(os.Stderr, "nats: produce, then consume from the start of the stream")
			nr, err := bench.NATSRun{Dir: dir, Program: prog, Server: srv, Args: args, Stderr: os.Stderr}.Run(cmd.Context())
			if err != nil {
				return err
			}
			if len(nr) != 2 {
				return fmt.Errorf("nats-bench returned %d results, want produce and consume", len(nr))
			}
			if g.json {
				return bench.WriteJSON(os.Stdout, rp, rc, nr[0], nr[1])
			}
			for _, r := range []*bench.Result{rp, rc, nr[0], nr[1]} {
				if err := bench.WriteText(os.Stdout, r); err != nil {
					return err
				}
			}
			fmt.Println()
			return bench.WriteComparison(os.Stdout, []*bench.Result{rp, rc}, nr)
		},
	}
	f := nats.Flags()
	workloadFlags(f, &cfg)
	_ = f.Set("fsync", "never")
	f.Lookup("fsync").DefValue = "never"
	f.StringVar(&dir, "nats-dir", "bench/nats", "the nested module bench/nats (nats-bench is run there with `go run .`)")
	f.StringVar(&prog, "nats-bench", "", "a built nats-bench binary instead of `go run`")
	f.StringVar(&srv, "nats-server", "", "nats-server binary (default <nats-dir>/bin/nats-server)")
	f.IntVar(&maxPending, "max-pending", 4096, "NATS async publishes awaiting their ack at once, per publisher")
	cmd.AddCommand(nats)
	return cmd
}

// natsArgs are nats-bench's flags for the workload cfg after Rafka's
// produce phase rp: the same records, at most the same time. A NATS run
// that is much slower (every write synced) then ends on time with fewer
// records instead of running for minutes.
func natsArgs(cfg load.Config, rp *bench.Result, maxPending int) []string {
	bound := max(time.Duration(rp.DurationSec*float64(time.Second)).Round(time.Millisecond), time.Second)
	args := []string{"-size", fmt.Sprint(cfg.RecordSize), "-max-pending", fmt.Sprint(maxPending),
		"-compressibility", fmt.Sprint(cfg.Compressibility), "-seed", fmt.Sprint(cfg.Seed),
		"-producers", fmt.Sprint(cfg.Producers), "-partitions", fmt.Sprint(cfg.Partitions),
		"-rate", fmt.Sprint(cfg.Rate),
		"-count", fmt.Sprint(rp.Records), "-duration", bound.String(),
		"-drain-timeout", cfg.DrainTimeout.String()}
	if cfg.Fsync == "always" {
		args = append(args, "-sync-always")
	}
	return args
}

func newCheckCmd(g *globalFlags) *cobra.Command {
	var (
		baseline      string
		writeBaseline bool
		runs          int
		note          string
	)
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Perf regression check: fixed workloads divided by the transport ceiling, against a committed baseline",
		Long: `check measures the QUIC transport ceiling, then runs fixed workloads, each
on fresh local brokers (acks leader, fsync never, linger 5 ms, 1 KiB records
unless stated): 400,000 records produced and read back; 1,500,000 100-byte
records produced and read back; 300,000 records lz4-compressed, half of each
value compressible; 4 producers over 8 partitions; 3 brokers, 3 replicas,
acks all, 200,000 records. It divides each MB/s (values before compression)
by the ceiling of its direction measured in the same run. With --runs N it
divides the best figure of N runs by the best ceiling (other work on a
shared machine only slows a run down, so the best of N is the most
repeatable figure). It compares the ratios with --baseline and fails
(exit 1) when one dropped by more than the baseline's max_drop (25%) or is
missing. --write-baseline stores the measured ratios instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(g.brokers) > 0 {
				return usageError{fmt.Errorf("check runs its own local brokers; --brokers does not apply")}
			}
			if g.localN != 1 {
				return usageError{fmt.Errorf("check chooses the local brokers of each workload; --local-brokers does not apply")}
			}
			cc := load.CheckConfig{
				Runs:      runs,
				Workloads: load.DefaultCheckWorkloads(),
				Start: func(ctx context.Context, brokers int) (load.Target, func() error, error) {
					if brokers == 1 {
						return g.localBroker(ctx, "never")
					}
					c, stop, err := g.localCluster(ctx, brokers, "never")
					if err != nil {
						return nil, nil, err
					}
					return &load.Cluster{C: c}, stop, nil
				},
				Log: os.Stderr,
			}
			measured, err := load.Check(cmd.Context(), cc)
			if err != nil {
				return err
			}
			if writeBaseline {
				bl := bench.Baseline{Machine: bench.MachineDescription(), Note: note, MaxDrop: bench.DefaultMaxDrop, Ratios: measured}
				if err := bench.WriteBaseline(baseline, bl); err != nil {
					return err
				}
				fmt.Printf("wrote %s: %v\n", baseline, measured)
				return nil
			}
			bl, err := bench.LoadBaseline(baseline)
			if err != nil {
				return err
			}
			verdicts, ok := bl.Compare(measured)
			fmt.Printf("perf check against %s (baseline machine: %s)\n", baseline, bl.Machine)
			bench.WriteVerdicts(os.Stdout, verdicts, bl.MaxDrop)
			if !ok {
				md := bl.MaxDrop
				if md == 0 {
					md = bench.DefaultMaxDrop
				}
				return fmt.Errorf("performance regression: a ratio dropped more than %.0f%% below its baseline", 100*md)
			}
			fmt.Println("perf check ok")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&baseline, "baseline", "bench/baseline.json", "baseline file")
	f.BoolVar(&writeBaseline, "write-baseline", false, "write the measured ratios to --baseline instead of comparing")
	f.IntVar(&runs, "runs", 1, "runs; the best figure of each kind counts")
	f.StringVar(&note, "note", "", "note stored with --write-baseline")
	return cmd
}
