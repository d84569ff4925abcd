package load

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/rafka/rafka/bench"
	"github.com/rafka/rafka/client"
)

// Target is the cluster a workload runs against.
type Target interface {
	// ClientOptions returns the options of a client for the cluster as it is
	// now (its addresses may change across Restart).
	ClientOptions() []client.Option
	// Stats returns the broker's resource use; ok is false when unknown.
	Stats(ctx context.Context) (st bench.ProcStats, ok bool)
	// Restart restarts the broker keeping its data, or fails when the
	// target cannot (a remote cluster).
	Restart(ctx context.Context) error
	// Throwaway reports whether the cluster is discarded after the run, so
	// that the run's topic needs no deleting.
	Throwaway() bool
}

// Remote is a cluster started by someone else (--brokers).
type Remote struct {
	Brokers  []string
	CAFile   string
	Insecure bool
	// AdminURL, when set (http://host:port), is the admin endpoint of the
	// broker whose /metrics process_* gauges are reported.
	AdminURL string
}

// ClientOptions implements Target.
func (r *Remote) ClientOptions() []client.Option {
	opts := []client.Option{client.WithBrokers(r.Brokers...)}
	if r.CAFile != "" {
		opts = append(opts, client.WithCAFile(r.CAFile))
	}
	if r.Insecure {
		opts = append(opts, client.WithInsecureSkipVerify())
	}
	return opts
}

// Stats implements Target from the broker's /metrics.
func (r *Remote) Stats(ctx context.Context) (bench.ProcStats, bool) {
	if r.AdminURL == "" {
		return bench.ProcStats{}, false
	}
	st, err := scrapeProcessMetrics(ctx, r.AdminURL+"/metrics")
	return st, err == nil
}

// Restart implements Target: a remote cluster is not ours to restart.
func (r *Remote) Restart(context.Context) error {
	return fmt.Errorf("load: cannot restart a remote cluster (cold reads need the local broker)")
}

// Throwaway implements Target.
func (r *Remote) Throwaway() bool { return false }

func scrapeProcessMetrics(ctx context.Context, url string) (bench.ProcStats, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return bench.ProcStats{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return bench.ProcStats{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return bench.ProcStats{}, fmt.Errorf("load: %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return bench.ProcStats{}, err
	}
	return bench.ParseProcessMetrics(body)
}

// Local is a `rafka serve` child process started for the run.
type Local struct {
	B *bench.LocalBroker
}

// ClientOptions implements Target.
func (l *Local) ClientOptions() []client.Option {
	return []client.Option{client.WithBrokers(l.B.Addr()), client.WithCAFile(l.B.CAFile())}
}

// Stats implements Target from the child's /proc files.
func (l *Local) Stats(context.Context) (bench.ProcStats, bool) {
	st, err := l.B.Stats()
	return st, err == nil
}

// Restart implements Target.
func (l *Local) Restart(ctx context.Context) error {
	nb, err := l.B.Restart(ctx)
	if err != nil {
		return err
	}
	l.B = nb
	return nil
}

// Throwaway implements Target.
func (l *Local) Throwaway() bool { return true }

// MultiBroker is a Target of several brokers, whose resource use is
// reported one by one (Result.Brokers) and summed (Result.Broker).
type MultiBroker interface {
	// BrokerStats returns each broker's resource use; ok is false when
	// unknown.
	BrokerStats(ctx context.Context) (use []bench.BrokerUse, ok bool)
}

// Cluster is a cluster of `rafka serve` children started for the run
// (--local-brokers).
type Cluster struct {
	C *bench.LocalCluster
}

// ClientOptions implements Target: every running broker bootstraps.
func (l *Cluster) ClientOptions() []client.Option {
	return []client.Option{client.WithBrokers(l.C.Addrs()...), client.WithCAFile(l.C.CAFile())}
}

// Stats implements Target: the sum over the brokers.
func (l *Cluster) Stats(ctx context.Context) (bench.ProcStats, bool) {
	use, ok := l.BrokerStats(ctx)
	return bench.SumUse(use), ok
}

// BrokerStats implements MultiBroker from the children's /proc files.
func (l *Cluster) BrokerStats(context.Context) ([]bench.BrokerUse, bool) {
	use, err := l.C.Stats()
	return use, err == nil
}

// Restart implements Target: every broker is restarted.
func (l *Cluster) Restart(ctx context.Context) error { return l.C.RestartAll(ctx) }

// Throwaway implements Target.
func (l *Cluster) Throwaway() bool { return true }
