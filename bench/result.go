package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// MB is the unit of every MB/s figure: 10^6 bytes, as network and disk
// vendors (and NATS's and Kafka's benchmark tools) count.
const MB = 1e6

// Result is the outcome of one workload run. Its JSON form is what
// `rafka-bench --json` prints and the perf check reads.
type Result struct {
	// System is "rafka" or "nats".
	System string `json:"system"`
	// Workload is produce, consume, e2e or transport.
	Workload string `json:"workload"`
	// Config describes the knobs of the run (record size, acks, ...).
	Config map[string]any `json:"config,omitempty"`

	Records     int64   `json:"records"`
	Bytes       int64   `json:"bytes"` // value bytes (keys and framing not counted)
	DurationSec float64 `json:"duration_sec"`
	Errors      int64   `json:"errors"`

	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"`

	// The headline latency: acknowledgement latency for produce, end-to-end
	// for e2e and for consume from the tail, null for consume from disk,
	// where no per-record latency is defined.
	P50Ms  *float64 `json:"p50_ms"`
	P90Ms  *float64 `json:"p90_ms"`
	P99Ms  *float64 `json:"p99_ms"`
	P999Ms *float64 `json:"p999_ms"`
	MaxMs  *float64 `json:"max_ms"`

	Ack *Summary `json:"ack_latency,omitempty"` // Produce call (or its scheduled time) to delivery callback
	E2E *Summary `json:"e2e_latency,omitempty"` // value stamp at produce to Poll in the consumer
	// SendLag, for paced runs, is how late the load generator handed each
	// record to the client after its scheduled time (bench.Pacer): a part
	// of Ack and E2E that is the generator's, not the system's.
	SendLag *Summary `json:"send_lag,omitempty"`

	// Broker is the broker process's cost, when it is known; for a cluster,
	// the sum over its brokers (see SumUse), each listed in Brokers.
	Broker  *ProcStats  `json:"broker,omitempty"`
	Brokers []BrokerUse `json:"brokers,omitempty"`
	// BrokerCPUSecPerGB is broker CPU-seconds per 10^9 value bytes ingested
	// (produce, e2e) or served (consume).
	BrokerCPUSecPerGB float64 `json:"broker_cpu_sec_per_gb,omitempty"`
	// ReplicationFactor is the replicas of each partition of the run's
	// topic (0: unknown). Every replica stores what is produced, so for
	// produce and e2e with more than one replica BrokerCPUSecPerGBPerReplica
	// is BrokerCPUSecPerGB divided by it: the cost of one copy.
	ReplicationFactor           int     `json:"replication_factor,omitempty"`
	BrokerCPUSecPerGBPerReplica float64 `json:"broker_cpu_sec_per_gb_per_replica,omitempty"`

	// CeilingMBPerSec is the transport ceiling of the same direction measured
	// in the same run, and RatioToCeiling MBPerSec divided by it.
	CeilingMBPerSec float64 `json:"ceiling_mb_per_sec,omitempty"`
	RatioToCeiling  float64 `json:"ratio_to_ceiling,omitempty"`

	// Transport holds the ceiling figures of `rafka-bench transport`.
	Transport *TransportResult `json:"transport,omitempty"`
}

// Finish fills the rates from Records, Bytes and elapsed, and the headline
// latency from headline (nil: none).
func (r *Result) Finish(elapsed time.Duration, headline *Summary) {
	r.DurationSec = elapsed.Seconds()
	if r.DurationSec > 0 {
		r.RecordsPerSec = float64(r.Records) / r.DurationSec
		r.MBPerSec = float64(r.Bytes) / MB / r.DurationSec
	}
	if headline != nil && headline.Count > 0 {
		r.P50Ms, r.P90Ms, r.P99Ms = ptr(headline.P50Ms), ptr(headline.P90Ms), ptr(headline.P99Ms)
		r.P999Ms, r.MaxMs = ptr(headline.P999Ms), ptr(headline.MaxMs)
	}
	if r.Broker != nil && r.Bytes > 0 {
		r.BrokerCPUSecPerGB = r.Broker.CPUSeconds / (float64(r.Bytes) / 1e9)
		if r.ReplicationFactor > 1 && r.Workload != "consume" {
			r.BrokerCPUSecPerGBPerReplica = r.BrokerCPUSecPerGB / float64(r.ReplicationFactor)
		}
	}
}

