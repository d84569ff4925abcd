package main_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rafka/rafka/node"
	"github.com/rafka/rafka/quicnet"
)

// startNode runs a broker in this process with its admin server on a free
// loopback port; it is shut down when the test ends.
func startNode(t *testing.T, dataDir string) *node.Broker {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.DataDir = dataDir
	cfg.Listen = "127.0.0.1:0"
	cfg.AdminListen = "127.0.0.1:0"
	cfg.Logger = nil
	b, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		b.Shutdown(context.Background())
		t.Fatal(err)
	}
	t.Cleanup(func() { stopNode(t, b) })
	return b
}

func stopNode(t *testing.T, b *node.Broker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil && !errors.Is(err, node.ErrBrokerClosed) {
		t.Errorf("shutdown: %v", err)
	}
}

// health runs `rafka health` with args and returns stdout, stderr and the
// exit code.
func health(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, rafkaBin, append([]string{"health"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("rafka health %v: still running after 20 s", args)
	}
	code := 0
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("rafka health %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// oneLine fails the test unless s is exactly one line.
func oneLine(t *testing.T, what, s string) {
	t.Helper()
	if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") {
		t.Errorf("%s: want one line, got %q", what, s)
	}
}

func TestHealthServingBroker(t *testing.T) {
	b := startNode(t, t.TempDir())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--admin", b.AdminAddr()}, "/healthz: ok"},
		{[]string{"--admin", b.AdminAddr(), "--ready"}, "/readyz: ready"},
	} {
		out, errs, code := health(t, tc.args...)
		if code != 0 || !strings.Contains(out, tc.want) || errs != "" {
			t.Errorf("rafka health %v: exit %d, stdout %q, stderr %q; want exit 0 and %q", tc.args, code, out, errs, tc.want)
		}
		oneLine(t, "stdout", out)
	}
}

// A broker with a partition offline is alive but not ready: --ready exits 1
// and says which partition and why, on one line.
func TestHealthNotReady(t *testing.T) {
	dir := t.TempDir()
	b := startNode(t, dir)
	cmd := exec.Command(rafkaBin, "topic", "create", "t", "--partitions", "2",
		"--brokers", b.Addr(), "--tls-ca", quicnet.SelfSignedCertPath(dir), "--timeout", "10s")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("topic create: %v\n%s", err, out)
	}
	stopNode(t, b)
	// A regular file where partition 0's directory was: its log cannot be
	// opened, so the restarted broker keeps it offline.
	pdir := filepath.Join(dir, "topics", "t", "0")
	if err := os.RemoveAll(pdir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pdir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	b = startNode(t, dir)

	if out, errs, code := health(t, "--admin", b.AdminAddr()); code != 0 {
		t.Errorf("rafka health: exit %d, stdout %q, stderr %q; want 0 (alive)", code, out, errs)
	}
	out, errs, code := health(t, "--admin", b.AdminAddr(), "--ready")
	if code != 1 || out != "" {
		t.Fatalf("rafka health --ready: exit %d, stdout %q, stderr %q; want exit 1", code, out, errs)
	}
	oneLine(t, "stderr", errs)
	for _, want := range []string{"/readyz", "503", "partitions offline", "t/0"} {
		if !strings.Contains(errs, want) {
			t.Errorf("rafka health --ready: stderr %q does not say %q", errs, want)
		}
	}
}

func TestHealthNothingListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	out, errs, code := health(t, "--admin", addr, "--ready")
	if code != 1 || out != "" || !strings.Contains(errs, "nothing listening") || !strings.Contains(errs, addr) {
		t.Fatalf("rafka health: exit %d, stdout %q, stderr %q; want exit 1, nothing listening at %s", code, out, errs, addr)
	}
	oneLine(t, "stderr", errs)
}

// A server that accepts and never answers is unhealthy once --timeout
// passes.
func TestHealthNoAnswer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // held open, never answered
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	out, errs, code := health(t, "--admin", ln.Addr().String(), "--timeout", "200ms")
	if code != 1 || out != "" || !strings.Contains(errs, "no answer within 200ms") {
		t.Fatalf("rafka health: exit %d, stdout %q, stderr %q; want exit 1, no answer within 200ms", code, out, errs)
	}
	oneLine(t, "stderr", errs)
}

func TestHealthBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--admin", "no-port"},
		{"--timeout", "0s"},
	} {
		if _, errs, code := health(t, args...); code != 2 {
			t.Errorf("rafka health %v: exit %d (stderr %q), want 2", args, code, errs)
		}
	}
}
