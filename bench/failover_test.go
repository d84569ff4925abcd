package bench

import (
	"bytes"
	"strings"
	"testing"
)

func TestFailoverText(t *testing.T) {
	r := &FailoverResult{
		Config: map[string]any{"rate": 2000, "replication_factor": 3},
		Kills: []FailoverKill{
			{Broker: "b1", RecoveryMs: 850, NewLeader: "b2", RestartMs: 1200, Spike: Summary{Count: 4000, P99Ms: 840, MaxMs: 870}},
			{Broker: "b2", RecoveryMs: 420, NewLeader: "b3", RestartMs: 900, Spike: Summary{Count: 3000, P99Ms: 400, MaxMs: 430}},
			{Broker: "b3", RecoveryMs: 610, RestartMs: 950},
			{Broker: "b1", RecoveryMs: -1, RestartMs: 800},
		},
		Sent: 10000, Acked: 9990, Failed: 0, Read: 10003, Duplicates: 13, DurationSec: 12.5,
		Broker:  &ProcStats{CPUSeconds: 3, PeakRSSBytes: 3 << 20, Source: "proc"},
		Brokers: []BrokerUse{{ID: "b1", ProcStats: ProcStats{CPUSeconds: 3, PeakRSSBytes: 3 << 20, Source: "proc"}, Restarts: 2}},
	}
	r.FinishRecovery()
	// The lower median of 420, 610 and 850; the kill that never recovered
	// does not count.
	if r.RecoveryP50Ms != 610 || r.RecoveryMaxMs != 850 {
		t.Fatalf("p50 %v max %v", r.RecoveryP50Ms, r.RecoveryMaxMs)
	}
	var buf bytes.Buffer
	if err := WriteFailoverText(&buf, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"rafka failover (rate=2000 replication_factor=3)\n",
		"  kill 1: leader b1; next ack after 850 ms, new leader b2; restarted in 1200 ms\n",
		"          ack latency around it p99 840 max 870 ms (4000 samples)\n",
		"  kill 4: leader b1; no acknowledged write since; restarted in 800 ms\n",
		"  recovery     p50 610  max 850 ms over 4 kills\n",
		"  produced     10000 sent, 9990 acknowledged, 0 failed in 12.5s\n",
		"  read back    10003 records: 0 lost, 13 duplicates, 0 out of order\n",
		"    b1         3.00 CPU-s, peak RSS 3.0 MiB, 2 restarts\n",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("missing %q in\n%s", want, buf.String())
		}
	}

	none := &FailoverResult{Kills: []FailoverKill{{RecoveryMs: -1}}}
	none.FinishRecovery()
	if none.RecoveryP50Ms != -1 || none.RecoveryMaxMs != -1 {
		t.Fatalf("no recovery: p50 %v max %v", none.RecoveryP50Ms, none.RecoveryMaxMs)
	}
}
