package node_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/rafka/rafka/node"
	"github.com/rafka/rafka/segment/segmenttest"
	"github.com/rafka/rafka/wire"
)

// logBuffer collects a broker's logs; safe for concurrent writers.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func readyz(t *testing.T, tb *testBroker) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + tb.b.AdminAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// A full disk fails produce with STORAGE_ERROR, logs an error once, and
// makes /readyz say not ready until appends succeed again.
func TestDiskFullMakesBrokerNotReady(t *testing.T) {
	fs := &segmenttest.FullFS{}
	logs := &logBuffer{}
	tb := startBroker(t, func(c *node.Config) {
		c.AdminListen = "127.0.0.1:0"
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
		node.SetFS(c, fs)
	})
	tb.createTopic("t", 2, nil)
	rs := tb.stream()
	if r := produce(t, rs, "t", 0, batch(t, "a", 2, wire.CodecNone)); r.Error != wire.ErrNone {
		t.Fatalf("produce: %+v", r)
	}
	if code, body := readyz(t, tb); code != http.StatusOK {
		t.Fatalf("/readyz before: %d %q", code, body)
	}

	fs.Full.Store(true)
	for range 3 {
		if r := produce(t, rs, "t", 0, batch(t, "b", 2, wire.CodecNone)); r.Error != wire.ErrStorage || !strings.Contains(r.Message, "disk full") {
			t.Fatalf("produce on a full disk: %+v", r)
		}
	}
	if got := tb.b.StorageFailing(); len(got) != 1 || !strings.HasPrefix(got[0], "t/0: ") {
		t.Fatalf("StorageFailing: %q", got)
	}
	code, body := readyz(t, tb)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "storage failing") || !strings.Contains(body, "t/0") {
		t.Fatalf("/readyz on a full disk: %d %q", code, body)
	}
	if n := strings.Count(logs.String(), "level=ERROR msg=\"append failed: storage failing\""); n != 1 {
		t.Fatalf("%d error lines for one disk-full episode; logs:\n%s", n, logs.String())
	}

	fs.Full.Store(false)
	if r := produce(t, rs, "t", 0, batch(t, "c", 2, wire.CodecNone)); r.Error != wire.ErrNone {
		t.Fatalf("produce after space came back: %+v", r)
	}
	if got := tb.b.StorageFailing(); len(got) != 0 {
		t.Fatalf("StorageFailing after a successful append: %q", got)
	}
	if code, body := readyz(t, tb); code != http.StatusOK {
		t.Fatalf("/readyz after: %d %q", code, body)
	}
}

// A topic whose partitions cannot be created (no space) is refused with
// STORAGE_ERROR, logged as an error, and leaves nothing behind.
func TestCreateTopicFailureIsLogged(t *testing.T) {
	fs := &segmenttest.FullFS{}
	logs := &logBuffer{}
	tb := startBroker(t, func(c *node.Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
		node.SetFS(c, fs)
	})
	fs.Full.Store(true)
	var er wire.ErrorResponse
	tb.stream().call(wire.APICreateTopic, &wire.CreateTopicRequest{Name: "t", Partitions: 3}, &er)
	if er.Error != wire.ErrStorage || !strings.Contains(er.Message, "disk full") {
		t.Fatalf("create on a full disk: %+v", er)
	}
	if !strings.Contains(logs.String(), `level=ERROR msg="creating topic failed`) {
		t.Fatalf("failed creation not logged as an error:\n%s", logs.String())
	}
	if _, err := os.Stat(filepath.Join(tb.dir, "topics", "t")); !os.IsNotExist(err) {
		t.Fatalf("failed topic left its directory: %v", err)
	}
	fs.Full.Store(false)
	tb.createTopic("t", 3, nil)
}

// Docs allow 1 MiB segments: such a topic needs no max.message.bytes (it
// follows segment.bytes), and an explicit larger one is refused saying why.
func TestSmallSegmentsNeedNoMaxMessageBytes(t *testing.T) {
	tb := startBroker(t)
	rs := tb.stream()
	var er wire.ErrorResponse
	rs.call(wire.APICreateTopic, &wire.CreateTopicRequest{Name: "small", Partitions: 1,
		Configs: map[string]string{node.ConfigSegmentBytes: "1048576"}}, &er)
	if er.Error != wire.ErrNone {
		t.Fatalf("create with 1 MiB segments: %+v", er)
	}
	var d wire.DescribeTopicResponse
	rs.call(wire.APIDescribeTopic, &wire.DescribeTopicRequest{Name: "small"}, &d)
	if d.Configs[node.ConfigMaxMessageBytes] != "1048576" {
		t.Fatalf("max.message.bytes of a 1 MiB-segment topic: %q", d.Configs[node.ConfigMaxMessageBytes])
	}
	rs.call(wire.APICreateTopic, &wire.CreateTopicRequest{Name: "bad", Partitions: 1,
		Configs: map[string]string{node.ConfigSegmentBytes: "1048576", node.ConfigMaxMessageBytes: "4194304"}}, &er)
	if er.Error != wire.ErrInvalidConfig || !strings.Contains(er.Message, "must fit in one segment") {
		t.Fatalf("explicit max.message.bytes above segment.bytes: %+v", er)
	}
}

// duBytes is the disk space used by the files under dir.
func duBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var used int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			used += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return used
}

// Idle partitions with the default 128 MiB segments cost about one
// preallocation step each, not a whole segment.
func TestIdlePartitionsUseLittleDisk(t *testing.T) {
	tb := startBroker(t, func(c *node.Config) { c.TopicDefaults.SegmentBytes = 0 })
	tb.createTopic("t", 7, nil)
	produce(t, tb.stream(), "t", 0, batch(t, "x", 10, wire.CodecNone))
	if used := duBytes(t, filepath.Join(tb.dir, "topics")); used > 7*2<<20 {
		t.Fatalf("7 idle partitions use %d bytes of disk", used)
	}
}

// The lock-free ring serves tail reads as the default one does.
func TestLockFreeRingOption(t *testing.T) {
	tb := startBroker(t, func(c *node.Config) { c.HotstoreLockFree = true })
	tb.createTopic("t", 1, nil)
	rs := tb.stream()
	for i := range 5 {
		if r := produce(t, rs, "t", 0, batch(t, "v"+itoa(i), 3, wire.CodecNone)); r.Error != wire.ErrNone {
			t.Fatalf("produce: %+v", r)
		}
	}
	r, offsets, _ := fetch(t, rs, "t", 0, 4)
	if want := []int64{4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}; r.Error != wire.ErrNone || !slices.Equal(offsets, want) || r.HighWatermark != 15 {
		t.Fatalf("fetch: %+v offsets %v", r, offsets)
	}
}
