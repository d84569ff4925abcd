package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/rafka/rafka/node/meta"
	"github.com/rafka/rafka/quicnet"
	"github.com/rafka/rafka/segment"
	"github.com/rafka/rafka/wire"
)

// Config configures a broker. The zero value of every field means its default;
// withDefaults fills them and Validate reports every problem at once.
type Config struct {
	// DataDir holds topics, the broker identity and the development TLS
	// certificate. Default "./rafka-data".
	DataDir string
	// Listen is the QUIC (UDP) address clients connect to. Default
	// "127.0.0.1:9092"; port 0 picks a free port (see Broker.Addr).
	Listen string
	// AdvertisedAddr is the address put in metadata responses. Default: the
	// bound listen address.
	AdvertisedAddr string
	// AdminListen is the HTTP address of /metrics, /healthz, /readyz and
	// /debug/pprof. Empty disables the admin server (the CLI sets
	// "127.0.0.1:9644" by default).
	AdminListen string
	// BrokerID names this broker. Default: a random ID generated on first
	// start and kept in DataDir/broker.json.
	BrokerID string

	// TLS selects certificates; with no cert files a self-signed certificate
	// is generated once in DataDir/tls.
	TLS quicnet.TLSFiles
	// QUIC holds per-connection limits (streams, receive windows, timeouts).
	QUIC quicnet.Config

	// MaxFrameBytes bounds a request frame. Default wire.DefaultMaxFrameSize
	// (16 MiB + 64 KiB). Larger frames get FRAME_TOO_LARGE and the stream is
	// closed; the connection survives.
	MaxFrameBytes int
	// MaxConnFrameMemory bounds the bytes one connection may hold in frames
	// being received, over all its streams, and in batches copied from the
	// hotstore ring that wait to be sent to it (past the bound those are
	// served as zero-copy segment views instead). Default 64 MiB; at least
	// MaxFrameBytes. A frame that would pass it is refused before its buffer
	// is allocated: the stream gets THROTTLED and is closed. Higher lets one
	// client send more large requests at once (many streams each sending a
	// 16 MiB produce); lower bounds what a client announcing large frames
	// and sending them slowly can pin.
	MaxConnFrameMemory int64
	// MaxFrameMemory bounds the same over every connection of the broker.
	// Default 1 GiB; at least MaxConnFrameMemory. It caps the broker's heap
	// spent on requests being received whatever the number of clients; size
	// it within the memory left after the hotstore rings.
	MaxFrameMemory int64
	// FrameTimeout bounds how long one request frame may take to arrive once
	// its length has: a client that announces a frame and sends it slowly
	// holds frame memory (MaxConnFrameMemory) meanwhile. Past it the stream
	// gets REQUEST_TIMED_OUT and is closed. Default 60 s (a 16 MiB frame
	// at 300 KB/s); streams idle between frames are not affected.
	FrameTimeout time.Duration
	// MaxPartitions bounds the partitions of all topics together. Default
	// 50,000; at most wire.MaxHeaderElements - wire.MaxListLen, so that a
	// metadata answer listing every topic fits the protocol's header limits.
	// Each partition costs open files, mappings and up to HotstoreBytes of
	// memory; CreateTopic beyond it gets INVALID_PARTITIONS.
	MaxPartitions int
	// HotstoreBytes is the per-partition budget of the in-memory ring of
	// recent batches. Default 8 MiB; negative disables the ring (tail reads
	// then come from the segment files through the page cache). Memory use is
	// about this times the number of partitions with recent writes.
	HotstoreBytes int
	// HotstoreLockFree selects the lock-free ring (hotstore.LockFreeRing)
	// instead of the mutex-guarded one for every partition. Default false:
	// on 2 cores the two measured even (see hotstore's package
	// documentation); the lock-free one should win with many cores and many
	// tail readers per partition, so measure on the deployment hardware
	// (rafka-bench, or hotstore's BenchmarkTailRead) before turning it on.
	HotstoreLockFree bool
	// DefaultReplicationFactor is the number of replicas of each partition
	// of a topic created without one. Default 3; capped, at creation, by the
	// number of live brokers (a broker alone gets 1). A partition with more
	// than one replica is a raft group over them (docs/replication.md).
	DefaultReplicationFactor int
	// TopicDefaults are the configs of a topic created without them; each
	// zero field takes the default TopicConfig documents.
	TopicDefaults TopicConfig
	// RetentionInterval is how often retention runs. Default 1 minute.
	RetentionInterval time.Duration
	// MaxFetchWait caps a fetch request's MaxWaitMs. Default 30 s.
	MaxFetchWait time.Duration
	// ShutdownTimeout bounds the graceful part of Shutdown when its context
	// has no deadline. Default 10 s.
	ShutdownTimeout time.Duration
	// VerifyInterval is how often the leader of each replicated partition
	// compares its replicas' committed logs in the background
	// (docs/replication.md, "Consistency checks"). Default 5 minutes;
	// negative disables the background check (rafka verify still works).
	// A check reads only what changed since the last one (digests of
	// sealed segments are cached), so shorter finds divergence sooner for
	// little cost.
	VerifyInterval time.Duration
	// VerifyBytesPerSecond paces the reads of consistency checks on this
	// broker, background and on demand, as leader and as replica. Default
	// 64 MiB/s; negative does not pace. Faster checks big logs sooner but
	// competes with consumers for disk and page cache.
	VerifyBytesPerSecond int64

	// Cluster configures membership: how this broker joins others, its
	// failure domain, and the metadata group's timing (cluster.go).
	Cluster ClusterConfig

	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger

	// fs is the file layer of partition logs; nil is the operating system.
	// Tests set it (export_test.go) to inject disk faults.
	fs segment.FS
}

