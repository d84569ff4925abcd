package bench

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram range: 1 ns to 10 minutes at 3 significant digits (a recorded
// value is within 0.1% of the truth). Longer latencies are clamped to the top.
const (
	histLowest  = 1
	histHighest = int64(10 * time.Minute)
	histDigits  = 3
)

// Histogram records latencies. It is safe for concurrent use: delivery
// callbacks record while the progress line reads intervals.
type Histogram struct {
	mu       sync.Mutex
	total    *hdrhistogram.Histogram // since creation
	interval *hdrhistogram.Histogram // since the last TakeInterval
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{
		total:    hdrhistogram.New(histLowest, histHighest, histDigits),
		interval: hdrhistogram.New(histLowest, histHighest, histDigits),
	}
}

// Record adds one latency. Negative durations (a clock step between two
// hosts' stamps) count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := min(max(int64(d), histLowest), histHighest)
	h.mu.Lock()
	// Both cannot fail: v is inside the trackable range.
	_ = h.total.RecordValue(v)
	_ = h.interval.RecordValue(v)
	h.mu.Unlock()
}

// Summary describes everything recorded so far.
func (h *Histogram) Summary() Summary {
	h.mu.Lock()
	defer h.mu.Unlock()
	return summarize(h.total)
}

// TakeInterval describes what was recorded since the previous call and
// starts a new interval.
func (h *Histogram) TakeInterval() Summary {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := summarize(h.interval)
	h.interval.Reset()
	return s
}

// Merge adds everything other recorded to h's total (not its interval).
func (h *Histogram) Merge(other *Histogram) {
	other.mu.Lock()
	snap := other.total.Export()
	other.mu.Unlock()
	h.mu.Lock()
	h.total.Merge(hdrhistogram.Import(snap))
	h.mu.Unlock()
}

// Summary is a latency distribution in milliseconds.
type Summary struct {
	Count  int64   `json:"count"`
	MinMs  float64 `json:"min_ms"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
}

func summarize(h *hdrhistogram.Histogram) Summary {
	if h.TotalCount() == 0 {
		return Summary{}
	}
	q := h.ValueAtPercentiles([]float64{50, 90, 99, 99.9})
	return Summary{
		Count:  h.TotalCount(),
		MinMs:  nsToMs(float64(h.Min())),
		MeanMs: nsToMs(h.Mean()),
		P50Ms:  nsToMs(float64(q[50])),
		P90Ms:  nsToMs(float64(q[90])),
		P99Ms:  nsToMs(float64(q[99])),
		P999Ms: nsToMs(float64(q[99.9])),
		MaxMs:  nsToMs(float64(h.Max())),
	}
}

func nsToMs(ns float64) float64 { return ns / 1e6 }
