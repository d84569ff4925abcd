package node

import (
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/rafka/rafka/node/replica"
	"github.com/rafka/rafka/wire"
)

// A stream carries request frames from the client and response frames back,
// in request order. Two goroutines own it:
//
//   - the reader (serveStream's goroutine) reads and handles requests; a
//     produce is appended before the next frame is read, but its ack may
//     still wait for fsync;
//   - the writer waits for each queued response's precondition (durability of
//     an append) and writes it, then releases its payload (segment view or
//     pooled buffer).
//
// The queue between them is bounded, so a client that pipelines faster than
// the disk syncs is slowed down by the stream's flow control, not buffered
// without limit. A subscribe request turns the stream into a push stream
// (handle_subscribe.go) whose pusher goroutine also queues to the writer.
type stream struct {
	b   *Broker
	ctx context.Context
	s   *quic.Stream
	fr  *wire.FrameReader
	out chan *response
}

// response is one frame queued for the writer.
type response struct {
	fh      wire.FrameHeader
	hdr     any // header value for msgpack
	produce wire.ProduceResponse
	data    readResult // payload and what to release after writing

	// ack is waited on before writing (a produce's ack: durable under the
	// fsync policy); a failure turns the produce response into an error.
	ack replica.AckWaiter

	start time.Time
	api   *apiMetrics
}

// responseQueue bounds the responses waiting for the writer per stream.
const responseQueue = 64

// stream-level application error codes used with CancelRead.
const (
	streamErrProtocol quic.StreamErrorCode = 1
	streamErrShutdown quic.StreamErrorCode = 2
)

func (b *Broker) serveStream(ctx context.Context, _ *quic.Conn, s *quic.Stream) {
	st := &stream{
		b:   b,
		ctx: ctx,
		s:   s,
		fr:  wire.NewFrameReader(s, b.cfg.MaxFrameBytes),
		out: make(chan *response, responseQueue),
	}
	// A shutdown unblocks the reader; responses already queued still go out.
	stop := context.AfterFunc(ctx, func() { s.SetReadDeadline(time.Now()) })
	defer stop()
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		st.writeLoop()
	}()
	st.readLoop()
	close(st.out)
	<-writerDone
	s.Close()
}

func (st *stream) readLoop() {
	for {
		f, ok := st.next()
		if !ok || !st.handle(&f) {
			return
		}
	}
}

// next reads the next request frame and counts it; false means the stream
// ended (a bad frame has been answered).
func (st *stream) next() (wire.Frame, bool) {
	f, err := st.fr.Next()
	if err != nil {
		st.readFailed(err)
		return wire.Frame{}, false
	}
	st.b.metrics.bytesIn.Add(f.Size())
	return f, true
}

// readFailed ends the stream after a read error, telling the client why when
// the frame was bad rather than the stream gone.
func (st *stream) readFailed(err error) {
	var code wire.ErrorCode
	switch {
	case errors.Is(err, io.EOF):
		return
	case errors.Is(err, os.ErrDeadlineExceeded) && st.ctx.Err() != nil:
		st.s.CancelRead(streamErrShutdown)
		return
	case errors.Is(err, wire.ErrFrameTooLarge):
		code = wire.ErrFrameTooLargeCode
	case errors.Is(err, wire.ErrMalformedFrame), errors.Is(err, wire.ErrShortFrame):
		code = wire.ErrInvalidRequest
	default:
		st.b.log.Debug("stream read", "err", err)
		return
	}
	st.b.metrics.protocolErrors.Inc()
	st.b.log.Debug("closing stream after a bad frame", "err", err)
	// API 0, correlation 0: a stream-level error; the frame could not be
	// attributed to a request, and the stream is closed after it.
	st.send(&response{hdr: &wire.ErrorResponse{Error: code, Message: err.Error()}})
	st.s.CancelRead(streamErrProtocol)
}

// send queues r for the writer.
func (st *stream) send(r *response) { st.out <- r }

// handle dispatches one request; false ends the read loop.
func (st *stream) handle(f *wire.Frame) bool {
	m := st.b.metrics.api(f.API)
	r := &response{fh: f.FrameHeader, start: time.Now(), api: m}
	if !f.API.Known() || f.API == wire.APISubscribeData {
		r.hdr = &wire.ErrorResponse{Error: wire.ErrUnsupportedAPI, Message: "unknown api " + strconv.Itoa(int(f.API))}
		st.send(r)
		return true
	}
	if f.Version != wire.Version {
		r.hdr = &wire.ErrorResponse{Error: wire.ErrUnsupportedVersion, Message: "api " + f.API.String() + " version " + strconv.Itoa(int(f.Version)) + ", supported 0"}
		st.send(r)
		return true
	}
	switch f.API {
	case wire.APIProduce:
		st.handleProduce(f, r)
	case wire.APIFetch:
		st.handleFetch(f, r)
	case wire.APISubscribe:
		st.handleSubscribe(f, r)
		return false
	case wire.APISubscribeCredit:
		r.hdr = &wire.ErrorResponse{Error: wire.ErrInvalidRequest, Message: "subscribe_credit outside a subscription"}
		st.send(r)
	default:
		st.handleControl(f, r)
	}
	return true
}

// decode decodes a request header, answering INVALID_REQUEST on failure.
func (st *stream) decode(f *wire.Frame, r *response, v any) bool {
	if err := st.fr.DecodeHeader(f, v); err != nil {
		r.hdr = &wire.ErrorResponse{Error: wire.ErrInvalidRequest, Message: err.Error()}
		st.send(r)
		return false
	}
	return true
}

func (st *stream) writeLoop() {
	fw := wire.NewFrameWriter(st.s)
	var failed error
	for r := range st.out {
		if failed == nil {
			failed = st.write(fw, r)
			if failed != nil {
				// The client is gone; stop reading too. Keep draining so
				// every queued payload is released.
				st.s.CancelRead(streamErrProtocol)
			}
		}
		r.data.release()
	}
}

func (st *stream) write(fw *wire.FrameWriter, r *response) error {
	if err := r.ack.Wait(st.b.ctx); err != nil {
		r.produce = wire.ProduceResponse{Error: errorCode(err), Message: err.Error()}
		if errors.Is(err, ErrBrokerClosed) || errors.Is(err, context.Canceled) {
			r.produce.Error = wire.ErrBrokerShuttingDown
		}
	}
	hdr := r.hdr
	if hdr == nil {
		hdr = &r.produce
	}
	if r.api != nil {
		r.api.observe(r.start, responseCode(hdr))
	}
	if err := fw.WriteFrame(r.fh, hdr, r.data.data); err != nil {
		return err
	}
	st.b.metrics.bytesOut.Add(wire.FrameFixedSize + len(r.data.data))
	return nil
}

// responseCode extracts the error code of a response header for metrics.
func responseCode(hdr any) wire.ErrorCode {
	switch h := hdr.(type) {
	case *wire.ProduceResponse:
		return h.Error
	case *wire.FetchResponse:
		return h.Error
	case *wire.ErrorResponse:
		return h.Error
	case *wire.ListOffsetsResponse:
		return h.Error
	case *wire.MetadataResponse:
		return h.Error
	case *wire.DescribeTopicResponse:
		return h.Error
	case *wire.SubscribeResponse:
		return h.Error
	}
	return wire.ErrNone
}