// DefaultHotstoreBytes is the default per-partition ring budget.
const DefaultHotstoreBytes = 8 << 20

// ErrInvalidConfig wraps every configuration problem New reports.
var ErrInvalidConfig = errors.New("node: invalid config")

// DefaultConfig is the configuration New applies to a zero Config: every
// default in one place, for flags and docs to show. TopicDefaults.MaxBatchBytes
// stays 0 there: it follows each topic's SegmentBytes (see TopicConfig).
func DefaultConfig() Config { return Config{}.withDefaults() }

func (c Config) withDefaults() Config {
	if c.DataDir == "" {
		c.DataDir = "./rafka-data"
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:9092"
	}
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = wire.DefaultMaxFrameSize
	}
	if c.MaxConnFrameMemory == 0 {
		c.MaxConnFrameMemory = 64 << 20
	}
	if c.MaxFrameMemory == 0 {
		c.MaxFrameMemory = 1 << 30
	}
	if c.FrameTimeout == 0 {
		c.FrameTimeout = 60 * time.Second
	}
	if c.MaxPartitions == 0 {
		c.MaxPartitions = 50_000
	}
	if c.HotstoreBytes == 0 {
		c.HotstoreBytes = DefaultHotstoreBytes
	}
	if c.DefaultReplicationFactor == 0 {
		c.DefaultReplicationFactor = 3
	}
	c.TopicDefaults = c.TopicDefaults.withDefaults()
	if c.RetentionInterval == 0 {
		c.RetentionInterval = time.Minute
	}
	if c.MaxFetchWait == 0 {
		c.MaxFetchWait = 30 * time.Second
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.VerifyInterval == 0 {
		c.VerifyInterval = 5 * time.Minute
	}
	if c.VerifyBytesPerSecond == 0 {
		c.VerifyBytesPerSecond = 64 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Cluster = c.Cluster.withDefaults()
	return c
}

// Validate reports every invalid field of a defaulted config at once.
func (c Config) Validate() error {
	var errs []error
	if c.MaxFrameBytes < 64<<10 {
		errs = append(errs, fmt.Errorf("max frame bytes %d: at least 65536", c.MaxFrameBytes))
	}
	if c.MaxConnFrameMemory < int64(c.MaxFrameBytes) || c.MaxFrameMemory < c.MaxConnFrameMemory {
		errs = append(errs, fmt.Errorf("frame memory: want max frame bytes %d <= per connection %d <= broker-wide %d", c.MaxFrameBytes, c.MaxConnFrameMemory, c.MaxFrameMemory))
	}
	if limit := wire.MaxHeaderElements - wire.MaxListLen; c.MaxPartitions < 1 || c.MaxPartitions > limit {
		errs = append(errs, fmt.Errorf("max partitions %d: between 1 and %d", c.MaxPartitions, limit))
	}
	if c.RetentionInterval < 0 || c.MaxFetchWait < 0 || c.ShutdownTimeout < 0 || c.FrameTimeout < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	if c.DefaultReplicationFactor < 1 || c.DefaultReplicationFactor > meta.MaxReplicas {
		errs = append(errs, fmt.Errorf("default replication factor %d: between 1 and %d", c.DefaultReplicationFactor, meta.MaxReplicas))
	}
	if err := c.QUIC.WithDefaults().Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.TopicDefaults.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("topic defaults: %w", err))
	}
	errs = append(errs, c.Cluster.validate(c.TLS)...)
	if host, _, err := net.SplitHostPort(c.Listen); err == nil && c.AdvertisedAddr == "" && len(c.Cluster.Join) > 0 {
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			errs = append(errs, fmt.Errorf("listen %s is every interface: other brokers cannot dial that, so a broker that joins a cluster needs an advertised address (--advertised-addr host:port)", c.Listen))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	return nil
}

