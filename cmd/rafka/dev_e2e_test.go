package main_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// devReady is the content of `rafka dev --ready-file`.
type devReady struct {
	Brokers    []readyInfo `json:"brokers"`
	CAFile     string      `json:"ca_file"`
	ClientCert string      `json:"client_cert"`
	ClientKey  string      `json:"client_key"`
	Pid        int         `json:"pid"`
}

// devProc is a `rafka dev` child process.
type devProc struct {
	t         *testing.T
	cmd       *exec.Cmd
	readyFile string
	info      devReady
	done      chan struct{}
	stdout    *lockedBuffer
	stderr    *lockedBuffer
}

// startDev runs `rafka dev` with args on free ports and waits for its ready
// file. The test's cleanup kills it if it still runs.
func startDev(t *testing.T, dir string, brokers int, extra ...string) *devProc {
	t.Helper()
	readyFile := filepath.Join(t.TempDir(), "dev-ready.json")
	args := append([]string{"dev", "--brokers", strconv.Itoa(brokers), "--base-port", "0", "--dir", dir,
		"--ready-file", readyFile, "--shutdown-timeout", "20s"}, extra...)
	d := &devProc{t: t, cmd: exec.Command(rafkaBin, args...), readyFile: readyFile, done: make(chan struct{}),
		stdout: &lockedBuffer{}, stderr: &lockedBuffer{}}
	d.cmd.Stdout, d.cmd.Stderr = d.stdout, d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		<-d.done
	})
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-d.done:
			t.Fatalf("rafka dev exited %d before serving:\n%s", d.cmd.ProcessState.ExitCode(), d.stderr)
		case <-deadline.C:
			t.Fatalf("rafka dev did not serve:\n%s", d.stderr)
		case <-tick.C:
		}
		b, err := os.ReadFile(readyFile)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &d.info); err != nil {
			t.Fatalf("ready file %q: %v", b, err)
		}
		return d
	}
}

// pids are the brokers' process IDs.
func (d *devProc) pids() []int {
	var pids []int
	for _, b := range d.info.Brokers {
		pids = append(pids, b.Pid)
	}
	return pids
}

// wait waits for rafka dev to exit and returns its exit code.
func (d *devProc) wait() int {
	d.t.Helper()
	select {
	case <-d.done:
	case <-time.After(60 * time.Second):
		d.t.Fatalf("rafka dev did not exit:\n%s", d.stderr)
	}
	return d.cmd.ProcessState.ExitCode()
}

// processGone reports whether pid has exited: no such process, or a zombie
// (dead, left for init to reap once its parent died).
func processGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	// pid (comm) state ...: comm may hold spaces, the state follows the
	// last ')'.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}

// wantGone waits until every pid has exited.
func wantGone(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, pid := range pids {
		for !processGone(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("broker process %d still running", pid)
			}
			time.Sleep(20 * time.Millisecond) // polling another process's state; nothing to wait on
		}
	}
}

// cmdline is the command line of a running process.
func cmdline(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

// flagValue returns the value of --name in args, and whether it is there.
func flagValue(args []string, name string) (string, bool) {
	i := slices.Index(args, "--"+name)
	if i < 0 || i+1 >= len(args) {
		return "", false
	}
	return args[i+1], true
}

// TestDevOneBroker runs a one-broker cluster: ready file, a produce and
// consume round trip, SIGTERM, a restart that keeps data and certificates,
// and SIGKILL of rafka dev, which must not leave the broker running.
func TestDevOneBroker(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "dev")
	d := startDev(t, dir, 1)
	if len(d.info.Brokers) != 1 {
		t.Fatalf("ready file: %+v", d.info)
	}
	b := d.info.Brokers[0]
	if b.BrokerID != "b1" || b.DataDir != filepath.Join(dir, "b1") || b.ListenAddr == "" || strings.HasSuffix(b.ListenAddr, ":0") ||
		b.AdminAddr == "" || b.Pid <= 0 || d.info.Pid != d.cmd.Process.Pid || d.info.CAFile != filepath.Join(dir, "certs", "ca.pem") {
		t.Fatalf("ready file: %+v", d.info)
	}
	for _, f := range []string{d.info.CAFile, d.info.ClientCert, d.info.ClientKey, filepath.Join(dir, "certs", "b1", "cert.pem")} {
		if _, err := os.Stat(f); err != nil {
			t.Fatal(err)
		}
	}
	caBefore, err := os.ReadFile(d.info.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	if out := d.stdout.String(); !strings.Contains(out, "--brokers "+b.ListenAddr+" --tls-ca "+d.info.CAFile) {
		t.Errorf("connect instructions: %q", out)
	}
	if errs := d.stderr.String(); !strings.Contains(errs, "[b1] rafka: broker b1 serving on "+b.ListenAddr) {
		t.Errorf("broker output not prefixed: %q", errs)
	}

	conn := []string{"--brokers", b.ListenAddr, "--tls-ca", d.info.CAFile, "--timeout", "20s"}
	run := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(rafkaBin, append(args, conn...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("rafka %v: %v\n%s", args, err, errb.String())
		}
		return out.String()
	}
	run("", "topic", "create", "demo", "-p", "2")
	run("k1:one\nk2:two\nk1:three\n", "produce", "demo", "--key-separator", ":")
	consume := func() []string {
		t.Helper()
		got := strings.Fields(run("", "consume", "demo", "--from-beginning", "--exit-after", "3"))
		slices.Sort(got)
		return got
	}
	if got := consume(); !slices.Equal(got, []string{"one", "three", "two"}) {
		t.Fatalf("consumed %q", got)
	}

	d.cmd.Process.Signal(syscall.SIGTERM)
	if code := d.wait(); code != 0 {
		t.Fatalf("rafka dev exited %d on SIGTERM:\n%s", code, d.stderr)
	}
	wantGone(t, d.pids())
	for _, f := range []string{d.readyFile, filepath.Join(dir, "b1", "ready.json")} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after stopping: %v", f, err)
		}
	}

	// A second run keeps the CA and the records.
	d = startDev(t, dir, 1)
	b = d.info.Brokers[0]
	conn[1] = b.ListenAddr
	if caAfter, err := os.ReadFile(d.info.CAFile); err != nil || !bytes.Equal(caBefore, caAfter) {
		t.Fatalf("CA replaced on restart (%v)", err)
	}
	if got := consume(); !slices.Equal(got, []string{"one", "three", "two"}) {
		t.Fatalf("after restart consumed %q", got)
	}

	// Killed, rafka dev takes its broker with it.
	d.cmd.Process.Signal(syscall.SIGKILL)
	d.wait()
	wantGone(t, d.pids())
}

