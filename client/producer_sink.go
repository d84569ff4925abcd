package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/rafka/rafka/quicnet"
	"github.com/rafka/rafka/wire"
)

// sink is a producer's stream to one broker. Its goroutine (run) opens the
// stream and is the writer; a reader goroutine it owns matches answers to
// the FIFO of sent batches. Either side's failure ends both, and run hands
// the sink's partitions to recovery.
type sink struct {
	p        *Producer
	addr     string
	maxBytes int64 // in-flight bytes bound over all partitions

	wake     chan struct{} // capacity 1: work may be available
	failed   chan struct{} // closed by fail
	failOnce sync.Once
	done     chan struct{} // closed when run returns

	st   *quic.Stream // set by run before the reader starts
	slot *connSlot

	// Guarded by Producer.mu.
	err error // first failure
	// finished: the writer closed the stream's write side after sending
	// everything (Producer.drain); the broker's end of the stream is then
	// expected. drainErr is why the broker's reading to the end could not
	// be confirmed.
	finished      bool
	drainErr      error
	wrote         bool // a batch was written on the stream
	parts         []*partState
	fifo          []*batch // written and awaiting an answer, in write order
	inflightBytes int64
	corr          uint32
	rotate        int // start of the next scan of parts, for fairness
}

func newSink(p *Producer, addr string) *sink {
	return &sink{
		p:        p,
		addr:     addr,
		maxBytes: int64(p.cfg.maxInFlight) * int64(p.cfg.maxBatchBytes),
		wake:     make(chan struct{}, 1),
		failed:   make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// errDrained ends the writer of a sink that sent everything while the
// producer is closing.
var errDrained = errors.New("drained")

func (s *sink) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *sink) fail(err error) {
	s.p.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.p.mu.Unlock()
	s.failOnce.Do(func() { close(s.failed) })
}

func (s *sink) run() {
	p := s.p
	defer p.wg.Done()
	defer close(s.done)
	// A leader that does not answer costs at most a request timeout here
	// too: the dial timeout (10s by default) is for bootstrapping, and a
	// producer that failed over to a broker just killed would otherwise
	// stall for it before trying the next leader.
	ctx, cancel := context.WithTimeout(p.ctx, min(p.c.cfg.dialTimeout, p.cfg.requestTimeout))
	st, slot, err := p.c.openStream(ctx, s.addr)
	cancel()
	if err != nil {
		p.mu.Lock()
		if p.draining {
			s.drainErr = fmt.Errorf("produce stream to %s: %w", s.addr, err)
		}
		p.mu.Unlock()
	}
	if err == nil {
		defer p.c.release(slot)
		s.st, s.slot = st, slot
		// On abort, unblock the reader and a writer stuck on flow control;
		// data already written still goes out (Close below sends FIN).
		stop := context.AfterFunc(p.ctx, func() {
			st.CancelRead(quicnet.StreamCodeDone)
			st.SetWriteDeadline(time.Now())
		})
		readerDone := make(chan struct{})
		go func() {
			defer close(readerDone)
			s.readLoop()
		}()
		probeCtx, stopProbe := context.WithCancel(p.ctx)
		probeDone := make(chan struct{})
		go func() {
			defer close(probeDone)
			if p.cfg.acks != AcksNone && p.cfg.probeInterval > 0 {
				s.probeLoop(probeCtx)
			}
		}()
		err = s.writeLoop()
		stopProbe()
		<-probeDone
		switch {
		case err == errDrained:
			// Everything is written: end the stream and let the reader
			// wait for the broker's end of it, which comes once the
			// broker has read and appended all we sent.
			st.SetReadDeadline(time.Now().Add(p.cfg.requestTimeout))
			if cerr := st.Close(); cerr != nil {
				s.fail(transport(fmt.Errorf("produce stream to %s: %w", s.addr, cerr)))
			}
			<-readerDone
			err = nil
		case p.ctx.Err() != nil:
			st.Close()
		default:
			st.CancelWrite(quicnet.StreamCodeDone)
		}
		st.CancelRead(quicnet.StreamCodeDone)
		<-readerDone
		stop()
		p.mu.Lock()
		if s.finished && s.err != nil {
			err = s.err
		}
		if err != nil && p.ctx.Err() == nil && (p.draining || p.cfg.acks == AcksNone && s.wrote) {
			// Without acks nothing tells which of the records written
			// on this stream the broker read: Close reports it.
			lost := fmt.Errorf("%w (records sent on it without acks may not have been stored)", err)
			s.drainErr = lost
			if p.cfg.acks == AcksNone && p.unconfirmed == nil {
				p.unconfirmed = lost
			}
		}
		p.mu.Unlock()
	}
	if p.ctx.Err() == nil {
		p.c.log.Debug("produce stream ended", "broker", s.addr, "err", err)
	}
	s.shutdown(err)
}

func (s *sink) writeLoop() error {
	p := s.p
	fw := wire.NewFrameWriter(s.st)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var (
		take   []*batch
		sealed []topicPartition
	)
	for {
		var next time.Time
		var err error
		take, sealed, next, err = s.collect(take[:0], sealed[:0])
		if err != nil {
			return err
		}
		for _, tp := range sealed {
			p.cfg.partitioner.BatchSealed(tp.topic, tp.partition)
		}
		if len(take) > 0 {
			if err := s.send(fw, take); err != nil {
				return err
			}
			clear(take)
			continue
		}
		var tick <-chan time.Time
		if !next.IsZero() {
			timer.Reset(time.Until(next))
			tick = timer.C
		}
		select {
		case <-s.wake:
		case <-tick:
		case <-s.failed:
		case <-p.ctx.Done():
			return context.Cause(p.ctx)
		}
		timer.Stop()
	}
}

// probeLoop asks another broker who leads the partitions this sink waits
// for, whenever an answer is outstanding for longer than the probe
// interval, and fails the sink when one of them has a new leader (a higher
// term at another broker): its partitions then recover at once, routed
// from the fresh metadata, and send what is outstanding to the new leader.
// With idempotence that resend stores nothing twice.
func (s *sink) probeLoop(ctx context.Context) {
	p := s.p
	t := time.NewTicker(p.cfg.probeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.failed:
			return
		case <-t.C:
		}
		waiting := s.waiting()
		if len(waiting) == 0 {
			continue
		}
		topics := make([]string, 0, len(waiting))
		for tp := range waiting {
			if !slices.Contains(topics, tp.topic) {
				topics = append(topics, tp.topic)
			}
		}
		pctx, cancel := context.WithTimeout(ctx, min(4*p.cfg.probeInterval, p.cfg.requestTimeout))
		resp, err := controlCall(pctx, p.c, wire.APIMetadata, &wire.MetadataRequest{Topics: topics}, p.c.otherBroker(s.addr), "",
			func(r *wire.MetadataResponse) error { return wire.AsError(r.Error, r.Message) })
		cancel()
		if err != nil {
			continue // no other broker answered: the request timeout decides
		}
		moved := s.movedLeaders(resp, waiting)
		if len(moved) == 0 {
			continue
		}
		p.c.log.Debug("partition leaders moved while answers were outstanding: sending again",
			"broker", s.addr, "partitions", len(moved))
		// The broker is not marked suspect: it may be alive and still lead
		// other partitions of this sink, which go back to it at once.
		s.fail(transport(fmt.Errorf("produce stream to %s: %d partitions it leads moved to another broker while answers were outstanding", s.addr, len(moved))))
		return
	}
}

