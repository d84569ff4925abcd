package bench

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/rafka/rafka/quicnet"
)

// TransportConfig is the `rafka-bench transport` measurement.
type TransportConfig struct {
	// Duration of each throughput direction. Default 3s.
	Duration time.Duration
	// MaxBytes bounds each direction's transfer too. Default 64 GiB.
	MaxBytes int64
	// ChunkBytes is the size of each stream write. Default 64 KiB.
	ChunkBytes int
	// RTTCount bounds the round trips measured (each also bounded by
	// Duration in total). Default 2000.
	RTTCount int
	// RTTBytes is the size of a round trip's request and response. Default 64.
	RTTBytes int
}

func (c TransportConfig) withDefaults() TransportConfig {
	if c.Duration <= 0 {
		c.Duration = 3 * time.Second
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 64 << 30
	}
	if c.ChunkBytes <= 0 {
		c.ChunkBytes = 64 << 10
	}
	if c.RTTCount <= 0 {
		c.RTTCount = 2000
	}
	if c.RTTBytes <= 0 {
		c.RTTBytes = 64
	}
	return c
}

// TransportResult is the ceiling Rafka's figures are divided by: what one
// QUIC connection (quicnet, TLS 1.3 with a self-signed P-256 certificate,
// default flow-control windows: the broker's settings) carries on one
// stream over loopback, both ends in this process.
type TransportResult struct {
	// UploadMBPerSec is client-to-server stream throughput (the produce
	// direction), counted when the server has read the last byte.
	UploadMBPerSec float64 `json:"upload_mb_per_sec"`
	// DownloadMBPerSec is server-to-client throughput (the consume direction).
	DownloadMBPerSec float64 `json:"download_mb_per_sec"`
	UploadBytes      int64   `json:"upload_bytes"`
	DownloadBytes    int64   `json:"download_bytes"`
	ChunkBytes       int     `json:"chunk_bytes"`
	// RTT is the round-trip time of RTTBytes-byte request/response pairs on
	// one long-lived stream, one at a time.
	RTT      Summary `json:"rtt"`
	RTTBytes int     `json:"rtt_bytes"`
}

func writeTransport(b io.Writer, t *TransportResult) {
	fmt.Fprintf(b, "  upload       %9.2f MB/s  (%s, %s writes)\n", t.UploadMBPerSec, formatBytes(t.UploadBytes), formatBytes(int64(t.ChunkBytes)))
	fmt.Fprintf(b, "  download     %9.2f MB/s  (%s)\n", t.DownloadMBPerSec, formatBytes(t.DownloadBytes))
	fmt.Fprintf(b, "  rtt %4d B   p50 %s  p90 %s  p99 %s  p99.9 %s  max %s ms  (%d samples)\n",
		t.RTTBytes, fmtMs(t.RTT.P50Ms), fmtMs(t.RTT.P90Ms), fmtMs(t.RTT.P99Ms), fmtMs(t.RTT.P999Ms), fmtMs(t.RTT.MaxMs), t.RTT.Count)
}

// Stream opcodes: the first byte a client writes on a transport stream.
const (
	opUpload   = 'U' // client writes until FIN; server answers the byte count
	opDownload = 'D' // + u64 duration ns, u64 max bytes, u32 chunk: server writes, then FIN
	opRTT      = 'R' // + u32 size: echo size-byte messages until FIN
)

// MeasureTransport runs the upload, download and round-trip measurements
// over one connection to a server in this process, and returns the result.
func MeasureTransport(ctx context.Context, cfg TransportConfig) (*Result, error) {
	cfg = cfg.withDefaults()
	dir, err := os.MkdirTemp("", "rafka-bench-tls-*")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(dir)
	srv, err := listenTransport(dir)
	if err != nil {
		return nil, err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve() }()
	defer func() {
		srv.Close()
		<-serveErr
	}()
	return MeasureTransportTo(ctx, srv.Addr().String(), dir, cfg)
}

// MeasureTransportTo runs the measurements of MeasureTransport against the
// transport server at addr, whose self-signed certificate is in dir: one
// that ServeTransport runs in another process, so that the figures are
// those of two processes, as a broker and its clients are.
func MeasureTransportTo(ctx context.Context, addr, dir string, cfg TransportConfig) (*Result, error) {
	clientTLS, err := quicnet.ClientTLSConfig(quicnet.TLSFiles{CAFile: quicnet.SelfSignedCertPath(dir)})
	if err != nil {
		return nil, err
	}
	return runTransport(ctx, addr, clientTLS, cfg.withDefaults())
}