// TestDevThreeBrokers runs three brokers and checks their command lines
// (broker 1 forms the cluster, 2 and 3 join it, arguments after -- reach
// all), then kills one: rafka dev reports it, stops the others and exits 1.
func TestDevThreeBrokers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	d := startDev(t, dir, 3, "--", "--default-fsync", "always")
	if len(d.info.Brokers) != 3 {
		t.Fatalf("ready file: %+v", d.info)
	}
	first := d.info.Brokers[0].ListenAddr
	seen := map[string]bool{}
	for i, b := range d.info.Brokers {
		name := "b" + strconv.Itoa(i+1)
		if b.BrokerID != name || b.DataDir != filepath.Join(dir, name) || seen[b.ListenAddr] || seen[b.AdminAddr] {
			t.Fatalf("broker %d in the ready file: %+v", i+1, b)
		}
		seen[b.ListenAddr], seen[b.AdminAddr] = true, true
		args := cmdline(t, b.Pid)
		join, joins := flagValue(args, "join")
		if i == 0 && joins {
			t.Errorf("b1 started with --join %s", join)
		}
		if i > 0 && join != first {
			t.Errorf("%s: --join %q, want b1's %s", name, join, first)
		}
		if fsync, _ := flagValue(args, "default-fsync"); fsync != "always" {
			t.Errorf("%s: extra arguments not passed: %q", name, args)
		}
		if ca, _ := flagValue(args, "tls-ca"); ca != d.info.CAFile {
			t.Errorf("%s: --tls-ca %q", name, ca)
		}
	}

	victim := d.info.Brokers[1].Pid
	syscall.Kill(victim, syscall.SIGKILL)
	if code := d.wait(); code != 1 {
		t.Fatalf("rafka dev exited %d after a broker died, want 1:\n%s", code, d.stderr)
	}
	if errs := d.stderr.String(); !strings.Contains(errs, "broker b2 exited on its own (signal: killed)") || strings.Count(errs, "signal: killed") != 1 {
		t.Errorf("stderr does not report b2: %q", errs)
	}
	wantGone(t, d.pids())
}

// TestDevBadFlags checks that bad flags, including serve flags that the
// brokers refuse, are usage errors (exit 2).
func TestDevBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--brokers", "10"}, "--brokers 10: 1 to 9"},
		{[]string{"--base-port", "65500"}, "--base-port 65500"},
		{[]string{"stray"}, "arguments for the brokers go after --"},
		{[]string{"--", "--listen", "127.0.0.1:1"}, "--listen after --"},
		{[]string{"--base-port", "0", "--", "--default-fsync", "sometimes"}, "broker b1 refused its flags"},
	} {
		dir := t.TempDir()
		cmd := exec.Command(rafkaBin, append([]string{"dev", "--dir", filepath.Join(dir, "dev")}, tc.args...)...)
		out, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
			t.Errorf("rafka dev %q: exit %d, want 2 and %q:\n%s", tc.args, cmd.ProcessState.ExitCode(), tc.want, out)
		}
	}
}
