package client_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/rafka/rafka/client"
	"github.com/rafka/rafka/node"
	"github.com/rafka/rafka/quicnet"
	"github.com/rafka/rafka/wire"
)

// Tests of the client under faults: brokers that are absent, silent or
// answer with errors.

// closedPort returns a loopback UDP address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	return addr
}

// watchdog runs fn and fails the test if it has not returned when the
// generous bound d is over (a hang, not a slow machine).
func watchdog[T any](t *testing.T, d time.Duration, fn func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- fn() }()
	select {
	case v := <-done:
		return v
	case <-time.After(d):
		t.Fatalf("still running after %v", d)
		panic("unreachable")
	}
}

// New against a port nothing listens on gives up within the control
// timeout, retries included, and says so in one readable line.
func TestNewWithoutBrokerFailsWithinTimeout(t *testing.T) {
	addr := closedPort(t)
	err := watchdog(t, 20*time.Second, func() error {
		c, err := client.New(context.Background(), client.WithBrokers(addr),
			client.WithInsecureSkipVerify(),
			client.WithControlTimeout(300*time.Millisecond),
			// Many quick retries: without a bound on the whole bootstrap
			// they alone would take minutes.
			client.WithControlRetries(1000), client.WithControlBackoff(time.Millisecond, 10*time.Millisecond))
		if err == nil {
			c.Close()
		}
		return err
	})
	if !errors.Is(err, client.ErrNoBrokers) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("New = %v, want ErrNoBrokers and context.DeadlineExceeded", err)
	}
	msg := err.Error()
	if want := "client: bootstrap: dial " + addr + ": no answer within "; !strings.HasPrefix(msg, want) ||
		!strings.HasSuffix(msg, " (is a broker running?)") || strings.Count(msg, "client:") != 1 {
		t.Fatalf("message %q, want %q...(is a broker running?) with the package named once", msg, want)
	}

	// The caller's deadline bounds it too.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = watchdog(t, 20*time.Second, func() error {
		_, err := client.New(ctx, client.WithBrokers(addr), client.WithInsecureSkipVerify(),
			client.WithControlRetries(1000), client.WithControlBackoff(time.Millisecond, 10*time.Millisecond))
		return err
	})
	if !errors.Is(err, client.ErrNoBrokers) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("New with a deadline = %v", err)
	}
}

