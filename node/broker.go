package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/rafka/rafka/node/meta"
	"github.com/rafka/rafka/quicnet"
	"github.com/rafka/rafka/segment"
	"github.com/rafka/rafka/wire"
)

// Broker is one Rafka broker: it hosts topic partitions and serves the
// protocol over QUIC, plus the admin HTTP endpoints.
//
// Lifecycle: New opens (and recovers) every topic; Start binds the listeners
// and serves; Shutdown drains in-flight requests, stops serving and closes
// every log. Shutdown is idempotent.
type Broker struct {
	cfg     Config
	log     *slog.Logger
	id      string
	metrics *brokerMetrics

	// adminMu serialises topic creation, deletion and config changes.
	adminMu sync.Mutex
	// catalog is the set of topics (topic.go): the cluster's metadata.
	catalog meta.Catalog
	// cluster is this broker's membership (cluster.go).
	cluster *cluster
	// verify runs the replica consistency checks (verify.go).
	verify *verifier
	// moves drives the replica moves of partitions this broker leads
	// (moves.go).
	moves *mover
	// leadersDrainChecked: this start ended its own leaders-only drain,
	// or found none (drain.go, endLeadersDrainOnce).
	leadersDrainChecked atomic.Bool
	// topicMap is replaced (copy on write, under adminMu) on every topic
	// change, so request handlers look topics up without a lock.
	topicMap atomic.Pointer[map[string]*topic]

	srv     *quicnet.Server
	admin   *http.Server
	adminLn net.Listener
	addr    string

	ctx     context.Context // cancelled by Shutdown
	cancel  context.CancelCauseFunc
	wg      sync.WaitGroup // serve loop, admin server, retention loop
	closing atomic.Bool
	ready   atomic.Bool

	// lock is the exclusive lock on DataDir, held from New until Shutdown
	// returns; resetKey is the QUIC stateless-reset key kept in DataDir.
	lock     *dirLock
	resetKey *quic.StatelessResetKey
	// budget bounds memory held in frames being received.
	budget *frameBudget
	// drainBy (unix ns, 0 until Shutdown) is the write deadline of streams
	// once shutdown has begun.
	drainBy atomic.Int64
	// panicHook, set by tests only, runs at the start of every guarded
	// stream goroutine (and each write) with its name.
	panicHook atomic.Pointer[func(goroutine string)]

	shutdownOnce sync.Once
	shutdownErr  error
}

// ErrBrokerClosed is the cause of the broker's context after Shutdown.
var ErrBrokerClosed = errors.New("node: broker shut down")

// New validates cfg, creates the data directory, locks it (ErrDataDirLocked
// when another broker holds it) and opens every topic found in it,
// recovering their logs. It does not listen yet: call Start. The lock is
// held until Shutdown returns.
func New(cfg Config) (*Broker, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("node: data dir: %w", err)
	}
	// The lock comes before anything else reads or writes the directory: a
	// second broker must not even open the topics of a live one.
	lock, err := lockDataDir(cfg.DataDir, cfg.Listen)
	if err != nil {
		return nil, err
	}
	b, err := newLocked(cfg, lock)
	if err != nil {
		lock.release()
		return nil, err
	}
	return b, nil
}

func newLocked(cfg Config, lock *dirLock) (*Broker, error) {
	b := &Broker{cfg: cfg, log: cfg.Logger, lock: lock}
	id, err := loadBrokerID(cfg.DataDir, cfg.BrokerID)
	if err != nil {
		return nil, err
	}
	if b.resetKey, err = loadResetKey(cfg.DataDir); err != nil {
		return nil, err
	}
	b.id = id
	b.log = b.log.With("broker", id)
	b.budget = newFrameBudget(cfg.MaxFrameMemory, cfg.MaxConnFrameMemory)
	b.metrics = newBrokerMetrics(b)
	b.verify = newVerifier(b)
	b.ctx, b.cancel = context.WithCancelCause(context.Background())
	b.topicMap.Store(&map[string]*topic{})
	if b.cluster, err = newCluster(b); err != nil {
		b.cancel(err)
		return nil, err
	}
	b.moves = newMover(b)
	b.catalog = clusterCatalog{b.cluster}
	return b, nil
}

// brokerFile holds the broker's identity across restarts.
type brokerFile struct {
	ID string `json:"id"`
}

func loadBrokerID(dir, configured string) (string, error) {
	path := filepath.Join(dir, "broker.json")
	var f brokerFile
	switch data, err := os.ReadFile(path); {
	case err == nil:
		if err := json.Unmarshal(data, &f); err != nil || f.ID == "" {
			return "", fmt.Errorf("node: %s is corrupt (%v); restore it or remove it to get a new broker id", path, err)
		}
		if configured != "" && configured != f.ID {
			return "", fmt.Errorf("node: broker id %q configured, but %s says %q", configured, path, f.ID)
		}
		return f.ID, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("node: %w", err)
	}
	f.ID = configured
	if f.ID == "" {
		var r [8]byte
		rand.Read(r[:])
		f.ID = "b-" + hex.EncodeToString(r[:])
	}
	data, _ := json.Marshal(f)
	if err := writeFileSync(path, data); err != nil {
		return "", fmt.Errorf("node: %w", err)
	}
	return f.ID, nil
}

