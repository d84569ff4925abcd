package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/rafka/rafka/quicnet"
	"github.com/rafka/rafka/wire"
)

// Client is a connection to a Rafka cluster: it holds one QUIC connection per
// broker it talks to, a metadata cache, and the producers and consumers made
// from it. It is safe for concurrent use.
type Client struct {
	cfg config
	log *slog.Logger
	tls *tls.Config

	// ctx is the client's lifetime: Close cancels it with ErrClosed, which
	// aborts dials, backoffs and the goroutines of producers and consumers.
	ctx    context.Context
	cancel context.CancelCauseFunc

	corr atomic.Uint32 // correlation ids of control requests
	meta metadataCache
	wg   sync.WaitGroup // go-away watchers, one per connection

	// mu guards the fields below and connSlot's counters. Lock order:
	// Producer.mu or Consumer.mu, then Client.mu, then metadataCache.mu.
	mu        sync.Mutex
	closed    bool
	conns     map[string]*connSlot // by broker address
	retired   []*quic.Conn         // replaced after a go-away; closed by Close
	rr        int                  // round-robin cursor for control calls
	producers map[*Producer]struct{}
	consumers map[*Consumer]struct{}
	// down: brokers that recently gave no answer (a dial or a request
	// timed out), by address, with when that stops counting. Requests any
	// broker can answer go elsewhere meanwhile, and producers do not route
	// to them: a killed broker costs one timeout, not one per attempt.
	down map[string]time.Time
}

// downFor is how long a broker that gave no answer is avoided.
const downFor = time.Second

// connSlot is one broker connection, dialed once by the first caller; the
// others wait for done.
type connSlot struct {
	addr string        // the broker address dialed
	done chan struct{} // closed when the dial finished
	conn *quic.Conn    // set before done is closed, nil on error
	err  error

	// Guarded by Client.mu.
	streams   int  // streams open on conn
	goingAway bool // the broker announced its shutdown: open no more streams
	// suspect: a request on conn got no answer in time. A broker that was
	// killed and restarted drops the old connection's packets without a
	// word, and waiting for the idle timeout would stall every request for
	// that long; so the next request dials a new connection, and this one
	// is closed once its last stream is done.
	suspect bool
}

// usableLocked reports whether a finished slot can carry new streams.
func (s *connSlot) usableLocked() bool {
	return s.err == nil && s.conn.Context().Err() == nil && !s.goingAway && !s.suspect
}

// New returns a client for the cluster reachable through the configured
// bootstrap brokers. It fetches cluster metadata once, so a client that
// returns without error has reached a broker. That bootstrap, dials and
// retries included, ends by ctx's deadline or after the control timeout
// (WithControlTimeout), whichever comes first; when no broker answers, the
// error matches ErrNoBrokers and the last attempt's cause (for example
// context.DeadlineExceeded).
func New(ctx context.Context, opts ...Option) (*Client, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	tlsConf, err := buildTLS(&cfg)
	if err != nil {
		return nil, err
	}
	log := cfg.logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		cfg:       cfg,
		log:       log,
		tls:       tlsConf,
		conns:     make(map[string]*connSlot),
		producers: make(map[*Producer]struct{}),
		consumers: make(map[*Consumer]struct{}),
		down:      make(map[string]time.Time),
	}
	c.ctx, c.cancel = context.WithCancelCause(context.Background())
	c.meta.init(cfg.brokers)
	if err := c.bootstrap(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// bootstrap fetches the cluster's metadata within the control timeout.
func (c *Client) bootstrap(ctx context.Context) error {
	bctx, cancel := context.WithTimeout(ctx, c.cfg.requestTimeout)
	defer cancel()
	if _, err := c.fetchMetadata(bctx, nil); err != nil {
		return &bootstrapError{err: err}
	}
	return nil
}

// bootstrapError is New's failure. It matches ErrNoBrokers unless a broker
// answered with a definite error.
type bootstrapError struct{ err error }

func (e *bootstrapError) Error() string { return "client: bootstrap: " + e.err.Error() }

func (e *bootstrapError) Unwrap() []error {
	if definite(e.err) {
		return []error{e.err}
	}
	return []error{ErrNoBrokers, e.err}
}

func buildTLS(cfg *config) (*tls.Config, error) {
	if cfg.tls != nil {
		t := cfg.tls.Clone()
		if len(t.NextProtos) == 0 {
			t.NextProtos = []string{quicnet.ALPN}
		}
		return t, nil
	}
	t, err := quicnet.ClientTLSConfig(quicnet.TLSFiles{CAFile: cfg.caFile, InsecureSkipVerify: cfg.insecure})
	if err != nil {
		return nil, fmt.Errorf("client: tls: %w", err)
	}
	return t, nil
}

// Close closes every producer (without flushing: undelivered records fail
// with ErrClosed) and consumer made from the client, then the connections.
// It is idempotent and returns once the client's goroutines have exited.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	producers := make([]*Producer, 0, len(c.producers))
	for p := range c.producers {
		producers = append(producers, p)
	}
	consumers := make([]*Consumer, 0, len(c.consumers))
	for cs := range c.consumers {
		consumers = append(consumers, cs)
	}
	c.mu.Unlock()

	c.cancel(ErrClosed)
	for _, p := range producers {
		p.abort(ErrClosed)
	}
	for _, cs := range consumers {
		cs.Close()
	}

	c.mu.Lock()
	slots, retired := c.conns, c.retired
	c.conns, c.retired = nil, nil
	c.mu.Unlock()
	for _, s := range slots {
		<-s.done // dials end promptly: their context derives from c.ctx
		if s.conn != nil {
			s.conn.CloseWithError(quicnet.CodeNormal, "client closed")
		}
	}
	for _, conn := range retired {
		conn.CloseWithError(quicnet.CodeNormal, "client closed")
	}
	c.wg.Wait()
	return nil
}

