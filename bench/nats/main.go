// Command nats-bench runs Rafka's produce and consume workloads against NATS
// JetStream, for `rafka-bench compare nats`: a nats-server child with
// JetStream file storage in a temporary folder on 127.0.0.1, a stream of
// one replica with one subject per partition (bench.0, bench.1, ...), one
// or more publishers (each with its own connection) using async publish
// with a bounded window of pending acks, optionally paced to a total rate,
// then an ordered consumer reading everything back. It prints the two results as
// JSON (package bench's Result) on stdout.
//
// It is its own module so that Rafka's main module does not depend on NATS;
// install-nats-server.sh installs the server binary from the Go module
// proxy into ./bin.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rafka/rafka/bench"
)

type config struct {
	server          string
	size            int
	count           int64
	duration        time.Duration
	maxPending      int
	publishers      int
	partitions      int
	rate            float64
	compressibility float64
	seed            uint64
	syncAlways      bool
	drain           time.Duration
}

func main() {
	var c config
	flag.StringVar(&c.server, "server", "", "nats-server binary (default: ./bin/nats-server, else nats-server on PATH)")
	flag.IntVar(&c.size, "size", 1024, "record value size in bytes")
	flag.Int64Var(&c.count, "count", 0, "records to publish (0: bounded by -duration only)")
	flag.DurationVar(&c.duration, "duration", 0, "how long to publish (0: bounded by -count only)")
	flag.IntVar(&c.maxPending, "max-pending", 4096, "async publishes awaiting their ack at once, per publisher")
	flag.IntVar(&c.publishers, "producers", 1, "publishers, each with its own connection")
	flag.IntVar(&c.partitions, "partitions", 1, "subjects of the stream (bench.0 ...); each publisher cycles through them")
	flag.Float64Var(&c.rate, "rate", 0, "target total publish rate in records/s (0: as fast as possible); ack latency counts from each record's scheduled time")
	flag.Float64Var(&c.compressibility, "compressibility", 0, "fraction of each value lz4 could remove (NATS does not compress messages)")
	flag.Uint64Var(&c.seed, "seed", 1, "payload seed")
	flag.BoolVar(&c.syncAlways, "sync-always", false, "fsync every write (JetStream sync_interval: always); default: periodic sync, like Rafka's fsync=never")
	flag.DurationVar(&c.drain, "drain-timeout", 60*time.Second, "bound on any wait for acks (a publish stalled on a full window, the final wait) and on the read-back")
	flag.Parse()
	if err := c.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "nats-bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	results, err := run(ctx, c)
	stop()
	if len(results) > 0 {
		if werr := bench.WriteJSON(os.Stdout, results...); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nats-bench:", err)
		os.Exit(1)
	}
}

func (c config) validate() error {
	var errs []error
	if c.size < 0 || c.size > 1<<20 {
		errs = append(errs, fmt.Errorf("size %d: want 0 to 1 MiB (NATS's default max payload)", c.size))
	}
	if c.count < 0 || c.duration < 0 || (c.count == 0 && c.duration == 0) {
		errs = append(errs, errors.New("give a positive -count or -duration (or both)"))
	}
	if c.maxPending < 1 {
		errs = append(errs, fmt.Errorf("max pending %d: want >= 1", c.maxPending))
	}
	if c.publishers < 1 || c.publishers > maxPublishers {
		errs = append(errs, fmt.Errorf("producers %d: want 1 to %d", c.publishers, maxPublishers))
	}
	if c.partitions < 1 || c.partitions > maxPartitions {
		errs = append(errs, fmt.Errorf("partitions %d: want 1 to %d", c.partitions, maxPartitions))
	}
	if c.rate < 0 {
		errs = append(errs, fmt.Errorf("rate %v: want >= 0", c.rate))
	}
	if c.compressibility < 0 || c.compressibility > 1 {
		errs = append(errs, fmt.Errorf("compressibility %v: want 0 to 1", c.compressibility))
	}
	return errors.Join(errs...)
}

// Bounds of the workload flags: each publisher holds a connection and up to
// -max-pending messages, each partition a subject.
const (
	maxPublishers = 1024
	maxPartitions = 10000
)

// subjects returns the stream's per-partition subjects.
func subjects(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("bench.%d", i)
	}
	return s
}

