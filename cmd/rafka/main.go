// Command rafka runs a Rafka broker and talks to one: topics, produce,
// consume. Run `rafka help` for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rafka/rafka/cmd/internal/buildinfo"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailure     = 1   // the command ran and failed (broker error, I/O)
	exitUsage       = 2   // bad flags, arguments or configuration
	exitInterrupted = 130 // stopped by SIGINT or SIGTERM before it was done (as shells report ^C)
)

// usageError marks errors that are the caller's to fix.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func main() {
	// Every command runs under a context that SIGINT or SIGTERM cancels, so
	// it can close its connections (the broker then frees their state at
	// once instead of waiting for an idle timeout) and a server can shut
	// down gracefully. A second signal gets the default behaviour: exit.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	err := newRoot().ExecuteContext(ctx)
	stop()
	os.Exit(exitCode(ctx, err))
}

// exitCode prints err and maps it to the process exit code.
func exitCode(ctx context.Context, err error) int {
	if err == nil {
		return exitOK
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "rafka: interrupted")
		return exitInterrupted
	}
	fmt.Fprintln(os.Stderr, "rafka:", err)
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitFailure
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "rafka",
		Short:         "Rafka: a persistent, partitioned message log over QUIC",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return applyEnv(cmd.Flags())
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newServeCmd(), newTopicCmd(), newProduceCmd(), newConsumeCmd(), newHealthCmd(), newCertsCmd(), newClusterCmd(), newDevCmd(), newVerifyCmd())
	buildinfo.AddTo(root)
	return root
}

// applyEnv fills every flag not given on the command line from RAFKA_<NAME>
// (upper case, dashes as underscores), so `--data-dir` falls back to
// RAFKA_DATA_DIR.
func applyEnv(fs *pflag.FlagSet) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		v, ok := os.LookupEnv(envName(f.Name))
		if !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", envName(f.Name), v, err))
		}
	})
	if len(errs) > 0 {
		return usageError{errors.Join(errs...)}
	}
	return nil
}

func envName(flag string) string {
	b := []byte("RAFKA_" + flag)
	for i, c := range b {
		switch {
		case c == '-':
			b[i] = '_'
		case c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