// ClusterConfig configures how a broker forms or joins a cluster. A broker
// started with no Join and an empty data directory forms a new cluster of one
// (and may be joined by others); see docs/cluster.md.
type ClusterConfig struct {
	// Join lists brokers of an existing cluster to join, as host:port of
	// their QUIC listeners; a name resolving to several addresses (a
	// Kubernetes headless Service) stands for all of them. Empty forms a new
	// cluster on first start. Joining needs TLS files with a CA (brokers
	// authenticate each other by mTLS).
	Join []string
	// PeerConnectTo maps the address another broker advertises to the
	// address this broker dials to reach it, both host:port. Default: none,
	// other brokers are dialled at their advertised address. It is for
	// brokers behind address translation, whose advertised address is the
	// one clients reach (a port published on the host) but not one the
	// brokers reach each other at (a container network): see
	// docs/deployment.md, "Compose cluster".
	PeerConnectTo map[string]string
	// Zone names the failure domain (rack, availability zone) of this
	// broker; replicas and metadata voters are spread over distinct zones
	// first. Default "" (no zone).
	Zone string
	// MetadataVoters is the number of voters of the metadata raft group:
	// 3 (tolerates one broker down) or 5 (two). Default 3. Fewer live
	// brokers than that gives the largest odd number that is live.
	MetadataVoters int
	// LeaseTimeout is how long a broker stays alive in the cluster's view
	// without a heartbeat reaching the metadata leader. Default 2 s; a
	// killed broker is declared dead after about this plus a heartbeat.
	// Shorter detects failures sooner but fences brokers on a stall (a long
	// GC pause, a slow disk).
	LeaseTimeout time.Duration
	// HeartbeatInterval is how often a broker renews its lease. Default
	// LeaseTimeout/4; at most LeaseTimeout/2.
	HeartbeatInterval time.Duration
	// LeaderRebalanceInterval is how often a broker hands the leadership
	// of the partitions it leads back to their preferred replica (the
	// first live one of the placement) once that replica has caught up.
	// Default 30 s.
	LeaderRebalanceInterval time.Duration
	// DeadAfter is how long a fenced broker keeps its replicas: past it,
	// placement leaves it out and its partitions move to other brokers
	// (docs/replication.md, "Moves and drains"). Default 5 min; shorter
	// restores full replication sooner but copies whole partitions for a
	// broker that was only restarting.
	DeadAfter time.Duration
	// MoveBytesPerSec bounds the rate of the log a partition leader sends
	// to a learner a replica move is catching up, per leader. Default 50
	// MiB/s; negative means no limit. A lower rate leaves more of the
	// network and disks to clients; a move then takes longer.
	MoveBytesPerSec int64
	// RaftTick is the raft clock of the metadata group (and, later, of
	// partition groups): elections take 10 ticks, heartbeats 1. Default
	// 100 ms; shorter ticks cost CPU per idle group.
	RaftTick time.Duration
}