func run(ctx context.Context, c config) ([]*bench.Result, error) {
	srv, err := startServer(ctx, c)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	// One connection per publisher, as Rafka's producers each have theirs;
	// the first also creates the stream and reads back.
	conns := make([]jetstream.JetStream, c.publishers)
	for i := range conns {
		nc, err := nats.Connect(srv.url, nats.MaxReconnects(0))
		if err != nil {
			return nil, err
		}
		defer nc.Close()
		if conns[i], err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(c.maxPending)); err != nil {
			return nil, err
		}
	}
	js := conns[0]
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "BENCH", Subjects: []string{"bench.>"}, Storage: jetstream.FileStorage, Replicas: 1,
	}); err != nil {
		return nil, err
	}
	before, _ := bench.ReadProcStats(srv.cmd.Process.Pid)
	produce, err := publishAll(ctx, c, conns)
	if err != nil {
		return nil, err
	}
	mid, _ := bench.ReadProcStats(srv.cmd.Process.Pid)
	produce.Broker = ptr(mid.Sub(before))
	produce.Finish(time.Duration(produce.DurationSec*float64(time.Second)), produce.Ack)

	consume, err := readBack(ctx, c, js, produce.Records)
	if after, serr := bench.ReadProcStats(srv.cmd.Process.Pid); serr == nil && consume != nil {
		consume.Broker = ptr(after.Sub(mid))
		consume.Finish(time.Duration(consume.DurationSec*float64(time.Second)), nil)
	}
	if consume == nil {
		return []*bench.Result{produce}, err
	}
	return []*bench.Result{produce, consume}, err
}

func ptr[T any](v T) *T { return &v }

func describe(c config, workload string) map[string]any {
	m := map[string]any{"record_size": c.size, "storage": "file", "replicas": 1, "max_pending": c.maxPending}
	if c.partitions > 1 {
		m["partitions"] = c.partitions
	}
	if workload == "produce" {
		m["publish"] = "async"
		if c.publishers > 1 {
			m["producers"] = c.publishers
		}
		if c.rate > 0 {
			m["rate"] = c.rate
		}
	} else {
		m["consumer"] = "ordered"
	}
	if c.syncAlways {
		m["sync"] = "always"
	}
	return m
}

// publishAll runs c.publishers publishers until c.count records (split
// among them as Rafka's producers split --count) or c.duration, and waits
// for every ack. The result's time runs to the last ack.
func publishAll(ctx context.Context, c config, conns []jetstream.JetStream) (*bench.Result, error) {
	ack, lag := bench.NewHistogram(), bench.NewHistogram()
	var counters bench.Counters
	// One pool of values shared by the publishers, made before the clock
	// starts, as Rafka's producers share theirs.
	base, err := bench.NewPayloads(c.size, c.compressibility, c.seed)
	if err != nil {
		return nil, err
	}
	var deadline time.Time
	start := time.Now()
	if c.duration > 0 {
		deadline = start.Add(c.duration)
	}
	subs := subjects(c.partitions)
	lastAcks := make([]time.Time, len(conns))
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, js := range conns {
		share := int64(0)
		if c.count > 0 {
			share = c.count / int64(len(conns))
			if int64(i) < c.count%int64(len(conns)) {
				share++
			}
			if share == 0 {
				continue
			}
		}
		p := &publisher{c: c, js: js, payloads: base.Fork(i), subjects: subs, subOff: i, count: share, deadline: deadline,
			rate: c.rate / float64(len(conns)), counters: &counters, ack: ack, lag: lag}
		if c.rate > 0 {
			p.phase = time.Duration(float64(i) / c.rate * float64(time.Second))
		}
		wg.Go(func() { lastAcks[i], errs[i] = p.run(ctx, start) })
	}
	wg.Wait()
	lastAck := time.Time{}
	for _, t := range lastAcks {
		if t.After(lastAck) {
			lastAck = t
		}
	}
	r := &bench.Result{System: "nats", Workload: "produce", Config: describe(c, "produce"),
		Records: counters.Records.Load(), Bytes: counters.Bytes.Load(), Errors: counters.Errors.Load()}
	s := ack.Summary()
	r.Ack = &s
	if c.rate > 0 {
		l := lag.Summary()
		r.SendLag = &l
	}
	if lastAck.IsZero() {
		lastAck = time.Now()
	}
	r.Finish(lastAck.Sub(start), &s)
	return r, errors.Join(errs...)
}

// publisher is one publishing goroutine on its own connection.
type publisher struct {
	c        config
	js       jetstream.JetStream
	payloads *bench.Payloads
	subjects []string
	subOff   int
	count    int64     // 0: unbounded
	deadline time.Time // zero: none
	rate     float64   // records/s of this publisher; 0: unlimited
	// phase delays the schedule so that the publishers' records are due
	// evenly spaced at the total rate, as Rafka's producers' are.
	phase    time.Duration
	counters *bench.Counters
	ack      *bench.Histogram
	lag      *bench.Histogram // send lag of paced records
}

