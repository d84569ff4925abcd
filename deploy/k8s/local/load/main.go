// Command load is the workload of the Kubernetes end-to-end test
// (deploy/k8s/local/test.sh). It runs as a pod next to the brokers:
//
//	load run --brokers rafka:9092 --topic T --partitions 6 --rate 200 --dir /run/load
//
// produces records at a steady rate with acks=all, spread evenly over the
// topic's partitions, until `load stop` is run in the same pod (or its count
// or time bound is reached), then reads every partition back and checks that
// each acknowledged record is there, at the offset its acknowledgement gave,
// with the value it was sent with. It prints one JSON summary (also written to
// DIR/result.json) and exits 0 only if no produce call failed and no
// acknowledged record is missing.
//
// The other commands talk to a running `load run` through files in --dir,
// since the image has nothing but this binary:
//
//	load status   print the progress (DIR/status.json)
//	load mark N   note the time of an event named N (a pod deleted, a rollout
//	              started); the summary says, for each mark, how long after it
//	              each partition acknowledged its first record sent after it
//	load stop     ask `load run` to stop producing and verify
//
// Memory is bounded by --max-records (an acknowledgement is kept per record
// until the verification).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rafka/rafka/client"
	"github.com/rafka/rafka/quicnet"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: load run|status|mark NAME|stop [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	dir := fs.String("dir", "/run/load", "directory shared by `load run` and the other commands")
	var err error
	switch os.Args[1] {
	case "run":
		var cfg runConfig
		fs.StringVar(&cfg.brokers, "brokers", "", "broker addresses, comma separated")
		fs.StringVar(&cfg.caFile, "tls-ca", "", "PEM CA bundle that the brokers' certificates chain to")
		fs.BoolVar(&cfg.insecure, "insecure-skip-verify", false, "do not verify the brokers' certificates")
		fs.StringVar(&cfg.topic, "topic", "", "topic to produce to (it must exist)")
		fs.IntVar(&cfg.partitions, "partitions", 0, "partitions of the topic; records go to each in turn")
		fs.IntVar(&cfg.rate, "rate", 200, "records per second")
		fs.IntVar(&cfg.maxRecords, "max-records", 200_000, "stop after this many records")
		fs.DurationVar(&cfg.maxDuration, "max-duration", 15*time.Minute, "stop after this long")
		fs.DurationVar(&cfg.verifyTimeout, "verify-timeout", 2*time.Minute, "time allowed for flushing, and again for reading everything back")
		_ = fs.Parse(os.Args[2:])
		cfg.dir = *dir
		err = run(cfg)
	case "status":
		_ = fs.Parse(os.Args[2:])
		var b []byte
		if b, err = os.ReadFile(filepath.Join(*dir, "status.json")); err == nil {
			_, err = os.Stdout.Write(b)
		}
	case "mark":
		ms := strconv.FormatInt(time.Now().UnixMilli(), 10)
		if len(os.Args) < 3 || os.Args[2] == "" || strings.ContainsAny(os.Args[2], "/ ") || os.Args[2][0] == '-' {
			err = errors.New("mark NAME [flags]: one name without slashes or spaces")
			break
		}
		_ = fs.Parse(os.Args[3:])
		err = writeFile(filepath.Join(*dir, "mark-"+os.Args[2]), []byte(ms))
	case "stop":
		_ = fs.Parse(os.Args[2:])
		err = writeFile(filepath.Join(*dir, "stop"), nil)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

type runConfig struct {
	brokers, caFile, topic, dir string
	insecure                    bool
	partitions, rate            int
	maxRecords                  int
	maxDuration, verifyTimeout  time.Duration
}

// ack is one acknowledged record.
type ack struct {
	seq       int64
	partition int32
	offset    int64
	sentMs    int64
	ackedMs   int64
}

// status is what `load status` prints while `load run` works.
type status struct {
	Phase     string `json:"phase"` // producing, verifying, done
	Sent      int64  `json:"sent"`
	Acked     int64  `json:"acked"`
	Failed    int64  `json:"failed"`
	LastError string `json:"last_error,omitempty"`
	ElapsedMs int64  `json:"elapsed_ms"`
}

// markResult says how long after a mark each partition acknowledged the
// first record sent at or after it.
type markResult struct {
	Name       string  `json:"name"`
	AtMs       int64   `json:"at_ms"`
	MaxMs      int64   `json:"first_ack_all_partitions_ms"` // -1: some partition never did
	PerPartsMs []int64 `json:"first_ack_ms_by_partition"`
}

type summary struct {
	Sent         int64        `json:"sent"`
	Acked        int64        `json:"acked"`
	Failed       int64        `json:"failed"`
	FirstErrors  []string     `json:"first_errors,omitempty"`
	Verified     int64        `json:"verified"`
	Lost         int64        `json:"lost"`
	Mismatched   int64        `json:"mismatched"`
	LostSample   []string     `json:"lost_sample,omitempty"`
	MaxAckGapMs  int64        `json:"max_ack_gap_ms"` // longest wait between two acks of one partition
	RateMeasured float64      `json:"acks_per_second"`
	DurationMs   int64        `json:"duration_ms"`
	Marks        []markResult `json:"marks"`
	OK           bool         `json:"ok"`
}

func run(cfg runConfig) error {
	if cfg.brokers == "" || cfg.topic == "" || cfg.partitions <= 0 || cfg.rate <= 0 || cfg.maxRecords <= 0 {
		return errors.New("run: --brokers, --topic, --partitions, --rate and --max-records are required and positive")
	}
	if err := os.MkdirAll(cfg.dir, 0o755); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	tlsConf, err := quicnet.ClientTLSConfig(quicnet.TLSFiles{CAFile: cfg.caFile, InsecureSkipVerify: cfg.insecure})
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	c, err := client.New(cctx, client.WithBrokers(strings.Split(cfg.brokers, ",")...), client.WithTLSConfig(tlsConf),
		client.WithControlTimeout(30*time.Second), client.WithControlRetries(20))
	cancel()
	if err != nil {
		return err
	}
	defer c.Close()
	// Retries generous enough to ride out a leader election or a broker
	// restart: a produce call that still fails is a failure of the test.
	p, err := c.NewProducer(client.WithAcks(client.AcksAll), client.WithRetries(1000),
		client.WithRetryBackoff(50*time.Millisecond, time.Second), client.WithRequestTimeout(10*time.Second),
		client.WithLinger(5*time.Millisecond))
	if err != nil {
		return err
	}

	var (
		mu        sync.Mutex
		acks      = make([]ack, 0, min(cfg.maxRecords, 1<<16))
		failed    int64
		firstErrs []string
		sent      int64
	)
	start := time.Now()
	writeStatus := func(phase string) {
		mu.Lock()
		st := status{Phase: phase, Sent: sent, Acked: int64(len(acks)), Failed: failed, ElapsedMs: time.Since(start).Milliseconds()}
		if len(firstErrs) > 0 {
			st.LastError = firstErrs[len(firstErrs)-1]
		}
		mu.Unlock()
		b, _ := json.Marshal(st)
		_ = writeFile(filepath.Join(cfg.dir, "status.json"), b)
	}
	writeStatus("producing")

	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	lastStatus := time.Now()
	stopFile := filepath.Join(cfg.dir, "stop")
produce:
	for {
		select {
		case <-ctx.Done():
			break produce
		case now := <-tick.C:
			if now.Sub(start) >= cfg.maxDuration {
				break produce
			}
			if now.Sub(lastStatus) >= 500*time.Millisecond {
				lastStatus = now
				writeStatus("producing")
				if _, err := os.Stat(stopFile); err == nil {
					break produce
				}
			}
			due := min(int64(now.Sub(start).Seconds()*float64(cfg.rate)), int64(cfg.maxRecords))
			for ; sent < due; sent++ {
				seq := sent
				r := &client.Record{Topic: cfg.topic, Partition: int32(seq % int64(cfg.partitions)),
					Value: strconv.AppendInt(nil, seq, 10)}
				sentMs := time.Now().UnixMilli()
				err := p.Produce(ctx, r, func(r *client.Record, err error) {
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						failed++
						if len(firstErrs) < 5 {
							firstErrs = append(firstErrs, fmt.Sprintf("record %d: %v", seq, err))
						}
						return
					}
					acks = append(acks, ack{seq: seq, partition: r.Partition, offset: r.Offset, sentMs: sentMs, ackedMs: time.Now().UnixMilli()})
				})
				if err != nil {
					return fmt.Errorf("produce: %w", err)
				}
			}
			if sent >= int64(cfg.maxRecords) {
				break produce
			}
		}
	}
	writeStatus("verifying")
	fctx, fcancel := context.WithTimeout(context.Background(), cfg.verifyTimeout)
	closeErr := p.Close(fctx)
	fcancel()
	duration := time.Since(start)

	mu.Lock()
	sum := summary{Sent: sent, Acked: int64(len(acks)), Failed: failed, FirstErrors: firstErrs, DurationMs: duration.Milliseconds()}
	mu.Unlock()
	if closeErr != nil {
		sum.FirstErrors = append(sum.FirstErrors, "producer close: "+closeErr.Error())
	}
	if sum.Sent != sum.Acked+sum.Failed {
		sum.FirstErrors = append(sum.FirstErrors, fmt.Sprintf("%d records neither acknowledged nor failed", sum.Sent-sum.Acked-sum.Failed))
	}
	sum.RateMeasured = float64(sum.Acked) / duration.Seconds()
	sum.MaxAckGapMs = maxAckGap(acks)
	sum.Marks = marks(cfg.dir, acks, cfg.partitions)
	vctx, vcancel := context.WithTimeout(context.Background(), cfg.verifyTimeout)
	defer vcancel()
	if err := verify(vctx, c, cfg.topic, acks, &sum); err != nil {
		sum.FirstErrors = append(sum.FirstErrors, "verify: "+err.Error())
	}
	sum.OK = sum.Failed == 0 && sum.Lost == 0 && sum.Mismatched == 0 && sum.Verified == sum.Acked &&
		sum.Sent == sum.Acked && closeErr == nil
	b, _ := json.Marshal(sum)
	fmt.Println(string(b))
	_ = writeFile(filepath.Join(cfg.dir, "result.json"), b)
	writeStatus("done")
	if !sum.OK {
		return errors.New("records failed or lost (see the summary)")
	}
	return nil
}

// verify reads each partition from its start up to the last acknowledged
// offset and checks every acknowledged record against what was read.
func verify(ctx context.Context, c *client.Client, topic string, acks []ack, sum *summary) error {
	want := map[int32]map[int64]int64{} // partition -> offset -> seq
	for _, a := range acks {
		if want[a.partition] == nil {
			want[a.partition] = map[int64]int64{}
		}
		want[a.partition][a.offset] = a.seq
	}
	parts := make([]int32, 0, len(want))
	for p := range want {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	for _, p := range parts {
		if err := verifyPartition(ctx, c, topic, p, want[p], sum); err != nil {
			return err
		}
	}
	return nil
}

func verifyPartition(ctx context.Context, c *client.Client, topic string, p int32, want map[int64]int64, sum *summary) error {
	var last int64 = -1
	for off := range want {
		last = max(last, off)
	}
	cs, err := c.NewConsumer()
	if err != nil {
		return err
	}
	defer cs.Close()
	if err := cs.Assign(ctx, client.Assignment{Topic: topic, Partition: p, Start: client.Earliest()}); err != nil {
		return err
	}
	seen := map[int64]bool{}
	for next := int64(-1); next < last; {
		recs, err := cs.Poll(ctx)
		if err != nil {
			break // the context's deadline: what was not read counts as lost
		}
		for _, r := range recs {
			next = max(next, r.Offset)
			seq, ok := want[r.Offset]
			if !ok || seen[r.Offset] {
				continue
			}
			seen[r.Offset] = true
			if string(r.Value) != strconv.FormatInt(seq, 10) {
				sum.Mismatched++
				if len(sum.LostSample) < 10 {
					sum.LostSample = append(sum.LostSample, fmt.Sprintf("%d/%d: want %d, read %q", p, r.Offset, seq, r.Value))
				}
				continue
			}
			sum.Verified++
		}
	}
	for off, seq := range want {
		if !seen[off] {
			sum.Lost++
			if len(sum.LostSample) < 10 {
				sum.LostSample = append(sum.LostSample, fmt.Sprintf("%d/%d: record %d not read back", p, off, seq))
			}
		}
	}
	return nil
}

// maxAckGap is the longest time one partition went between two
// acknowledgements.
func maxAckGap(acks []ack) int64 {
	byPart := map[int32][]int64{}
	for _, a := range acks {
		byPart[a.partition] = append(byPart[a.partition], a.ackedMs)
	}
	var gap int64
	for _, ts := range byPart {
		sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
		for i := 1; i < len(ts); i++ {
			gap = max(gap, ts[i]-ts[i-1])
		}
	}
	return gap
}

// marks reads the marks left by `load mark` and measures each.
func marks(dir string, acks []ack, partitions int) []markResult {
	files, _ := filepath.Glob(filepath.Join(dir, "mark-*"))
	out := []markResult{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		at, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			continue
		}
		m := markResult{Name: strings.TrimPrefix(filepath.Base(f), "mark-"), AtMs: at, PerPartsMs: make([]int64, partitions)}
		for i := range m.PerPartsMs {
			m.PerPartsMs[i] = -1
		}
		for _, a := range acks {
			if a.sentMs < at || int(a.partition) >= partitions {
				continue
			}
			if d := a.ackedMs - at; m.PerPartsMs[a.partition] < 0 || d < m.PerPartsMs[a.partition] {
				m.PerPartsMs[a.partition] = d
			}
		}
		for _, d := range m.PerPartsMs {
			if d < 0 {
				m.MaxMs = -1
				break
			}
			m.MaxMs = max(m.MaxMs, d)
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AtMs < out[j].AtMs })
	return out
}

// writeFile replaces path atomically, so that a reader never sees half.
func writeFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