// SetCeiling records the transport ceiling this result is divided by.
func (r *Result) SetCeiling(mbPerSec float64) {
	r.CeilingMBPerSec = mbPerSec
	if mbPerSec > 0 {
		r.RatioToCeiling = r.MBPerSec / mbPerSec
	}
}

func ptr(f float64) *float64 { return &f }

// WriteJSON writes results as one indented JSON document: an object for one
// result, an array for several.
func WriteJSON(w io.Writer, results ...*Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if len(results) == 1 {
		return enc.Encode(results[0])
	}
	return enc.Encode(results)
}

// WriteText writes the human summary of r.
func WriteText(w io.Writer, r *Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.System, r.Workload)
	if len(r.Config) > 0 {
		fmt.Fprintf(&b, " (%s)", formatConfig(r.Config))
	}
	b.WriteString("\n")
	if r.Transport != nil {
		writeTransport(&b, r.Transport)
	} else {
		fmt.Fprintf(&b, "  %d records, %s in %.2fs, %d errors\n", r.Records, formatBytes(r.Bytes), r.DurationSec, r.Errors)
		fmt.Fprintf(&b, "  throughput   %12.0f records/s  %9.2f MB/s", r.RecordsPerSec, r.MBPerSec)
		if r.CeilingMBPerSec > 0 {
			fmt.Fprintf(&b, "  (%.2fx the %.1f MB/s transport ceiling)", r.RatioToCeiling, r.CeilingMBPerSec)
		}
		b.WriteString("\n")
	}
	if r.Ack != nil {
		writeSummary(&b, "ack latency", r.Ack)
	}
	if r.E2E != nil {
		writeSummary(&b, "e2e latency", r.E2E)
	}
	if r.SendLag != nil {
		writeSummary(&b, "send lag", r.SendLag)
	}
	if r.Broker != nil {
		writeBrokerUse(&b, r)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeBrokerUse writes the broker line, and with several brokers their sum
// and one line each.
func writeBrokerUse(b *strings.Builder, r *Result) {
	label, rss := "broker", "peak RSS"
	if len(r.Brokers) > 1 {
		label, rss = "brokers", "peak RSS summed"
	}
	fmt.Fprintf(b, "  %-12s %.2f CPU-s", label, r.Broker.CPUSeconds)
	if r.BrokerCPUSecPerGB > 0 {
		fmt.Fprintf(b, " (%.2f CPU-s per GB", r.BrokerCPUSecPerGB)
		if r.BrokerCPUSecPerGBPerReplica > 0 {
			fmt.Fprintf(b, ", %.2f per GB per replica", r.BrokerCPUSecPerGBPerReplica)
		}
		b.WriteString(")")
	}
	if r.Broker.PeakRSSBytes > 0 {
		fmt.Fprintf(b, ", %s %s", rss, formatBytes(r.Broker.PeakRSSBytes))
	}
	fmt.Fprintf(b, " [%s]\n", r.Broker.Source)
	if len(r.Brokers) > 1 {
		WriteBrokerUse(b, r.Brokers)
	}
}

// WriteBrokerUse writes one line per broker: CPU time, peak RSS, restarts.
func WriteBrokerUse(w io.Writer, use []BrokerUse) {
	for _, u := range use {
		fmt.Fprintf(w, "    %-10s %.2f CPU-s, peak RSS %s", u.ID, u.CPUSeconds, formatBytes(u.PeakRSSBytes))
		if u.Restarts > 0 {
			fmt.Fprintf(w, ", %d restarts", u.Restarts)
		}
		fmt.Fprintln(w)
	}
}

func writeSummary(b *strings.Builder, name string, s *Summary) {
	if s.Count == 0 {
		fmt.Fprintf(b, "  %-12s no samples\n", name)
		return
	}
	fmt.Fprintf(b, "  %-12s p50 %s  p90 %s  p99 %s  p99.9 %s  max %s ms  (%d samples)\n",
		name, fmtMs(s.P50Ms), fmtMs(s.P90Ms), fmtMs(s.P99Ms), fmtMs(s.P999Ms), fmtMs(s.MaxMs), s.Count)
}

// fmtMs prints milliseconds with three significant digits below 100 ms.
func fmtMs(ms float64) string {
	switch {
	case ms < 1:
		return fmt.Sprintf("%.3f", ms)
	case ms < 10:
		return fmt.Sprintf("%.2f", ms)
	case ms < 100:
		return fmt.Sprintf("%.1f", ms)
	}
	return fmt.Sprintf("%.0f", ms)
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func formatConfig(c map[string]any) string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, c[k])
	}
	return strings.Join(parts, " ")
}
