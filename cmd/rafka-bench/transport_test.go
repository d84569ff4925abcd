package main

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rafka/rafka/bench"
)

// runMainEnv makes the test binary run as rafka-bench, for the child
// processes a test starts with os.Executable.
const runMainEnv = "RAFKA_BENCH_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		return
	}
	goleak.VerifyTestMain(m)
}

// TestTransportInTwoProcesses measures the transport against a server in a
// child process (this binary's transport-server command): the figures come
// back with processes=2, and the child is gone when it returns.
func TestTransportInTwoProcesses(t *testing.T) {
	t.Setenv(runMainEnv, "1")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := measureTransportApart(ctx, bench.TransportConfig{
		Duration: 100 * time.Millisecond, MaxBytes: 4 << 20, ChunkBytes: 16 << 10, RTTCount: 20, RTTBytes: 32,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Config["processes"] != 2 {
		t.Errorf("config %v: want processes 2", r.Config)
	}
	tr := r.Transport
	if tr == nil || tr.UploadBytes <= 0 || tr.DownloadBytes <= 0 || tr.RTT.Count != 20 {
		t.Fatalf("transport figures %+v", tr)
	}
}

// TestTransportServerNeedsADir: the hidden command refuses to start without
// its certificate folder.
func TestTransportServerNeedsADir(t *testing.T) {
	root := newRoot()
	root.SetArgs([]string{transportServerCmd})
	err := root.Execute()
	if !errors.As(err, new(usageError)) {
		t.Fatalf("transport-server without --tls-dir: %v", err)
	}
}
