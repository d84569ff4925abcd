package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/rafka/rafka/node/replica"
	"github.com/rafka/rafka/quicnet"
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
//
// Each of the three goroutines recovers a panic of its own (guard): the panic
// is logged with its stack and counted, and the stream is reset with
// quicnet.StreamCodeInternal; the broker and the connection's other streams
// go on. The writer keeps draining the queue after a failure, so the reader
// and pusher never block on a writer that is gone.
//
// When the broker shuts down, the stream's context is cancelled: the reader
// stops reading, a subscription sends its BROKER_SHUTTING_DOWN ends, and
// writes get a deadline (Broker.drainDeadline) so a client that stopped
// reading cannot hold Shutdown past its context.
type stream struct {
	b    *Broker
	ctx  context.Context
	conn *quic.Conn
	s    *quic.Stream
	fr   *wire.FrameReader
	out  chan *response
	// budget is the connection's memory budget: frames being received and
	// ring copies queued for the writer are charged to it.
	budget *connBudget
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
	// topic, when set, counts the payload's bytes and records as sent to
	// consumers of that topic once written.
	topic string
}

// responseQueue bounds the responses waiting for the writer per stream.
const responseQueue = 64

func (b *Broker) serveStream(ctx context.Context, conn *quic.Conn, s *quic.Stream) {
	budget := b.budget.forConn(conn)
	defer b.budget.done(conn)
	st := &stream{
		b:      b,
		ctx:    ctx,
		conn:   conn,
		s:      s,
		fr:     wire.NewFrameReader(s, b.cfg.MaxFrameBytes),
		out:    make(chan *response, responseQueue),
		budget: budget,
	}
	st.fr.SetBudget(budget)
	timeout := b.cfg.FrameTimeout
	st.fr.SetFrameTimer(func(reading bool) {
		var deadline time.Time // none between frames
		if reading {
			deadline = time.Now().Add(timeout)
		}
		s.SetReadDeadline(deadline)
		if ctx.Err() != nil {
			s.SetReadDeadline(time.Now()) // stopping: keep the shutdown's deadline
		}
	})
	// A shutdown or a closed connection unblocks the reader; responses
	// already queued still go out, by the drain deadline when the broker is
	// stopping.
	stop := context.AfterFunc(ctx, func() {
		s.SetReadDeadline(time.Now())
		if d, ok := b.drainDeadline(); ok {
			s.SetWriteDeadline(d)
		}
	})
	defer stop()
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		st.writeLoop()
	}()
	st.guard(panicReader, st.readLoop)
	close(st.out)
	<-writerDone
	st.fr.Close()
	s.Close()
}

// Goroutines of a stream, as named in logs and in the panics metric.
const (
	panicReader = "reader"
	panicWriter = "writer"
	panicPusher = "pusher"
)

// guard runs f, recovering a panic: it is logged with its stack, counted,
// and the stream is reset in both directions with StreamCodeInternal. It
// reports whether f panicked.
func (st *stream) guard(goroutine string, f func()) (panicked bool) {
	defer func() {
		if v := recover(); v != nil {
			st.recovered(goroutine, v)
			panicked = true
		}
	}()
	st.testHook(goroutine)
	f()
	return false
}

// recovered handles a panic recovered in one of the stream's goroutines.
func (st *stream) recovered(goroutine string, v any) {
	st.b.metrics.panics(goroutine).Inc()
	st.b.log.Error("stream goroutine panicked; stream reset", "goroutine", goroutine, "panic", v, "stack", string(debug.Stack()))
	st.s.CancelRead(quicnet.StreamCodeInternal)
	st.s.CancelWrite(quicnet.StreamCodeInternal)
}

