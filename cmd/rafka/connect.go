package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rafka/rafka/client"
	"github.com/rafka/rafka/node"
	"github.com/rafka/rafka/quicnet"
)

// connFlags are the flags of every command that talks to a broker. The same
// names are used by rafka-bench and the examples.
type connFlags struct {
	brokers  []string
	caFile   string
	certFile string
	keyFile  string
	insecure bool
	timeout  time.Duration
}

// defaultBroker is where `rafka serve` listens by default.
var defaultBroker = node.DefaultConfig().Listen

// devCertPath is where `rafka serve` keeps its generated certificate when run
// with default flags from the same directory.
var devCertPath = quicnet.SelfSignedCertPath(node.DefaultConfig().DataDir)

func (cf *connFlags) register(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringSliceVarP(&cf.brokers, "brokers", "b", []string{defaultBroker}, "broker addresses (host:port, comma separated)")
	f.StringVar(&cf.caFile, "tls-ca", "", "PEM CA bundle to verify the broker (default: "+devCertPath+" when it exists)")
	f.StringVar(&cf.certFile, "tls-cert", "", "PEM client certificate for mTLS")
	f.StringVar(&cf.keyFile, "tls-key", "", "PEM key of --tls-cert")
	f.BoolVar(&cf.insecure, "insecure-skip-verify", false, "do not verify the broker's certificate (development only)")
	f.DurationVar(&cf.timeout, "timeout", 10*time.Second, "how long connecting plus the command's requests may take (for produce and consume: connecting and setting up) before it gives up")
}

// connect dials the brokers within --timeout.
func (cf *connFlags) connect(ctx context.Context) (*client.Client, error) {
	if len(cf.brokers) == 0 {
		return nil, usagef("--brokers: at least one address")
	}
	if cf.timeout <= 0 {
		return nil, usagef("--timeout %v: must be positive", cf.timeout)
	}
	if (cf.certFile == "") != (cf.keyFile == "") {
		return nil, usagef("--tls-cert and --tls-key go together")
	}
	ca := cf.caFile
	if ca == "" && !cf.insecure {
		if _, err := os.Stat(devCertPath); err == nil {
			ca = devCertPath
		}
	}
	tlsConf, err := quicnet.ClientTLSConfig(quicnet.TLSFiles{
		CAFile: ca, CertFile: cf.certFile, KeyFile: cf.keyFile, InsecureSkipVerify: cf.insecure,
	})
	if err != nil {
		return nil, usageError{err}
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	c, err := client.New(ctx,
		client.WithBrokers(cf.brokers...),
		client.WithTLSConfig(tlsConf),
		client.WithDialTimeout(cf.timeout),
		client.WithControlTimeout(cf.timeout),
	)
	if err != nil {
		return nil, cf.explain(ctx, err)
	}
	return c, nil
}

// explain adds what to check to an error that means no broker answered.
func (cf *connFlags) explain(ctx context.Context, err error) error {
	if err == nil || !(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, client.ErrNoBrokers) || ctx.Err() != nil) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return err // interrupted: nothing to check
	}
	// The client's error names the address and the wait; add only what the
	// flags can change.
	return fmt.Errorf("%w\n  check that `rafka serve` runs at %s (--brokers), that --tls-ca names its certificate, "+
		"or raise --timeout (%v) on a slow network", err, strings.Join(cf.brokers, ","), cf.timeout)
}

// with connects, runs fn and closes the client. Connecting and fn together
// run under one deadline of --timeout.
func (cf *connFlags) with(cmd *cobra.Command, fn func(context.Context, *client.Client) error) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), cf.timeout)
	defer cancel()
	c, err := cf.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return cf.explain(ctx, fn(ctx, c))
}
