package load

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/rafka/rafka/bench"
)

// TestDefaultCheckWorkloads checks that every workload of the perf check
// is valid, names its ratios once, and that the ratio names kept their
// meaning for the committed baseline.
func TestDefaultCheckWorkloads(t *testing.T) {
	ws := DefaultCheckWorkloads()
	if err := validateCheck(ws); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, w := range ws {
		c := w.Config
		c.Workload = WorkloadProduce
		if w.Consume != "" {
			c.Workload, c.From = WorkloadConsume, FromEarliest
		}
		if err := c.WithDefaults().Validate(); err != nil {
			t.Errorf("%s: %v", w.Produce, err)
		}
		if int(c.ReplicationFactor) > max(w.Brokers, 1) {
			t.Errorf("%s: %d replicas on %d brokers", w.Produce, c.ReplicationFactor, w.Brokers)
		}
		names = append(names, w.Produce)
		if w.Consume != "" {
			names = append(names, w.Consume)
		}
	}
	for _, want := range []string{RatioProduce, RatioConsume, RatioProduce100, RatioConsume100, RatioProduceLZ4, RatioProduce4x8, RatioProduceR3All} {
		if !slices.Contains(names, want) {
			t.Errorf("no workload measures %s", want)
		}
	}
	// The 1 KiB workload is the one the first baseline was recorded with.
	k1 := ws[slices.IndexFunc(ws, func(w CheckWorkload) bool { return w.Produce == RatioProduce })]
	if k1.Consume != RatioConsume || k1.Config.RecordSize != 1024 || k1.Config.Count != 400_000 || k1.Config.Acks != "leader" || k1.Config.Fsync != "never" {
		t.Errorf("1 KiB workload changed: %+v", k1)
	}
}

func TestValidateCheck(t *testing.T) {
	if err := validateCheck([]CheckWorkload{{Consume: "c"}}); err == nil {
		t.Error("workload without a produce ratio accepted")
	}
	if err := validateCheck([]CheckWorkload{{Produce: "a", Consume: "b"}, {Produce: "b"}}); err == nil {
		t.Error("ratio named twice accepted")
	}
}

// TestCheck runs a small check of two runs against real brokers and checks
// that every ratio is measured, positive and started a fresh broker per
// workload.
func TestCheck(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	small := checkBase()
	small.Count, small.DrainTimeout = 2000, 10*time.Second
	many := small
	many.Producers, many.Partitions = 2, 3
	var starts int
	ratios, err := Check(ctx, CheckConfig{
		Runs:              2,
		TransportDuration: 200 * time.Millisecond,
		Workloads: []CheckWorkload{
			{Produce: "p", Consume: "c", Config: small},
			{Produce: "p2", Config: many},
		},
		Start: func(ctx context.Context, brokers int) (Target, func() error, error) {
			if brokers != 1 {
				t.Errorf("started %d brokers, want 1", brokers)
			}
			starts++
			b, err := bench.StartLocalBroker(ctx, bench.LocalBrokerConfig{Binary: rafkaBinary(t), Fsync: "never"})
			if err != nil {
				return nil, nil, err
			}
			return &Local{B: b}, func() error { _, err := b.Stop(); return err }, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if starts != 4 {
		t.Errorf("%d brokers started for 2 runs of 2 workloads, want 4", starts)
	}
	if len(ratios) != 3 {
		t.Errorf("ratios %v, want p, c and p2", ratios)
	}
	for _, name := range []string{"p", "c", "p2"} {
		if !(ratios[name] > 0) {
			t.Errorf("ratio %s = %v, want > 0", name, ratios[name])
		}
	}
}