// waiting returns, for the partitions with an answer outstanding on s for
// longer than the probe interval, the term the client last knew of their
// leader.
func (s *sink) waiting() map[topicPartition]uint64 {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(s.fifo) == 0 || time.Since(s.fifo[0].sentAt) < p.cfg.probeInterval {
		return nil
	}
	// Partitions whose metadata is not cached are left out: without a
	// known term, any answer would look like a new leader.
	out := make(map[topicPartition]uint64)
	p.c.meta.mu.Lock()
	defer p.c.meta.mu.Unlock()
	for _, b := range s.fifo {
		tp := b.part.tp
		if tm := p.c.meta.topics[tp.topic]; tm != nil {
			if pm := tm.partition(tp.partition); pm != nil {
				out[tp] = pm.Term
			}
		}
	}
	return out
}

// movedLeaders applies a probe's metadata answer and returns the waiting
// partitions it names a new leader of: another broker, in a higher term
// than the one known before (a broker that hosts no replica names the
// preferred one in term 1, which never counts). They are marked hinted, so
// that recovery routes them from the cache.
func (s *sink) movedLeaders(resp *wire.MetadataResponse, waiting map[topicPartition]uint64) []topicPartition {
	p := s.p
	tms, _ := p.c.meta.update(resp)
	var moved []topicPartition
	p.mu.Lock()
	defer p.mu.Unlock()
	for tp, term := range waiting {
		tm := tms[tp.topic]
		if tm == nil {
			continue
		}
		pm := tm.partition(tp.partition)
		if pm == nil || pm.LeaderAddr == "" || pm.LeaderAddr == s.addr || pm.Term <= term {
			continue
		}
		moved = append(moved, tp)
		if ps := p.parts[tp]; ps != nil {
			ps.hinted = true
		}
	}
	return moved
}