// proxiedBroker starts a broker that advertises a proxy's address, so that
// every connection of the client goes through the proxy.
func proxiedBroker(t *testing.T) (*testBroker, *udpProxy) {
	t.Helper()
	px := newUDPProxy(t)
	tb := startBrokerWith(t, node.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", AdvertisedAddr: px.addr()})
	px.start(tb.addr)
	return tb, px
}

// After a broker dies without a word (here: its old connections' packets
// vanish, as after SIGKILL and restart), a request that times out makes the
// client drop that connection: the next attempt dials anew and succeeds,
// well before the connection's idle timeout would have ended it.
func TestSilentConnectionIsReplaced(t *testing.T) {
	tb, px := proxiedBroker(t)
	// Timeouts far below the idle timeout (30s), and long enough for a
	// handshake on a loaded machine.
	c := tb.client(client.WithBrokers(px.addr()),
		client.WithControlTimeout(time.Second),
		client.WithControlRetries(3), client.WithControlBackoff(10*time.Millisecond, 50*time.Millisecond))
	ctx := testCtx(t)
	createTopic(t, c, "quiet", 1)
	p := newProducer(t, c, client.WithRequestTimeout(time.Second),
		client.WithRetries(3), client.WithRetryBackoff(10*time.Millisecond, 50*time.Millisecond))
	if err := p.ProduceSync(ctx, &client.Record{Topic: "quiet", Value: []byte("before")}); err != nil {
		t.Fatal(err)
	}

	// The producer's stream goes silent: its request times out and the
	// retry goes over a new connection.
	px.blackholeExisting()
	r := &client.Record{Topic: "quiet", Value: []byte("after")}
	if err := p.ProduceSync(ctx, r); err != nil {
		t.Fatalf("produce after the connection went silent: %v", err)
	}

	// Same for control requests.
	px.blackholeExisting()
	topics, err := c.ListTopics(ctx)
	if err != nil || len(topics) != 1 {
		t.Fatalf("ListTopics after the connection went silent: %v %v", topics, err)
	}
	if got := values(consume(t, c, 2, client.Assignment{Topic: "quiet"})); fmt.Sprint(got) != "[before after]" {
		t.Fatalf("log holds %v", got)
	}
}

// When the broker is unreachable long enough for the producer's metadata
// refresh to time out, the queued records are not failed at once: the
// producer retries within WithRetries and delivers them once the broker is
// back.
func TestProducerRetriesTimedOutMetadataRefresh(t *testing.T) {
	tb, px := proxiedBroker(t)
	c := tb.client(client.WithBrokers(px.addr()), client.WithControlTimeout(time.Second),
		client.WithControlRetries(1), client.WithControlBackoff(10*time.Millisecond, 20*time.Millisecond))
	ctx := testCtx(t)
	createTopic(t, c, "patient", 1)
	p := newProducer(t, c, client.WithRequestTimeout(time.Second),
		client.WithRetries(1000), client.WithRetryBackoff(10*time.Millisecond, 50*time.Millisecond))
	if err := p.ProduceSync(ctx, &client.Record{Topic: "patient", Value: []byte("0")}); err != nil {
		t.Fatal(err)
	}

	px.setDropAll(true)
	const n = 20
	var (
		mu     sync.Mutex
		errs   []error
		doneN  int
		failed = make(chan struct{}, n)
		done   = make(chan struct{})
	)
	for i := 1; i <= n; i++ {
		err := p.Produce(ctx, &client.Record{Topic: "patient", Value: fmt.Appendf(nil, "%d", i)}, func(_ *client.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				failed <- struct{}{}
			}
			if doneN++; doneN == n {
				close(done)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Wait until the producer has redialed several times (each metadata
	// refresh timing out), or until it gave up on a record.
	flows, _ := px.flowCount()
	for {
		k, next := px.flowCount()
		if k >= flows+3 {
			break
		}
		select {
		case <-next:
		case <-failed:
			mu.Lock()
			t.Fatalf("a record failed while the broker was unreachable: %v", errs[0])
		case <-ctx.Done():
			t.Fatal("the producer stopped trying")
		}
	}
	px.setDropAll(false)
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("records not delivered after the broker came back")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) > 0 {
		t.Fatalf("%d records failed, first: %v", len(errs), errs[0])
	}
}

// Closing an acks=none producer sends everything it holds before it
// returns: the broker has appended every record by then, even when the
// client is closed right after (as a command-line producer does).
func TestAcksNoneCloseDeliversEverything(t *testing.T) {
	tb := startBroker(t)
	setup := tb.client()
	createTopic(t, setup, "fire", 1)
	ctx := testCtx(t)
	const rounds, perRound = 20, 5
	for round := range rounds {
		c := tb.client()
		p, err := c.NewProducer(client.WithAcks(client.AcksNone))
		if err != nil {
			t.Fatal(err)
		}
		for i := range perRound {
			if err := p.Produce(ctx, &client.Record{Topic: "fire", Partition: 0, Value: fmt.Appendf(nil, "%d-%d", round, i)}, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		c.Close()
		end, err := setup.ListOffset(ctx, "fire", 0, wire.OffsetLatest)
		if err != nil || end != int64((round+1)*perRound) {
			t.Fatalf("round %d: log end offset %d (%v) after Close, want %d", round, end, err, (round+1)*perRound)
		}
	}
}

// When the broker cannot be confirmed to have read an acks=none producer's
// records, Close says so instead of returning nil.
func TestAcksNoneCloseReportsUnconfirmed(t *testing.T) {
	tb, px := proxiedBroker(t)
	c := tb.client(client.WithBrokers(px.addr()))
	createTopic(t, c, "lost", 1)
	ctx := testCtx(t)
	p, err := c.NewProducer(client.WithAcks(client.AcksNone), client.WithRequestTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &client.Record{Topic: "lost", Value: []byte("written")}); err != nil {
		t.Fatal(err)
	}
	px.setDropAll(true)
	if err := p.Close(ctx); err == nil || !strings.Contains(err.Error(), "client: close: ") {
		t.Fatalf("Close with the broker unreachable = %v, want an error", err)
	} else {
		t.Log(err)
	}
}

// fakeBroker answers metadata for one topic, and produce and subscribe
// requests as its fields say. It lets tests script answers a real broker
// gives only in rare states.
type fakeBroker struct {
	srv   *quicnet.Server
	addr  string
	topic string
	parts int32

	// produceErr answers every produce (acks != none) and list offsets, with
	// the leader hint produceHintID/produceHintAddr.
	produceErr                     wire.ErrorCode
	produceMsg                     string
	produceHintID, produceHintAddr string
	// zone is the broker's zone in metadata; offline makes metadata report
	// every partition offline; clusterInfo answers cluster info.
	zone        string
	offline     atomic.Bool
	clusterInfo wire.ClusterInfoResponse
	// Requests served, by kind.
	metadataCalls, produceCalls atomic.Int32
	// subscribe returns the result for a partition subscribed at offset and
	// the data frames' payloads to push after it.
	subscribe func(partition int32, offset int64) (wire.SubscribePartitionResult, [][]byte)
	// leader, when set, names the partitions' leader (broker id, address,
	// term) in metadata answers, which then list it among the brokers.
	leader func() (id, addr string, term uint64)
	// produce, when set, answers produce requests instead of produceErr;
	// payload is the request's (a copy).
	produce func(req *wire.ProduceRequest, payload []byte) *wire.ProduceResponse
	// verify, when set, answers verify requests.
	verify func(req *wire.VerifyRequest) *wire.VerifyResponse
	// topicErr, when set, gives the topic's error in the answer to the
	// n-th metadata request naming it (from 1); the topic then has no
	// partitions, and the answers to the others leave it out.
	topicErr   func(n int32) wire.ErrorCode
	topicCalls atomic.Int32
}

func startFakeBroker(t *testing.T, fb *fakeBroker) *fakeBroker {
	t.Helper()
	tlsConf, err := quicnet.ServerTLSConfig(quicnet.TLSFiles{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := quicnet.Listen("127.0.0.1:0", tlsConf, quicnet.Config{}, quicnet.HandlerFunc(fb.serve))
	if err != nil {
		t.Fatal(err)
	}
	fb.srv, fb.addr = srv, srv.Addr().String()
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve()
	}()
	t.Cleanup(func() {
		srv.Close()
		<-served
	})
	return fb
}

// client returns a client of the fake broker, closed when the test ends.
func (fb *fakeBroker) client(t *testing.T, ctx context.Context, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(ctx, append([]client.Option{client.WithBrokers(fb.addr), client.WithInsecureSkipVerify()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (fb *fakeBroker) serve(ctx context.Context, _ *quic.Conn, st *quic.Stream) {
	fr := wire.NewFrameReader(st, wire.DefaultMaxFrameSize)
	fw := wire.NewFrameWriter(st)
	for {
		f, err := fr.Next()
		if err != nil {
			return
		}
		fh := wire.FrameHeader{API: f.API, Version: wire.Version, Corr: f.Corr}
		switch f.API {
		case wire.APIMetadata:
			fb.metadataCalls.Add(1)
			tm := wire.TopicMetadata{Name: fb.topic}
			if fb.topicErr != nil {
				var req wire.MetadataRequest
				if fr.DecodeHeader(&f, &req) != nil {
					return
				}
				resp := &wire.MetadataResponse{Brokers: []wire.BrokerInfo{{ID: "fake", Addr: fb.addr}}}
				if !slices.Contains(req.Topics, fb.topic) {
					fw.WriteFrame(fh, resp)
					continue
				}
				if tm.Error = fb.topicErr(fb.topicCalls.Add(1)); tm.Error != wire.ErrNone {
					tm.Message = "from the test"
					resp.Topics = []wire.TopicMetadata{tm}
					fw.WriteFrame(fh, resp)
					continue
				}
			}
			brokers := []wire.BrokerInfo{{ID: "fake", Addr: fb.addr, Zone: fb.zone}}
			leader, term := "fake", uint64(0)
			if fb.leader != nil {
				var addr string
				leader, addr, term = fb.leader()
				brokers = append(brokers, wire.BrokerInfo{ID: leader, Addr: addr})
			}
			for i := range fb.parts {
				start, end := wire.PartitionRange(i, fb.parts)
				pm := wire.PartitionMetadata{Partition: i, Leader: leader, Term: term, HashStart: start, HashEnd: end}
				if fb.offline.Load() {
					pm.Error = wire.ErrPartitionOffline
				}
				tm.Partitions = append(tm.Partitions, pm)
			}
			fw.WriteFrame(fh, &wire.MetadataResponse{Brokers: brokers, Topics: []wire.TopicMetadata{tm}})
		case wire.APIProduce:
			var req wire.ProduceRequest
			if fr.DecodeHeader(&f, &req) != nil {
				return
			}
			fb.produceCalls.Add(1)
			if fb.produce != nil {
				if resp := fb.produce(&req, append([]byte(nil), f.Payload...)); resp != nil && req.Acks != wire.AcksNone {
					fw.WriteFrame(fh, resp)
				}
				continue
			}
			if req.Acks != wire.AcksNone {
				fw.WriteFrame(fh, &wire.ProduceResponse{Error: fb.produceErr, Message: fb.produceMsg,
					LeaderID: fb.produceHintID, LeaderAddr: fb.produceHintAddr, BaseOffset: -1, LastOffset: -1})
			}
		case wire.APIListOffsets:
			fw.WriteFrame(fh, &wire.ListOffsetsResponse{Error: fb.produceErr, Message: fb.produceMsg,
				LeaderID: fb.produceHintID, LeaderAddr: fb.produceHintAddr, Offset: 42})
			return
		case wire.APIClusterInfo:
			fw.WriteFrame(fh, &fb.clusterInfo)
			return
		case wire.APIVerify:
			var req wire.VerifyRequest
			if fr.DecodeHeader(&f, &req) != nil || fb.verify == nil {
				return
			}
			fw.WriteFrame(fh, fb.verify(&req))
			return
		case wire.APISubscribe:
			var req wire.SubscribeRequest
			if fr.DecodeHeader(&f, &req) != nil {
				return
			}
			var resp wire.SubscribeResponse
			var data []wire.SubscribeData
			var payloads [][]byte
			for _, sp := range req.Partitions {
				res, ps := fb.subscribe(sp.Partition, sp.Offset)
				resp.Partitions = append(resp.Partitions, res)
				for _, pl := range ps {
					data = append(data, wire.SubscribeData{Topic: sp.Topic, Partition: sp.Partition})
					payloads = append(payloads, pl)
				}
			}
			fw.WriteFrame(fh, &resp)
			for i := range data {
				fw.WriteFrame(wire.FrameHeader{API: wire.APISubscribeData, Version: wire.Version, Corr: f.Corr}, &data[i], payloads[i])
			}
			// Credit frames follow; read them until the consumer leaves.
			for {
				if _, err := fr.Next(); err != nil {
					return
				}
			}
		default:
			return
		}
	}
}

// A partition whose log cannot be opened is offline: the producer fails its
// records at once (no retries), and a consumer reports it at once, naming
// the partition and the broker's reason.
func TestPartitionOffline(t *testing.T) {
	const reason = "partition offline/0 is offline: segment 00000000000000000100.log missing"
	fb := startFakeBroker(t, &fakeBroker{topic: "offline", parts: 1,
		produceErr: wire.ErrPartitionOffline, produceMsg: reason,
		subscribe: func(int32, int64) (wire.SubscribePartitionResult, [][]byte) {
			return wire.SubscribePartitionResult{Error: wire.ErrPartitionOffline, Message: reason}, nil
		}})
	ctx := testCtx(t)
	c := fb.client(t, ctx)
	// Retries would take about an hour: only an immediate failure passes.
	p, err := c.NewProducer(client.WithRetries(100), client.WithRetryBackoff(time.Minute, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	err = p.ProduceSync(ctx, &client.Record{Topic: "offline", Partition: 0, Value: []byte("x")})
	if !errors.Is(err, client.ErrPartitionOffline) || !strings.Contains(err.Error(), "offline/0") || !strings.Contains(err.Error(), "segment") {
		t.Fatalf("produce to an offline partition = %v", err)
	}

	cs, err := c.NewConsumer(client.WithResubscribeBackoff(time.Minute, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	err = cs.Assign(ctx, client.Assignment{Topic: "offline", Partition: 0})
	if !errors.Is(err, client.ErrPartitionOffline) || !strings.Contains(err.Error(), "offline/0") || !strings.Contains(err.Error(), "segment") {
		t.Fatalf("assign an offline partition = %v", err)
	}
	if strings.Count(err.Error(), "client:") != 1 {
		t.Fatalf("message %q names the package more than once", err)
	}
}

// A partition that keeps failing with a retriable error is given up after
// WithResubscribeRetries, and Poll reports the broker's reason, not just
// that no broker was reachable.
func TestConsumerGivesUpWithTheCause(t *testing.T) {
	fb := startFakeBroker(t, &fakeBroker{topic: "flaky", parts: 1,
		subscribe: func(int32, int64) (wire.SubscribePartitionResult, [][]byte) {
			return wire.SubscribePartitionResult{Error: wire.ErrStorage, Message: "disk on fire"}, nil
		}})
	ctx := testCtx(t)
	c := fb.client(t, ctx)
	cs, err := c.NewConsumer(client.WithResubscribeRetries(2), client.WithResubscribeBackoff(time.Millisecond, 2*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if err := cs.Assign(ctx, client.Assignment{Topic: "flaky", Partition: 0}); err != nil {
		t.Fatalf("Assign: %v (a retriable failure is retried in the background)", err)
	}
	_, err = cs.Poll(ctx)
	if !errors.Is(err, client.ErrStorage) || !strings.Contains(err.Error(), "disk on fire") || !strings.Contains(err.Error(), "flaky/0") {
		t.Fatalf("Poll = %v, want the partition's last error", err)
	}
}

// A corrupt batch reaches the application as an error after the records
// before it; the partition waits, and Seek to the error's Next skips it.
func TestConsumerSkipsCorruptBatch(t *testing.T) {
	good := buildBatch(t, 0, "a", "b")
	bad := withRecordCount(buildBatch(t, 2, "c"), 1<<31-1)
	after := buildBatch(t, 2+1<<31-1, "d")
	fb := startFakeBroker(t, &fakeBroker{topic: "rotten", parts: 1,
		subscribe: func(_ int32, off int64) (wire.SubscribePartitionResult, [][]byte) {
			if off < 2 {
				return wire.SubscribePartitionResult{Offset: off}, [][]byte{append(append([]byte(nil), good...), bad...)}
			}
			return wire.SubscribePartitionResult{Offset: off}, [][]byte{after}
		}})
	ctx := testCtx(t)
	c := fb.client(t, ctx)
	cs, err := c.NewConsumer()
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if err := cs.Assign(ctx, client.Assignment{Topic: "rotten", Partition: 0, Start: client.AtOffset(0)}); err != nil {
		t.Fatal(err)
	}
	recs, err := cs.Poll(ctx)
	if err != nil || fmt.Sprint(values(recs)) != "[a b]" {
		t.Fatalf("first Poll = %q, %v; want the records before the bad batch", values(recs), err)
	}
	_, err = cs.Poll(ctx)
	var cbe *client.CorruptBatchError
	if !errors.As(err, &cbe) || !errors.Is(err, wire.ErrCorruptBatch) || !errors.Is(err, client.ErrCorruptBatch) {
		t.Fatalf("second Poll = %v, want a corrupt batch error", err)
	}
	if cbe.Topic != "rotten" || cbe.Partition != 0 || cbe.Offset != 2 || cbe.Next != 2+1<<31-1 {
		t.Fatalf("error %+v", cbe)
	}
	if err := cs.Seek(ctx, cbe.Topic, cbe.Partition, cbe.Next); err != nil {
		t.Fatalf("Seek: %v", err)
	}
	recs, err = cs.Poll(ctx)
	if err != nil || fmt.Sprint(values(recs)) != "[d]" || recs[0].Offset != cbe.Next {
		t.Fatalf("Poll after Seek = %q, %v", values(recs), err)
	}
}

// buildBatch encodes one batch of values at base.
func buildBatch(t *testing.T, base int64, vals ...string) []byte {
	t.Helper()
	b := wire.NewBatchBuilder()
	for i, v := range vals {
		b.Append(int64(1000+i), nil, []byte(v), nil)
	}
	out, err := b.Build(wire.CodecNone)
	if err != nil {
		t.Fatal(err)
	}
	wire.SetBaseOffset(out, base)
	return out
}

// withRecordCount rewrites a batch's record count and seals it again with a
// valid checksum: it passes every check but its records'.
func withRecordCount(b []byte, n int32) []byte {
	const offRecordCount, offChecksum = 30, 20
	b = append([]byte(nil), b...)
	binary.LittleEndian.PutUint32(b[offRecordCount:], uint32(n))
	binary.LittleEndian.PutUint64(b[offChecksum:], wire.BatchChecksum(b))
	return b
}

// Verify asks again, after a pause, for the partitions a broker could not
// check for a retriable reason (no leader yet), and keeps the other
// partitions' first answers; a partition that stays unchecked past the
// retries keeps its error.
func TestVerifyAsksAgainForPartitionsWithoutLeader(t *testing.T) {
	var calls atomic.Int32
	var asked [][]int32
	var mu sync.Mutex
	fb := startFakeBroker(t, &fakeBroker{topic: "v", parts: 3,
		verify: func(req *wire.VerifyRequest) *wire.VerifyResponse {
			n := calls.Add(1)
			mu.Lock()
			asked = append(asked, slices.Clone(req.Partitions))
			mu.Unlock()
			parts := req.Partitions
			if len(parts) == 0 {
				parts = []int32{0, 1, 2}
			}
			var resp wire.VerifyResponse
			for _, p := range parts {
				vp := wire.VerifyPartition{Partition: p, Leader: "fake", From: 0, To: 10}
				switch {
				case p == 1 && n < 3:
					vp = wire.VerifyPartition{Partition: p, Error: wire.ErrNotLeader, Message: "no leader yet"}
				case p == 2:
					vp = wire.VerifyPartition{Partition: p, Error: wire.ErrPartitionOffline, Message: "offline"}
				}
				resp.Partitions = append(resp.Partitions, vp)
			}
			return &resp
		}})
	ctx := testCtx(t)
	c := fb.client(t, ctx, client.WithControlBackoff(time.Millisecond, time.Millisecond))
	checks, err := c.Verify(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 3 || checks[0].Err != nil || checks[1].Err != nil || checks[1].To != 10 ||
		!errors.Is(checks[2].Err, client.ErrPartitionOffline) {
		t.Fatalf("checks %+v", checks)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 3 || len(asked[0]) != 0 || !slices.Equal(asked[1], []int32{1}) || !slices.Equal(asked[2], []int32{1}) {
		t.Fatalf("asked for %v, want all, then [1] twice", asked)
	}
}

// A topic the broker cannot vouch for yet (METADATA_UNAVAILABLE in its
// metadata answer) is asked for again; a topic it says does not exist is
// not.
func TestTopicMetadataRetriesUnavailableTopic(t *testing.T) {
	for _, tc := range []struct {
		code      wire.ErrorCode
		wantCalls int32
		wantErr   error
	}{
		{wire.ErrMetadataUnavailable, 3, nil},
		{wire.ErrUnknownTopicOrPartition, 1, client.ErrUnknownTopicOrPartition},
	} {
		t.Run(tc.code.String(), func(t *testing.T) {
			fb := startFakeBroker(t, &fakeBroker{topic: "m", parts: 1,
				topicErr: func(n int32) wire.ErrorCode {
					if n < 3 {
						return tc.code
					}
					return wire.ErrNone
				}})
			ctx := testCtx(t)
			c := fb.client(t, ctx, client.WithControlBackoff(time.Millisecond, time.Millisecond))
			p, err := c.NewProducer()
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(ctx)
			err = p.Produce(ctx, &client.Record{Topic: "m", Partition: 0, Value: []byte("v")}, nil)
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Produce: %v, want %v", err, tc.wantErr)
			}
			if n := fb.topicCalls.Load(); n != tc.wantCalls {
				t.Fatalf("%d metadata requests for the topic, want %d", n, tc.wantCalls)
			}
		})
	}
}
