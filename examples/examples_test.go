// Package examples_test builds the example programs and runs them against an
// in-process broker.
package examples_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rafka/rafka/node"
	"github.com/rafka/rafka/quicnet"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestProducerThenConsumer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	bin := t.TempDir()
	for _, name := range []string{"producer", "consumer"} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(bin, name), "./"+name).CombinedOutput()
		if err != nil {
			t.Fatalf("go build %s: %v\n%s", name, err, out)
		}
	}

	// The broker keeps its data, and so its generated certificate, in
	// ./rafka-data as `rafka serve` does when run from the examples'
	// working directory: the examples find that certificate without
	// --tls-ca.
	work := t.TempDir()
	dir := filepath.Join(work, "rafka-data")
	b, err := node.New(node.Config{DataDir: dir, Listen: "127.0.0.1:0", TopicDefaults: node.TopicConfig{SegmentBytes: 4 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		b.Shutdown(context.Background())
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})

	const n = 25
	common := []string{"--topic", "example", "-n", fmt.Sprint(n), "--timeout", "60s"}
	run := func(name string, extra ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, name), append(common, extra...)...)
		cmd.Dir = work
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", name, err, stdout.String(), stderr.String())
		}
		return stdout.String()
	}
	produced := run("producer", "-b", b.Addr(), "--partitions", "3")
	consumed := run("consumer", "--brokers", b.Addr())

	// An explicit --tls-ca works from anywhere; --insecure-skip-verify too.
	cmd := exec.Command(filepath.Join(bin, "consumer"), append(common, "--brokers", b.Addr(), "--tls-ca", quicnet.SelfSignedCertPath(dir))...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("consumer --tls-ca: %v\n%s", err, out)
	}
	cmd = exec.Command(filepath.Join(bin, "consumer"), append(common, "-b", b.Addr(), "--insecure-skip-verify")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("consumer --insecure-skip-verify: %v\n%s", err, out)
	}

	for i := range n {
		want := fmt.Sprintf("key-%d=message-%d", i, i)
		if !strings.Contains(produced, want) {
			t.Errorf("producer output lacks %q", want)
		}
		if !strings.Contains(consumed, want) {
			t.Errorf("consumer output lacks %q", want)
		}
	}
	// Each record was consumed at the partition and offset it was stored at.
	for _, line := range strings.Split(strings.TrimSpace(produced), "\n") {
		where := strings.TrimPrefix(line, "produced ")
		if !strings.Contains(consumed, "consumed "+where+"\n") {
			t.Errorf("consumer did not print %q", where)
		}
	}
	if got := strings.Count(consumed, "consumed "); got != n {
		t.Errorf("consumer printed %d records, want %d", got, n)
	}
}
