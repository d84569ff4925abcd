package load

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/rafka/rafka/bench"
)

// Ratio names of the perf check, as stored in bench/baseline.json.
const (
	RatioProduce = "produce_1k_mb_per_upload_ceiling"
	RatioConsume = "consume_1k_mb_per_download_ceiling"
)

// CheckConfig is the perf check's fixed workload.
type CheckConfig struct {
	// Runs repeats the whole measurement; the best figure of each kind
	// counts. Default 1.
	Runs int
	// TransportDuration is each direction of the ceiling. Default 2s.
	TransportDuration time.Duration
	// Workload is produced and read back; DefaultCheckWorkload: 1 KiB
	// records, acks leader, fsync never, at most 400,000 records or 15 s.
	Workload Config
	// Start returns a fresh cluster for each run and a function stopping it.
	Start func(ctx context.Context) (Target, func() error, error)
	// Log receives each run's results as text. Nil discards.
	Log io.Writer
}

// DefaultCheckWorkload is the perf check's workload: short enough for CI
// (three runs stay under a minute on two cores), long enough that the
// first second's ramp-up (connection windows growing, the first segment
// being allocated) does not dominate: 200,000 records swung the ratios by
// 25% between identical runs.
func DefaultCheckWorkload() Config {
	return Config{
		RecordSize: 1024, Count: 400_000, Duration: 15 * time.Second, Acks: "leader", Fsync: "never",
		Linger: 5 * time.Millisecond, Partitions: 1, Producers: 1, Consumers: 1, DrainTimeout: 30 * time.Second,
	}
}

// Check measures the ceiling and the workload cfg.Runs times and returns,
// by name, the ratio of Rafka's best MB/s to the best ceiling of the same
// direction. Best, not median: on a shared machine other work only ever
// slows a run down, so the fastest of N runs is the closest to the
// machine's undisturbed figure, for Rafka and for the ceiling alike. The
// median of per-run ratios moved by over 20% between identical checks on
// the 2-core development machine; the best-of ratio moved far less.
func Check(ctx context.Context, cfg CheckConfig) (map[string]float64, error) {
	if cfg.Runs <= 0 {
		cfg.Runs = 1
	}
	if cfg.TransportDuration <= 0 {
		cfg.TransportDuration = 2 * time.Second
	}
	log := cfg.Log
	if log == nil {
		log = io.Discard
	}
	var best struct{ up, down, produce, consume float64 }
	for run := 1; run <= cfg.Runs; run++ {
		tr, err := bench.MeasureTransport(ctx, bench.TransportConfig{Duration: cfg.TransportDuration, RTTCount: 500})
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "--- run %d of %d\n", run, cfg.Runs)
		_ = bench.WriteText(log, tr)
		t, stop, err := cfg.Start(ctx)
		if err != nil {
			return nil, err
		}
		produce, consume, err := RunProduceConsume(ctx, t, cfg.Workload, Options{})
		if stopErr := stop(); err == nil {
			err = stopErr
		}
		if err != nil {
			return nil, err
		}
		produce.SetCeiling(tr.Transport.UploadMBPerSec)
		consume.SetCeiling(tr.Transport.DownloadMBPerSec)
		_ = bench.WriteText(log, produce)
		_ = bench.WriteText(log, consume)
		best.up = max(best.up, tr.Transport.UploadMBPerSec)
		best.down = max(best.down, tr.Transport.DownloadMBPerSec)
		best.produce = max(best.produce, produce.MBPerSec)
		best.consume = max(best.consume, consume.MBPerSec)
	}
	fmt.Fprintf(log, "best of %d: upload ceiling %.1f MB/s, produce %.1f MB/s; download ceiling %.1f MB/s, consume %.1f MB/s\n",
		cfg.Runs, best.up, best.produce, best.down, best.consume)
	return map[string]float64{
		RatioProduce: best.produce / best.up,
		RatioConsume: best.consume / best.down,
	}, nil
}
