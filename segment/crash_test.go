package segment

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rafka/rafka/wire"
)

const crashChildEnv = "SEGMENT_CRASH_CHILD_DIR"

// crashSegmentEnv passes the segment size to the writer process.
const crashSegmentEnv = "SEGMENT_CRASH_SEGMENT_BYTES"

// crashSegmentSizes are the segment sizes the crash tests run with: small
// segments so that crashes also land during rolls, and segments larger than
// the first preallocation step so that they also land while it grows.
var crashSegmentSizes = []int64{64 << 10, 2 << 20}

// crashOptions are the options of the crash tests' logs.
func crashOptions(segmentBytes int64) Options {
	return Options{SegmentBytes: segmentBytes, IndexIntervalBytes: 1024, Fsync: FsyncPolicy{Mode: FsyncAlways}}
}

// forEachCrashSize runs f as a subtest per crash segment size.
func forEachCrashSize(t *testing.T, f func(t *testing.T, segmentBytes int64)) {
	for _, n := range crashSegmentSizes {
		t.Run(fmt.Sprintf("segment=%dKiB", n>>10), func(t *testing.T) { f(t, n) })
	}
}

// runCrashChild is the writer process of TestCrashKill: it appends from four
// goroutines with fsync always and prints "<base offset> <checksum>" for each
// acknowledged batch, until it is killed (or a bound is reached).
func runCrashChild(dir string) int {
	segmentBytes, err := strconv.ParseInt(os.Getenv(crashSegmentEnv), 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "segment size:", err)
		return 2
	}
	l, err := Open(dir, crashOptions(segmentBytes))
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 2
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	failed := false
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)))
			for range 100000 {
				b := makeBatch(rng, int32(1+rng.IntN(5)), rng.IntN(6000), 1, 1)
				sum := wire.BatchChecksum(b)
				r, err := l.AppendSync(context.Background(), b, 1)
				if err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					mu.Lock()
					failed = true
					mu.Unlock()
					return
				}
				line := fmt.Appendf(nil, "%d %d\n", r.BaseOffset, sum)
				mu.Lock()
				_, err = os.Stdout.Write(line)
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	l.Close()
	if failed {
		return 3
	}
	return 0
}

type ack struct {
	base int64
	sum  uint64
}

// checkAcked reopens dir and checks that every acknowledged batch is present
// and intact, and that the whole log verifies with no gaps.
func checkAcked(t *testing.T, dir string, o Options, acked []ack) {
	t.Helper()
	l := mustOpen(t, dir, o)
	defer l.Close()
	readAllBatches(t, l)
	for _, a := range acked {
		v, err := l.Read(a.base, 1)
		if err != nil {
			t.Fatalf("acknowledged batch at %d: %v", a.base, err)
		}
		h, _, err := wire.VerifyBatch(v.Bytes(), 0)
		if err != nil || h.BaseOffset != a.base || h.Checksum != a.sum {
			t.Fatalf("acknowledged batch at %d: got base %d checksum %x (%v), want %x", a.base, h.BaseOffset, h.Checksum, err, a.sum)
		}
		v.Release()
	}
}

func crashIterations(n int) int {
	if *stress {
		return n * 10
	}
	if testing.Short() {
		return n / 5
	}
	return n
}

// TestCrashKill runs a real writer process, SIGKILLs it after a random number
// of acknowledgements, and checks the reopened log.
func TestCrashKill(t *testing.T) { forEachCrashSize(t, testCrashKill) }

func testCrashKill(t *testing.T, segmentBytes int64) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rng := newRand(t)
	var acked []ack
	for iter := range crashIterations(24) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, fmt.Sprintf("%s=%d", crashSegmentEnv, segmentBytes))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAfter := 1 + rng.IntN(120)
		sc := bufio.NewScanner(out)
		n := 0
		killed := false
		for sc.Scan() {
			var a ack
			if _, err := fmt.Sscanf(sc.Text(), "%d %d", &a.base, &a.sum); err != nil {
				t.Fatalf("child line %q: %v", sc.Text(), err)
			}
			acked = append(acked, a)
			if n++; n == killAfter && !killed {
				killed = true
				_ = cmd.Process.Signal(syscall.SIGKILL)
			}
		}
		err = cmd.Wait()
		cancel()
		if !killed {
			t.Fatalf("iteration %d: child exited on its own after %d acks: %v", iter, n, err)
		}
		checkAcked(t, dir, crashOptions(segmentBytes), acked)
	}
	t.Logf("%d acknowledged batches survived %d kills", len(acked), crashIterations(24))
}

// TestCrashPowerLoss simulates losing, tearing or garbling every write that
// was not fsynced (including index files), with appenders in flight, and
// checks that every batch acknowledged under fsync always survives.
func TestCrashPowerLoss(t *testing.T) { forEachCrashSize(t, testCrashPowerLoss) }

