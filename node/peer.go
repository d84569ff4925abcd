package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"google.golang.org/protobuf/proto"

	"github.com/rafka/rafka/node/group"
	"github.com/rafka/rafka/quicnet"
	"github.com/rafka/rafka/wire"
)

// Brokers talk to each other over the same QUIC listener clients use, one
// connection per broker pair (dialled by whichever side needs it first):
//
//   - raft messages of every group ride one long-lived stream per direction
//     (APIRaft), written by a link goroutine per peer that batches what
//     accumulated while the previous frame was written;
//   - heartbeats (APIBrokerHeartbeat) are a request on a stream of their own.
//   - peer liveness: a link that wrote nothing for a raft tick writes an
//     empty APIRaft frame (Count 0), so every peer that has a link to this
//     broker is heard from at least once a tick, whatever the raft groups
//     do (quiesced groups send nothing). A peer silent for peerSuspectTicks
//     ticks is reported down to the raft driver (Driver.ReportPeerDown),
//     which replaces the leaders it had at once; heard again, it is
//     reported up. One frame per broker pair and tick replaces the
//     heartbeats of every group the pair shares.
//
// A broker-only API is served only to a connection that presented a
// certificate from the cluster CA with the server-auth usage, which broker
// certificates have and client certificates (rafka certs create-client) do
// not (peerAuthorized).

// Bounds of a link's queue and of one raft frame. Raft retransmits what is
// dropped, so a peer that cannot keep up loses messages, not memory.
const (
	linkQueueMsgs    = 4096
	linkQueueBytes   = 64 << 20
	linkFrameBytes   = 4 << 20
	linkBackoffMin   = 50 * time.Millisecond
	linkBackoffMax   = 2 * time.Second
	peerCallTimeout  = 5 * time.Second
	peerDialTimeout  = 5 * time.Second
	maxRaftEnvelopes = wire.MaxRaftBatch
	// peerSuspectTicks: a peer silent on its raft link for this many raft
	// ticks (four missed liveness frames and a tick of slack) is suspected
	// down: 500 ms at the default tick. Shorter fails over sooner; a
	// suspicion only matters when a quorum of a group's members share it,
	// but then it moves the group's leadership, so it must outlast the
	// stalls of a busy broker (under the race detector on 2 cores, gaps of
	// 250 ms between frames were seen).
	peerSuspectTicks = 5
)

// errNoPeerTLS: a broker started without a CA and broker certificate cannot
// talk to other brokers.
var errNoPeerTLS = errors.New("node: talking to other brokers needs --tls-ca, --tls-cert and --tls-key (brokers authenticate each other by mTLS)")

// peers is the broker's side of broker-to-broker traffic: raft id to address
// resolution, connections, raft links and calls.
type peers struct {
	b      *Broker
	c      *cluster
	tls    *tls.Config // client side: our broker certificate + the cluster CA
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu guards the maps; a link's queue has its own lock.
	mu    sync.Mutex
	addrs map[uint64]string // raft id -> address, from metadata and messages
	links map[uint64]*peerLink
	conns map[string]*peerConn // by address
	heard map[uint64]*peerLiveness
}

// peerLiveness is what this broker knows of a peer's liveness: when it
// last received a raft frame from it (unix ns), and whether the liveness
// loop reported it down (owned by that loop).
type peerLiveness struct {
	last atomic.Int64
	down bool
}

// peerConn is one connection to a peer address; ready is closed once dialled.
type peerConn struct {
	ready chan struct{}
	conn  *quic.Conn
	err   error
}

func newPeers(b *Broker, c *cluster, tlsConf *tls.Config) *peers {
	ctx, cancel := context.WithCancel(b.ctx)
	return &peers{b: b, c: c, tls: tlsConf, ctx: ctx, cancel: cancel,
		addrs: make(map[uint64]string), links: make(map[uint64]*peerLink), conns: make(map[string]*peerConn),
		heard: make(map[uint64]*peerLiveness)}
}

// setAddr records where raft id lives.
func (p *peers) setAddr(id uint64, addr string) {
	if id == 0 || addr == "" {
		return
	}
	p.mu.Lock()
	p.addrs[id] = addr
	p.mu.Unlock()
}

func (p *peers) addr(id uint64) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if a, ok := p.addrs[id]; ok {
		return a
	}
	if br, ok := p.c.state.BrokerByRaftID(id); ok {
		return br.Addr
	}
	return ""
}

