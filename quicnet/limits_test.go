package quicnet

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// A server that crashed (its socket gone without a CONNECTION_CLOSE) and was
// restarted on the same port with the same StatelessResetKey answers the old
// connection's packets with a stateless reset: the client's next stream
// fails at once instead of waiting for the idle timeout.
func TestStatelessResetAfterCrash(t *testing.T) {
	serverTLS, clientTLS := devTLS(t)
	var key quic.StatelessResetKey
	rand.Read(key[:])
	cfg := Config{StatelessResetKey: &key}

	a, err := Listen("127.0.0.1:0", serverTLS, cfg, echo)
	if err != nil {
		t.Fatal(err)
	}
	aServed := make(chan error, 1)
	go func() { aServed <- a.Serve() }()
	addr := a.Addr().String()
	// The client's idle timeout is far beyond the test's deadlines, so only
	// a stateless reset can end the connection in time.
	conn := dial(t, a.Addr(), clientTLS, Config{IdleTimeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := roundTrip(ctx, conn, []byte("before")); err != nil {
		t.Fatalf("round trip before the crash: %v", err)
	}

	// Crash: the socket disappears; nothing is sent to the client.
	a.udp.Close()
	a.Close()
	<-aServed

	b, err := Listen(addr, serverTLS, cfg, echo)
	if err != nil {
		t.Fatalf("restart on %s: %v", addr, err)
	}
	bServed := make(chan error, 1)
	go func() { bServed <- b.Serve() }()
	defer func() {
		b.Close()
		<-bServed
	}()

	// A request big enough that its packet may be answered by a reset
	// (quic-go ignores packets too small to hide a reset in).
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	s.SetDeadline(time.Now().Add(5 * time.Second))
	req := make([]byte, 200)
	_, err = s.Write(req)
	if err == nil {
		_, err = io.ReadAll(s)
	}
	if _, ok := errors.AsType[*quic.StatelessResetError](err); !ok {
		t.Fatalf("stream on the dead connection failed with %v, want *quic.StatelessResetError", err)
	}
}

// Connections beyond MaxConnections are closed with CodeConnectionLimit; the
// ones already held keep working.
func TestMaxConnections(t *testing.T) {
	serverTLS, clientTLS := devTLS(t)
	srv := startServer(t, serverTLS, Config{MaxConnections: 2}, echo)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first := dial(t, srv.Addr(), clientTLS, Config{})
	second := dial(t, srv.Addr(), clientTLS, Config{})
	for _, c := range []*quic.Conn{first, second} {
		if _, err := roundTrip(ctx, c, []byte("x")); err != nil {
			t.Fatalf("round trip within the limit: %v", err)
		}
	}
	third := dial(t, srv.Addr(), clientTLS, Config{})
	select {
	case <-third.Context().Done():
	case <-ctx.Done():
		t.Fatal("the connection over the limit was not closed")
	}
	ae, ok := errors.AsType[*quic.ApplicationError](context.Cause(third.Context()))
	if !ok || !ae.Remote || ae.ErrorCode != CodeConnectionLimit {
		t.Fatalf("closed with %v, want remote CodeConnectionLimit", context.Cause(third.Context()))
	}
	if n := srv.RefusedConnections(); n != 1 {
		t.Errorf("RefusedConnections %d, want 1", n)
	}
	if _, err := roundTrip(ctx, first, []byte("y")); err != nil {
		t.Fatalf("a held connection failed after the refusal: %v", err)
	}
	// A slot freed by a closing peer is available again.
	second.CloseWithError(CodeNormal, "")
	awaitTrue(t, func() bool { return srv.Connections() == 1 })
	fourth := dial(t, srv.Addr(), clientTLS, Config{})
	if _, err := roundTrip(ctx, fourth, []byte("z")); err != nil {
		t.Fatalf("round trip after a slot was freed: %v", err)
	}
}

// A handler that panics costs its stream only, reset with
// StreamCodeInternal; the server keeps serving.
func TestHandlerPanicResetsStream(t *testing.T) {
	serverTLS, clientTLS := devTLS(t)
	h := HandlerFunc(func(ctx context.Context, conn *quic.Conn, s *quic.Stream) {
		var b [1]byte
		if _, err := io.ReadFull(s, b[:]); err == nil && b[0] == 'p' {
			panic("handler bug")
		}
		s.Write(b[:])
	})
	srv := startServer(t, serverTLS, Config{}, h)
	conn := dial(t, srv.Addr(), clientTLS, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := roundTrip(ctx, conn, []byte("p"))
	se, ok := errors.AsType[*quic.StreamError](err)
	if !ok || !se.Remote || se.ErrorCode != StreamCodeInternal {
		t.Fatalf("panicking handler's stream ended with %v, want a remote StreamCodeInternal reset", err)
	}
	if resp, err := roundTrip(ctx, conn, []byte("o")); err != nil || string(resp) != "o" {
		t.Fatalf("after the panic: %q, %v", resp, err)
	}
}

// awaitTrue polls cond until it holds, failing the test after 10 s.
func awaitTrue(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}
