package faultnet

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/rafka/rafka/quicnet"
	"github.com/rafka/rafka/wire"
)

// quicPair is a quicnet server and a connection to it, both over n.
type quicPair struct {
	n              *Network
	srv            *quicnet.Server
	conn           *quic.Conn
	server, client string // endpoint names
}

func startQUIC(t *testing.T, n *Network, h quicnet.Handler) *quicPair {
	t.Helper()
	dir := t.TempDir()
	serverTLS, err := quicnet.ServerTLSConfig(quicnet.TLSFiles{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	clientTLS, err := quicnet.ClientTLSConfig(quicnet.TLSFiles{CAFile: quicnet.SelfSignedCertPath(dir)})
	if err != nil {
		t.Fatal(err)
	}
	return startQUICWith(t, n, h, serverTLS, clientTLS)
}

func startQUICWith(t *testing.T, n *Network, h quicnet.Handler, serverTLS, clientTLS *tls.Config) *quicPair {
	t.Helper()
	cfg := quicnet.Config{Sockets: n}
	srv, err := quicnet.Listen("127.0.0.1:0", serverTLS, cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve() }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-serveErr; !errors.Is(err, quicnet.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := quicnet.Dial(ctx, srv.Addr().String(), clientTLS, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseWithError(quicnet.CodeNormal, "") })
	return &quicPair{n: n, srv: srv, conn: conn, server: srv.Addr().String(), client: conn.LocalAddr().String()}
}

// frameEcho answers every frame of a stream with the same frame, and
// reports each frame it read on got, when set.
func frameEcho(got chan<- uint32) quicnet.Handler {
	return quicnet.HandlerFunc(func(ctx context.Context, conn *quic.Conn, s *quic.Stream) {
		fr := wire.NewFrameReader(s, 0)
		defer fr.Close()
		for {
			f, err := fr.Next()
			if err != nil {
				return
			}
			if got != nil {
				got <- f.Corr
			}
			if _, err := s.Write(wire.AppendFrame(nil, f.FrameHeader, f.Header, f.Payload)); err != nil {
				return
			}
		}
	})
}

// call sends one frame on a stream of its own and reads the echo.
func call(ctx context.Context, conn *quic.Conn, corr uint32, payload []byte) error {
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	defer s.CancelRead(quicnet.StreamCodeDone)
	stop := context.AfterFunc(ctx, func() {
		s.CancelRead(quicnet.StreamCodeDone)
		s.CancelWrite(quicnet.StreamCodeDone)
	})
	defer stop()
	if _, err := s.Write(wire.AppendFrame(nil, wire.FrameHeader{API: 1, Corr: corr}, nil, payload)); err != nil {
		return err
	}
	s.Close()
	fr := wire.NewFrameReader(s, 0)
	defer fr.Close()
	f, err := fr.Next()
	if err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return err
	}
	if f.Corr != corr || string(f.Payload) != string(payload) {
		return errors.New("echo differs from request")
	}
	return nil
}

// callWithin is call bounded by d; cut tests expect it to time out.
func callWithin(conn *quic.Conn, corr uint32, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return call(ctx, conn, corr, []byte("payload"))
}

// How long a call over a cut link is given before it counts as timed out,
// and how long one over a healed link is given to succeed (QUIC backs its
// retransmissions off during the cut).
const (
	cutCallTimeout  = 300 * time.Millisecond
	healCallTimeout = 20 * time.Second
)

func TestQUICCutAndHeal(t *testing.T) {
	p := startQUIC(t, New(1), frameEcho(nil))
	if err := callWithin(p.conn, 1, healCallTimeout); err != nil {
		t.Fatalf("healthy call: %v", err)
	}
	p.n.Cut(p.server, p.client)
	if err := callWithin(p.conn, 2, cutCallTimeout); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call across a cut: %v, want a timeout", err)
	}
	if _, dropped, _ := p.n.Stats(p.client, p.server); dropped == 0 {
		t.Fatal("nothing dropped across the cut")
	}
	p.n.Heal(p.client, p.server)
	if err := callWithin(p.conn, 3, healCallTimeout); err != nil {
		t.Fatalf("call after healing: %v", err)
	}
}