// heardFrom records a raft frame (possibly empty) received from peer id.
func (p *peers) heardFrom(id uint64) {
	now := time.Now().UnixNano()
	p.mu.Lock()
	h, ok := p.heard[id]
	if !ok {
		h = new(peerLiveness)
		p.heard[id] = h
	}
	p.mu.Unlock()
	h.last.Store(now)
}

// checkLiveness reports to the driver the peers that went silent for
// peerSuspectTicks ticks since the last check (down), and those heard from
// again (up). Only the liveness loop calls it.
func (p *peers) checkLiveness(tick time.Duration) {
	now := time.Now().UnixNano()
	limit := int64(peerSuspectTicks * tick)
	var down, up []uint64
	p.mu.Lock()
	for id, h := range p.heard {
		switch silent := now-h.last.Load() > limit; {
		case silent && !h.down:
			h.down = true
			down = append(down, id)
		case !silent && h.down:
			h.down = false
			up = append(up, id)
		}
	}
	p.mu.Unlock()
	for _, id := range down {
		p.b.log.Info("peer broker silent; replacing the raft leaders it had", "peer", p.brokerName(id), "silent_for", time.Duration(peerSuspectTicks)*tick)
		p.c.driver.ReportPeerDown(id)
	}
	for _, id := range up {
		p.b.log.Info("peer broker heard from again", "peer", p.brokerName(id))
		p.c.driver.ReportPeerUp(id)
	}
}

// brokerName is the broker id of raft id, as the metadata knows it, else
// the raft id in hex (as raft's own log lines show it).
func (p *peers) brokerName(id uint64) string {
	if br, ok := p.c.state.BrokerByRaftID(id); ok {
		return br.ID
	}
	return fmt.Sprintf("%x", id)
}

// suspected counts the peers reported down now.
func (p *peers) suspected() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, h := range p.heard {
		if h.down {
			n++
		}
	}
	return n
}

// conn returns a live connection to addr, dialling when there is none.
func (p *peers) conn(ctx context.Context, addr string) (*quic.Conn, error) {
	for {
		p.mu.Lock()
		pc, ok := p.conns[addr]
		if ok {
			select {
			case <-pc.ready:
				if pc.err == nil && pc.conn.Context().Err() == nil {
					p.mu.Unlock()
					return pc.conn, nil
				}
				delete(p.conns, addr) // failed or gone: dial again below
				ok = false
			default:
			}
		}
		if !ok {
			pc = &peerConn{ready: make(chan struct{})}
			p.conns[addr] = pc
			p.mu.Unlock()
			dctx, cancel := context.WithTimeout(p.ctx, peerDialTimeout)
			pc.conn, pc.err = quicnet.Dial(dctx, p.b.cfg.Cluster.peerDialAddr(addr), p.tls, p.b.cfg.QUIC)
			cancel()
			close(pc.ready)
			if pc.err != nil {
				p.mu.Lock()
				if p.conns[addr] == pc {
					delete(p.conns, addr)
				}
				p.mu.Unlock()
				return nil, pc.err
			}
			return pc.conn, nil
		}
		p.mu.Unlock()
		select {
		case <-pc.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// dropConn forgets a connection that failed so the next use dials again.
func (p *peers) dropConn(addr string, conn *quic.Conn) {
	p.mu.Lock()
	if pc, ok := p.conns[addr]; ok {
		// pc.conn is written by its dialler before ready closes: while the
		// dial runs, pc is a new connection, not the one that failed.
		select {
		case <-pc.ready:
			if pc.conn == conn {
				delete(p.conns, addr)
			}
		default:
		}
	}
	p.mu.Unlock()
	if conn != nil {
		conn.CloseWithError(quicnet.CodeNormal, "")
	}
}

// call sends one request to addr on a stream of its own and decodes the
// response header into resp.
func (p *peers) call(ctx context.Context, addr string, api wire.API, req, resp any) error {
	return p.callWithin(ctx, peerCallTimeout, addr, api, req, resp)
}

// callWithin is call bounded by timeout rather than peerCallTimeout, for
// requests that take long by nature (a consistency check reads logs).
func (p *peers) callWithin(ctx context.Context, timeout time.Duration, addr string, api wire.API, req, resp any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if p.tls == nil {
		return errNoPeerTLS
	}
	conn, err := p.conn(ctx, addr)
	if err != nil {
		return err
	}
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		p.dropConn(addr, conn)
		return fmt.Errorf("node: peer %s: %w", addr, err)
	}
	stop := context.AfterFunc(ctx, func() {
		s.CancelRead(quicnet.StreamCodeDone)
		s.CancelWrite(quicnet.StreamCodeDone)
	})
	defer stop()
	fw := wire.NewFrameWriter(s)
	if err := fw.WriteFrame(wire.FrameHeader{API: api, Version: wire.Version, Corr: 1}, req); err != nil {
		return fmt.Errorf("node: peer %s: %w", addr, err)
	}
	s.Close()
	fr := wire.NewFrameReader(s, wire.DefaultMaxFrameSize)
	defer fr.Close()
	f, err := fr.Next()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("node: peer %s: %w", addr, context.Cause(ctx))
		}
		return fmt.Errorf("node: peer %s: %w", addr, err)
	}
	if f.API != api {
		var e wire.ErrorResponse
		if wire.DecodeHeader(f.Header, &e) == nil && e.Error != wire.ErrNone {
			return &wire.Error{Code: e.Error, Message: e.Message}
		}
		return fmt.Errorf("node: peer %s answered api %d to %s", addr, f.API, api)
	}
	return wire.DecodeHeader(f.Header, resp)
}

