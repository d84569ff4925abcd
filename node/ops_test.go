package node_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/rafka/rafka/node"
	"github.com/rafka/rafka/quicnet"
	"github.com/rafka/rafka/wire"
)

// Two brokers on one data directory would hand out the same offsets: the
// second is refused before it reads anything, with the holder's pid, and the
// directory is free again once the first has shut down.
func TestDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	tb := startBrokerIn(t, dir)
	tb.createTopic("t", 1, nil)

	_, err := node.New(node.Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if !errors.Is(err, node.ErrDataDirLocked) {
		t.Fatalf("second broker on the same dir: %v, want ErrDataDirLocked", err)
	}
	for _, want := range []string{"pid " + strconv.Itoa(os.Getpid()), tb.b.Addr()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	tb.stop()
	b, err := node.New(node.Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("New after the first broker stopped: %v", err)
	}
	if b.ID() != tb.b.ID() {
		t.Errorf("broker id %s after restart, want %s", b.ID(), tb.b.ID())
	}
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// The QUIC stateless-reset key is created once, private, and reused.
func TestStatelessResetKeyPersists(t *testing.T) {
	dir := t.TempDir()
	tb := startBrokerIn(t, dir)
	tb.stop()
	path := filepath.Join(dir, "quic-reset.key")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != 32 {
		t.Fatalf("%s: mode %v, %d bytes; want 0600 and 32", path, fi.Mode().Perm(), fi.Size())
	}
	key, _ := os.ReadFile(path)
	startBrokerIn(t, dir).stop()
	again, _ := os.ReadFile(path)
	if !bytes.Equal(key, again) {
		t.Fatal("the key changed across a restart")
	}
}

// Frames being received are charged to a per-connection and a broker-wide
// budget before their memory is allocated. Streams announcing maximum-size
// frames hold little; streams that send almost all of one hold it, until the
// budget refuses the next such frame with THROTTLED. The charge never
// exceeds the budget, it all comes back when the streams end, and the broker
// serves throughout.
func TestFrameMemoryBudget(t *testing.T) {
	const (
		maxFrame  = 1 << 20
		connLimit = 3 << 20
		limit     = 5 << 20
	)
	tb := startBroker(t, func(c *node.Config) {
		c.MaxFrameBytes = maxFrame
		c.MaxConnFrameMemory = connLimit
		c.MaxFrameMemory = limit
	})
	const length = maxFrame - 4 // the largest length prefix allowed
	var prefix [4]byte
	binary.LittleEndian.PutUint32(prefix[:], length)
	conns := []*quic.Conn{tb.conn, tb.dial(), tb.dial()}

	// probe opens a stream on conn and sends the prefix and n bytes of the
	// frame. It returns once the broker has either taken all n bytes (its
	// memory in use grew by at least n) or refused the frame (THROTTLED,
	// reported as true).
	probe := func(conn *quic.Conn, n int) (throttled bool) {
		t.Helper()
		before, _ := node.FrameMemory(tb.b)
		rs := openStream(t, conn)
		answer := make(chan wire.ErrorCode, 1)
		go func() {
			f, err := rs.fr.Next()
			var er wire.ErrorResponse
			if err != nil || f.API != 0 || rs.fr.DecodeHeader(&f, &er) != nil {
				answer <- wire.ErrUnknown // the stream ended otherwise: cleanup
				return
			}
			answer <- er.Error
		}()
		// The broker may refuse the frame while it is being written.
		if _, err := rs.s.Write(append(prefix[:], make([]byte, n)...)); err != nil {
			if se, ok := errors.AsType[*quic.StreamError](err); !ok || se.ErrorCode != quicnet.StreamCodeResourceLimit {
				t.Fatalf("write: %v", err)
			}
		}
		var code wire.ErrorCode
		awaitCondition(t, func() bool {
			select {
			case code = <-answer:
				throttled = true
				return true
			default:
				now, _ := node.FrameMemory(tb.b)
				return now >= before+int64(n)
			}
		})
		if throttled && code != wire.ErrThrottled {
			t.Fatalf("a frame over the budget was answered %s, want THROTTLED", code)
		}
		if throttled {
			rs.expectEnd()
		}
		return throttled
	}
	checkPeak := func() {
		t.Helper()
		if _, peak := node.FrameMemory(tb.b); peak > limit {
			t.Fatalf("frame memory peaked at %d, over the broker-wide %d", peak, limit)
		}
	}

	// Announced but barely sent: at most the frame's length each (as
	// much as that, if the frame is charged when announced).
	throttled := 0
	for _, conn := range conns {
		for range 3 {
			if probe(conn, 100) {
				throttled++
			}
		}
	}
	checkPeak()
	// Sent but for the last byte: each holds a whole frame, so the budgets
	// fill up and refuse the rest.
	for _, conn := range conns {
		for range 6 {
			if probe(conn, length-1) {
				throttled++
			}
		}
	}
	checkPeak()
	if now, _ := node.FrameMemory(tb.b); throttled == 0 || now < length {
		t.Fatalf("%d frames refused, %d bytes held; want some of each", throttled, now)
	}

	// Ending the streams gives everything back; the broker serves.
	for _, conn := range conns[1:] {
		conn.CloseWithError(0, "")
	}
	tb.conn.CloseWithError(0, "")
	awaitCondition(t, func() bool { n, _ := node.FrameMemory(tb.b); return n == 0 })
	tb.conn = tb.dial()
	tb.createTopic("after", 1, nil)
	if r := produce(t, tb.stream(), "after", 0, batch(t, "k", 1, wire.CodecNone)); r.Error != wire.ErrNone {
		t.Fatalf("produce after the budget was released: %+v", r)
	}
	body := scrape(t, tb)
	for _, want := range []string{
		fmt.Sprintf(`rafka_node_frame_budget_rejections_total %d`, throttled),
		fmt.Sprintf(`rafka_node_request_errors_total{api="stream",code="THROTTLED"} %d`, throttled),
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// A panic in any of a stream's goroutines resets that stream with the
// internal error code and is counted; the broker keeps serving.
func TestStreamPanicRecovered(t *testing.T) {
	for _, goroutine := range []string{"reader", "writer", "pusher"} {
		t.Run(goroutine, func(t *testing.T) {
			tb := startBroker(t)
			tb.createTopic("t", 1, nil)
			var armed atomic.Bool
			node.SetPanicHook(tb.b, func(g string) {
				if g == goroutine && armed.CompareAndSwap(true, false) {
					panic("injected " + g + " failure")
				}
			})
			rs := tb.stream()
			armed.Store(true)
			if goroutine == "pusher" {
				rs.send(wire.APISubscribe, &wire.SubscribeRequest{Credit: 1 << 20, Partitions: []wire.SubscribePartition{{Topic: "t"}}})
			} else {
				rs.send(wire.APIMetadata, &wire.MetadataRequest{})
			}
			// The subscribe response may or may not beat the reset.
			var err error
			for range 2 {
				if _, err = rs.fr.Next(); err != nil {
					break
				}
			}
			se, ok := errors.AsType[*quic.StreamError](err)
			if !ok || se.ErrorCode != quicnet.StreamCodeInternal {
				t.Fatalf("stream ended with %v, want a reset with StreamCodeInternal", err)
			}
			if n := node.PanicsRecovered(tb.b, goroutine); n != 1 {
				t.Fatalf("panics counted %d, want 1", n)
			}
			var md wire.MetadataResponse
			tb.stream().call(wire.APIMetadata, &wire.MetadataRequest{}, &md)
			if md.Error != wire.ErrNone || len(md.Topics) != 1 {
				t.Fatalf("metadata after the panic: %+v", md)
			}
		})
	}
}

// Shutdown returns nil within its context whatever clients do: a subscriber
// that never reads nor closes, one that stops reading mid-stream, and one
// that reads and is told BROKER_SHUTTING_DOWN.
func TestShutdownWithUnresponsiveClients(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("t", 1, nil)
	subscribe := func(rs *rawStream, credit int64, offset int64) {
		t.Helper()
		var sr wire.SubscribeResponse
		rs.call(wire.APISubscribe, &wire.SubscribeRequest{Credit: credit, Partitions: []wire.SubscribePartition{{Topic: "t", Offset: offset}}}, &sr)
		if sr.Error != wire.ErrNone || sr.Partitions[0].Error != wire.ErrNone {
			t.Fatalf("subscribe: %+v", sr)
		}
	}
	// Silent: subscribes with no credit, then neither reads nor closes.
	subscribe(tb.stream(), 0, wire.OffsetLatest)
	// Stops reading: small receive windows, so the broker's writes to it
	// block once it holds 64 KiB it does not read.
	tlsConf, err := quicnet.ClientTLSConfig(quicnet.TLSFiles{CAFile: quicnet.SelfSignedCertPath(tb.dir)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stalled, err := quicnet.Dial(ctx, tb.b.Addr(), tlsConf, quicnet.Config{MaxStreamReceiveWindow: 64 << 10, MaxConnReceiveWindow: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.CloseWithError(0, "")
	subscribe(openStream(t, stalled), 1<<30, wire.OffsetEarliest)
	// Reads: expects the shutdown end.
	reader := tb.stream()
	subscribe(reader, 1<<30, wire.OffsetLatest)
	ended := make(chan wire.ErrorCode, 1)
	go func() {
		defer close(ended)
		for {
			f, err := reader.fr.Next()
			if err != nil {
				return
			}
			var sd wire.SubscribeData
			if reader.fr.DecodeHeader(&f, &sd) == nil && sd.Error != wire.ErrNone {
				ended <- sd.Error
				return
			}
		}
	}()

	rs := tb.stream()
	big := batch(t, strings.Repeat("v", 100<<10), 1, wire.CodecNone)
	for range 10 {
		if r := produce(t, rs, "t", 0, bytes.Clone(big)); r.Error != wire.ErrNone {
			t.Fatalf("produce: %+v", r)
		}
	}
	// The stalled subscriber has been sent data: its stream is filling up.
	awaitCondition(t, func() bool { return node.BytesSent(tb.b) > 64<<10 })

	sctx, scancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer scancel()
	if err := tb.b.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if code := <-ended; code != wire.ErrBrokerShuttingDown {
		t.Fatalf("the reading subscriber got %v, want BROKER_SHUTTING_DOWN", code)
	}
}

// /metrics carries HELP and TYPE for every family, the families operators
// dashboard, and passes `promtool check metrics` when promtool is installed
// (CI installs it and sets RAFKA_REQUIRE_PROMTOOL=1).
func TestMetricsExposition(t *testing.T) {
	tb := startBroker(t, func(c *node.Config) { c.AdminListen = "127.0.0.1:0" })
	tb.createTopic("m", 1, map[string]string{node.ConfigSegmentBytes: "1048576", node.ConfigRetentionBytes: "1048576", node.ConfigMaxMessageBytes: "1048576"})
	rs := tb.stream()
	big := batch(t, strings.Repeat("x", 100<<10), 1, wire.CodecNone)
	for range 30 {
		if r := produce(t, rs, "m", 0, bytes.Clone(big)); r.Error != wire.ErrNone {
			t.Fatalf("produce: %+v", r)
		}
	}
	if r := produce(t, rs, "m", 0, batch(t, "k", 3, wire.CodecNone)); r.Error != wire.ErrNone {
		t.Fatalf("produce: %+v", r)
	}
	tb.b.EnforceRetention()
	_, offs, _ := fetch(t, rs, "m", 0, 30)
	if len(offs) != 3 {
		t.Fatalf("fetched %v", offs)
	}
	produce(t, rs, "nope", 0, batch(t, "k", 1, wire.CodecNone))

	body := scrape(t, tb)
	for _, want := range []string{
		`rafka_node_requests_total{api="produce"} 32`,
		`rafka_node_request_errors_total{api="produce",code="UNKNOWN_TOPIC_OR_PARTITION"} 1`,
		`rafka_topic_received_records_total{topic="m"} 33`,
		`rafka_topic_sent_records_total{topic="m"} 3`,
		`rafka_topic_received_bytes_total{topic="m"}`,
		`rafka_topic_sent_bytes_total{topic="m"}`,
		`rafka_partition_log_end_offset{topic="m",partition="0"} 33`,
		"rafka_node_offline_partitions 0",
		"rafka_node_subscriptions 0",
		`rafka_node_panics_recovered_total{goroutine="pusher"} 0`,
		"rafka_quic_open_connections 1",
		"rafka_quic_refused_connections_total 0",
		"rafka_node_frame_memory_bytes",
		"rafka_raft_groups ",
		"rafka_raft_groups_quiesced ",
		"rafka_raft_peers_suspected 0",
		"rafka_raft_groups_failed_total 0",
		"# HELP rafka_segment_rolls_total ",
		"# TYPE rafka_segment_fsync_duration_seconds histogram",
		"process_open_fds",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, name := range []string{"rafka_segment_rolls_total", "rafka_segment_retention_deleted_segments_total", "rafka_segment_retention_deleted_bytes_total"} {
		if v := sample(body, name); v <= 0 {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
	// Every family has a non-empty help text and a type.
	helped := map[string]bool{}
	for line := range strings.Lines(body) {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" {
			switch f[1] {
			case "HELP":
				helped[f[2]] = len(f) > 3
				if strings.HasPrefix(f[2], "rafka_") && strings.Contains(line, "VictoriaMetrics") {
					t.Errorf("%s was never described: %s", f[2], line)
				}
			case "TYPE":
				if !helped[f[2]] {
					t.Errorf("%s has no help text", f[2])
				}
			}
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("RAFKA_REQUIRE_PROMTOOL") != "" {
			t.Fatal("promtool not found, and RAFKA_REQUIRE_PROMTOOL is set")
		}
		t.Skip("promtool not installed; the exposition was checked for HELP and TYPE only")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

func scrape(t *testing.T, tb *testBroker) string {
	t.Helper()
	if tb.b.AdminAddr() == "" {
		return string(node.Metrics(tb.b))
	}
	resp, err := http.Get("http://" + tb.b.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	return string(body)
}

// sample returns the value of the unlabelled sample name in an exposition.
func sample(body, name string) float64 {
	for line := range strings.Lines(body) {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v
		}
	}
	return -1
}

// A client that sends fetches and never reads the answers cannot make the
// broker pile up copies of ring data: they are charged to its connection's
// budget, and past it reads are served as views of the segment.
func TestUnreadFetchesAreCharged(t *testing.T) {
	const connLimit = 20 << 20 // above the default frame limit
	tb := startBroker(t, func(c *node.Config) {
		c.MaxConnFrameMemory = connLimit
		c.MaxFrameMemory = 2 * connLimit
	})
	tb.createTopic("t", 1, nil)
	if r := produce(t, tb.stream(), "t", 0, batch(t, strings.Repeat("v", 900<<10), 1, wire.CodecNone)); r.Error != wire.ErrNone {
		t.Fatalf("produce: %+v", r)
	}
	tlsConf, err := quicnet.ClientTLSConfig(quicnet.TLSFiles{CAFile: quicnet.SelfSignedCertPath(tb.dir)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Small receive windows: the broker's writes stall at once.
	conn, err := quicnet.Dial(ctx, tb.b.Addr(), tlsConf, quicnet.Config{MaxStreamReceiveWindow: 64 << 10, MaxConnReceiveWindow: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	others, _ := node.FrameMemory(tb.b) // what other connections hold
	for range 4 {
		rs := openStream(t, conn)
		for range 66 {
			rs.send(wire.APIFetch, &wire.FetchRequest{Topic: "t", MaxBytes: 1 << 20})
		}
	}
	// The copies fill the connection's budget (before they were not
	// charged at all) and never pass it.
	awaitCondition(t, func() bool { now, _ := node.FrameMemory(tb.b); return now-others >= connLimit-(1<<20) })
	if _, peak := node.FrameMemory(tb.b); peak-others > connLimit {
		t.Fatalf("charged %d bytes, the connection's budget is %d", peak-others, connLimit)
	}
	// The broker still serves others in full.
	if resp, offs, _ := fetch(t, tb.stream(), "t", 0, 0); resp.Error != wire.ErrNone || len(offs) != 1 {
		t.Fatalf("fetch from another connection: %+v, %d records", resp, len(offs))
	}
}

// A frame that does not arrive within FrameTimeout of its length ends its
// stream with REQUEST_TIMED_OUT and gives its memory back; a stream idle
// between frames is not timed out.
func TestFrameTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	tb := startBroker(t, func(c *node.Config) { c.FrameTimeout = timeout })
	tb.createTopic("t", 1, nil)
	before, _ := node.FrameMemory(tb.b)

	rs := tb.stream()
	var prefix [4]byte
	binary.LittleEndian.PutUint32(prefix[:], 1<<20)
	rs.s.Write(append(prefix[:], make([]byte, 4<<10)...)) // and nothing more
	var er wire.ErrorResponse
	if f := rs.recv(&er); er.Error != wire.ErrRequestTimedOut || f.API != 0 {
		t.Fatalf("slow frame: api %d %+v", f.API, er)
	}
	awaitCondition(t, func() bool { now, _ := node.FrameMemory(tb.b); return now <= before })

	idle := tb.stream()
	if r := produce(t, idle, "t", 0, batch(t, "a", 1, wire.CodecNone)); r.Error != wire.ErrNone {
		t.Fatalf("produce: %+v", r)
	}
	time.Sleep(3 * timeout) // idle between frames, longer than the frame timeout
	if r := produce(t, idle, "t", 0, batch(t, "b", 1, wire.CodecNone)); r.Error != wire.ErrNone {
		t.Fatalf("produce after an idle spell: %+v", r)
	}
}
