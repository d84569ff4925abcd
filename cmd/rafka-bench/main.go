// Command rafka-bench measures Rafka: produce, consume and end-to-end
// workloads against --brokers or a local `rafka serve` child, the raw QUIC
// transport ceiling, a side-by-side comparison with NATS JetStream, and the
// perf regression check. Run `rafka-bench help` for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rafka/rafka/cmd/internal/buildinfo"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the run failed or the perf check found a regression
	exitUsage   = 2 // bad flags or arguments
)

// usageError marks errors that are the caller's to fix.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root := newRoot()
	err := root.ExecuteContext(ctx)
	stop()
	if err == nil {
		os.Exit(exitOK)
	}
	fmt.Fprintln(os.Stderr, "rafka-bench:", err)
	if errors.As(err, new(usageError)) {
		os.Exit(exitUsage)
	}
	os.Exit(exitFailure)
}

func newRoot() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "rafka-bench",
		Short: "Measure Rafka: throughput, latency, the transport ceiling, NATS side by side",
		Long: `rafka-bench measures a Rafka cluster given with --brokers, or, without it, a
local "rafka serve" child on a temporary data folder (removed afterwards). The
rafka binary is --rafka-bin, else the one next to rafka-bench, else rafka on
PATH: build both with

    go build -o bin/ ./cmd/...

MB is 10^6 bytes; record and byte counts are of values only.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			if g.cpuProfile == "" {
				return nil
			}
			f, err := os.Create(g.cpuProfile)
			if err != nil {
				return usageError{fmt.Errorf("--cpuprofile: %w", err)}
			}
			return pprof.StartCPUProfile(f)
		},
		PersistentPostRun: func(*cobra.Command, []string) {
			if g.cpuProfile != "" {
				pprof.StopCPUProfile()
			}
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	g.register(root)
	root.AddCommand(
		newWorkloadCmd(g, "produce", "Produce records and measure throughput and ack latency"),
		newWorkloadCmd(g, "consume", "Fill a topic and read it back (--from earliest), or read at the tail while producing (--from latest)"),
		newWorkloadCmd(g, "e2e", "Produce and consume together: end-to-end latency from timestamps in the records"),
		newFailoverCmd(g),
		newTransportCmd(g),
		newTransportServerCmd(),
		newCompareCmd(g),
		newCheckCmd(g),
	)
	buildinfo.AddTo(root)
	return root
}