// Send implements group.Transport: it queues msgs for peer to and never
// blocks.
func (p *peers) Send(to uint64, msgs []group.Envelope) {
	if msgs = p.b.moves.throttle(to, msgs); len(msgs) == 0 {
		return
	}
	p.mu.Lock()
	l, ok := p.links[to]
	if !ok {
		if p.ctx.Err() != nil {
			p.mu.Unlock()
			return
		}
		l = &peerLink{p: p, id: to, wake: make(chan struct{}, 1)}
		p.links[to] = l
		p.wg.Go(l.run)
	}
	p.mu.Unlock()
	l.enqueue(msgs)
}

// close stops every link and closes every connection.
func (p *peers) close() {
	p.cancel()
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, pc := range p.conns {
		select {
		case <-pc.ready:
			if pc.conn != nil {
				pc.conn.CloseWithError(quicnet.CodeNormal, "")
			}
		default:
		}
		delete(p.conns, addr)
	}
}

// peerLink carries raft messages to one peer.
type peerLink struct {
	p    *peers
	id   uint64
	wake chan struct{}

	mu     sync.Mutex
	q      []group.Envelope
	sizes  []int // proto size of each queued message
	qBytes int   // sum of sizes
}

// enqueue queues msgs, dropping those past the queue's bounds in count and
// bytes (entries of a slow peer's appends would otherwise pile up; raft
// sends them again).
func (l *peerLink) enqueue(msgs []group.Envelope) {
	l.mu.Lock()
	for _, m := range msgs {
		n := proto.Size(m.Msg)
		if len(l.q) >= linkQueueMsgs || l.qBytes+n > linkQueueBytes && len(l.q) > 0 {
			l.p.c.metrics.raftDropped.Inc()
			continue
		}
		l.q = append(l.q, m)
		l.sizes = append(l.sizes, n)
		l.qBytes += n
	}
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// take removes up to one frame's worth of queued messages.
func (l *peerLink) take(buf []group.Envelope) []group.Envelope {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := min(len(l.q), maxRaftEnvelopes)
	size := 0
	for i := range n {
		size += l.sizes[i]
		if size > linkFrameBytes && i > 0 {
			n = i
			size -= l.sizes[i]
			break
		}
	}
	buf = append(buf[:0], l.q[:n]...)
	rest := copy(l.q, l.q[n:])
	clear(l.q[rest:])
	l.q = l.q[:rest]
	l.sizes = l.sizes[:copy(l.sizes, l.sizes[n:])]
	l.qBytes -= size
	return buf
}

func (l *peerLink) run() {
	var (
		s       *quic.Stream
		conn    *quic.Conn
		addr    string
		fw      *wire.FrameWriter
		batch   []group.Envelope
		payload []byte
		backoff = linkBackoffMin
		// wrote: a frame was written since the last tick; an idle tick
		// writes an empty frame, the peer's sign of this broker's life.
		wrote bool
	)
	tick := time.NewTicker(l.p.c.cfg.RaftTick)
	defer tick.Stop()
	defer func() {
		if s != nil {
			s.CancelWrite(quicnet.StreamCodeDone)
		}
	}()
	for {
		alive := false
		select {
		case <-l.p.ctx.Done():
			return
		case <-l.wake:
		case <-tick.C:
			alive, wrote = !wrote, false
		}
		for {
			batch = l.take(batch)
			if len(batch) == 0 && !alive {
				break
			}
			alive = false
			if a := l.p.addr(l.id); a != addr || s == nil {
				if s != nil {
					s.Close()
					s = nil
				}
				addr = a
			}
			err := error(nil)
			switch {
			case l.p.tls == nil:
				err = errNoPeerTLS
			case addr == "":
				err = errors.New("no address known")
			}
			if err == nil && s == nil {
				conn, err = l.p.conn(l.p.ctx, addr)
				if err == nil {
					s, err = conn.OpenStreamSync(l.p.ctx)
					if err != nil {
						l.p.dropConn(addr, conn)
					} else {
						fw = wire.NewFrameWriter(s)
					}
				}
			}
			if err == nil {
				payload, err = group.AppendEnvelopes(payload[:0], batch)
				if err == nil {
					hdr := wire.RaftMessages{ClusterID: l.p.c.clusterID(), From: l.p.c.raftID, FromAddr: l.p.b.advertised(), Count: uint32(len(batch))}
					s.SetWriteDeadline(time.Now().Add(peerCallTimeout))
					err = fw.WriteFrame(wire.FrameHeader{API: wire.APIRaft, Version: wire.Version}, &hdr, payload)
				}
			}
			if err == nil {
				backoff = linkBackoffMin
				wrote = true
				l.p.c.metrics.raftSent.Add(len(batch))
				continue
			}
			// The batch is lost; raft retransmits. Wait before trying again
			// so a dead peer costs little.
			l.p.c.metrics.raftDropped.Add(len(batch))
			if l.p.ctx.Err() != nil {
				return
			}
			l.p.b.log.Debug("raft link to peer failed", "peer", l.id, "addr", addr, "err", err)
			l.p.c.reportUnreachable(l.id)
			if s != nil {
				s.CancelWrite(quicnet.StreamCodeDone)
				s = nil
			}
			if conn != nil {
				l.p.dropConn(addr, conn)
				conn = nil
			}
			t := time.NewTimer(backoff)
			select {
			case <-l.p.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(backoff*2, linkBackoffMax)
			l.mu.Lock()
			clear(l.q)
			l.q, l.sizes, l.qBytes = l.q[:0], l.sizes[:0], 0
			l.mu.Unlock()
		}
	}
}

// peerAuthorized reports whether conn's client presented a broker
// certificate of the cluster CA: verified against ClientCAs by the TLS
// handshake, with the server-auth usage that only broker certificates have.
func peerAuthorized(conn *quic.Conn) bool {
	cs := conn.ConnectionState().TLS
	return len(cs.VerifiedChains) > 0 && len(cs.PeerCertificates) > 0 && quicnet.IsBrokerCert(cs.PeerCertificates[0])
}

// serveRaft reads raft frames from a peer until the stream ends and steps
// the driver with them.
func (st *stream) serveRaft(f *wire.Frame) {
	c := st.b.cluster
	for {
		var hdr wire.RaftMessages
		if err := wire.DecodeHeader(f.Header, &hdr); err != nil {
			st.b.log.Debug("raft stream: bad header", "err", err)
			st.s.CancelRead(quicnet.StreamCodeProtocol)
			return
		}
		if id := c.clusterID(); id == "" || hdr.ClusterID != id {
			// Not joined yet (the leader's messages arrive before we know
			// the cluster), or another cluster: drop, raft retries.
			c.metrics.raftDropped.Add(int(hdr.Count))
		} else if envs, err := group.ParseEnvelopes(f.Payload, int(hdr.Count)); err != nil {
			st.b.log.Debug("raft stream: bad payload", "from", hdr.From, "err", err)
			st.s.CancelRead(quicnet.StreamCodeProtocol)
			return
		} else {
			c.peers.setAddr(hdr.From, hdr.FromAddr)
			c.peers.heardFrom(hdr.From)
			if len(envs) > 0 {
				c.metrics.raftReceived.Add(len(envs))
				c.driver.Step(hdr.From, envs)
			}
		}
		next, ok := st.next()
		if !ok {
			return
		}
		if next.API != wire.APIRaft {
			st.s.CancelRead(quicnet.StreamCodeProtocol)
			return
		}
		*f = next
	}
}