func (st *stream) testHook(goroutine string) {
	if h := st.b.panicHook.Load(); h != nil {
		(*h)(goroutine)
	}
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
	streamCode := quicnet.StreamCodeProtocol
	switch {
	case errors.Is(err, io.EOF):
		return
	case errors.Is(err, os.ErrDeadlineExceeded) && st.ctx.Err() != nil:
		st.s.CancelRead(quicnet.StreamCodeShuttingDown)
		return
	case errors.Is(err, os.ErrDeadlineExceeded):
		code = wire.ErrRequestTimedOut
		err = fmt.Errorf("a frame did not arrive within %v of its length", st.b.cfg.FrameTimeout)
	case errors.Is(err, wire.ErrFrameBudget):
		code, streamCode = wire.ErrThrottled, quicnet.StreamCodeResourceLimit
	case errors.Is(err, wire.ErrFrameTooLarge):
		code = wire.ErrFrameTooLargeCode
	case errors.Is(err, wire.ErrMalformedFrame), errors.Is(err, wire.ErrShortFrame):
		code = wire.ErrInvalidRequest
	default:
		st.b.log.Debug("stream read", "err", err)
		return
	}
	st.b.metrics.streamError(code)
	st.b.log.Debug("closing stream after a frame it could not take", "err", err)
	// API 0, correlation 0: a stream-level error; the frame could not be
	// attributed to a request, and the stream is closed after it.
	st.send(&response{hdr: &wire.ErrorResponse{Error: code, Message: err.Error()}})
	st.s.CancelRead(streamCode)
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
		st.b.metrics.subscriptions.Add(1)
		defer st.b.metrics.subscriptions.Add(-1)
		st.handleSubscribe(f, r)
		return false
	case wire.APISubscribeCredit:
		r.hdr = &wire.ErrorResponse{Error: wire.ErrInvalidRequest, Message: "subscribe_credit outside a subscription"}
		st.send(r)
	case wire.APIRaft, wire.APIBrokerHeartbeat, wire.APIReplicaDigests:
		if !peerAuthorized(st.conn) {
			r.hdr = &wire.ErrorResponse{Error: wire.ErrNotAuthorized, Message: f.API.String() + " is for brokers: it needs a broker certificate of the cluster CA"}
			st.send(r)
			return false
		}
		if f.API == wire.APIRaft {
			st.serveRaft(f)
			return false
		}
		st.handleControl(f, r)
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
	failed := false
	for r := range st.out {
		if !failed {
			failed = !st.writeGuarded(fw, r)
		}
		r.data.release()
	}
}

// writeGuarded writes r; false means the stream can take no more writes (it
// has been cancelled, so the reader stops too). The writer goes on draining
// the queue so every queued payload is released.
func (st *stream) writeGuarded(fw *wire.FrameWriter, r *response) (ok bool) {
	// Recovered here rather than with guard: no closure per response.
	defer func() {
		if v := recover(); v != nil {
			st.recovered(panicWriter, v)
			ok = false
		}
	}()
	st.testHook(panicWriter)
	err := st.write(fw, r)
	if err == nil {
		return true
	}
	code := quicnet.StreamCodeProtocol // the client reset the stream or stopped reading
	if errors.Is(err, os.ErrDeadlineExceeded) {
		code = quicnet.StreamCodeShuttingDown // the drain deadline passed
	}
	st.b.log.Debug("stream write", "err", err)
	st.s.CancelRead(code)
	st.s.CancelWrite(code)
	return false
}

func (st *stream) write(fw *wire.FrameWriter, r *response) error {
	if off, err := r.ack.WaitOffsets(st.b.ctx); err != nil {
		r.produce = wire.ProduceResponse{Error: errorCode(err), Message: err.Error()}
		var we *wire.Error
		switch {
		case errors.Is(err, ErrBrokerClosed) || errors.Is(err, context.Canceled):
			r.produce.Error = wire.ErrBrokerShuttingDown
		case errors.As(err, &we):
			r.produce.Error, r.produce.LeaderID, r.produce.LeaderAddr = we.Code, we.LeaderID, we.LeaderAddr
		}
	} else if off.Known {
		r.produce.BaseOffset, r.produce.LastOffset = off.Base, off.Last
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
	if len(r.data.data) > 0 {
		topic := r.topic
		if sd, ok := hdr.(*wire.SubscribeData); ok {
			topic = sd.Topic
		}
		st.b.metrics.topicOut(topic, r.data.data)
	}
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

// endIfShuttingDown tells a subscriber, when the broker is stopping, that
// each partition it still follows ends with BROKER_SHUTTING_DOWN (retriable:
// subscribe again elsewhere or after the restart). The stream closes after.
func (sub *subscription) endIfShuttingDown() {
	if !sub.st.b.closing.Load() {
		return
	}
	for i := range sub.parts {
		sp := &sub.parts[i]
		if sp.done {
			continue
		}
		sp.done = true
		sub.st.send(&response{
			fh: wire.FrameHeader{API: wire.APISubscribeData, Corr: sub.corr},
			hdr: &wire.SubscribeData{Topic: sp.topic, Partition: sp.id, HighWatermark: sp.p.HighWatermark(),
				Error: wire.ErrBrokerShuttingDown, Message: "broker shutting down"},
		})
	}
}
