package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/rafka/rafka/node"
	"github.com/rafka/rafka/quicnet"
)

func newServeCmd() *cobra.Command {
	var (
		cfg       node.Config
		fsync     string
		logLevel  string
		logFormat string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a broker (single node; data in ./rafka-data by default)",
		Long: `Run a Rafka broker. With no flags it keeps its data in ./rafka-data, serves
QUIC on 127.0.0.1:9092 and the admin HTTP endpoints (/metrics, /healthz,
/readyz, /debug/pprof) on 127.0.0.1:9644. Every flag falls back to the
environment variable RAFKA_<FLAG> (for example RAFKA_DATA_DIR).

Without --tls-cert, a self-signed certificate is generated once in
<data-dir>/tls; clients trust it with --tls-ca <data-dir>/tls/cert.pem
(the rafka CLI finds it by itself when run next to ./rafka-data).`,
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
			return serve(cmd.Context(), cfg, logger)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", "./rafka-data", "directory for topics, broker identity and the development certificate")
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:9092", "QUIC (UDP) address to serve clients on")
	f.StringVar(&cfg.AdvertisedAddr, "advertised-addr", "", "address given to clients in metadata (default: the listen address)")
	f.StringVar(&cfg.AdminListen, "admin-listen", "127.0.0.1:9644", "HTTP address for /metrics, /healthz, /readyz and pprof (empty disables)")
	f.StringVar(&cfg.BrokerID, "broker-id", "", "broker identity (default: generated once and kept in the data dir)")
	f.StringVar(&cfg.TLS.CertFile, "tls-cert", "", "PEM certificate (default: self-signed, generated in <data-dir>/tls)")
	f.StringVar(&cfg.TLS.KeyFile, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&cfg.TLS.CAFile, "tls-ca", "", "PEM CA bundle that client certificates must chain to (with --tls-require-client-cert)")
	f.BoolVar(&cfg.TLS.RequireClientCert, "tls-require-client-cert", false, "require and verify client certificates (mTLS)")
	f.Int64Var(&cfg.QUIC.MaxIncomingStreams, "max-streams-per-conn", 1024, "streams a client may have open on one connection at once")
	f.Uint64Var(&cfg.QUIC.MaxStreamReceiveWindow, "stream-receive-window", 16<<20, "bytes a client may have in flight on one stream (flow control)")
	f.Uint64Var(&cfg.QUIC.MaxConnReceiveWindow, "conn-receive-window", 64<<20, "bytes a client may have in flight on one connection (flow control)")
	f.DurationVar(&cfg.QUIC.IdleTimeout, "idle-timeout", 30*time.Second, "close connections silent for this long")
	f.DurationVar(&cfg.QUIC.KeepAlivePeriod, "keep-alive", 10*time.Second, "ping idle connections this often (negative disables)")
	f.IntVar(&cfg.HotstoreBytes, "hotstore-bytes", 8<<20, "per-partition memory for recent batches served to tail readers (negative disables)")
	f.BoolVar(&cfg.HotstoreLockFree, "hotstore-lockfree", false, "use the lock-free ring for recent batches (measure first: see the hotstore package documentation)")
	f.IntVar(&cfg.MaxFrameBytes, "max-frame-bytes", 0, "largest request frame accepted (default 16 MiB + 64 KiB)")
	f.StringVar(&fsync, "default-fsync", "", "fsync policy of topics created without one: always | interval:<ms> | never (default always)")
	f.DurationVar(&cfg.RetentionInterval, "retention-interval", time.Minute, "how often expired segments are deleted")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long shutdown waits for in-flight requests")
	f.StringVar(&logLevel, "log-level", "info", "debug | info | warn | error")
	f.StringVar(&logFormat, "log-format", "text", "text | json")
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

// serve starts the broker, waits for SIGINT or SIGTERM and shuts it down.
func serve(ctx context.Context, cfg node.Config, logger *slog.Logger) error {
	quicnet.CheckUDPBuffers(logger)
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
	fmt.Fprintf(os.Stderr, "rafka: broker %s serving on %s (admin %s), data in %s\n", b.ID(), b.Addr(), orNone(b.AdminAddr()), cfg.DataDir)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	stop()
	logger.Info("shutting down")
	return b.Shutdown(context.Background())
}

func orNone(s string) string {
	if s == "" {
		return "disabled"
	}
	return s
}
