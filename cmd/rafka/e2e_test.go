package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rafka/rafka/client"
	"github.com/rafka/rafka/quicnet"
	"github.com/rafka/rafka/wire"
)

var rafkaBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rafka-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rafkaBin = filepath.Join(dir, "rafka")
	build := exec.Command("go", "build", "-o", rafkaBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building rafka:", err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		return m.Run()
	}()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// server is a `rafka serve` child process.
type server struct {
	t         *testing.T
	cmd       *exec.Cmd
	dataDir   string
	addr      string
	admin     string
	readyFile string
	done      chan struct{}
	logs      *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// readyInfo is the content of `rafka serve --ready-file`.
type readyInfo struct {
	BrokerID   string `json:"broker_id"`
	ListenAddr string `json:"listen_addr"`
	AdminAddr  string `json:"admin_addr"`
	DataDir    string `json:"data_dir"`
	Pid        int    `json:"pid"`
}

// startServer starts `rafka serve` on free loopback ports and waits for its
// ready file.
func startServer(t *testing.T, dataDir string, extra ...string) *server {
	t.Helper()
	s := startServerIn(t, "", dataDir, extra...)
	t.Cleanup(func() { s.kill() })
	return s
}

// startServerIn is startServer with the broker's working directory (""
// for the test's); the caller stops it.
func startServerIn(t *testing.T, workDir, dataDir string, extra ...string) *server {
	t.Helper()
	readyFile := filepath.Join(t.TempDir(), "ready.json")
	args := append([]string{"serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
		"--ready-file", readyFile}, extra...)
	cmd := exec.Command(rafkaBin, args...)
	cmd.Dir = workDir
	s := &server{t: t, cmd: cmd, dataDir: dataDir, readyFile: readyFile, done: make(chan struct{}), logs: &lockedBuffer{}}
	cmd.Stderr = s.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		cmd.Wait()
		close(s.done)
	}()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			b, err := os.ReadFile(readyFile)
			if err != nil {
				continue
			}
			var info readyInfo
			if err := json.Unmarshal(b, &info); err != nil {
				s.kill()
				t.Fatalf("ready file %q: %v", b, err)
			}
			if info.Pid != cmd.Process.Pid || info.BrokerID == "" || info.DataDir != dataDir {
				s.kill()
				t.Fatalf("ready file %+v (pid %d, data dir %s)", info, cmd.Process.Pid, dataDir)
			}
			s.addr, s.admin = info.ListenAddr, info.AdminAddr
			return s
		case <-s.done:
			t.Fatalf("rafka serve exited early:\n%s", s.logs)
		case <-deadline.C:
			s.kill()
			t.Fatalf("rafka serve did not start:\n%s", s.logs)
		}
	}
}

// kill stops the broker with SIGKILL; idempotent.
func (s *server) kill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop() {
	s.t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.t.Fatalf("rafka serve did not stop on SIGTERM:\n%s", s.logs)
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		s.t.Fatalf("rafka serve exited %d:\n%s", code, s.logs)
	}
	if _, err := os.Stat(s.readyFile); !errors.Is(err, os.ErrNotExist) {
		s.t.Fatalf("ready file left after shutdown: %v", err)
	}
}