// Start binds the QUIC listener and the admin HTTP server and serves in the
// background until Shutdown.
func (b *Broker) Start() error {
	tlsFiles := b.cfg.TLS
	if tlsFiles.DataDir == "" {
		tlsFiles.DataDir = b.cfg.DataDir
	}
	tlsConf, err := quicnet.ServerTLSConfig(tlsFiles)
	if err != nil {
		return fmt.Errorf("node: tls: %w", err)
	}
	qcfg := b.cfg.QUIC
	if qcfg.Logger == nil {
		qcfg.Logger = b.log
	}
	if qcfg.StatelessResetKey == nil {
		qcfg.StatelessResetKey = b.resetKey
	}
	srv, err := quicnet.Listen(b.cfg.Listen, tlsConf, qcfg, quicnet.HandlerFunc(b.serveStream))
	if err != nil {
		return fmt.Errorf("node: listen: %w", err)
	}
	b.srv = srv
	b.addr = srv.Addr().String()
	if err := b.lock.setListen(b.addr); err != nil {
		b.log.Warn("could not record the listen address in the lock file", "err", err)
	}
	if b.cfg.AdminListen != "" {
		ln, err := net.Listen("tcp", b.cfg.AdminListen)
		if err != nil {
			srv.Close()
			return fmt.Errorf("node: admin listen: %w", err)
		}
		b.adminLn = ln
		b.admin = &http.Server{Handler: b.adminHandler(), ReadHeaderTimeout: 10 * time.Second}
		b.wg.Go(func() {
			if err := b.admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				b.log.Error("admin server stopped", "err", err)
			}
		})
	}
	b.wg.Go(func() {
		if err := srv.Serve(); err != nil && !errors.Is(err, quicnet.ErrServerClosed) {
			b.log.Error("quic server stopped", "err", err)
		}
	})
	forming := b.cluster.clusterID() == "" && len(b.cfg.Cluster.Join) == 0
	if err := b.cluster.start(tlsFiles); err != nil {
		srv.Close()
		return err
	}
	if b.cluster.joined.Load() {
		// Forming or restarting: become usable before returning when this
		// broker can (a cluster of one, or a quorum reachable).
		b.cluster.settle()
		if forming {
			b.importLegacyTopics()
		}
	}
	b.reconcile()
	b.wg.Go(b.reconcileLoop)
	b.wg.Go(b.rebalanceLoop)
	b.wg.Go(b.moveLoop)
	b.wg.Go(b.retentionLoop)
	b.wg.Go(b.verifyLoop)
	b.ready.Store(true)
	b.log.Info("broker started", "listen", b.addr, "admin", b.AdminAddr(), "data_dir", b.cfg.DataDir)
	return nil
}

// ID is the broker's identity.
func (b *Broker) ID() string { return b.id }

// Addr is the bound QUIC address (host:port), valid after Start.
func (b *Broker) Addr() string { return b.addr }

// advertised is the address given to clients in metadata.
func (b *Broker) advertised() string {
	if b.cfg.AdvertisedAddr != "" {
		return b.cfg.AdvertisedAddr
	}
	return b.addr
}

// AdminAddr is the bound admin HTTP address, or "" when disabled.
func (b *Broker) AdminAddr() string {
	if b.adminLn == nil {
		return ""
	}
	return b.adminLn.Addr().String()
}

func (b *Broker) topics() map[string]*topic { return *b.topicMap.Load() }

// setTopic installs t under name (nil removes it); adminMu must be held.
func (b *Broker) setTopic(name string, t *topic) {
	m := maps.Clone(b.topics())
	if t == nil {
		delete(m, name)
	} else {
		m[name] = t
	}
	b.topicMap.Store(&m)
}

