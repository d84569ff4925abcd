package replica

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/rafka/rafka/segment"
	"github.com/rafka/rafka/segment/segmenttest"
	"github.com/rafka/rafka/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T, cfg Config) *Partition {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.Log.SegmentBytes == 0 {
		cfg.Log.SegmentBytes = 1 << 20
	}
	p, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// readAll reads [from, HighWatermark) and returns the batches' base offsets.
func readAll(t *testing.T, p *Partition, from int64, maxBytes int) []int64 {
	t.Helper()
	var bases []int64
	for off, i := from, 0; off < p.HighWatermark(); i++ {
		if i > 10000 {
			t.Fatal("read does not advance")
		}
		r, err := p.Read(off, maxBytes)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		for b := r.Data; len(b) > 0; {
			h, n, err := wire.VerifyBatch(b, 0)
			if err != nil {
				t.Fatalf("Read(%d) served a bad batch: %v", off, err)
			}
			bases = append(bases, h.BaseOffset)
			b = b[n:]
		}
		off = r.Next
		r.Release()
	}
	return bases
}

func TestAppendReadBothRings(t *testing.T) {
	for _, c := range []struct {
		name     string
		hot      int
		lockFree bool
	}{{"ring", 1 << 20, false}, {"lockfree", 1 << 20, true}, {"no-ring", 0, false}} {
		t.Run(c.name, func(t *testing.T) {
			p := open(t, Config{Topic: "t", Partition: 3, HotstoreBytes: c.hot, LockFreeRing: c.lockFree})
			if p.Topic() != "t" || p.ID() != 3 || p.Offline() != nil {
				t.Fatalf("identity: %s/%d offline %v", p.Topic(), p.ID(), p.Offline())
			}
			req := makeRequest(t, 3, 2, 10) // three batches of two records
			res, ack, err := p.Append(slices.Clone(req), wire.AcksLeader)
			if err != nil {
				t.Fatal(err)
			}
			if res != (AppendResult{BaseOffset: 0, LastOffset: 5, NextOffset: 6}) || p.HighWatermark() != 6 {
				t.Fatalf("append: %+v, hwm %d", res, p.HighWatermark())
			}
			if err := ack.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
			// Every batch is its own ring entry: a read from the middle
			// starts at the batch holding the offset.
			if got := readAll(t, p, 3, 1); !slices.Equal(got, []int64{2, 4}) {
				t.Fatalf("read from 3: bases %v", got)
			}
			if got := readAll(t, p, 0, 1<<20); !slices.Equal(got, []int64{0, 2, 4}) {
				t.Fatalf("read from 0: bases %v", got)
			}
			st, ok := p.RingStats()
			if ok != (c.hot > 0) || (ok && st.Hits == 0) {
				t.Fatalf("ring stats %+v, %v", st, ok)
			}
			if r, err := p.Read(6, 100); err != nil || len(r.Data) != 0 || r.Next != 6 {
				t.Fatalf("read at the high watermark: %+v, %v", r, err)
			}
			if _, err := p.Read(7, 100); !errors.Is(err, segment.ErrOffsetOutOfRange) {
				t.Fatalf("read past the high watermark: %v", err)
			}
			s := p.Stats()
			if s.LogStartOffset != 0 || s.LogEndOffset != 6 || s.HighWatermark != 6 || s.SizeBytes != int64(len(req)) || s.Segments != 1 {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

func TestAckWaiterUnderFsyncAlways(t *testing.T) {
	fs := &segmenttest.FullFS{}
	p := open(t, Config{Topic: "t", Log: segment.Options{FS: fs, Fsync: segment.FsyncPolicy{Mode: segment.FsyncAlways}}})
	_, ack, err := p.Append(makeRequest(t, 1, 1, 10), wire.AcksAll)
	if err != nil {
		t.Fatal(err)
	}
	if err := ack.Wait(context.Background()); err != nil {
		t.Fatalf("durable append: %v", err)
	}
	// acks=none needs no wait: a zero waiter.
	if _, ack, err := p.Append(makeRequest(t, 1, 1, 10), wire.AcksNone); err != nil || ack != (AckWaiter{}) {
		t.Fatalf("acks=none: %+v, %v", ack, err)
	}
	// A failed fsync reaches the waiter: the append is never acknowledged.
	fs.FailSync.Store(true)
	_, ack, err = p.Append(makeRequest(t, 1, 1, 10), wire.AcksLeader)
	if err != nil {
		t.Fatal(err)
	}
	if err := ack.Wait(context.Background()); !errors.Is(err, segment.ErrSyncFailed) {
		t.Fatalf("wait after a failed fsync: %v", err)
	}
	if !errors.Is(p.StorageError(), segment.ErrSyncFailed) {
		t.Fatalf("a failed fsync did not mark the partition: %v", p.StorageError())
	}
}

func TestStorageErrorFollowsAppends(t *testing.T) {
	fs := &segmenttest.FullFS{}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	p := open(t, Config{Topic: "t", Partition: 1, Logger: logger, Log: segment.Options{FS: fs}})
	if _, _, err := p.Append(makeRequest(t, 1, 1, 10), wire.AcksLeader); err != nil || p.StorageError() != nil {
		t.Fatalf("healthy append: %v, storage error %v", err, p.StorageError())
	}
	fs.Full.Store(true)
	for range 3 {
		if _, _, err := p.Append(makeRequest(t, 1, 1, 10), wire.AcksLeader); !errors.Is(err, segment.ErrDiskFull) {
			t.Fatalf("append on a full disk: %v", err)
		}
	}
	if !errors.Is(p.StorageError(), segment.ErrDiskFull) {
		t.Fatalf("storage error %v, want disk full", p.StorageError())
	}
	// A bad batch says nothing about the disk: the state stays.
	bad := makeRequest(t, 1, 1, 10)
	bad[len(bad)-1] ^= 1
	if _, _, err := p.Append(bad, wire.AcksLeader); !errors.Is(err, wire.ErrCorruptBatch) {
		t.Fatalf("corrupt append: %v", err)
	}
	if p.StorageError() == nil {
		t.Fatal("a corrupt batch cleared the storage error")
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 {
		t.Fatalf("%d ERROR lines for one disk-full episode:\n%s", n, logs.String())
	}
	fs.Full.Store(false)
	if _, _, err := p.Append(makeRequest(t, 1, 1, 10), wire.AcksLeader); err != nil {
		t.Fatal(err)
	}
	if p.StorageError() != nil {
		t.Fatalf("storage error after a successful append: %v", p.StorageError())
	}
	if !strings.Contains(logs.String(), "appends succeed again") {
		t.Fatalf("recovery not logged:\n%s", logs.String())
	}
}

func TestOfflinePartition(t *testing.T) {
	reason := errors.New("segment: corrupt data: a segment is missing")
	p := Offline("t", 2, reason)
	if !errors.Is(p.Offline(), reason) {
		t.Fatalf("Offline() = %v", p.Offline())
	}
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrOffline) || !errors.Is(err, reason) || !strings.Contains(err.Error(), "t/2") {
			t.Errorf("%s on an offline partition: %v", what, err)
		}
	}
	_, _, err := p.Append(makeRequest(t, 1, 1, 10), wire.AcksLeader)
	check("Append", err)
	_, err = p.Read(0, 100)
	check("Read", err)
	_, err = p.OffsetForTimestamp(0)
	check("OffsetForTimestamp", err)
	check("SetLogOptions", p.SetLogOptions(segment.Options{}))
	if s := p.Stats(); s != (Stats{-1, -1, -1, -1, -1}) || p.HighWatermark() != -1 || p.LogStartOffset() != -1 {
		t.Errorf("stats of an offline partition: %+v", s)
	}
	if n, err := p.EnforceRetention(); n != 0 || err != nil {
		t.Errorf("retention: %d, %v", n, err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestWatchAndClose(t *testing.T) {
	p, err := Open(Config{Topic: "t", Dir: t.TempDir(), Log: segment.Options{SegmentBytes: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 1)
	p.Watch(ch)
	if p.Watchers() != 1 {
		t.Fatalf("%d watchers", p.Watchers())
	}
	if _, _, err := p.Append(makeRequest(t, 1, 1, 10), wire.AcksNone); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	default:
		t.Fatal("append did not signal the watcher")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	default:
		t.Fatal("close did not signal the watcher")
	}
	if !p.Closed() {
		t.Fatal("not Closed after Close")
	}
	if _, _, err := p.Append(makeRequest(t, 1, 1, 10), wire.AcksNone); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if _, err := p.Read(0, 100); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	p.Unwatch(ch)
	if p.Watchers() != 0 {
		t.Fatalf("%d watchers after Unwatch", p.Watchers())
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestAppendDoesNotAllocatePerBatch: the ring is filled from the log's spans,
// with a scratch slice reused across appends.
func TestAppendDoesNotAllocatePerBatch(t *testing.T) {
	p := open(t, Config{Topic: "t", HotstoreBytes: 1 << 20, Log: segment.Options{SegmentBytes: 64 << 20}})
	req := makeRequest(t, 64, 1, 10)
	if _, _, err := p.Append(req, wire.AcksLeader); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(50, func() {
		if _, _, err := p.Append(req, wire.AcksLeader); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 4 { // the log's index snapshot and the like, not one per batch
		t.Fatalf("%.0f allocations per append of 64 batches", allocs)
	}
}
