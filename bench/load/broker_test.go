package load

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rafka/rafka/bench"
)

var (
	buildOnce sync.Once
	rafkaBin  string
	buildErr  error
	buildDir  string
)

// rafkaBinary builds cmd/rafka once per test binary: the workloads run
// against a real `rafka serve` child, as rafka-bench does.
func rafkaBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs a rafka broker")
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "rafka-bench-test-*")
		if buildErr != nil {
			return
		}
		rafkaBin = filepath.Join(buildDir, "rafka")
		out, err := exec.Command("go", "build", "-o", rafkaBin, "github.com/rafka/rafka/cmd/rafka").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("build rafka: %v", buildErr)
	}
	return rafkaBin
}

func startLocal(t *testing.T, ctx context.Context) *Local {
	t.Helper()
	b, err := bench.StartLocalBroker(ctx, bench.LocalBrokerConfig{Binary: rafkaBinary(t), Fsync: "never"})
	if err != nil {
		t.Fatal(err)
	}
	l := &Local{B: b}
	t.Cleanup(func() {
		dir := l.B.DataDir()
		if _, err := l.B.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("data dir %s left behind: %v", dir, err)
		}
	})
	return l
}

// TestLocalBrokerStructuredLogs starts the broker with JSON logs: startup
// is signalled by the ready file, not by a line of human text on stderr.
func TestLocalBrokerStructuredLogs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := bench.StartLocalBroker(ctx, bench.LocalBrokerConfig{Binary: rafkaBinary(t), Args: []string{"--log-format", "json"}})
	if err != nil {
		t.Fatal(err)
	}
	addr, admin, id := b.Addr(), b.AdminAddr(), b.BrokerID()
	if _, err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	if addr == "" || admin == "" || id == "" {
		t.Fatalf("addr %q admin %q id %q", addr, admin, id)
	}
}

func TestWorkloadsAgainstLocalBroker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l := startLocal(t, ctx)

	t.Run("produce", func(t *testing.T) {
		r, err := Run(ctx, l, Config{Workload: WorkloadProduce, Count: 3000, RecordSize: 200, Keys: 7,
			Partitions: 3, Producers: 2, Linger: time.Millisecond, Compression: "lz4", Compressibility: 0.5}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Records != 3000 || r.Bytes != 3000*200 || r.Errors != 0 || r.Ack.Count != 3000 {
			t.Fatalf("records %d bytes %d errors %d acks %d", r.Records, r.Bytes, r.Errors, r.Ack.Count)
		}
		if r.P99Ms == nil || *r.P99Ms < *r.P50Ms || r.RecordsPerSec <= 0 {
			t.Fatalf("figures %+v", r)
		}
		if r.Broker == nil || r.Broker.Source != "proc" || r.Broker.PeakRSSBytes <= 0 {
			t.Fatalf("broker stats %+v", r.Broker)
		}
	})
	t.Run("e2e", func(t *testing.T) {
		r, err := Run(ctx, l, Config{Workload: WorkloadE2E, Count: 2000, RecordSize: 64, Partitions: 2,
			Consumers: 2, Rate: 20000, Linger: 0}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Records != 2000 || r.E2E.Count != 2000 || r.Ack.Count != 2000 || r.Errors != 0 {
			t.Fatalf("records %d e2e %d acks %d errors %d", r.Records, r.E2E.Count, r.Ack.Count, r.Errors)
		}
		if r.P50Ms == nil || *r.P50Ms != r.E2E.P50Ms {
			t.Fatal("headline latency is not the end-to-end latency")
		}
	})
	t.Run("consume tail", func(t *testing.T) {
		r, err := Run(ctx, l, Config{Workload: WorkloadConsume, From: FromLatest, Count: 1000, RecordSize: 100}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Workload != WorkloadConsume || r.Records != 1000 || r.E2E.Count != 1000 {
			t.Fatalf("%+v", r)
		}
	})
}

func TestConsumeColdRestartsTheBroker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l := startLocal(t, ctx)
	firstPid := l.B.Pid()
	produce, consume, err := RunProduceConsume(ctx, l, Config{Count: 2500, RecordSize: 300, Partitions: 2, Consumers: 2, Cold: true, Linger: time.Millisecond}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if l.B.Pid() == firstPid {
		t.Fatal("the broker was not restarted between fill and read")
	}
	if produce.Records != 2500 || consume.Records != 2500 || consume.Bytes != 2500*300 || consume.P50Ms != nil {
		t.Fatalf("produce %d, consume %d records %d bytes, p50 %v", produce.Records, consume.Records, consume.Bytes, consume.P50Ms)
	}
}