// Cluster defaults.
const (
	DefaultMetadataVoters  = 3
	DefaultLeaseTimeout    = 2 * time.Second
	DefaultRaftTick        = 100 * time.Millisecond
	DefaultDeadAfter       = 5 * time.Minute
	DefaultMoveBytesPerSec = 50 << 20
)

func (c ClusterConfig) withDefaults() ClusterConfig {
	if c.MetadataVoters == 0 {
		c.MetadataVoters = DefaultMetadataVoters
	}
	if c.LeaseTimeout == 0 {
		c.LeaseTimeout = DefaultLeaseTimeout
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = c.LeaseTimeout / 4
	}
	if c.RaftTick == 0 {
		c.RaftTick = DefaultRaftTick
	}
	if c.LeaderRebalanceInterval == 0 {
		c.LeaderRebalanceInterval = 30 * time.Second
	}
	if c.DeadAfter == 0 {
		c.DeadAfter = DefaultDeadAfter
	}
	if c.MoveBytesPerSec == 0 {
		c.MoveBytesPerSec = DefaultMoveBytesPerSec
	}
	return c
}

// peerDialAddr is the address to dial for the broker advertised at addr.
func (c ClusterConfig) peerDialAddr(addr string) string {
	if to, ok := c.PeerConnectTo[addr]; ok {
		return to
	}
	return addr
}

func (c ClusterConfig) validate(tls quicnet.TLSFiles) []error {
	var errs []error
	if c.MetadataVoters != 3 && c.MetadataVoters != 5 {
		errs = append(errs, fmt.Errorf("metadata voters %d: 3 or 5", c.MetadataVoters))
	}
	if c.LeaseTimeout < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("lease timeout %v: at least 100ms", c.LeaseTimeout))
	}
	if c.HeartbeatInterval <= 0 || c.HeartbeatInterval > c.LeaseTimeout/2 {
		errs = append(errs, fmt.Errorf("heartbeat interval %v: above 0 and at most half the lease timeout %v", c.HeartbeatInterval, c.LeaseTimeout))
	}
	if c.LeaderRebalanceInterval < 0 {
		errs = append(errs, fmt.Errorf("leader rebalance interval %v: not negative", c.LeaderRebalanceInterval))
	}
	if c.DeadAfter < 0 {
		errs = append(errs, fmt.Errorf("dead after %v: not negative", c.DeadAfter))
	}
	if c.RaftTick < time.Millisecond || c.RaftTick > c.LeaseTimeout/2 {
		errs = append(errs, fmt.Errorf("raft tick %v: between 1ms and half the lease timeout", c.RaftTick))
	}
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			errs = append(errs, fmt.Errorf("join address %q: want host:port", j))
		}
	}
	for from, to := range c.PeerConnectTo {
		_, _, ferr := net.SplitHostPort(from)
		_, _, terr := net.SplitHostPort(to)
		if ferr != nil || terr != nil {
			errs = append(errs, fmt.Errorf("peer connect-to %q=%q: want host:port=host:port", from, to))
		}
	}
	if len(c.Join) > 0 && tls.CAFile == "" {
		errs = append(errs, errors.New("join: brokers authenticate each other by mTLS, so joining needs a CA file (--tls-ca) and a broker certificate it signed (--tls-cert, --tls-key)"))
	}
	return errs
}