func testCrashPowerLoss(t *testing.T, segmentBytes int64) {
	dir := t.TempDir()
	rng := newRand(t)
	var acked []ack
	for range crashIterations(25) {
		ffs := newFaultFS()
		o := crashOptions(segmentBytes)
		o.FS = ffs
		l := mustOpen(t, dir, o)
		var mu sync.Mutex
		var wg sync.WaitGroup
		target := len(acked) + 5 + rng.IntN(60)
		reached := make(chan struct{})
		var once sync.Once
		for w := range 3 {
			wg.Add(1)
			seed := rng.Uint64()
			go func() {
				defer wg.Done()
				wr := rand.New(rand.NewPCG(seed, uint64(w)))
				for range 10000 {
					b := makeBatch(wr, int32(1+wr.IntN(3)), wr.IntN(5000), 1, 1)
					sum := wire.BatchChecksum(b)
					var r AppendResult
					var err error
					if wr.IntN(4) == 0 { // not acknowledged: may be lost
						_, err = l.Append(b, 1)
					} else {
						r, err = l.AppendSync(context.Background(), b, 1)
					}
					if err != nil {
						return // the crash
					}
					if r.NextOffset == 0 {
						continue
					}
					mu.Lock()
					acked = append(acked, ack{r.BaseOffset, sum})
					if len(acked) >= target {
						once.Do(func() { close(reached) })
					}
					mu.Unlock()
				}
			}()
		}
		<-reached
		ffs.set(func(f *faultFS) { f.dead = true })
		wg.Wait()
		_ = l.Close()
		if err := ffs.crash(rng); err != nil {
			t.Fatal(err)
		}
		checkAcked(t, dir, crashOptions(segmentBytes), acked)
	}
}

// TestCrashPowerLossRollFlushPending crashes a log under fsync never while
// the background fsync of rolled segments is held back, so that one to six
// trailing segments are unflushed, then simulates the power loss. Open must
// succeed and serve a valid prefix of what was appended, with no gaps, that
// keeps at least everything the previous Open had made clean.
func TestCrashPowerLossRollFlushPending(t *testing.T) {
	dir := t.TempDir()
	rng := newRand(t)
	o := Options{SegmentBytes: 64 << 10, IndexIntervalBytes: 1024}
	sums := map[int64]uint64{} // checksum of every batch appended, by base offset
	var lost int64
	l := mustOpen(t, dir, o)
	clean := l.NextOffset()
	l.Close()
	for iter := range crashIterations(25) {
		ffs := newFaultFS()
		fo := o
		fo.FS = ffs
		l := mustOpen(t, dir, fo)
		gate := make(chan struct{})
		ffs.set(func(f *faultFS) { f.gate, f.gateHit = gate, make(chan struct{}, 1) })
		hit := ffs.gateHit
		held, extra := -1, 1+rng.IntN(6)
		var written int64
		for held < 0 || l.Segments() < held+extra {
			b := makeBatch(rng, int32(1+rng.IntN(3)), rng.IntN(5000), 1, 1)
			sum := wire.BatchChecksum(b)
			r := mustAppend(t, l, b)
			sums[r.BaseOffset] = sum
			written = r.NextOffset
			select {
			case <-hit: // the flusher is fsyncing the first rolled segment
				held = l.Segments()
			default:
			}
		}
		if n := l.pendingFlushes(); n < extra {
			t.Fatalf("%d rolled segments waiting for a flush, want at least %d", n, extra)
		}
		ffs.set(func(f *faultFS) { f.dead = true })
		close(gate)
		if err := l.Close(); err == nil {
			t.Fatal("Close succeeded on a crashed file system")
		}
		if err := ffs.crash(rng); err != nil {
			t.Fatal(err)
		}
		l = mustOpen(t, dir, o)
		lost += written - l.NextOffset()
		hs := readAllBatches(t, l)
		for _, h := range hs {
			if h.Checksum != sums[h.BaseOffset] {
				t.Fatalf("iteration %d: batch at %d has checksum %x, appended %x", iter, h.BaseOffset, h.Checksum, sums[h.BaseOffset])
			}
		}
		if l.NextOffset() < clean {
			t.Fatalf("iteration %d: log ends at %d, below the clean offset %d of the previous open", iter, l.NextOffset(), clean)
		}
		clean = l.NextOffset()
		for off := range sums {
			if off >= clean {
				delete(sums, off) // lost; those offsets are assigned again
			}
		}
		l.Close()
	}
	t.Logf("%d offsets lost to %d crashes, none below a clean offset", lost, crashIterations(25))
}
