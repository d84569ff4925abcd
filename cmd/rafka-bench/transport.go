package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rafka/rafka/bench"
)

// transportServerCmd is the hidden command that `transport --processes 2`
// runs as its child.
const transportServerCmd = "transport-server"

// childWait bounds how long the parent waits for the child's address, and
// for the child to exit once told to.
const childWait = 10 * time.Second

// newTransportServerCmd serves the transport measurement's server side
// until its standard input ends (the parent closes it, or dies), writing
// its address as the first line of standard output.
func newTransportServerCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:    transportServerCmd,
		Short:  "The server side of transport --processes 2 (run by it)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return usageError{errors.New("--tls-dir is required")}
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			go func() {
				_, _ = io.Copy(io.Discard, cmd.InOrStdin())
				cancel()
			}()
			return bench.ServeTransport(ctx, dir, func(addr string) {
				fmt.Fprintln(cmd.OutOrStdout(), addr)
			})
		},
	}
	cmd.Flags().StringVar(&dir, "tls-dir", "", "folder for the self-signed certificate the client trusts")
	return cmd
}

// measureTransportApart runs the transport measurement against a server in
// a child process (this program's transport-server command).
func measureTransportApart(ctx context.Context, cfg bench.TransportConfig) (*bench.Result, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	dir, err := os.MkdirTemp("", "rafka-bench-tls-*")
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	defer os.RemoveAll(dir)
	child := exec.Command(self, transportServerCmd, "--tls-dir", dir)
	child.Stderr = os.Stderr
	stdin, err := child.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	if err := child.Start(); err != nil {
		return nil, fmt.Errorf("transport: server process: %w", err)
	}
	defer stopChild(child, stdin)
	addr, err := firstLine(ctx, stdout)
	if err != nil {
		return nil, fmt.Errorf("transport: server process: %w", err)
	}
	r, err := bench.MeasureTransportTo(ctx, addr, dir, cfg)
	if r != nil {
		r.Config["processes"] = 2
	}
	return r, err
}

// firstLine reads the first line of r, within childWait or until ctx ends.
// Once it returns, nothing reads r any more.
func firstLine(ctx context.Context, r io.Reader) (string, error) {
	type line struct {
		s   string
		err error
	}
	got := make(chan line, 1)
	go func() {
		s, err := bufio.NewReader(r).ReadString('\n')
		got <- line{strings.TrimSpace(s), err}
	}()
	t := time.NewTimer(childWait)
	defer t.Stop()
	select {
	case l := <-got:
		if l.s == "" {
			return "", fmt.Errorf("exited without an address: %v", l.err)
		}
		return l.s, nil
	case <-t.C:
		return "", fmt.Errorf("no address within %v", childWait)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// stopChild ends the child by closing its standard input, and kills it if
// it has not exited within childWait.
func stopChild(child *exec.Cmd, stdin io.Closer) {
	stdin.Close()
	done := make(chan struct{})
	go func() {
		_ = child.Wait()
		close(done)
	}()
	t := time.NewTimer(childWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		_ = child.Process.Kill()
		<-done
	}
}
