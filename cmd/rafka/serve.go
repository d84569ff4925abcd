package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rafka/rafka/node"
	"github.com/rafka/rafka/quicnet"
)

// defaultAdminListen is the admin HTTP address of `rafka serve`. The node
// package leaves the admin server off unless asked; the command turns it on.
const defaultAdminListen = "127.0.0.1:9644"

func newServeCmd() *cobra.Command {
	// Every flag's default is the value the broker itself would apply
	// (node.DefaultConfig, quicnet's defaults), so --help shows the truth
	// and a default lives in one place.
	cfg := node.DefaultConfig()
	cfg.Logger = nil
	cfg.AdminListen = defaultAdminListen
	cfg.QUIC = quicnet.Config{}.WithDefaults()
	cfg.QUIC.Logger = nil // the broker hands quicnet its own logger
	var (
		fsync     = fmt.Sprint(cfg.TopicDefaults.Fsync)
		logLevel  string
		logFormat string
		readyFile string
		memLimit  = "auto"
	)
	// serve runs the broker with the output options of this command.
	serve := func(ctx context.Context, cfg node.Config, logger *slog.Logger) error {
		return runBroker(ctx, cfg, logger, strings.EqualFold(logFormat, "json"), readyFile)
	}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: fmt.Sprintf("Run a broker: form a cluster or join one (data in %s by default)", cfg.DataDir),
		Long: fmt.Sprintf(`Run a Rafka broker. With no flags it keeps its data in %s, serves
QUIC on %s and the admin HTTP endpoints (/metrics, /healthz,
/readyz, /debug/pprof) on %s. Every flag falls back to the
environment variable RAFKA_<FLAG> (for example RAFKA_DATA_DIR).

Without --tls-cert, a self-signed certificate is generated once in
<data-dir>/tls; clients trust it with --tls-ca <data-dir>/tls/cert.pem
(the rafka CLI finds it by itself when run next to %s).

Without --join, a broker forms a new cluster (of one) on first start, which
other brokers may then join. With --join host:port (repeatable or comma
separated; a DNS name resolving to several addresses stands for all of
them) it joins the cluster of those brokers; joining a cluster it is
already a member of is harmless, so a restart may keep the flag. Brokers
authenticate each other by mutual TLS, so --join needs --tls-ca (the
cluster CA) and --tls-cert/--tls-key (a broker certificate it signed, see
rafka certs create-broker). For a cluster on one machine, see rafka dev.

Once serving, it reports where on stderr: a line "rafka: broker ID serving
on ADDR (admin ADDR), data in DIR", or with --log-format json a log record
with msg "serving". Programs should not parse either: --ready-file PATH
writes a JSON object once the broker serves,

  {"broker_id": "...", "listen_addr": "127.0.0.1:9092",
   "admin_addr": "127.0.0.1:9644", "data_dir": "...", "pid": 1234,
   "cluster_id": "c-..."}

(admin_addr is "" when the admin server is disabled; cluster_id is ""
while a broker started with --join has not joined yet), atomically (written
to a temporary file and renamed), and removes it when shutting down.

SIGINT or SIGTERM shuts down gracefully: in-flight requests finish (up to
--shutdown-timeout), logs are flushed; a second signal exits at once.`,
			cfg.DataDir, cfg.Listen, cfg.AdminListen, cfg.DataDir),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(logLevel, logFormat)
			if err != nil {
				return usageError{err}
			}
			cfg.Logger = logger
			if cfg.TopicDefaults.Fsync, err = node.ParseFsyncPolicy(fsync); err != nil {
				return usageError{err}
			}
			if cfg.VerifyInterval == 0 {
				cfg.VerifyInterval = -1 // the flag's 0 is "off"; the node's zero is its default
			}
			if cfg.Cluster.MoveBytesPerSec, err = moveRate(cfg.Cluster.MoveBytesPerSec); err != nil {
				return usageError{err}
			}
			if _, err := applyMemoryLimit(memLimit, logger); err != nil {
				return usageError{err}
			}
			return serve(cmd.Context(), cfg, logger)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory for topics, broker identity and the development certificate")
	f.StringVar(&cfg.Listen, "listen", cfg.Listen, "QUIC (UDP) address to serve clients on (port 0: any free port)")
	f.StringVar(&cfg.AdvertisedAddr, "advertised-addr", "", "address given to clients in metadata (default: the listen address)")
	f.StringVar(&cfg.AdminListen, "admin-listen", cfg.AdminListen, "HTTP address for /metrics, /healthz, /readyz and pprof (empty disables)")
	f.StringVar(&cfg.BrokerID, "broker-id", "", "broker identity (default: generated once and kept in the data dir)")
	f.StringVar(&cfg.TLS.CertFile, "tls-cert", "", "PEM certificate (default: self-signed, generated in <data-dir>/tls)")
	f.StringVar(&cfg.TLS.KeyFile, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&cfg.TLS.CAFile, "tls-ca", "", "PEM CA bundle of the cluster: other brokers' certificates (and client certificates, with --tls-require-client-cert) must chain to it")
	f.BoolVar(&cfg.TLS.RequireClientCert, "tls-require-client-cert", false, "require and verify client certificates (mTLS)")
	f.Int64Var(&cfg.QUIC.MaxIncomingStreams, "max-streams-per-conn", cfg.QUIC.MaxIncomingStreams, "streams a client may have open on one connection at once")
	f.Uint64Var(&cfg.QUIC.MaxStreamReceiveWindow, "stream-receive-window", cfg.QUIC.MaxStreamReceiveWindow, "bytes a client may have in flight on one stream (flow control)")
	f.Uint64Var(&cfg.QUIC.MaxConnReceiveWindow, "conn-receive-window", cfg.QUIC.MaxConnReceiveWindow, "bytes a client may have in flight on one connection (flow control)")
	f.DurationVar(&cfg.QUIC.IdleTimeout, "idle-timeout", cfg.QUIC.IdleTimeout, "close connections silent for this long")
	f.DurationVar(&cfg.QUIC.KeepAlivePeriod, "keep-alive", cfg.QUIC.KeepAlivePeriod, "ping idle connections this often (negative disables)")
	f.DurationVar(&cfg.FrameTimeout, "frame-timeout", cfg.FrameTimeout, "how long one request frame may take to arrive once its length has")
	f.IntVar(&cfg.QUIC.MaxConnections, "max-connections", cfg.QUIC.MaxConnections, "client connections served at once; more are refused")
	f.Int64Var(&cfg.MaxConnFrameMemory, "max-conn-frame-memory", cfg.MaxConnFrameMemory, "bytes of request frames one connection may hold while they are received")
	f.Int64Var(&cfg.MaxFrameMemory, "max-frame-memory", cfg.MaxFrameMemory, "bytes of request frames all connections together may hold while they are received")
	f.IntVar(&cfg.HotstoreBytes, "hotstore-bytes", cfg.HotstoreBytes, "per-partition memory for recent batches served to tail readers (negative disables)")
	f.BoolVar(&cfg.HotstoreLockFree, "hotstore-lockfree", false, "use the lock-free ring for recent batches (measure first: see the hotstore package documentation)")
	f.IntVar(&cfg.MaxFrameBytes, "max-frame-bytes", cfg.MaxFrameBytes, "largest request frame accepted, in bytes")
	f.IntVar(&cfg.DefaultReplicationFactor, "default-replication-factor", cfg.DefaultReplicationFactor, "replicas of each partition of a topic created without a replication factor (capped by the live brokers)")
	f.DurationVar(&cfg.Cluster.LeaderRebalanceInterval, "leader-rebalance-interval", cfg.Cluster.LeaderRebalanceInterval, "how often partition leadership returns to each partition's preferred replica")
	f.DurationVar(&cfg.Cluster.DeadAfter, "dead-after", cfg.Cluster.DeadAfter, "how long a dead (fenced) broker keeps its replicas before they move to other brokers")
	f.Int64Var(&cfg.Cluster.MoveBytesPerSec, "move-bytes-per-sec", cfg.Cluster.MoveBytesPerSec, "rate at which a partition leader sends its log to a replica being added by a move (0: unlimited)")
	f.StringVar(&fsync, "default-fsync", fsync, "fsync policy of topics created without one: always | interval:<ms> | never")
	f.DurationVar(&cfg.RetentionInterval, "retention-interval", cfg.RetentionInterval, "how often expired segments are deleted")
	f.DurationVar(&cfg.VerifyInterval, "verify-interval", cfg.VerifyInterval, "how often each partition leader compares its replicas' committed logs in the background (0 disables; rafka verify still works)")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "how long shutdown waits for in-flight requests")
	f.StringSliceVar(&cfg.Cluster.Join, "join", nil, "host:port of brokers of the cluster to join (repeatable or comma separated; needs --tls-ca, --tls-cert, --tls-key); none forms a new cluster on first start")
	f.StringToStringVar(&cfg.Cluster.PeerConnectTo, "peer-connect-to", nil, "ADVERTISED=ADDR: dial the broker advertised at ADVERTISED at ADDR instead (repeatable or comma separated; for brokers behind address translation, such as containers publishing their port)")
	f.StringVar(&cfg.Cluster.Zone, "zone", cfg.Cluster.Zone, "failure domain of this broker (rack, availability zone): replicas and metadata voters are spread over zones first")
	f.IntVar(&cfg.Cluster.MetadataVoters, "metadata-voters", cfg.Cluster.MetadataVoters, "voters of the cluster's metadata group: 3 (tolerates one broker down) or 5 (two)")
	f.DurationVar(&cfg.Cluster.LeaseTimeout, "lease-timeout", cfg.Cluster.LeaseTimeout, "how long a broker stays alive in the cluster's view without a heartbeat (shorter detects failures sooner but fences brokers on a long pause)")
	// The node derives the heartbeat from the lease timeout when it is 0, so
	// --lease-timeout alone keeps the two consistent.
	f.DurationVar(&cfg.Cluster.HeartbeatInterval, "heartbeat-interval", 0, "how often the broker renews its cluster lease, at most half of --lease-timeout (default: a quarter of --lease-timeout)")
	f.DurationVar(&cfg.Cluster.RaftTick, "raft-tick", cfg.Cluster.RaftTick, "raft clock of the metadata group: elections take 10 ticks, heartbeats 1 (shorter costs CPU per idle group)")
	f.StringVar(&memLimit, "memory-limit", memLimit, "soft memory limit of the Go runtime: auto (80% of the container's memory limit when there is one; GOMEMLIMIT wins), none, or a size such as 1536MiB")
	f.StringVar(&logLevel, "log-level", "info", "debug | info | warn | error")
	f.StringVar(&logFormat, "log-format", "text", "text | json (structured log records on stderr)")
	f.StringVar(&readyFile, "ready-file", "", "once serving, write the broker's id, addresses, data dir and pid to this JSON file (removed at shutdown)")
	return cmd
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// readyInfo is the content of --ready-file.
type readyInfo struct {
	BrokerID   string `json:"broker_id"`
	ListenAddr string `json:"listen_addr"`
	AdminAddr  string `json:"admin_addr"` // "" when the admin server is disabled
	DataDir    string `json:"data_dir"`
	Pid        int    `json:"pid"`
	// ClusterID is "" while a broker started with --join has not joined yet.
	ClusterID string `json:"cluster_id"`
}

