package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// FailoverResult is the outcome of `rafka-bench failover`: a partition's
// leader killed several times while records are produced at a fixed rate
// with acks=all, then the partition read back. Its JSON form is what
// `rafka-bench failover --json` prints.
type FailoverResult struct {
	Config map[string]any `json:"config,omitempty"`
	Kills  []FailoverKill `json:"kills"`
	// RecoveryP50Ms and RecoveryMaxMs are over the kills that recovered:
	// the time from a kill to the next acknowledged write.
	RecoveryP50Ms float64 `json:"recovery_p50_ms"`
	RecoveryMaxMs float64 `json:"recovery_max_ms"`

	Sent   int64 `json:"sent"`   // records handed to the producer
	Acked  int64 `json:"acked"`  // acknowledged (acks=all)
	Failed int64 `json:"failed"` // failed after the producer's retries

	// Read back from the start of the partition once producing is done:
	// Read records, of which Duplicates repeat an earlier one and OutOfOrder
	// come after a record sent later than themselves; Lost were acknowledged
	// and never read. A lost record is a broken promise: the run fails.
	Read       int64 `json:"read"`
	Lost       int64 `json:"lost"`
	Duplicates int64 `json:"duplicates"`
	OutOfOrder int64 `json:"out_of_order"`

	Ack         *Summary    `json:"ack_latency,omitempty"` // every acknowledged record, from its scheduled time
	DurationSec float64     `json:"duration_sec"`          // of producing
	Broker      *ProcStats  `json:"broker,omitempty"`      // summed over the brokers
	Brokers     []BrokerUse `json:"brokers,omitempty"`
}

// FailoverKill is one kill of a partition leader.
type FailoverKill struct {
	Broker string `json:"broker"` // the leader killed (as metadata named it)
	// RecoveryMs is the time from the kill to the first acknowledgement of
	// a record scheduled after it; -1 when none came.
	RecoveryMs float64 `json:"recovery_ms"`
	NewLeader  string  `json:"new_leader,omitempty"`
	// RestartMs is how long the killed broker took to be ready again.
	RestartMs float64 `json:"restart_ms"`
	// Spike is the ack latency of records scheduled from one second before
	// the kill to one second after the first acknowledgement.
	Spike Summary `json:"spike"`
}

// SpikeMargin is how far before a kill and after its recovery the records
// of FailoverKill.Spike were scheduled.
const SpikeMargin = time.Second

// FinishRecovery fills RecoveryP50Ms and RecoveryMaxMs from the kills.
func (r *FailoverResult) FinishRecovery() {
	var ms []float64
	for _, k := range r.Kills {
		if k.RecoveryMs >= 0 {
			ms = append(ms, k.RecoveryMs)
		}
	}
	if len(ms) == 0 {
		r.RecoveryP50Ms, r.RecoveryMaxMs = -1, -1
		return
	}
	slices.Sort(ms)
	// The lower median: with an even count, a figure that was measured.
	r.RecoveryP50Ms, r.RecoveryMaxMs = ms[(len(ms)-1)/2], ms[len(ms)-1]
}

// WriteFailoverText writes the human summary of r.
func WriteFailoverText(w io.Writer, r *FailoverResult) error {
	var b strings.Builder
	b.WriteString("rafka failover")
	if len(r.Config) > 0 {
		fmt.Fprintf(&b, " (%s)", formatConfig(r.Config))
	}
	b.WriteString("\n")
	for i, k := range r.Kills {
		rec := "no acknowledged write since"
		if k.RecoveryMs >= 0 {
			rec = "next ack after " + fmtMs(k.RecoveryMs) + " ms"
		}
		fmt.Fprintf(&b, "  kill %d: leader %s; %s", i+1, k.Broker, rec)
		if k.NewLeader != "" {
			fmt.Fprintf(&b, ", new leader %s", k.NewLeader)
		}
		fmt.Fprintf(&b, "; restarted in %s ms\n", fmtMs(k.RestartMs))
		if k.Spike.Count > 0 {
			fmt.Fprintf(&b, "          ack latency around it p99 %s max %s ms (%d samples)\n", fmtMs(k.Spike.P99Ms), fmtMs(k.Spike.MaxMs), k.Spike.Count)
		}
	}
	if r.RecoveryP50Ms >= 0 && len(r.Kills) > 0 {
		fmt.Fprintf(&b, "  recovery     p50 %s  max %s ms over %d kills\n", fmtMs(r.RecoveryP50Ms), fmtMs(r.RecoveryMaxMs), len(r.Kills))
	}
	fmt.Fprintf(&b, "  produced     %d sent, %d acknowledged, %d failed in %.1fs\n", r.Sent, r.Acked, r.Failed, r.DurationSec)
	if r.Ack != nil {
		writeSummary(&b, "ack latency", r.Ack)
	}
	fmt.Fprintf(&b, "  read back    %d records: %d lost, %d duplicates, %d out of order\n", r.Read, r.Lost, r.Duplicates, r.OutOfOrder)
	if r.Broker != nil {
		fmt.Fprintf(&b, "  brokers      %.2f CPU-s, peak RSS summed %s [%s]\n", r.Broker.CPUSeconds, formatBytes(r.Broker.PeakRSSBytes), r.Broker.Source)
		WriteBrokerUse(&b, r.Brokers)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
