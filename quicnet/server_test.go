package quicnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// echo copies a stream back to its sender until EOF.
var echo = HandlerFunc(func(ctx context.Context, conn *quic.Conn, s *quic.Stream) {
	io.Copy(s, s)
})

// roundTrip writes req on a new stream, closes the send side and reads the
// whole response.
func roundTrip(ctx context.Context, conn *quic.Conn, req []byte) ([]byte, error) {
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.Write(req); err != nil {
		return nil, err
	}
	if err := s.Close(); err != nil {
		return nil, err
	}
	return io.ReadAll(s)
}

func TestEchoConcurrentStreams(t *testing.T) {
	serverTLS, clientTLS := devTLS(t)
	srv := startServer(t, serverTLS, Config{}, echo)
	conn := dial(t, srv.Addr(), clientTLS, Config{})
	if got := conn.ConnectionState().TLS.NegotiatedProtocol; got != ALPN {
		t.Errorf("negotiated %q, want %q", got, ALPN)
	}
	if v := conn.ConnectionState().TLS.Version; v != tls.VersionTLS13 {
		t.Errorf("TLS version %x, want 1.3", v)
	}

	const streams = 16
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for i := range streams {
		wg.Go(func() {
			req := make([]byte, 1000+i*10_000)
			rand.Read(req)
			resp, err := roundTrip(ctx, conn, req)
			if err != nil {
				errs <- fmt.Errorf("stream %d: %w", i, err)
				return
			}
			if !bytes.Equal(req, resp) {
				errs <- fmt.Errorf("stream %d: echoed %d bytes differ from the %d sent", i, len(resp), len(req))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := srv.Connections(); n != 1 {
		t.Errorf("Connections() = %d, want 1", n)
	}
}

func TestDialByHostName(t *testing.T) {
	serverTLS, clientTLS := devTLS(t)
	srv := startServer(t, serverTLS, Config{}, echo)
	port := srv.Addr().(*net.UDPAddr).Port
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := Dial(ctx, fmt.Sprintf("localhost:%d", port), clientTLS, Config{})
	if err != nil {
		t.Fatalf("Dial localhost: %v", err)
	}
	defer conn.CloseWithError(CodeNormal, "")
	if got := conn.ConnectionState().TLS.ServerName; got != "localhost" {
		t.Errorf("ServerName %q, want localhost (from the address)", got)
	}
	if resp, err := roundTrip(ctx, conn, []byte("hi")); err != nil || string(resp) != "hi" {
		t.Fatalf("round trip: %q, %v", resp, err)
	}
}

func TestDialRejectsUntrustedServer(t *testing.T) {
	serverTLS, _ := devTLS(t)
	_, otherClientTLS := devTLS(t) // trusts a different self-signed certificate
	srv := startServer(t, serverTLS, Config{}, echo)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := Dial(ctx, srv.Addr().String(), otherClientTLS, Config{})
	if err == nil {
		conn.CloseWithError(CodeNormal, "")
		t.Fatal("Dial succeeded against an untrusted certificate")
	}
	if _, ok := errors.AsType[*quic.TransportError](err); !ok {
		t.Errorf("err %v, want a *quic.TransportError (TLS alert)", err)
	}
}

func TestDialCancelled(t *testing.T) {
	_, clientTLS := devTLS(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("test gave up")
	cancel(cause)
	// Nothing listens there; the cancelled context ends the attempt and
	// its socket is closed (goleak checks the goroutines).
	_, err := Dial(ctx, "127.0.0.1:9", clientTLS, Config{})
	if !errors.Is(err, cause) {
		t.Fatalf("err %v, want the context's cause", err)
	}
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "clients")
	rogue := newTestCA(t, dir, "rogue")
	serverTLS, err := ServerTLSConfig(TLSFiles{DataDir: dir, CAFile: ca.certPEM, RequireClientCert: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, serverTLS, Config{}, echo)

	goodCert, goodKey := ca.issueClient(t, dir, "good")
	badCert, badKey := rogue.issueClient(t, dir, "bad")
	for _, tc := range []struct {
		name      string
		cert, key string
		ok        bool
	}{
		{"no client certificate", "", "", false},
		{"certificate from another CA", badCert, badKey, false},
		{"certificate signed by the CA", goodCert, goodKey, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clientTLS, err := ClientTLSConfig(TLSFiles{CAFile: SelfSignedCertPath(dir), CertFile: tc.cert, KeyFile: tc.key})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			// TLS 1.3: the client may finish its handshake before the
			// server rejects its certificate, so the rejection shows
			// either in Dial or in the first round trip.
			conn, err := Dial(ctx, srv.Addr().String(), clientTLS, Config{})
			if err == nil {
				defer conn.CloseWithError(CodeNormal, "")
				var resp []byte
				resp, err = roundTrip(ctx, conn, []byte("ping"))
				if err == nil && string(resp) != "ping" {
					t.Fatalf("echo %q", resp)
				}
			}
			if tc.ok && err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if !tc.ok {
				if err == nil {
					t.Fatal("accepted")
				}
				if _, isTransport := errors.AsType[*quic.TransportError](err); !isTransport {
					t.Errorf("err %v, want a *quic.TransportError (TLS alert)", err)
				}
			}
		})
	}
}

func TestWrongALPNRejected(t *testing.T) {
	serverTLS, clientTLS := devTLS(t)
	srv := startServer(t, serverTLS, Config{}, echo)

	// Dial forces ALPN, so go below it with quic-go directly.
	bad := clientTLS.Clone()
	bad.NextProtos = []string{"h3"}
	bad.ServerName = "127.0.0.1"
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	tr := &quic.Transport{Conn: udp}
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := tr.Dial(ctx, srv.Addr(), bad, &quic.Config{})
	if err == nil {
		conn.CloseWithError(CodeNormal, "")
		t.Fatal("handshake with ALPN h3 succeeded")
	}
	te, ok := errors.AsType[*quic.TransportError](err)
	// TLS alert 120 no_application_protocol, as a QUIC crypto error.
	if !ok || te.ErrorCode != 0x100+120 {
		t.Fatalf("err %v, want crypto error no_application_protocol", err)
	}
}

func TestStreamLimitHolds(t *testing.T) {
	serverTLS, clientTLS := devTLS(t)
	started := make(chan byte, 8)
	release := make(map[byte]chan struct{})
	for id := range byte(4) {
		release[id] = make(chan struct{})
	}
	h := HandlerFunc(func(ctx context.Context, conn *quic.Conn, s *quic.Stream) {
		var id [1]byte
		if _, err := io.ReadFull(s, id[:]); err != nil {
			return
		}
		started <- id[0]
		select {
		case <-release[id[0]]:
		case <-ctx.Done():
			return
		}
		s.Write([]byte("ok"))
	})
	srv := startServer(t, serverTLS, Config{MaxIncomingStreams: 2}, h)
	conn := dial(t, srv.Addr(), clientTLS, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	open := func(id byte) *quic.Stream {
		t.Helper()
		s, err := conn.OpenStreamSync(ctx)
		if err != nil {
			t.Fatalf("open stream %d: %v", id, err)
		}
		if _, err := s.Write([]byte{id}); err != nil {
			t.Fatalf("write stream %d: %v", id, err)
		}
		return s
	}
	s0 := open(0)
	open(1)
	for range 2 {
		<-started
	}

	// Both slots are taken by running handlers: a third stream cannot open.
	if _, err := conn.OpenStream(); !errors.As(err, new(*quic.StreamLimitReachedError)) {
		t.Fatalf("OpenStream with the limit reached: %v, want StreamLimitReachedError", err)
	}
	blockedCtx, stopBlocked := context.WithCancel(ctx)
	blocked := make(chan error, 1)
	go func() {
		_, err := conn.OpenStreamSync(blockedCtx)
		blocked <- err
	}()
	stopBlocked()
	if err := <-blocked; !errors.Is(err, context.Canceled) {
		t.Fatalf("OpenStreamSync with the limit reached returned %v, want context.Canceled", err)
	}

	// The N+1th waits, and opens once a handler has returned.
	waiter := make(chan *quic.Stream, 1)
	go func() {
		s, err := conn.OpenStreamSync(ctx)
		if err != nil {
			t.Errorf("waiting OpenStreamSync: %v", err)
		}
		waiter <- s
	}()
	close(release[0])
	if resp, err := io.ReadAll(s0); err != nil || string(resp) != "ok" {
		t.Fatalf("stream 0 response %q, %v", resp, err)
	}
	s2 := <-waiter
	if s2 == nil {
		t.FailNow()
	}
	if _, err := s2.Write([]byte{2}); err != nil {
		t.Fatal(err)
	}
	if id := <-started; id != 2 {
		t.Fatalf("started handler %d, want 2", id)
	}
}

func TestShutdownDrains(t *testing.T) {
	serverTLS, clientTLS := devTLS(t)
	inRequest := make(chan struct{})
	finish := make(chan struct{})
	handlerCause := make(chan error, 1)
	// A long-lived stream: requests of one byte, answered "done"; between
	// requests it checks for shutdown.
	h := HandlerFunc(func(ctx context.Context, conn *quic.Conn, s *quic.Stream) {
		var req [1]byte
		for ctx.Err() == nil {
			if _, err := io.ReadFull(s, req[:]); err != nil {
				return
			}
			inRequest <- struct{}{}
			<-finish
			// Still mid-request when shutdown begins: finish it.
			if _, err := s.Write([]byte("done")); err != nil {
				return
			}
		}
		handlerCause <- context.Cause(ctx)
	})
	srv := startServer(t, serverTLS, Config{ShutdownLinger: time.Minute}, h)
	conn := dial(t, srv.Addr(), clientTLS, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	goAway := make(chan error, 1)
	go func() { goAway <- WaitGoAway(ctx, conn) }()

	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	<-inRequest

	shutdown := make(chan error, 1)
	go func() { shutdown <- srv.Shutdown(ctx) }()
	if err := <-goAway; err != nil {
		t.Fatalf("WaitGoAway: %v", err)
	}

	// New streams are refused once shutdown has begun.
	if _, err := roundTrip(ctx, conn, []byte{1}); !IsRefused(err) {
		t.Fatalf("new stream during shutdown: %v, want refused", err)
	}

	// The in-flight request completes and its response arrives.
	close(finish)
	resp := make([]byte, 4)
	if _, err := io.ReadFull(s, resp); err != nil || string(resp) != "done" {
		t.Fatalf("response %q, %v", resp, err)
	}
	if cause := <-handlerCause; !errors.Is(cause, ErrServerClosed) {
		t.Errorf("handler context cause %v, want ErrServerClosed", cause)
	}
	// The stream ends cleanly after the handler returned.
	if rest, err := io.ReadAll(s); err != nil || len(rest) != 0 {
		t.Fatalf("after response: %q, %v", rest, err)
	}

	// Told to go away, the client closes; Shutdown then completes.
	conn.CloseWithError(CodeNormal, "")
	if err := <-shutdown; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := srv.Connections(); n != 0 {
		t.Errorf("Connections() = %d after Shutdown", n)
	}
	if err := <-srv.serveErr; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve returned %v", err)
	}
	srv.serveErr <- ErrServerClosed // for the cleanup's check
	if err := srv.Shutdown(ctx); !errors.Is(err, ErrServerClosed) {
		t.Errorf("second Shutdown: %v, want ErrServerClosed", err)
	}
}

func TestShutdownClosesLingeringConnections(t *testing.T) {
	serverTLS, clientTLS := devTLS(t)
	srv := startServer(t, serverTLS, Config{ShutdownLinger: -1}, echo)
	conn := dial(t, srv.Addr(), clientTLS, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := roundTrip(ctx, conn, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	<-conn.Context().Done()
	ae, ok := errors.AsType[*quic.ApplicationError](context.Cause(conn.Context()))
	if !ok || !ae.Remote || ae.ErrorCode != CodeShuttingDown {
		t.Fatalf("connection closed with %v, want remote CodeShuttingDown", context.Cause(conn.Context()))
	}
}

func TestShutdownContextExpires(t *testing.T) {
	serverTLS, clientTLS := devTLS(t)
	entered := make(chan struct{})
	// A handler that ignores its context and waits for data that never
	// comes: only closing the connection ends it.
	h := HandlerFunc(func(ctx context.Context, conn *quic.Conn, s *quic.Stream) {
		close(entered)
		io.Copy(io.Discard, s)
	})
	srv := startServer(t, serverTLS, Config{}, h)
	conn := dial(t, srv.Addr(), clientTLS, Config{})
	s, err := conn.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	<-entered
	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("deadline for the test")
	cancel(cause)
	if err := srv.Shutdown(ctx); !errors.Is(err, cause) {
		t.Fatalf("Shutdown: %v, want the context's cause", err)
	}
	<-conn.Context().Done()
}

func TestCloseIdempotent(t *testing.T) {
	serverTLS, clientTLS := devTLS(t)
	srv := startServer(t, serverTLS, Config{}, echo)
	conn := dial(t, srv.Addr(), clientTLS, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	goAway := make(chan error, 1)
	go func() { goAway <- WaitGoAway(ctx, conn) }()
	if _, err := roundTrip(ctx, conn, []byte("x")); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := srv.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	// The connection ends either way; a go-away notice (nil) may win the
	// race with the close when the server's drain starts first.
	if err := <-goAway; err != nil && !errors.Is(err, ErrConnClosed) {
		t.Errorf("WaitGoAway after Close: %v, want ErrConnClosed or a go-away", err)
	}
	if err := srv.Shutdown(ctx); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Shutdown after Close: %v, want ErrServerClosed", err)
	}
	if err := srv.Serve(); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Close: %v, want ErrServerClosed", err)
	}
	if n := srv.Connections(); n != 0 {
		t.Errorf("Connections() = %d after Close", n)
	}
}

func TestListenErrors(t *testing.T) {
	serverTLS, _ := devTLS(t)
	if _, err := Listen("127.0.0.1:0", nil, Config{}, echo); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("nil tls: %v", err)
	}
	if _, err := Listen("127.0.0.1:0", serverTLS, Config{}, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("nil handler: %v", err)
	}
	if _, err := Listen("127.0.0.1:0", serverTLS, Config{MaxIncomingStreams: -5}, echo); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("bad config: %v", err)
	}
	srv, err := Listen("127.0.0.1:0", serverTLS, Config{}, echo)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := Listen(srv.Addr().String(), serverTLS, Config{}, echo); err == nil {
		t.Error("second Listen on the same port succeeded")
	}
}
