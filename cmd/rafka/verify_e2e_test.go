package main_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestVerifyCommand runs `rafka verify` against a three-broker `rafka dev`
// cluster: identical replicas of a replicated topic exit 0 with a row per
// replica (and JSON saying so); a partition that cannot be checked exits 1.
func TestVerifyCommand(t *testing.T) {
	d := startDev(t, filepath.Join(t.TempDir(), "dev"), 3)
	conn := []string{"--brokers", d.info.Brokers[0].ListenAddr, "--tls-ca", d.info.CAFile, "--timeout", "30s"}
	run := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(rafkaBin, append(args, conn...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if ee := (*exec.ExitError)(nil); err != nil && !errors.As(err, &ee) {
			t.Fatalf("rafka %v: %v", args, err)
		}
		return out.String(), errb.String(), cmd.ProcessState.ExitCode()
	}
	must := func(stdin string, args ...string) string {
		t.Helper()
		out, errs, code := run(stdin, args...)
		if code != 0 {
			t.Fatalf("rafka %v: exit %d\n%s%s", args, code, out, errs)
		}
		return out
	}
	must("", "topic", "create", "orders", "-p", "2", "-r", "3")
	must("a\nb\nc\nd\n", "produce", "orders", "--partition", "0")

	out := must("", "verify", "orders")
	if strings.Count(out, "identical") != 4 || strings.Count(out, "(leader)") != 2 || strings.Contains(out, "DIVERGES") {
		t.Fatalf("rafka verify orders:\n%s", out)
	}
	var report struct {
		Topic      string `json:"topic"`
		Consistent bool   `json:"consistent"`
		Partitions []struct {
			Partition int32 `json:"partition"`
			To        int64 `json:"to"`
			Replicas  []struct {
				Broker         string    `json:"broker"`
				Divergent      int32     `json:"divergent"`
				FirstDivergent *[2]int64 `json:"first_divergent"`
			} `json:"replicas"`
		} `json:"partitions"`
	}
	// The compared range ends at the lowest high watermark of the
	// replicas: a follower learns that the last record is committed with
	// the leader's next message, so the range may end short of it at first.
	for deadline := time.Now().Add(20 * time.Second); ; {
		report.Partitions = nil
		if err := json.Unmarshal([]byte(must("", "verify", "orders", "--partition", "0", "--json")), &report); err != nil {
			t.Fatal(err)
		}
		if len(report.Partitions) != 1 || report.Partitions[0].To >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling the CLI's answer
	}
	if !report.Consistent || report.Topic != "orders" || len(report.Partitions) != 1 || report.Partitions[0].To < 4 ||
		len(report.Partitions[0].Replicas) != 3 || report.Partitions[0].Replicas[1].FirstDivergent != nil {
		t.Fatalf("rafka verify --json: %+v", report)
	}

	out, errs, code := run("", "verify", "orders", "--partition", "7")
	if code != 1 || !strings.Contains(out, "UNKNOWN_TOPIC_OR_PARTITION") || !strings.Contains(errs, "could not be compared") {
		t.Fatalf("verify of a missing partition: exit %d\n%s%s", code, out, errs)
	}
	if _, errs, code := run("", "verify", "nope"); code != 1 || !strings.Contains(errs, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("verify of a missing topic: exit %d\n%s", code, errs)
	}
}