// ServeTransport serves the server side of the transport measurement on a
// free loopback port, with a self-signed certificate it makes in dir,
// until ctx is done; ready is called with its address once it listens.
func ServeTransport(ctx context.Context, dir string, ready func(addr string)) error {
	srv, err := listenTransport(dir)
	if err != nil {
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve() }()
	ready(srv.Addr().String())
	select {
	case <-ctx.Done():
		srv.Close()
		<-serveErr
		return nil
	case err := <-serveErr:
		return err
	}
}

func listenTransport(dir string) (*quicnet.Server, error) {
	serverTLS, err := quicnet.ServerTLSConfig(quicnet.TLSFiles{DataDir: dir})
	if err != nil {
		return nil, err
	}
	return quicnet.Listen("127.0.0.1:0", serverTLS, quicnet.Config{}, quicnet.HandlerFunc(serveTransport))
}

func runTransport(ctx context.Context, addr string, clientTLS *tls.Config, cfg TransportConfig) (*Result, error) {
	conn, err := quicnet.Dial(ctx, addr, clientTLS, quicnet.Config{})
	if err != nil {
		return nil, err
	}
	defer conn.CloseWithError(quicnet.CodeNormal, "")
	tr := &TransportResult{ChunkBytes: cfg.ChunkBytes, RTTBytes: cfg.RTTBytes}
	if tr.UploadBytes, tr.UploadMBPerSec, err = upload(ctx, conn, cfg); err != nil {
		return nil, fmt.Errorf("bench: transport upload: %w", err)
	}
	if tr.DownloadBytes, tr.DownloadMBPerSec, err = download(ctx, conn, cfg); err != nil {
		return nil, fmt.Errorf("bench: transport download: %w", err)
	}
	if tr.RTT, err = roundTrips(ctx, conn, cfg); err != nil {
		return nil, fmt.Errorf("bench: transport rtt: %w", err)
	}
	r := &Result{
		System:   "quic",
		Workload: "transport",
		Config: map[string]any{
			"duration": cfg.Duration.String(), "chunk_bytes": cfg.ChunkBytes, "rtt_bytes": cfg.RTTBytes,
		},
		Transport: tr,
		Records:   int64(tr.RTT.Count),
		Bytes:     tr.UploadBytes,
	}
	r.Finish(time.Duration(float64(time.Second)*float64(tr.UploadBytes)/MB/max(tr.UploadMBPerSec, 1e-9)), &tr.RTT)
	r.MBPerSec = tr.UploadMBPerSec
	r.RecordsPerSec = 0 // round trips are not records; keep the JSON honest
	return r, nil
}

// streamFor opens a stream whose reads and writes end when ctx does.
func streamFor(ctx context.Context, conn *quic.Conn) (*quic.Stream, func(), error) {
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() {
		s.CancelWrite(quicnet.StreamCodeDone)
		s.CancelRead(quicnet.StreamCodeDone)
	})
	return s, func() { stop() }, nil
}

func upload(ctx context.Context, conn *quic.Conn, cfg TransportConfig) (int64, float64, error) {
	s, done, err := streamFor(ctx, conn)
	if err != nil {
		return 0, 0, err
	}
	defer done()
	chunk := make([]byte, cfg.ChunkBytes)
	chunk[0] = opUpload
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	var sent int64
	for sent < cfg.MaxBytes && time.Now().Before(deadline) {
		n, err := s.Write(chunk)
		sent += int64(n)
		if err != nil {
			return 0, 0, err
		}
		chunk[0] = 0
	}
	if err := s.Close(); err != nil {
		return 0, 0, err
	}
	var ack [8]byte
	if _, err := io.ReadFull(s, ack[:]); err != nil {
		return 0, 0, err
	}
	elapsed := time.Since(start)
	if got := int64(binary.LittleEndian.Uint64(ack[:])); got != sent {
		return 0, 0, fmt.Errorf("server read %d bytes of %d", got, sent)
	}
	return sent, float64(sent) / MB / elapsed.Seconds(), nil
}