// collect seals the batches whose linger expired (all of them while
// flushing) and takes the ready batches the in-flight bounds allow. It
// returns the earliest linger deadline still pending.
func (s *sink) collect(take []*batch, sealed []topicPartition) ([]*batch, []topicPartition, time.Time, error) {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.err != nil {
		return take, sealed, time.Time{}, s.err
	}
	if p.draining && len(s.fifo) == 0 && !s.hasWorkLocked() {
		s.finished = true
		return take, sealed, time.Time{}, errDrained
	}
	now := time.Now()
	var next time.Time
	flush := p.flushing > 0 || p.closing
	n := len(s.parts)
	s.rotate++
	for i := range n {
		ps := s.parts[(s.rotate+i)%n]
		if ps.recovering {
			continue
		}
		if ob := ps.open; ob != nil {
			// A batch whose linger ended is sealed only when it can be
			// sent now. While the partition's in-flight requests are all
			// taken it stays open and keeps taking records, so a backlog
			// (after a pause of the process, or a slow answer) leaves in
			// a few full batches instead of one request per record; the
			// answer that frees a slot wakes this loop again.
			canSend := len(ps.ready) == 0 && len(ps.inflight) < p.cfg.maxInFlight
			if (flush || !now.Before(ob.deadline)) && canSend {
				p.sealLocked(ps)
				ps.busy = false // the linger, not the size, ended it
				sealed = append(sealed, ps.tp)
			} else if now.Before(ob.deadline) && (next.IsZero() || ob.deadline.Before(next)) {
				next = ob.deadline
			}
		}
		if ps.seqHole && len(ps.inflight) == 0 {
			p.resequenceLocked(ps)
		}
		for len(ps.ready) > 0 && len(ps.inflight) < p.cfg.maxInFlight {
			b := ps.ready[0]
			if b.compressing {
				break // Produce is compressing it and signals when done
			}
			if s.inflightBytes > 0 && s.inflightBytes+b.bytes > s.maxBytes {
				break
			}
			p.sequenceLocked(ps, b)
			ps.ready[0] = nil
			ps.ready = ps.ready[1:]
			b.attempts++
			ps.inflight = append(ps.inflight, b)
			s.inflightBytes += b.bytes
			take = append(take, b)
		}
	}
	return take, sealed, next, nil
}

// hasWorkLocked reports whether a partition of s has records to send.
func (s *sink) hasWorkLocked() bool {
	for _, ps := range s.parts {
		if ps.hasWork() {
			return true
		}
	}
	return false
}