// lookup returns the partition, or the error to answer with: unknown topic
// or partition, or PARTITION_OFFLINE for a partition whose log is offline.
func (b *Broker) lookup(topicName string, id int32) (*partition, *wire.Error) {
	t, ok := b.topics()[topicName]
	if !ok {
		if _, known := b.catalog.Get(topicName); !known {
			// This broker may not have applied the topic's creation yet
			// (a client routed here by another broker's metadata):
			// confirm with the metadata leader before calling it unknown.
			if e := b.cluster.syncMeta(b.ctx); e != nil {
				return nil, e
			}
			if _, known = b.catalog.Get(topicName); !known {
				return nil, unknownPartition(topicName, id)
			}
		}
		// Metadata already (or still) lists the topic while its
		// partitions are being opened (or closed): retriable.
		return nil, &wire.Error{Code: wire.ErrNotLeader, Message: fmt.Sprintf(
			"topic %q is being created or deleted on this broker; retry", topicName)}
	}
	p := t.partition(id)
	switch {
	case p == nil && (id < 0 || int(id) >= len(t.parts)):
		return nil, unknownPartition(topicName, id)
	case p == nil:
		return nil, b.notHere(topicName, id)
	case p.Offline() != nil:
		return nil, &wire.Error{Code: wire.ErrPartitionOffline, Message: fmt.Sprintf("partition %s/%d is offline: %v", topicName, id, p.Offline())}
	}
	return p, nil
}

// offlineCount is the number of partitions whose logs could not be opened.
func (b *Broker) offlineCount() int {
	n := 0
	for _, t := range b.topics() {
		for _, p := range t.hosted() {
			if p.Offline() != nil {
				n++
			}
		}
	}
	return n
}

// offlinePartitions lists the partitions whose logs could not be opened.
func (b *Broker) offlinePartitions() []string {
	var out []string
	for name, t := range b.topics() {
		for _, p := range t.hosted() {
			if p.Offline() != nil {
				out = append(out, fmt.Sprintf("%s/%d: %v", name, p.ID(), p.Offline()))
			}
		}
	}
	slices.Sort(out)
	return out
}

func (b *Broker) retentionLoop() {
	t := time.NewTicker(b.cfg.RetentionInterval)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
			b.EnforceRetention()
		}
	}
}

// EnforceRetention deletes expired segments of every partition now (it also
// runs every RetentionInterval).
func (b *Broker) EnforceRetention() {
	for name, t := range b.topics() {
		for _, p := range t.hosted() {
			n, err := p.EnforceRetention()
			if err != nil && !errors.Is(err, segment.ErrClosed) {
				b.log.Warn("retention", "topic", name, "partition", p.ID(), "err", err)
			}
			if n > 0 {
				b.log.Info("retention removed segments", "topic", name, "partition", p.ID(), "segments", n)
			}
		}
	}
}

// Shutdown stops accepting work, lets in-flight requests finish, then
// flushes and closes every log and releases the data directory. It is
// bounded by ctx, or ShutdownTimeout when ctx has no deadline, and returns
// nil within it whatever clients do: subscriptions get a
// BROKER_SHUTTING_DOWN end for each partition and are closed; responses
// already due are written until half the remaining time has passed
// (drainDeadline), after which streams whose client does not read are
// reset; then the transport lingers briefly for clients to close
// (quicnet.Config.ShutdownLinger) and closes what is left. It is safe to call
// more than once and without Start.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.shutdownOnce.Do(func() { b.shutdownErr = b.shutdown(ctx) })
	return b.shutdownErr
}

// drainShare is the part of the shutdown time given to writing responses
// already due; the rest covers the transport's linger and closing logs.
const drainShare = 2

// drainDeadline is the write deadline of every stream once Shutdown has
// begun; ok is false before.
func (b *Broker) drainDeadline() (time.Time, bool) {
	n := b.drainBy.Load()
	return time.Unix(0, n), n != 0
}

func (b *Broker) shutdown(ctx context.Context) error {
	defer b.lock.release()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.cfg.ShutdownTimeout)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	if b.ready.Load() {
		// Leadership first, while this broker still serves: up to a
		// quarter of the shutdown time.
		dctx, cancel := context.WithTimeout(ctx, time.Until(deadline)/4)
		b.drainLeadership(dctx)
		cancel()
		deadline, _ = ctx.Deadline()
	}
	b.drainBy.Store(time.Now().Add(time.Until(deadline) / drainShare).UnixNano())
	b.ready.Store(false)
	b.closing.Store(true)
	var errs []error
	// The DHT shares the QUIC socket: stop it before the socket closes
	// under it.
	if err := b.cluster.stopDHT(); err != nil {
		errs = append(errs, fmt.Errorf("node: dht: %w", err))
	}
	if b.srv != nil {
		if err := b.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("node: quic shutdown: %w", err))
		}
	}
	b.cancel(ErrBrokerClosed)
	if err := b.cluster.stop(); err != nil {
		errs = append(errs, fmt.Errorf("node: cluster: %w", err))
	}
	if b.admin != nil {
		if err := b.admin.Shutdown(ctx); err != nil {
			b.admin.Close()
		}
	}
	b.wg.Wait()
	b.adminMu.Lock()
	for _, t := range b.topics() {
		if err := b.closeTopic(t); err != nil {
			errs = append(errs, fmt.Errorf("node: close topic %s: %w", t.meta.Name, err))
		}
	}
	b.adminMu.Unlock()
	b.log.Info("broker stopped")
	return errors.Join(errs...)
}
