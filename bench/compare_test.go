package bench

import (
	"bytes"
	"strings"
	"testing"
)

func TestWriteComparison(t *testing.T) {
	ra := &Result{System: "rafka", Workload: "produce", RecordsPerSec: 200000, MBPerSec: 204.8,
		Ack: &Summary{P50Ms: 1, P99Ms: 4}, Broker: &ProcStats{PeakRSSBytes: 100 << 20}, BrokerCPUSecPerGB: 5}
	na := &Result{System: "nats", Workload: "produce", RecordsPerSec: 100000, MBPerSec: 102.4,
		Ack: &Summary{P50Ms: 2, P99Ms: 8}, Broker: &ProcStats{PeakRSSBytes: 50 << 20}, BrokerCPUSecPerGB: 10}
	var buf bytes.Buffer
	if err := WriteComparison(&buf, []*Result{ra}, []*Result{na}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"rafka/nats", "produce records/s", "200000", "100000", "2.00x", "produce ack p99 ms", "0.50x", "server peak RSS MiB"} {
		if !strings.Contains(out, want) {
			t.Errorf("comparison lacks %q:\n%s", want, out)
		}
	}
	if err := WriteComparison(&buf, []*Result{ra}, nil); err == nil {
		t.Error("mismatched lengths accepted")
	}
}

func TestMachineDescription(t *testing.T) {
	if d := MachineDescription(); !strings.Contains(d, "cores") || !strings.Contains(d, "loopback") {
		t.Errorf("description %q", d)
	}
}