func download(ctx context.Context, conn *quic.Conn, cfg TransportConfig) (int64, float64, error) {
	s, done, err := streamFor(ctx, conn)
	if err != nil {
		return 0, 0, err
	}
	defer done()
	var req [21]byte
	req[0] = opDownload
	binary.LittleEndian.PutUint64(req[1:], uint64(cfg.Duration))
	binary.LittleEndian.PutUint64(req[9:], uint64(cfg.MaxBytes))
	binary.LittleEndian.PutUint32(req[17:], uint32(cfg.ChunkBytes))
	start := time.Now()
	if _, err := s.Write(req[:]); err != nil {
		return 0, 0, err
	}
	if err := s.Close(); err != nil {
		return 0, 0, err
	}
	buf := make([]byte, cfg.ChunkBytes)
	var got int64
	for {
		n, err := s.Read(buf)
		got += int64(n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, 0, err
		}
	}
	elapsed := time.Since(start)
	return got, float64(got) / MB / elapsed.Seconds(), nil
}

func roundTrips(ctx context.Context, conn *quic.Conn, cfg TransportConfig) (Summary, error) {
	s, done, err := streamFor(ctx, conn)
	if err != nil {
		return Summary{}, err
	}
	defer done()
	var hdr [5]byte
	hdr[0] = opRTT
	binary.LittleEndian.PutUint32(hdr[1:], uint32(cfg.RTTBytes))
	if _, err := s.Write(hdr[:]); err != nil {
		return Summary{}, err
	}
	req, resp := make([]byte, cfg.RTTBytes), make([]byte, cfg.RTTBytes)
	h := NewHistogram()
	deadline := time.Now().Add(cfg.Duration)
	for i := 0; i < cfg.RTTCount && time.Now().Before(deadline); i++ {
		t0 := time.Now()
		if _, err := s.Write(req); err != nil {
			return Summary{}, err
		}
		if _, err := io.ReadFull(s, resp); err != nil {
			return Summary{}, err
		}
		h.Record(time.Since(t0))
	}
	s.Close()
	// Read the server's FIN so the stream is fully closed on both sides.
	_, _ = io.Copy(io.Discard, s)
	return h.Summary(), nil
}

// maxTransportChunk bounds what a download request may ask the server to
// allocate.
const maxTransportChunk = 16 << 20

// serveTransport is the server side of the three measurements.
func serveTransport(ctx context.Context, _ *quic.Conn, s *quic.Stream) {
	stop := context.AfterFunc(ctx, func() {
		s.CancelRead(quicnet.StreamCodeDone)
		s.CancelWrite(quicnet.StreamCodeDone)
	})
	defer stop()
	var op [1]byte
	if _, err := io.ReadFull(s, op[:]); err != nil {
		return
	}
	switch op[0] {
	case opUpload:
		n, err := io.Copy(io.Discard, s)
		if err != nil {
			return
		}
		var ack [8]byte
		binary.LittleEndian.PutUint64(ack[:], uint64(n+1)) // the opcode byte counts
		_, _ = s.Write(ack[:])
	case opDownload:
		var req [20]byte
		if _, err := io.ReadFull(s, req[:]); err != nil {
			return
		}
		d := time.Duration(binary.LittleEndian.Uint64(req[0:]))
		limit := int64(binary.LittleEndian.Uint64(req[8:]))
		size := int(binary.LittleEndian.Uint32(req[16:]))
		if size <= 0 || size > maxTransportChunk {
			return
		}
		chunk := make([]byte, size)
		deadline := time.Now().Add(d)
		for sent := int64(0); sent < limit && time.Now().Before(deadline); sent += int64(size) {
			if _, err := s.Write(chunk); err != nil {
				return
			}
		}
	case opRTT:
		var hdr [4]byte
		if _, err := io.ReadFull(s, hdr[:]); err != nil {
			return
		}
		size := int(binary.LittleEndian.Uint32(hdr[:]))
		if size <= 0 || size > maxTransportChunk {
			return
		}
		buf := make([]byte, size)
		for {
			if _, err := io.ReadFull(s, buf); err != nil {
				return
			}
			if _, err := s.Write(buf); err != nil {
				return
			}
		}
	}
}