// acquire returns the connection to addr, dialing it if there is none or the
// previous one has ended or is going away, and counts one more stream on it;
// the caller calls release when its stream is done.
func (c *Client) acquire(ctx context.Context, addr string) (*connSlot, error) {
	for range 3 { // a slot found dead is replaced; a fresh dial decides
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		s := c.conns[addr]
		if s != nil {
			select {
			case <-s.done:
				if !s.usableLocked() {
					if s.err == nil && s.conn.Context().Err() == nil {
						c.retireLocked(s.conn)
					}
					delete(c.conns, addr)
					s = nil
				}
			default:
			}
		}
		if s == nil {
			s = &connSlot{addr: addr, done: make(chan struct{})}
			c.conns[addr] = s
			c.mu.Unlock()
			c.dial(ctx, addr, s)
		} else {
			c.mu.Unlock()
		}
		select {
		case <-s.done: // our own dial, or one that finished: its result counts
		default:
			select {
			case <-s.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if s.err != nil {
			return nil, s.err
		}
		c.mu.Lock()
		if s.usableLocked() {
			s.streams++
			c.mu.Unlock()
			return s, nil
		}
		c.mu.Unlock()
	}
	return nil, transport(fmt.Errorf("connection to %s keeps closing", addr))
}

// retireLocked keeps a replaced connection that still has streams, for
// Close; connections that ended meanwhile are forgotten.
func (c *Client) retireLocked(conn *quic.Conn) {
	kept := c.retired[:0]
	for _, r := range c.retired {
		if r.Context().Err() == nil {
			kept = append(kept, r)
		}
	}
	clear(c.retired[len(kept):])
	c.retired = append(kept, conn)
}

// release ends one stream of s. A connection whose broker is going away, or
// that is suspect, is closed once its last stream is done: a broker going
// away waits for that (up to its linger) before it can finish shutting down.
func (c *Client) release(s *connSlot) {
	c.mu.Lock()
	s.streams--
	idle := (s.goingAway || s.suspect) && s.streams == 0
	c.mu.Unlock()
	if idle {
		s.conn.CloseWithError(quicnet.CodeNormal, "")
	}
}

// markSuspect records that a request on s got no answer in time: new
// streams go to a new connection. The caller still holds its stream (its
// release closes the connection when it is the last).
func (c *Client) markSuspect(s *connSlot) {
	c.mu.Lock()
	first := !s.suspect
	s.suspect = true
	c.markDownLocked(s.addr)
	c.mu.Unlock()
	if first {
		c.log.Debug("connection suspect: a request got no answer in time", "broker", s.conn.RemoteAddr().String())
	}
}

// markDownLocked records that the broker at addr gave no answer.
func (c *Client) markDownLocked(addr string) { c.down[addr] = time.Now().Add(downFor) }

// isDown reports whether the broker at addr recently gave no answer.
func (c *Client) isDown(addr string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.isDownLocked(addr)
}

func (c *Client) isDownLocked(addr string) bool {
	until, ok := c.down[addr]
	if ok && time.Now().After(until) {
		delete(c.down, addr)
		return false
	}
	return ok
}

// dial fills s. The dial is bounded by the dial timeout, the caller's context
// and the client's lifetime.
func (c *Client) dial(ctx context.Context, addr string, s *connSlot) {
	defer close(s.done)
	start := time.Now()
	bound := c.cfg.dialTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < bound {
		bound = max(time.Until(dl), time.Millisecond)
	}
	dctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	stop := context.AfterFunc(c.ctx, cancel)
	defer stop()
	// The handshake may be silent for as long as the dial may last (QUIC's
	// handshake idle timeout is half of quicnet's HandshakeTimeout): a
	// broker that does not answer costs one dial, not several shorter ones.
	conn, err := quicnet.Dial(dctx, addr, c.tls, quicnet.Config{Logger: c.log, HandshakeTimeout: 2 * bound})
	var ne net.Error
	switch {
	case err != nil && c.ctx.Err() != nil:
		s.err = ErrClosed
	case err != nil && errors.Is(ctx.Err(), context.Canceled):
		s.err = context.Cause(ctx)
	case err != nil && (dctx.Err() != nil || errors.As(err, &ne) && ne.Timeout()):
		// No answer: nothing listens there, or packets are lost. (A
		// closed UDP port gives no error the dialer sees.)
		s.err = transport(&noAnswerError{what: "dial " + addr, d: time.Since(start), hint: "is a broker running?"})
		c.mu.Lock()
		c.markDownLocked(addr)
		c.mu.Unlock()
	case err != nil:
		s.err = transport(err) // quicnet's error names the address
	default:
		s.conn = conn
		c.mu.Lock()
		delete(c.down, addr)
		c.mu.Unlock()
		c.log.Debug("connected", "broker", addr)
		c.wg.Go(func() {
			// A broker going away answers what it has read and closes
			// its streams; new streams go to a fresh connection (or,
			// after a metadata refresh, elsewhere).
			if quicnet.WaitGoAway(c.ctx, conn) != nil {
				return
			}
			c.log.Debug("broker going away", "broker", addr)
			c.mu.Lock()
			s.goingAway = true
			idle := s.streams == 0
			c.mu.Unlock()
			if idle {
				conn.CloseWithError(quicnet.CodeNormal, "")
			}
		})
	}
}

// openStream opens a bidirectional stream to addr. The caller must call
// release with the returned slot once done with the stream.
func (c *Client) openStream(ctx context.Context, addr string) (*quic.Stream, *connSlot, error) {
	s, err := c.acquire(ctx, addr)
	if err != nil {
		return nil, nil, err
	}
	st, err := s.conn.OpenStreamSync(ctx)
	if err != nil {
		c.release(s)
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, transport(fmt.Errorf("open stream to %s: %w", addr, err))
	}
	return st, s, nil
}

// roundTrip sends one control request on its own stream and decodes the one
// response frame into resp.
func (c *Client) roundTrip(ctx context.Context, addr string, api wire.API, req, resp any) error {
	st, slot, err := c.openStream(ctx, addr)
	if err != nil {
		return err
	}
	defer c.release(slot)
	// Control requests go ahead of bulk data on the same connection.
	st.SetPriority(1, false)
	defer st.CancelRead(quicnet.StreamCodeDone)
	stop := context.AfterFunc(ctx, func() {
		st.CancelWrite(quicnet.StreamCodeDone)
		st.CancelRead(quicnet.StreamCodeDone)
	})
	defer stop()
	start := time.Now()
	if dl, ok := ctx.Deadline(); ok {
		st.SetDeadline(dl)
	}
	fail := func(op string, err error) error {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
			// Nothing came back in time: the connection may be dead
			// without knowing it yet (a broker killed and restarted).
			c.markSuspect(slot)
			return transport(&noAnswerError{what: fmt.Sprintf("%s to %s", api, addr), d: time.Since(start)})
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if errors.Is(err, wire.ErrFrameTooLarge) || errors.Is(err, wire.ErrMalformedFrame) {
			return fmt.Errorf("%s to %s: %s: %w", api, addr, op, err)
		}
		return transport(fmt.Errorf("%s to %s: %s: %w", api, addr, op, err))
	}
	corr := c.corr.Add(1)
	fw := wire.NewFrameWriter(st)
	if err := fw.WriteFrame(wire.FrameHeader{API: api, Version: wire.Version, Corr: corr}, req); err != nil {
		return fail("write", err)
	}
	if err := st.Close(); err != nil {
		return fail("write", err)
	}
	fr := wire.NewFrameReader(st, c.cfg.maxFrameBytes)
	f, err := fr.Next()
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return fail("read", err)
	}
	if f.API == 0 { // a stream-level error: the broker could not read the request
		var er wire.ErrorResponse
		if err := fr.DecodeHeader(&f, &er); err != nil {
			return fmt.Errorf("%s to %s: %w", api, addr, err)
		}
		return fmt.Errorf("%s to %s: %w", api, addr, wire.AsError(er.Error, er.Message))
	}
	if f.API != api || f.Corr != corr {
		return protocolErrorf("%s to %s answered with api %d corr %d, want %d/%d", api, addr, f.API, f.Corr, api, corr)
	}
	if err := decodeAnswer(fr, &f, resp); err != nil {
		return fmt.Errorf("%s to %s: %w", api, addr, err)
	}
	return nil
}

// decodeAnswer decodes a response header into v. A broker that rejects a
// request before handling it (unsupported version, malformed header) answers
// with a bare wire.ErrorResponse instead; its error is returned then.
func decodeAnswer(fr *wire.FrameReader, f *wire.Frame, v any) error {
	err := fr.DecodeHeader(f, v)
	if err == nil {
		return nil
	}
	var er wire.ErrorResponse
	if fr.DecodeHeader(f, &er) == nil && er.Error != wire.ErrNone {
		return &wire.Error{Code: er.Error, Message: er.Message}
	}
	return err
}

// controlCall sends a control request with retries. target picks the broker
// for each attempt (attempt counts from 0); errOf extracts the response's
// error code. Retriable broker codes and transport failures are retried with
// backoff; NOT_LEADER without a leader address and transport failures also
// invalidate metadata for topic (when not empty). A NOT_LEADER that names
// the leader keeps it: errOf is expected to have applied the hint.
func controlCall[Resp any](ctx context.Context, c *Client, api wire.API, req any,
	target func(ctx context.Context, attempt int) (string, error), topic string,
	errOf func(*Resp) error,
) (*Resp, error) {
	var lastErr error
	for attempt := 0; attempt <= c.cfg.retries; attempt++ {
		if attempt > 0 {
			if err := sleepCtx(ctx, backoff(attempt, c.cfg.backoffBase, c.cfg.backoffMax)); err != nil {
				if errors.Is(lastErr, err) {
					return nil, lastErr
				}
				return nil, fmt.Errorf("%w (gave up: %w)", lastErr, err)
			}
		}
		resp, err := controlAttempt(ctx, c, api, req, target, attempt, errOf)
		if err == nil {
			return resp, nil
		}
		lastErr = err
		if c.ctx.Err() != nil {
			return nil, ErrClosed
		}
		if !retriable(err) || ctx.Err() != nil {
			return nil, err
		}
		if topic != "" && (errors.Is(err, ErrNotLeader) && !hasLeaderHint(err) || isTransport(err)) {
			c.meta.invalidate(topic)
		}
		c.log.Debug("control request failed, retrying", "api", api.String(), "attempt", attempt, "err", err)
	}
	return nil, lastErr
}

func controlAttempt[Resp any](ctx context.Context, c *Client, api wire.API, req any,
	target func(ctx context.Context, attempt int) (string, error), attempt int,
	errOf func(*Resp) error,
) (*Resp, error) {
	actx, cancel := c.callContext(ctx)
	defer cancel()
	addr, err := target(actx, attempt)
	if err != nil {
		return nil, err
	}
	resp := new(Resp)
	if err := c.roundTrip(actx, addr, api, req, resp); err != nil {
		return nil, err
	}
	if err := errOf(resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// callContext bounds one control attempt by the control timeout when ctx has
// no earlier deadline, and by the client's lifetime.
func (c *Client) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	d := c.cfg.requestTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		d = time.Until(dl)
	}
	actx, cancel := context.WithTimeout(ctx, d)
	stop := context.AfterFunc(c.ctx, cancel)
	return actx, func() { stop(); cancel() }
}

// anyBroker picks a broker for a request any broker can answer, moving to
// the next known broker on every attempt, and passing over brokers that
// recently gave no answer while others are known.
func (c *Client) anyBroker(_ context.Context, attempt int) (string, error) {
	return c.pickBroker(attempt, "")
}

// otherBroker is anyBroker avoiding the broker at avoid when another is
// known.
func (c *Client) otherBroker(avoid string) func(context.Context, int) (string, error) {
	return func(_ context.Context, attempt int) (string, error) { return c.pickBroker(attempt, avoid) }
}

func (c *Client) pickBroker(attempt int, avoid string) (string, error) {
	addrs := c.meta.brokerAddrs()
	if len(addrs) == 0 {
		return "", &detailError{sentinel: ErrNoBrokers, msg: "no broker known"}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if attempt == 0 {
		c.rr++
	}
	i := c.rr + attempt
	for k := range addrs {
		a := addrs[(i+k)%len(addrs)]
		if a != avoid && !c.isDownLocked(a) {
			return a, nil
		}
	}
	for k := range addrs {
		if a := addrs[(i+k)%len(addrs)]; a != avoid {
			return a, nil
		}
	}
	return addrs[i%len(addrs)], nil
}

// register records a producer or consumer so Close can close it; it fails
// when the client is closed.
func (c *Client) register(p *Producer, cs *Consumer) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if p != nil {
		c.producers[p] = struct{}{}
	}
	if cs != nil {
		c.consumers[cs] = struct{}{}
	}
	return nil
}

func (c *Client) unregister(p *Producer, cs *Consumer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.producers, p)
	delete(c.consumers, cs)
}

// hasLeaderHint reports whether err is a broker error naming a leader's
// address.
func hasLeaderHint(err error) bool {
	var we *wire.Error
	return errors.As(err, &we) && we.LeaderAddr != ""
}
