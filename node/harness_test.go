package node_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/rafka/rafka/node"
	"github.com/rafka/rafka/quicnet"
	"github.com/rafka/rafka/wire"
)

// testBroker is a real broker on loopback with a raw protocol connection.
type testBroker struct {
	t    *testing.T
	b    *node.Broker
	dir  string
	conn *quic.Conn
}

func startBroker(t *testing.T, mutate ...func(*node.Config)) *testBroker {
	t.Helper()
	return startBrokerIn(t, t.TempDir(), mutate...)
}

func startBrokerIn(t *testing.T, dir string, mutate ...func(*node.Config)) *testBroker {
	t.Helper()
	// Small segments: tests roll them quickly.
	cfg := node.Config{DataDir: dir, Listen: "127.0.0.1:0", TopicDefaults: node.TopicConfig{SegmentBytes: 4 << 20}}
	for _, m := range mutate {
		m(&cfg)
	}
	b, err := node.New(cfg)
	if err != nil {
		t.Fatalf("node.New: %v", err)
	}
	if err := b.Start(); err != nil {
		b.Shutdown(context.Background())
		t.Fatalf("Start: %v", err)
	}
	tb := &testBroker{t: t, b: b, dir: dir}
	tb.conn = tb.dial()
	t.Cleanup(tb.stop)
	return tb
}

func (tb *testBroker) dial() *quic.Conn {
	tb.t.Helper()
	tlsConf, err := quicnet.ClientTLSConfig(quicnet.TLSFiles{CAFile: quicnet.SelfSignedCertPath(tb.dir)})
	if err != nil {
		tb.t.Fatalf("client tls: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := quicnet.Dial(ctx, tb.b.Addr(), tlsConf, quicnet.Config{})
	if err != nil {
		tb.t.Fatalf("dial: %v", err)
	}
	tb.t.Cleanup(func() { conn.CloseWithError(0, "") })
	return conn
}

// stop shuts the broker down; idempotent.
func (tb *testBroker) stop() {
	if tb.conn != nil {
		tb.conn.CloseWithError(0, "")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tb.b.Shutdown(ctx); err != nil {
		tb.t.Errorf("Shutdown: %v", err)
	}
}

// rawStream is one QUIC stream speaking frames.
type rawStream struct {
	t    *testing.T
	s    *quic.Stream
	fr   *wire.FrameReader
	fw   *wire.FrameWriter
	corr uint32
}

func (tb *testBroker) stream() *rawStream {
	tb.t.Helper()
	return openStream(tb.t, tb.conn)
}

func openStream(t *testing.T, conn *quic.Conn) *rawStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	s.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { s.CancelRead(0); s.Close() })
	return &rawStream{t: t, s: s, fr: wire.NewFrameReader(s, 0), fw: wire.NewFrameWriter(s)}
}

func (rs *rawStream) send(api wire.API, hdr any, payload ...[]byte) uint32 {
	rs.t.Helper()
	rs.corr++
	if err := rs.fw.WriteFrame(wire.FrameHeader{API: api, Version: wire.Version, Corr: rs.corr}, hdr, payload...); err != nil {
		rs.t.Fatalf("write %s: %v", api, err)
	}
	return rs.corr
}

// recv reads the next frame, decodes its header into hdr and returns the
// frame (payload valid until the next recv).
func (rs *rawStream) recv(hdr any) wire.Frame {
	rs.t.Helper()
	f, err := rs.fr.Next()
	if err != nil {
		rs.t.Fatalf("read frame: %v", err)
	}
	if err := rs.fr.DecodeHeader(&f, hdr); err != nil {
		rs.t.Fatalf("decode %T: %v", hdr, err)
	}
	return f
}

// call sends one request and decodes its response, checking the correlation.
func (rs *rawStream) call(api wire.API, req, resp any, payload ...[]byte) wire.Frame {
	rs.t.Helper()
	corr := rs.send(api, req, payload...)
	f := rs.recv(resp)
	if f.API != api || f.Corr != corr {
		rs.t.Fatalf("response api %s corr %d, want %s corr %d", f.API, f.Corr, api, corr)
	}
	return f
}

// expectEnd checks that the broker closed the stream.
func (rs *rawStream) expectEnd() {
	rs.t.Helper()
	_, err := rs.fr.Next()
	var se *quic.StreamError
	if !errors.Is(err, io.EOF) && !errors.As(err, &se) {
		rs.t.Fatalf("stream still open or failed oddly: %v", err)
	}
}

func (tb *testBroker) createTopic(name string, partitions int32, configs map[string]string) {
	tb.t.Helper()
	var resp wire.ErrorResponse
	tb.stream().call(wire.APICreateTopic, &wire.CreateTopicRequest{Name: name, Partitions: partitions, Configs: configs}, &resp)
	if resp.Error != wire.ErrNone {
		tb.t.Fatalf("create topic %s: %s %s", name, resp.Error, resp.Message)
	}
}

// batch builds a batch of n records "<prefix>-<i>".
func batch(t *testing.T, prefix string, n int, codec wire.Codec) []byte {
	t.Helper()
	bb := wire.NewBatchBuilder()
	ts := time.Now().UnixMilli()
	for i := range n {
		bb.Append(ts, []byte(prefix), []byte(prefix+"-"+itoa(i)), nil)
	}
	b, err := bb.Build(codec)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), b...)
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// records decodes every record of the batches in payload at or after from.
func records(t *testing.T, payload []byte, from int64) (offsets []int64, values []string) {
	t.Helper()
	bi := wire.NewBatchIter(payload, 0)
	for {
		b, _, ok := bi.Next()
		if !ok {
			break
		}
		var it wire.RecordIter
		if err := it.Reset(b); err != nil {
			t.Fatalf("batch: %v", err)
		}
		var r wire.Record
		for it.Next(&r) {
			if r.Offset >= from {
				offsets = append(offsets, r.Offset)
				values = append(values, string(r.Value))
			}
		}
		if err := it.Err(); err != nil {
			t.Fatalf("records: %v", err)
		}
	}
	if err := bi.Err(); err != nil {
		t.Fatalf("batches: %v", err)
	}
	return offsets, values
}
