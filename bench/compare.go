package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// NATSRun locates and runs the nats-bench program of the nested module
// bench/nats.
type NATSRun struct {
	// Dir is the bench/nats folder; the program is run there with `go run .`
	// unless Program is set.
	Dir string
	// Program is a built nats-bench binary (optional).
	Program string
	// Server is the nats-server binary. Default: Dir/bin/nats-server, as
	// Dir/install-nats-server.sh installs it.
	Server string
	// Args are nats-bench's workload flags (-size, -count, -duration, ...).
	Args []string
	// Stderr receives the program's stderr (and the go tool's). Nil: discarded.
	Stderr io.Writer
}

// Run executes nats-bench and returns its results (produce, then consume).
func (n NATSRun) Run(ctx context.Context) ([]*Result, error) {
	server := n.Server
	if server == "" {
		server = filepath.Join(n.Dir, "bin", "nats-server")
	}
	if _, err := os.Stat(server); err != nil {
		return nil, fmt.Errorf("bench: nats-server: %w (install it with %s)", err, filepath.Join(n.Dir, "install-nats-server.sh"))
	}
	server, err := filepath.Abs(server)
	if err != nil {
		return nil, err
	}
	args := append([]string{"-server", server}, n.Args...)
	var cmd *exec.Cmd
	if n.Program != "" {
		cmd = exec.CommandContext(ctx, n.Program, args...)
	} else {
		cmd = exec.CommandContext(ctx, "go", append([]string{"run", "."}, args...)...)
		cmd.Dir = n.Dir
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = n.Stderr
	runErr := cmd.Run()
	var results []*Result
	if out.Len() > 0 {
		if err := json.Unmarshal(out.Bytes(), &results); err != nil {
			return nil, fmt.Errorf("bench: nats-bench output: %w", err)
		}
	}
	if runErr != nil {
		return results, fmt.Errorf("bench: nats-bench: %w", runErr)
	}
	return results, nil
}

// WriteComparison prints a side-by-side table of two systems' results of
// the same workloads: a[i] and b[i] are compared; rows whose figures one
// side lacks show "-".
func WriteComparison(w io.Writer, a, b []*Result) error {
	if len(a) != len(b) {
		return fmt.Errorf("bench: compare %d results with %d", len(a), len(b))
	}
	if len(a) == 0 {
		return nil
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%-32s %14s %14s %10s\n", "", a[0].System, b[0].System, a[0].System+"/"+b[0].System)
	row := func(name string, x, y float64, ok bool) {
		if !ok {
			fmt.Fprintf(&sb, "%-32s %14s %14s %10s\n", name, "-", "-", "-")
			return
		}
		ratio := "-"
		if y > 0 {
			ratio = fmt.Sprintf("%.2fx", x/y)
		}
		fmt.Fprintf(&sb, "%-32s %14s %14s %10s\n", name, fmtFigure(x), fmtFigure(y), ratio)
	}
	for i := range a {
		x, y := a[i], b[i]
		wl := x.Workload
		row(wl+" records/s", x.RecordsPerSec, y.RecordsPerSec, true)
		row(wl+" MB/s", x.MBPerSec, y.MBPerSec, true)
		if x.Ack != nil && y.Ack != nil {
			row(wl+" ack p50 ms", x.Ack.P50Ms, y.Ack.P50Ms, true)
			row(wl+" ack p99 ms", x.Ack.P99Ms, y.Ack.P99Ms, true)
		}
		if x.SendLag != nil && y.SendLag != nil {
			row(wl+" send lag p99 ms", x.SendLag.P99Ms, y.SendLag.P99Ms, true)
		}
		if x.Broker != nil && y.Broker != nil {
			row(wl+" server CPU-s per GB", x.BrokerCPUSecPerGB, y.BrokerCPUSecPerGB, true)
			row(wl+" server peak RSS MiB", float64(x.Broker.PeakRSSBytes)/(1<<20), float64(y.Broker.PeakRSSBytes)/(1<<20), true)
		}
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

func fmtFigure(f float64) string {
	switch {
	case f >= 1000:
		return fmt.Sprintf("%.0f", f)
	case f >= 10:
		return fmt.Sprintf("%.1f", f)
	}
	return fmt.Sprintf("%.3f", f)
}