// cli runs the rafka command against s and returns stdout, stderr and the
// exit code.
func (s *server) cli(stdin string, args ...string) (string, string, int) {
	s.t.Helper()
	full := append(args, "--brokers", s.addr, "--tls-ca", quicnet.SelfSignedCertPath(s.dataDir))
	cmd := exec.Command(rafkaBin, full...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		s.t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func (s *server) mustCLI(stdin string, args ...string) string {
	s.t.Helper()
	out, errs, code := s.cli(stdin, args...)
	if code != 0 {
		s.t.Fatalf("rafka %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errs)
	}
	return out
}

func TestCLITour(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.mustCLI("", "topic", "create", "orders", "--partitions", "3", "--config", "segment.bytes=4194304")
	if out := s.mustCLI("", "topic", "list"); !strings.Contains(out, "orders") || !strings.Contains(out, "3") {
		t.Fatalf("topic list: %q", out)
	}
	s.mustCLI("alice:book\nbob:pen\nalice:lamp\ncarol:cup\n", "produce", "orders", "--key-separator", ":")
	out := s.mustCLI("", "consume", "orders", "--from-beginning")
	lines := strings.Fields(out)
	if len(lines) != 4 {
		t.Fatalf("consume printed %q", out)
	}
	// alice's records share a partition and keep their order.
	out = s.mustCLI("", "consume", "orders", "--from-beginning", "--format", "json", "--exit-after", "4")
	var alice []string
	partOf := map[string]int32{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r struct {
			Partition int32
			Offset    int64
			Key       *string
			Value     string
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("json line %q: %v", line, err)
		}
		if r.Key == nil {
			t.Fatalf("record without key: %q", line)
		}
		if p, ok := partOf[*r.Key]; ok && p != r.Partition {
			t.Fatalf("key %s in partitions %d and %d", *r.Key, p, r.Partition)
		}
		partOf[*r.Key] = r.Partition
		if *r.Key == "alice" {
			alice = append(alice, r.Value)
		}
		if want := wire.PartitionForHash(wire.KeyHash([]byte(*r.Key)), 3); r.Partition != want {
			t.Fatalf("key %s in partition %d, hash range says %d", *r.Key, r.Partition, want)
		}
	}
	if strings.Join(alice, ",") != "book,lamp" {
		t.Fatalf("alice's records: %v", alice)
	}
	if out := s.mustCLI("", "topic", "describe", "orders"); !strings.Contains(out, "fsync") || !regexp.MustCompile(`segment.bytes\s+4194304`).MatchString(out) {
		t.Fatalf("describe: %q", out)
	}
	// JSON field names are snake_case everywhere.
	var desc map[string]any
	if out := s.mustCLI("", "topic", "describe", "orders", "--json"); json.Unmarshal([]byte(out), &desc) != nil {
		t.Fatalf("describe --json: %q", out)
	}
	parts, _ := desc["partitions"].([]any)
	if desc["name"] != "orders" || len(parts) != 3 {
		t.Fatalf("describe --json: %v", desc)
	}
	p0, _ := parts[0].(map[string]any)
	for _, k := range []string{"partition", "leader", "log_start_offset", "log_end_offset", "high_watermark", "size_bytes", "segments"} {
		if _, ok := p0[k]; !ok {
			t.Fatalf("describe --json partition has no %q: %v", k, p0)
		}
	}
	s.mustCLI("", "topic", "alter", "orders", "--config", "retention.ms=3600000")
	// Errors: readable, with meaningful exit codes.
	if _, errs, code := s.cli("", "topic", "describe", "nope"); code != 1 || !strings.Contains(errs, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("describe unknown: exit %d %q", code, errs)
	}
	if _, errs, code := s.cli("", "topic", "create", "x", "--config", "colour=blue"); code != 1 || !strings.Contains(errs, "unknown config") {
		t.Fatalf("bad config: exit %d %q", code, errs)
	}
	if _, errs, code := s.cli("", "consume", "orders", "--offset", "3"); code != 2 || !strings.Contains(errs, "--partition") {
		t.Fatalf("offset without partition: exit %d %q", code, errs)
	}
	if _, _, code := s.cli("", "topic", "create", "--no-such-flag"); code != 2 {
		t.Fatalf("bad flag: exit %d", code)
	}
	s.mustCLI("", "topic", "delete", "orders")
	if out := s.mustCLI("", "topic", "list"); strings.Contains(out, "orders") {
		t.Fatalf("deleted topic still listed: %q", out)
	}
	s.stop()
}

func TestServeRejectsBadConfig(t *testing.T) {
	cmd := exec.Command(rafkaBin, "serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--admin-listen", "",
		"--default-fsync", "sometimes")
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "fsync") {
		t.Fatalf("bad --default-fsync: exit %d %s", cmd.ProcessState.ExitCode(), out)
	}
	cmd = exec.Command(rafkaBin, "serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--admin-listen", "")
	cmd.Env = append(os.Environ(), "RAFKA_HOTSTORE_BYTES=lots")
	out, _ = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "RAFKA_HOTSTORE_BYTES") {
		t.Fatalf("bad env: exit %d %s", cmd.ProcessState.ExitCode(), out)
	}
}

func newClient(t *testing.T, s *server) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.New(ctx, client.WithBrokers(s.addr), client.WithCAFile(quicnet.SelfSignedCertPath(s.dataDir)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type acked struct {
	partition int32
	offset    int64
	seq       int
}

// TestKillMidProduce SIGKILLs the broker while a producer streams records
// with acks=leader and fsync=always, restarts it and checks that every
// acknowledged record is there, at its offset, and that each partition holds
// its records in production order.
func TestKillMidProduce(t *testing.T) {
	rounds := 3
	if testing.Short() {
		rounds = 1
	}
	dir := t.TempDir()
	const parts = 3
	var all []acked
	for round := range rounds {
		s := startServer(t, dir)
		c := newClient(t, s)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		if round == 0 {
			if err := c.CreateTopic(ctx, "crash", parts, map[string]string{"fsync": "always", "segment.bytes": "4194304"}); err != nil {
				t.Fatal(err)
			}
		}
		// A killed broker never answers: a short request timeout ends the
		// producer quickly instead of waiting for QUIC's idle timeout.
		p, err := c.NewProducer(client.WithLinger(time.Millisecond), client.WithRetries(0),
			client.WithMaxBatchBytes(16<<10), client.WithRequestTimeout(3*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var (
			mu     sync.Mutex
			got    []acked
			killed = make(chan struct{})
		)
		const killAfter = 3000
		base := round * 1_000_000
		go func() {
			defer close(killed)
			for i := 0; i < 200_000; i++ {
				r := &client.Record{Topic: "crash", Partition: int32(i % parts), Value: []byte(strconv.Itoa(base + i))}
				err := p.Produce(ctx, r, func(r *client.Record, err error) {
					if err != nil {
						return
					}
					seq, _ := strconv.Atoi(string(r.Value))
					mu.Lock()
					got = append(got, acked{r.Partition, r.Offset, seq})
					n := len(got)
					mu.Unlock()
					if n == killAfter {
						s.kill()
					}
				})
				if err != nil {
					return
				}
				select {
				case <-s.done:
					return
				default:
				}
			}
		}()
		<-killed
		s.kill()
		closeCtx, closeCancel := context.WithTimeout(context.Background(), 20*time.Second)
		p.Close(closeCtx)
		closeCancel()
		c.Close()
		cancel()
		mu.Lock()
		if len(got) < killAfter {
			t.Fatalf("round %d: only %d acks before the producer stopped", round, len(got))
		}
		all = append(all, got...)
		mu.Unlock()
	}

	s := startServer(t, dir)
	c := newClient(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stored := map[int32]map[int64]int{}
	for part := int32(0); part < parts; part++ {
		end, err := c.ListOffset(ctx, "crash", part, wire.OffsetLatest)
		if err != nil {
			t.Fatal(err)
		}
		stored[part] = map[int64]int{}
		if end == 0 {
			continue
		}
		cons, err := c.NewConsumer()
		if err != nil {
			t.Fatal(err)
		}
		if err := cons.Assign(ctx, client.Assignment{Topic: "crash", Partition: part, Start: client.Earliest()}); err != nil {
			t.Fatal(err)
		}
		prev, next := -1, int64(0)
		for next < end {
			recs, err := cons.Poll(ctx)
			if err != nil {
				t.Fatalf("partition %d: poll at %d of %d: %v", part, next, end, err)
			}
			for _, r := range recs {
				if r.Offset != next {
					t.Fatalf("partition %d: offset %d, want %d (a gap)", part, r.Offset, next)
				}
				seq, err := strconv.Atoi(string(r.Value))
				if err != nil || seq <= prev {
					t.Fatalf("partition %d offset %d: value %q after %d: out of order", part, r.Offset, r.Value, prev)
				}
				prev = seq
				stored[part][r.Offset] = seq
				next++
			}
		}
		cons.Close()
	}
	for _, a := range all {
		if seq, ok := stored[a.partition][a.offset]; !ok || seq != a.seq {
			t.Fatalf("acknowledged record %d (partition %d offset %d) lost or changed: found %d, %v", a.seq, a.partition, a.offset, seq, ok)
		}
	}
	t.Logf("%d acknowledged records over %d kills, all present", len(all), rounds)
	s.stop()
}

// TestServeJSONLog checks that with --log-format json every line the broker
// writes is a JSON log record, the "serving" one included.
func TestServeJSONLog(t *testing.T) {
	s := startServer(t, t.TempDir(), "--log-format", "json")
	s.stop()
	var serving map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s.logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a JSON record: %q", line)
		}
		if rec["msg"] == "serving" {
			serving = rec
		}
	}
	if serving == nil || serving["listen_addr"] != s.addr || serving["admin_addr"] != s.admin || serving["data_dir"] != s.dataDir {
		t.Fatalf("serving record %v, want listen_addr %s admin_addr %s; logs:\n%s", serving, s.addr, s.admin, s.logs)
	}
}

// TestConsumeOffsets covers --offset: absolute, relative to the end (as
// kcat's -o -N, clamped at the log start), beginning and end.
func TestConsumeOffsets(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.mustCLI("", "topic", "create", "rel", "--partitions", "2")
	s.mustCLI("0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n", "produce", "rel", "--partition", "0")
	s.mustCLI("a\nb\n", "produce", "rel", "-p", "1")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-p", "0", "--offset", "-3"}, "7 8 9"},
		{[]string{"-p", "0", "-o", "-1"}, "9"},
		{[]string{"-p", "0", "--offset", "-2"}, "8 9"},
		{[]string{"-p", "0", "--offset", "-25"}, "0 1 2 3 4 5 6 7 8 9"}, // clamped at the log start
		{[]string{"-p", "0", "--offset", "8"}, "8 9"},
		{[]string{"-p", "0", "--offset", "beginning"}, "0 1 2 3 4 5 6 7 8 9"},
		{[]string{"-p", "0", "--offset", "end"}, ""},
		{[]string{"--offset", "-1"}, "9 b"}, // every partition
		{[]string{"-p", "0", "--from-beginning", "--exit-after", "2"}, "0 1"},
	} {
		out := s.mustCLI("", append([]string{"consume", "rel"}, tc.args...)...)
		lines := strings.Fields(out)
		slices.Sort(lines)
		if got := strings.Join(lines, " "); got != tc.want {
			t.Errorf("consume %v: %q, want %q", tc.args, got, tc.want)
		}
	}
	for _, args := range [][]string{{"--offset", "soon"}, {"--offset", "3"}, {"-p", "0", "--offset", "-1", "--from-beginning"}} {
		if _, errs, code := s.cli("", append([]string{"consume", "rel"}, args...)...); code != 2 || !strings.Contains(errs, "--") {
			t.Errorf("consume %v: exit %d %q, want a usage error", args, code, errs)
		}
	}
	s.stop()
}

// TestConsumeBinary checks that --format json carries bytes that are not
// UTF-8 exactly with --binary base64, and says so when it cannot without.
func TestConsumeBinary(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.CreateTopic(ctx, "bin", 1, nil); err != nil {
		t.Fatal(err)
	}
	p, err := c.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	value := []byte{0xff, 0x00, 'a', '\n'}
	err = p.ProduceSync(ctx, &client.Record{Topic: "bin", Partition: 0, Key: []byte("k\xfe"), Value: value,
		Headers: []client.Header{{Key: "h", Value: []byte{0x80}}, {Key: "h", Value: []byte("two")}}})
	p.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type rec struct {
		Key     *string `json:"key"`
		Value   string  `json:"value"`
		Headers []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"headers"`
	}
	out, errs, code := s.cli("", "consume", "bin", "--from-beginning", "--format", "json", "--binary", "base64")
	var r rec
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || errs != "" {
		t.Fatalf("exit %d out %q err %q", code, out, errs)
	}
	if r.Value != base64.StdEncoding.EncodeToString(value) || r.Key == nil || *r.Key != base64.StdEncoding.EncodeToString([]byte("k\xfe")) ||
		len(r.Headers) != 2 || r.Headers[0].Value != "gA==" || r.Headers[1].Value != "dHdv" {
		t.Fatalf("base64 record: %+v", r)
	}
	out, errs, code = s.cli("", "consume", "bin", "--from-beginning", "--format", "json")
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || !strings.Contains(errs, "--binary base64") {
		t.Fatalf("exit %d out %q err %q", code, out, errs)
	}
	if r.Value != "\uFFFD\x00a\n" || r.Headers[1].Value != "two" {
		t.Fatalf("text record: %+v", r)
	}
	s.stop()
}

// TestConsumeFollowInterrupted interrupts `rafka consume --follow`: it exits
// 0 and closes its connection, so the broker drops it at once rather than
// after its idle timeout (made long here).
func TestConsumeFollowInterrupted(t *testing.T) {
	s := startServer(t, t.TempDir(), "--idle-timeout", "10m")
	s.mustCLI("", "topic", "create", "tail")
	s.mustCLI("first\n", "produce", "tail")
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		cmd := exec.Command(rafkaBin, "consume", "tail", "--follow", "--from-beginning",
			"--brokers", s.addr, "--tls-ca", quicnet.SelfSignedCertPath(s.dataDir))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var errb lockedBuffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || line != "first\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("first line %q: %v", line, err)
		}
		if n := s.openConnections(); n != 1 {
			t.Fatalf("%v open connections while consuming, want 1", n)
		}
		cmd.Process.Signal(sig)
		err = cmd.Wait()
		if code := cmd.ProcessState.ExitCode(); err != nil || code != 0 {
			t.Fatalf("after %v: exit %d (%v), stderr %q", sig, code, err, errb.String())
		}
		// The broker learns of the close from the consumer, not from its
		// idle timer (10 minutes).
		deadline := time.Now().Add(20 * time.Second)
		for s.openConnections() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("after %v: the broker still holds the consumer's connection", sig)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	s.stop()
}

// openConnections reads the broker's rafka_quic_open_connections gauge.
func (s *server) openConnections() float64 {
	s.t.Helper()
	resp, err := http.Get("http://" + s.admin + "/metrics")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "rafka_quic_open_connections "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				s.t.Fatal(err)
			}
			return n
		}
	}
	s.t.Fatalf("no rafka_quic_open_connections in /metrics")
	return 0
}

// TestNoBroker checks that with nothing listening a command gives up within
// its --timeout, connecting included, and says what to check.
func TestNoBroker(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close() // nothing listens there now
	for _, args := range [][]string{
		{"topic", "list"},
		{"topic", "describe", "x"},
		{"consume", "x", "--follow"},
		{"produce", "x"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cmd := exec.CommandContext(ctx, rafkaBin, append(args, "-b", addr, "--timeout", "500ms", "--insecure-skip-verify")...)
		cmd.Stdin = strings.NewReader("v\n")
		var errb bytes.Buffer
		cmd.Stderr = &errb
		cmd.Run()
		timedOut := ctx.Err() != nil
		cancel()
		if timedOut {
			t.Fatalf("rafka %v: still running long after --timeout 500ms", args)
		}
		if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(errb.String(), "rafka serve") || !strings.Contains(errb.String(), addr) {
			t.Fatalf("rafka %v: exit %d, stderr %q", args, code, errb.String())
		}
	}
}

// A ready file left by a broker that died is removed when the next one
// starts, before anything can fail: a supervisor never reads a dead broker's
// file as the new one's (here the new one fails on the data dir's lock).
func TestStaleReadyFileRemoved(t *testing.T) {
	dataDir := t.TempDir()
	startServer(t, dataDir)
	stale := filepath.Join(t.TempDir(), "ready.json")
	if err := os.WriteFile(stale, []byte(`{"broker_id":"gone","pid":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, rafkaBin, "serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0",
		"--admin-listen", "127.0.0.1:0", "--ready-file", stale).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "data dir in use") {
		t.Fatalf("second broker on a locked data dir: %v\n%s", err, out)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale ready file still there: %v", err)
	}
}