// With the server's answers cut, requests still reach it.
func TestQUICOneWayCut(t *testing.T) {
	got := make(chan uint32, 16)
	p := startQUIC(t, New(1), frameEcho(got))
	if err := callWithin(p.conn, 1, healCallTimeout); err != nil {
		t.Fatalf("healthy call: %v", err)
	}
	<-got
	p.n.CutOneWay(p.server, p.client)
	errc := make(chan error, 1)
	go func() { errc <- callWithin(p.conn, 2, healCallTimeout) }()
	select {
	case corr := <-got:
		if corr != 2 {
			t.Fatalf("server read frame %d, want 2", corr)
		}
	case err := <-errc:
		t.Fatalf("call returned %v before the server read the request", err)
	}
	// The server writes its answer after reporting the frame: wait until
	// the cut has dropped something.
	waitFor(t, "an answer dropped", func() bool {
		_, dropped, _ := p.n.Stats(p.server, p.client)
		return dropped > 0
	})
	if _, dropped, _ := p.n.Stats(p.client, p.server); dropped != 0 {
		t.Fatalf("%d requests dropped on the open direction", dropped)
	}
	// Healing lets the pending answer through.
	p.n.HealAll()
	if err := <-errc; err != nil {
		t.Fatalf("call after healing: %v", err)
	}
}

// sink reads a stream to its end and answers with the byte count and the
// SHA-256 of what it read.
var sink = quicnet.HandlerFunc(func(ctx context.Context, conn *quic.Conn, s *quic.Stream) {
	h := sha256.New()
	n, err := io.Copy(h, s)
	if err != nil {
		return
	}
	s.Write(binary.LittleEndian.AppendUint64(h.Sum(nil), uint64(n)))
})

// transfer sends size random bytes on one stream and checks the sink's
// count and digest.
func transfer(t *testing.T, conn *quic.Conn, size int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	data := make([]byte, size)
	r := rand.NewChaCha8([32]byte{1})
	r.Read(data)
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stop := context.AfterFunc(ctx, func() {
		s.CancelRead(quicnet.StreamCodeDone)
		s.CancelWrite(quicnet.StreamCodeDone)
	})
	defer stop()
	if _, err := s.Write(data); err != nil {
		t.Fatalf("write: %v", err)
	}
	s.Close()
	answer, err := io.ReadAll(s)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	want := sha256.Sum256(data)
	if len(answer) != 40 || string(answer[:32]) != string(want[:]) || binary.LittleEndian.Uint64(answer[32:]) != uint64(size) {
		t.Fatalf("sink answered %x, want %d bytes with digest %x", answer, size, want)
	}
}

func TestQUICTransferWithLoss(t *testing.T) {
	p := startQUIC(t, New(5), sink)
	p.n.SetLoss(p.client, p.server, 0.05)
	p.n.SetLoss(p.server, p.client, 0.05)
	transfer(t, p.conn, 10<<20)
	sent, dropped, _ := p.n.Stats(p.client, p.server)
	t.Logf("client->server: %d datagrams, %d dropped", sent, dropped)
	if dropped == 0 {
		t.Fatal("no datagram lost")
	}
}

func TestQUICTransferWithDelayAndDuplicates(t *testing.T) {
	p := startQUIC(t, New(9), sink)
	for _, l := range [][2]string{{p.client, p.server}, {p.server, p.client}} {
		p.n.SetDelay(l[0], l[1], 2*time.Millisecond, 2*time.Millisecond)
		p.n.SetDuplicate(l[0], l[1], 0.1)
	}
	transfer(t, p.conn, 2<<20)
	if _, _, dup := p.n.Stats(p.client, p.server); dup == 0 {
		t.Fatal("no datagram duplicated")
	}
}

// waitFor polls cond until it holds, failing the test after readTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(readTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling an observable condition
	}
}