// writeReadyFile writes info as JSON to path atomically: to a temporary file
// in the same directory, then renamed, so a reader sees all of it or nothing.
func writeReadyFile(path string, info any) error {
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("--ready-file: %w", err)
	}
	_, werr := tmp.Write(append(b, '\n'))
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("--ready-file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("--ready-file: %w", err)
	}
	return nil
}

// runBroker starts the broker, waits for ctx to end (SIGINT or SIGTERM, see
// main) and shuts it down. jsonLog selects a log record over a line of text
// to report that it serves; readyFile, when set, is written once it serves.
func runBroker(ctx context.Context, cfg node.Config, logger *slog.Logger, jsonLog bool, readyFile string) error {
	quicnet.CheckUDPBuffers(logger)
	// A ready file left by a broker that crashed names a dead process: a
	// supervisor waiting for the file must not take it for this one.
	if readyFile != "" {
		if err := os.Remove(readyFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("--ready-file: removing a stale one: %w", err)
		}
	}
	b, err := node.New(cfg)
	if errors.Is(err, node.ErrInvalidConfig) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	if err := b.Start(); err != nil {
		b.Shutdown(context.Background())
		return err
	}
	info := readyInfo{BrokerID: b.ID(), ListenAddr: b.Addr(), AdminAddr: b.AdminAddr(), DataDir: cfg.DataDir, Pid: os.Getpid(), ClusterID: b.ClusterID()}
	if jsonLog {
		logger.Info("serving", "broker_id", info.BrokerID, "listen_addr", info.ListenAddr,
			"admin_addr", info.AdminAddr, "data_dir", info.DataDir, "pid", info.Pid)
	} else {
		fmt.Fprintf(os.Stderr, "rafka: broker %s serving on %s (admin %s), data in %s\n", info.BrokerID, info.ListenAddr, orNone(info.AdminAddr), info.DataDir)
	}
	if readyFile != "" {
		if err := writeReadyFile(readyFile, info); err != nil {
			return errors.Join(err, b.Shutdown(context.Background()))
		}
	}
	var failed error
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case failed = <-b.Failed():
		// Membership failed for good (another cluster's brokers, a
		// duplicate id): stop and say why.
		logger.Error("stopping: cluster membership failed", "err", failed)
	}
	errs := []error{failed}
	if readyFile != "" {
		// First: whoever waits on the file must not take a stopping broker
		// for a serving one.
		if err := os.Remove(readyFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("--ready-file: %w", err))
		}
	}
	errs = append(errs, b.Shutdown(context.Background()))
	return errors.Join(errs...)
}

func orNone(s string) string {
	if s == "" {
		return "disabled"
	}
	return s
}

// moveRate maps --move-bytes-per-sec to the broker's setting: 0 on the
// command line is no limit, which the config spells negative (its 0 is the
// default).
func moveRate(flag int64) (int64, error) {
	switch {
	case flag < 0:
		return 0, fmt.Errorf("--move-bytes-per-sec %d: 0 (unlimited) or more", flag)
	case flag == 0:
		return -1, nil
	}
	return flag, nil
}