// send builds the taken batches, queues them for their answers and writes
// them, in order. The batches are this goroutine's until they enter the
// FIFO, so building happens without the lock.
func (s *sink) send(fw *wire.FrameWriter, take []*batch) error {
	p := s.p
	var buildErrs map[*batch]error
	for _, b := range take {
		if b.data != nil {
			continue // a retry: built before
		}
		if b.sequenced {
			b.builder.SetProducer(p.id, b.epoch, b.seq)
		}
		// Finish builds in place: the batch stays in its builder, which
		// goes back to the pool when the batch completes.
		data, err := b.builder.Finish(p.cfg.codec)
		if err != nil {
			if buildErrs == nil {
				buildErrs = make(map[*batch]error)
			}
			buildErrs[b] = err
			continue
		}
		b.data = data
	}

	var done []completion
	timeout := p.cfg.requestTimeout
	p.mu.Lock()
	now := time.Now()
	out := take[:0]
	for _, b := range take {
		if err := buildErrs[b]; err != nil {
			if b.sequenced {
				b.part.seqHole = true
			}
			b.part.inflight = removeBatch(b.part.inflight, b)
			s.inflightBytes -= b.bytes
			done = append(done, completion{b: b, base: -1, err: recordError(b.part, err)})
			if b.part.recovering && len(b.part.inflight) == 0 {
				p.startRecoveryLocked(b.part, nil)
			}
			continue
		}
		s.corr++
		b.corr, b.sentAt = s.corr, now
		if p.cfg.acks != AcksNone {
			if len(s.fifo) == 0 {
				s.st.SetReadDeadline(now.Add(timeout))
			}
			s.fifo = append(s.fifo, b)
		}
		out = append(out, b)
	}
	p.mu.Unlock()
	p.complete(done)
	done = done[:0]

	if len(out) > 0 && !s.wrote {
		p.mu.Lock()
		s.wrote = true
		p.mu.Unlock()
	}
	req := wire.ProduceRequest{Acks: int8(p.cfg.acks), TimeoutMs: int32(min(timeout.Milliseconds(), 1<<31-1))}
	for _, b := range out {
		req.Topic, req.Partition = b.part.tp.topic, b.part.tp.partition
		s.st.SetWriteDeadline(time.Now().Add(timeout))
		fh := wire.FrameHeader{API: wire.APIProduce, Version: wire.Version, Corr: b.corr}
		if err := fw.WriteFrame(fh, &req, b.data); err != nil {
			if p.ctx.Err() != nil {
				return context.Cause(p.ctx)
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				p.c.markSuspect(s.slot)
				return transport(&noAnswerError{what: "produce stream to " + s.addr, d: timeout})
			}
			return transport(fmt.Errorf("produce stream to %s: %w", s.addr, err))
		}
	}
	if p.cfg.acks != AcksNone {
		return nil
	}
	// Without answers a batch is done once written.
	p.mu.Lock()
	for _, b := range out {
		ps := b.part
		if len(ps.inflight) == 0 || ps.inflight[0] != b {
			panic("BUG: client: unacknowledged batches left out of order")
		}
		ps.inflight[0] = nil
		ps.inflight = ps.inflight[1:]
		s.inflightBytes -= b.bytes
		done = append(done, completion{b: b, base: -1})
	}
	p.mu.Unlock()
	p.complete(done)
	return nil
}

func removeBatch(q []*batch, b *batch) []*batch {
	for i, x := range q {
		if x == b {
			copy(q[i:], q[i+1:])
			q[len(q)-1] = nil
			return q[:len(q)-1]
		}
	}
	return q
}

func (s *sink) readLoop() {
	p := s.p
	fr := wire.NewFrameReader(s.st, p.c.cfg.maxFrameBytes)
	var resp wire.ProduceResponse
	for {
		f, err := fr.Next()
		if err != nil {
			p.mu.Lock()
			drained := err == io.EOF && s.finished && len(s.fifo) == 0
			p.mu.Unlock()
			switch {
			case drained:
				return // the broker read everything and ended its side
			case p.ctx.Err() != nil:
				err = context.Cause(p.ctx)
			case errors.Is(err, os.ErrDeadlineExceeded):
				p.c.markSuspect(s.slot)
				err = transport(&noAnswerError{what: "produce stream to " + s.addr, d: p.cfg.requestTimeout})
			default:
				err = transport(fmt.Errorf("produce stream to %s: %w", s.addr, err))
			}
			s.fail(err)
			return
		}
		if f.API != wire.APIProduce {
			err := protocolErrorf("%s answered a produce request with api %d", s.addr, f.API)
			var er wire.ErrorResponse
			if f.API == 0 && fr.DecodeHeader(&f, &er) == nil { // the broker could not read the stream
				err = fmt.Errorf("produce stream to %s: %w", s.addr, wire.AsError(er.Error, er.Message))
			}
			s.fail(err)
			return
		}
		resp = wire.ProduceResponse{}
		if err := decodeAnswer(fr, &f, &resp); err != nil {
			var we *wire.Error
			if !errors.As(err, &we) {
				s.fail(fmt.Errorf("produce answer from %s: %w", s.addr, err))
				return
			}
			resp = wire.ProduceResponse{Error: we.Code, Message: we.Message}
		}
		done, err := s.handle(f.Corr, &resp)
		if err != nil {
			s.fail(err)
			return
		}
		p.complete(done)
		s.signal()
	}
}

