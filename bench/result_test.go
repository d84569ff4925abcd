package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestResultJSONShape(t *testing.T) {
	h := NewHistogram()
	for i := 1; i <= 100; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	ack := h.Summary()
	r := &Result{System: "rafka", Workload: "produce", Records: 1000, Bytes: 2_000_000,
		Ack: &ack, Broker: &ProcStats{CPUSeconds: 0.5, PeakRSSBytes: 64 << 20, Source: "proc"}}
	r.Finish(2*time.Second, &ack)
	r.SetCeiling(2)
	var buf bytes.Buffer
	if err := WriteJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"records_per_sec":       500,
		"mb_per_sec":            1,
		"p50_ms":                50,
		"p99_ms":                99,
		"p999_ms":               100,
		"broker_cpu_sec_per_gb": 250, // 0.5 s for 0.002 GB
		"ratio_to_ceiling":      0.5,
	}
	for k, v := range want {
		got, ok := m[k].(float64)
		if !ok {
			t.Errorf("%s missing or not a number: %v", k, m[k])
			continue
		}
		if d := got - v; d > v*1e-3 || d < -v*1e-3 {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	if _, ok := m["ack_latency"].(map[string]any); !ok {
		t.Error("no ack_latency object")
	}
	if _, ok := m["e2e_latency"]; ok {
		t.Error("e2e_latency present without samples")
	}
}

func TestResultWithoutLatencyHasNulls(t *testing.T) {
	r := &Result{System: "rafka", Workload: "consume", Records: 10, Bytes: 10}
	r.Finish(time.Second, nil)
	var buf bytes.Buffer
	if err := WriteJSON(&buf, r, r); err != nil {
		t.Fatal(err)
	}
	var arr []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &arr); err != nil || len(arr) != 2 {
		t.Fatalf("two results: %v %s", err, buf.String())
	}
	for _, k := range []string{"p50_ms", "p99_ms", "p999_ms"} {
		v, present := arr[0][k]
		if !present || v != nil {
			t.Errorf("%s = %v (present %v), want null", k, v, present)
		}
	}
}

func TestWriteText(t *testing.T) {
	s := Summary{Count: 3, P50Ms: 0.5, P90Ms: 1.5, P99Ms: 12.3, P999Ms: 150, MaxMs: 151}
	r := &Result{System: "rafka", Workload: "e2e", Config: map[string]any{"size": 1024, "acks": "leader"},
		Records: 3, Bytes: 3072, E2E: &s}
	r.Finish(time.Second, &s)
	var buf bytes.Buffer
	if err := WriteText(&buf, r); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"rafka e2e (acks=leader size=1024)", "3 records, 3.0 KiB", "e2e latency  p50 0.500  p90 1.50  p99 12.3  p99.9 150  max 151 ms"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

func TestProgressLine(t *testing.T) {
	ack := &Summary{Count: 10, P50Ms: 0.25, P99Ms: 3}
	got := ProgressLine(3*time.Second, 500*time.Millisecond, 1000, 2_000_000, 2, ack, &Summary{})
	for _, want := range []string{"[   3.0s]", "2000 rec/s", "4.00 MB/s", "ack p50 0.250 p99 3.00 ms", "e2e -", "errors 2"} {
		if !strings.Contains(got, want) {
			t.Errorf("progress line %q lacks %q", got, want)
		}
	}
}

func TestProgressStops(t *testing.T) {
	var c Counters
	var buf syncBuffer
	p := StartProgress(&buf, time.Millisecond, &c, NewHistogram(), nil)
	c.Records.Add(5)
	p.Stop()
	p.Stop() // idempotent
	StartProgress(&buf, 0, &c, nil, nil).Stop()
}

func TestResultTextSeveralBrokers(t *testing.T) {
	use := []BrokerUse{
		{ID: "b1", ProcStats: ProcStats{CPUSeconds: 3, PeakRSSBytes: 64 << 20, Source: "proc"}},
		{ID: "b2", ProcStats: ProcStats{CPUSeconds: 2, PeakRSSBytes: 32 << 20, Source: "proc"}, Restarts: 1},
		{ID: "b3", ProcStats: ProcStats{CPUSeconds: 1, PeakRSSBytes: 32 << 20, Source: "proc"}},
	}
	sum := SumUse(use)
	r := &Result{System: "rafka", Workload: "produce", Records: 1000, Bytes: 1e9, Broker: &sum, Brokers: use, ReplicationFactor: 3}
	r.Finish(time.Second, nil)
	if r.BrokerCPUSecPerGB != 6 || r.BrokerCPUSecPerGBPerReplica != 2 {
		t.Fatalf("per GB %v, per GB per replica %v", r.BrokerCPUSecPerGB, r.BrokerCPUSecPerGBPerReplica)
	}
	var buf bytes.Buffer
	if err := WriteText(&buf, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"  brokers      6.00 CPU-s (6.00 CPU-s per GB, 2.00 per GB per replica), peak RSS summed 128.0 MiB [proc]\n",
		"    b1         3.00 CPU-s, peak RSS 64.0 MiB\n",
		"    b2         2.00 CPU-s, peak RSS 32.0 MiB, 1 restarts\n",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("missing %q in\n%s", want, buf.String())
		}
	}

	// Reading back is done by leaders only: no per-replica figure.
	c := &Result{System: "rafka", Workload: "consume", Records: 1000, Bytes: 1e9, Broker: &sum, Brokers: use, ReplicationFactor: 3}
	c.Finish(time.Second, nil)
	if c.BrokerCPUSecPerGBPerReplica != 0 {
		t.Fatalf("consume per replica %v", c.BrokerCPUSecPerGBPerReplica)
	}
	// One broker keeps the old line.
	one := &Result{System: "rafka", Workload: "produce", Bytes: 1e9, Broker: &use[0].ProcStats}
	one.Finish(time.Second, nil)
	buf.Reset()
	_ = WriteText(&buf, one)
	if !strings.Contains(buf.String(), "  broker       3.00 CPU-s (3.00 CPU-s per GB), peak RSS 64.0 MiB [proc]\n") {
		t.Errorf("single broker line:\n%s", buf.String())
	}
}
