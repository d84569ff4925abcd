package main_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rafka/rafka/client"
	"github.com/rafka/rafka/quicnet"
	"github.com/rafka/rafka/wire"
)

// With acks=none, `rafka produce` reports records as sent only once the
// broker read them: every run's records are in the log when it exits.
func TestProduceAcksNoneStoresEverything(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.mustCLI("", "topic", "create", "fire", "--partitions", "1")
	c := newClient(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	total := 0
	for _, n := range []int{5, 5, 5, 1000} {
		var in strings.Builder
		for i := range n {
			fmt.Fprintf(&in, "%d\n", i)
		}
		_, errs, code := s.cli(in.String(), "produce", "fire", "--acks", "none")
		if code != 0 || !strings.Contains(errs, fmt.Sprintf("sent %d records to fire", n)) {
			t.Fatalf("produce --acks none: exit %d, stderr %q", code, errs)
		}
		total += n
		end, err := c.ListOffset(ctx, "fire", 0, wire.OffsetLatest)
		if err != nil || end != int64(total) {
			t.Fatalf("after sending %d records in all, the log ends at %d (%v)", total, end, err)
		}
	}
}

// Headers given with --header go on every record; --print-offsets prints
// where each line went; the summary counts acknowledgements.
func TestProduceHeadersAndOffsets(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.mustCLI("", "topic", "create", "tagged", "--partitions", "1")
	out, errs, code := s.cli("a\nb\nc\n", "produce", "tagged", "--header", "source=test", "-H", "empty=", "--print-offsets")
	if code != 0 || !strings.Contains(errs, "acknowledged 3 records to tagged (0 failed)") {
		t.Fatalf("produce: exit %d, stderr %q", code, errs)
	}
	if out != "1\t0\t0\n2\t0\t1\n3\t0\t2\n" {
		t.Fatalf("--print-offsets printed %q", out)
	}
	c := newClient(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := c.NewConsumer()
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if err := cs.Assign(ctx, client.Assignment{Topic: "tagged"}); err != nil {
		t.Fatal(err)
	}
	var got []*client.Record
	for len(got) < 3 {
		recs, err := cs.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, recs...)
	}
	for _, r := range got {
		if len(r.Headers) != 2 || r.Headers[0].Key != "source" || string(r.Headers[0].Value) != "test" ||
			r.Headers[1].Key != "empty" || len(r.Headers[1].Value) != 0 {
			t.Fatalf("record %d headers %+v", r.Offset, r.Headers)
		}
	}

	if _, errs, code := s.cli("x\n", "produce", "tagged", "--header", "novalue"); code != 2 || !strings.Contains(errs, "KEY=VALUE") {
		t.Fatalf("bad header: exit %d %q", code, errs)
	}
	if _, errs, code := s.cli("x\n", "produce", "tagged", "--acks", "none", "--print-offsets"); code != 2 || !strings.Contains(errs, "--print-offsets") {
		t.Fatalf("--print-offsets with acks=none: exit %d %q", code, errs)
	}
	// A record that cannot be stored makes the command fail.
	if _, errs, code := s.cli("x\n", "produce", "tagged", "--partition", "7"); code != 1 || !strings.Contains(errs, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("produce to a missing partition: exit %d %q", code, errs)
	}
}

// An interrupt stops `rafka produce` while it waits for input (stdin still
// open), after delivering what it had read; it exits 130.
func TestProduceInterruptedWhileReading(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.mustCLI("", "topic", "create", "t")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, rafkaBin, "produce", "t", "--print-offsets",
		"--brokers", s.addr, "--tls-ca", quicnet.SelfSignedCertPath(s.dataDir))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	io.WriteString(stdin, "a\n")
	// --print-offsets prints the line once it is acknowledged.
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || !strings.HasPrefix(line, "1\t") {
		t.Fatalf("acknowledgement of line 1: %q, %v", line, err)
	}
	cmd.Process.Signal(os.Interrupt)
	err = cmd.Wait()
	if ctx.Err() != nil {
		t.Fatal("rafka produce ignored the interrupt while reading stdin")
	}
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Fatalf("exit %d (%v), want 130", code, err)
	}
	if out := s.mustCLI("", "consume", "t", "--from-beginning", "--exit-after", "1"); out != "a\n" {
		t.Fatalf("consumed %q", out)
	}
}
