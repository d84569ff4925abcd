package quicnet

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// BenchmarkStreamThroughput writes 64 KiB chunks on one stream over loopback;
// the server discards them and acknowledges EOF, so the timing includes
// delivery of the last byte. This is the transport ceiling of one stream.
func BenchmarkStreamThroughput(b *testing.B) {
	serverTLS, clientTLS := devTLS(b)
	h := HandlerFunc(func(ctx context.Context, conn *quic.Conn, s *quic.Stream) {
		if _, err := io.Copy(io.Discard, s); err == nil {
			s.Write([]byte{1})
		}
	})
	srv := startServer(b, serverTLS, Config{}, h)
	conn := dial(b, srv.Addr(), clientTLS, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		b.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	s.Close()
	var ack [1]byte
	if _, err := io.ReadFull(s, ack[:]); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRoundTrip sends a small request and reads a same-sized response
// on one long-lived stream, one at a time: the latency floor of a request.
func BenchmarkRoundTrip(b *testing.B) {
	for _, size := range []int{64, 1024} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			serverTLS, clientTLS := devTLS(b)
			h := HandlerFunc(func(ctx context.Context, conn *quic.Conn, s *quic.Stream) {
				buf := make([]byte, size)
				for {
					if _, err := io.ReadFull(s, buf); err != nil {
						return
					}
					if _, err := s.Write(buf); err != nil {
						return
					}
				}
			})
			srv := startServer(b, serverTLS, Config{}, h)
			conn := dial(b, srv.Addr(), clientTLS, Config{})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			s, err := conn.OpenStreamSync(ctx)
			if err != nil {
				b.Fatal(err)
			}
			req, resp := make([]byte, size), make([]byte, size)
			b.SetBytes(int64(2 * size))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := s.Write(req); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(s, resp); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			s.Close()
		})
	}
}
