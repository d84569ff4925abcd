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
	// Runs repeats the whole measurement; the median of each ratio counts.
	// Default 1.
	Runs int
	// TransportDuration is each direction of the ceiling. Default 2s.
	TransportDuration time.Duration
	// Workload is produced and read back; the defaults are 1 KiB records,
	// acks leader, fsync never, at most 200,000 records or 15 s.
	Workload Config
	// Start returns a fresh cluster for each run and a function stopping it.
	Start func(ctx context.Context) (Target, func() error, error)
	// Log receives each run's results as text. Nil discards.
	Log io.Writer
}

// DefaultCheckWorkload is the perf check's workload: short enough for CI
// (the whole check stays under a minute on two cores), long enough that
// startup does not dominate.
func DefaultCheckWorkload() Config {
	return Config{
		RecordSize: 1024, Count: 200_000, Duration: 15 * time.Second, Acks: "leader", Fsync: "never",
		Linger: 5 * time.Millisecond, Partitions: 1, Producers: 1, Consumers: 1, DrainTimeout: 30 * time.Second,
	}
}

// Check measures the ceiling and the workload cfg.Runs times and returns
// the median ratio of Rafka's MB/s to the ceiling of the same direction,
// by name.
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
	samples := map[string][]float64{}
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
		samples[RatioProduce] = append(samples[RatioProduce], produce.RatioToCeiling)
		samples[RatioConsume] = append(samples[RatioConsume], consume.RatioToCeiling)
	}
	out := make(map[string]float64, len(samples))
	for name, xs := range samples {
		out[name] = bench.Median(xs)
	}
	return out, nil
}