// run publishes with PublishAsync and times each ack from when its record
// was due. Acks of a single connection's stream come back in order, so
// one goroutine waiting for the futures in order sees each as soon as it
// is acknowledged. It returns the time of the last ack.
func (p *publisher) run(ctx context.Context, start time.Time) (time.Time, error) {
	type sent struct {
		f  jetstream.PubAckFuture
		at time.Time
	}
	futures := make(chan sent, p.c.maxPending)
	var lastAck time.Time
	waited := make(chan struct{})
	size := int64(p.c.size)
	go func() {
		defer close(waited)
		for s := range futures {
			select {
			case <-s.f.Ok():
				lastAck = time.Now()
				p.ack.Record(lastAck.Sub(s.at))
				p.counters.Records.Add(1)
				p.counters.Bytes.Add(size)
			case <-s.f.Err():
				p.counters.Errors.Add(1)
			}
		}
	}()
	// A full window of pending acks blocks the publish instead of failing
	// it after the client's default 200 ms: with every write synced
	// (-sync-always) a window of 4096 takes seconds to drain.
	opts := []jetstream.PublishOpt{jetstream.WithStallWait(p.c.drain)}
	var pubErr error
	pace := bench.NewPacer(start, p.rate, p.phase, p.deadline)
	if p.rate > 0 {
		pace.RecordLag(p.lag)
	}
	for n := int64(0); p.count == 0 || n < p.count; n++ {
		due, ok := pace.Next(ctx, n)
		if !ok {
			break
		}
		f, err := p.js.PublishAsync(p.subjects[(int(n)+p.subOff)%len(p.subjects)], p.payloads.Next(), opts...)
		if err != nil {
			pubErr = fmt.Errorf("publish: %w", err)
			break
		}
		futures <- sent{f, due}
	}
	close(futures)
	timer := time.NewTimer(p.c.drain)
	defer timer.Stop()
	select {
	case <-waited:
	case <-timer.C:
		// The program exits with this error; the waiting goroutine goes
		// with it.
		return time.Time{}, errors.Join(pubErr, fmt.Errorf("acks still pending %v after publishing", p.c.drain))
	}
	return lastAck, pubErr
}

// readBack reads want messages from the start of the stream with an ordered
// (ephemeral, unacknowledged) consumer.
func readBack(ctx context.Context, c config, js jetstream.JetStream, want int64) (*bench.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.drain+time.Duration(want/1000)*time.Millisecond)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, "BENCH", jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, err
	}
	start := time.Now()
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return nil, err
	}
	defer it.Stop()
	var got, bytes int64
	var readErr error
	for got < want {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			readErr = fmt.Errorf("read %d of %d: %w", got, want, err)
			break
		}
		got++
		bytes += int64(len(m.Data()))
	}
	r := &bench.Result{System: "nats", Workload: "consume", Config: describe(c, "consume"), Records: got, Bytes: bytes}
	r.Config["from"] = "earliest"
	r.Finish(time.Since(start), nil)
	return r, readErr
}

// server is a nats-server child process.
type server struct {
	cmd    *exec.Cmd
	dir    string
	url    string
	exited chan struct{}
}

var listeningLine = regexp.MustCompile(`Listening for client connections on (\S+)`)

func startServer(ctx context.Context, c config) (*server, error) {
	bin := c.server
	if bin == "" {
		bin = filepath.Join("bin", "nats-server")
		if _, err := os.Stat(bin); err != nil {
			p, err := exec.LookPath("nats-server")
			if err != nil {
				return nil, errors.New("no nats-server in ./bin or on PATH: run ./install-nats-server.sh")
			}
			bin = p
		}
	}
	dir, err := os.MkdirTemp("", "nats-bench-*")
	if err != nil {
		return nil, err
	}
	args := []string{"-a", "127.0.0.1", "-p", "-1", "-js", "-sd", dir}
	if c.syncAlways {
		conf := filepath.Join(dir, "nats.conf")
		if err := os.WriteFile(conf, []byte("jetstream { sync_interval: always }\n"), 0o644); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		args = append(args, "-c", conf)
	}
	s := &server{cmd: exec.Command(bin, args...), dir: dir, exited: make(chan struct{})}
	// Pdeathsig fires when the forking *thread* exits: start and wait for
	// the child on a goroutine locked to its thread for the child's life.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	started := make(chan error, 1)
	urls := make(chan string, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends after the child
		if err := s.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listeningLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	if err := <-started; err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case u := <-urls:
		if !strings.Contains(u, "://") {
			u = "nats://" + u
		}
		s.url = u
		return s, nil
	case <-s.exited:
		err = errors.New("nats-server exited before listening")
	case <-timer.C:
		err = errors.New("nats-server did not listen within 30s")
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.stop()
	return nil, err
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(20 * time.Second)
	select {
	case <-s.exited:
		timer.Stop()
	case <-timer.C:
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	os.RemoveAll(s.dir)
}