// handle applies one answer to the batch at the head of the FIFO.
func (s *sink) handle(corr uint32, resp *wire.ProduceResponse) ([]completion, error) {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(s.fifo) == 0 {
		return nil, protocolErrorf("%s sent a produce answer (corr %d) nobody asked for", s.addr, corr)
	}
	b := s.fifo[0]
	if b.corr != corr {
		return nil, protocolErrorf("%s answered corr %d, expected %d", s.addr, corr, b.corr)
	}
	s.fifo[0] = nil
	s.fifo = s.fifo[1:]
	if len(s.fifo) > 0 {
		s.st.SetReadDeadline(s.fifo[0].sentAt.Add(p.cfg.requestTimeout))
	} else {
		s.st.SetReadDeadline(time.Time{})
	}
	s.inflightBytes -= b.bytes
	ps := b.part
	if len(ps.inflight) == 0 || ps.inflight[0] != b {
		panic("BUG: client: produce answers out of partition order")
	}
	ps.inflight[0] = nil
	ps.inflight = ps.inflight[1:]

	var done []completion
	err := resp.Err()
	switch {
	case err == nil && !ps.recovering:
		ps.failures = 0
		done = append(done, completion{b: b, base: resp.BaseOffset})
	case err == nil || resp.Error.Retriable():
		// Stored or not, it is sent again after the batch that failed
		// before it, so that the partition keeps produce order.
		if err == nil {
			b.stored = true
		} else if errors.Is(err, wire.ErrOutOfOrderSequence) && b.sequenced && len(ps.redo) == 0 {
			// Refused for a gap although every batch before it was
			// acknowledged: the partition does not know this producer
			// (it forgot it, or never stored its first batch). Start a
			// new epoch at sequence 0 once nothing is in flight.
			ps.seqHole = true
		}
		ps.redo = append(ps.redo, b)
		if err != nil {
			if p.c.meta.leaderHint(ps.tp.topic, ps.tp.partition, err) {
				ps.hinted = true
			}
			p.startRecoveryLocked(ps, fmt.Errorf("via %s: %w", s.addr, err))
		}
	default:
		if b.sequenced {
			ps.seqHole = true
		}
		done = append(done, completion{b: b, base: -1, err: recordError(ps, err)})
	}
	if ps.recovering && len(ps.inflight) == 0 {
		p.startRecoveryLocked(ps, nil)
	}
	return done, nil
}

// shutdown hands the partitions of a dead sink to recovery: what was in
// flight is sent again, in order, after the backoff.
func (s *sink) shutdown(err error) {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sinks[s.addr] == s {
		delete(p.sinks, s.addr)
	}
	if s.err == nil {
		s.err = err
	}
	parts := s.parts
	s.parts, s.fifo, s.inflightBytes = nil, nil, 0
	for _, ps := range parts {
		ps.sink = nil
		if p.abortErr != nil {
			continue
		}
		sent := len(ps.inflight) > 0
		ps.redo = append(ps.redo, ps.inflight...)
		ps.inflight = nil
		if !ps.hasWork() {
			ps.recovering = false
			continue
		}
		if !sent && !ps.recovering {
			// Nothing reached the broker (the stream could not be opened):
			// count the failure against the first batch so that retries end.
			if len(ps.ready) == 0 && ps.open != nil {
				p.sealLocked(ps)
			}
			if len(ps.ready) > 0 {
				ps.ready[0].attempts++
			}
		}
		p.startRecoveryLocked(ps, err)
	}
}
