package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rafka/rafka/client"
	"github.com/rafka/rafka/quicnet"
)

// connFlags are the flags of every command that talks to a broker.
type connFlags struct {
	brokers  []string
	caFile   string
	certFile string
	keyFile  string
	insecure bool
	timeout  time.Duration
}

// devCertPath is where `rafka serve` keeps its generated certificate when run
// with default flags from the same directory.
var devCertPath = quicnet.SelfSignedCertPath("./rafka-data")

func (cf *connFlags) register(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringSliceVar(&cf.brokers, "brokers", []string{"127.0.0.1:9092"}, "broker addresses (host:port, comma separated)")
	f.StringVar(&cf.caFile, "tls-ca", "", "PEM CA bundle to verify the broker (default: "+devCertPath+" when it exists)")
	f.StringVar(&cf.certFile, "tls-cert", "", "PEM client certificate for mTLS")
	f.StringVar(&cf.keyFile, "tls-key", "", "PEM key of --tls-cert")
	f.BoolVar(&cf.insecure, "insecure-skip-verify", false, "do not verify the broker's certificate (development only)")
	f.DurationVar(&cf.timeout, "timeout", 10*time.Second, "timeout of each control request")
}

func (cf *connFlags) connect(ctx context.Context) (*client.Client, error) {
	if len(cf.brokers) == 0 {
		return nil, usagef("--brokers: at least one address")
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
	c, err := client.New(ctx,
		client.WithBrokers(cf.brokers...),
		client.WithTLSConfig(tlsConf),
		client.WithControlTimeout(cf.timeout),
	)
	if err != nil {
		return nil, fmt.Errorf("cannot reach a broker at %s (is `rafka serve` running there? does --tls-ca name its certificate?): %w",
			strings.Join(cf.brokers, ","), err)
	}
	return c, nil
}

// with connects, runs fn and closes the client.
func (cf *connFlags) with(cmd *cobra.Command, fn func(*client.Client) error) error {
	c, err := cf.connect(cmd.Context())
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c)
}
