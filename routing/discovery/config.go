package discovery

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"
)

// Defaults of Config's zero fields.
const (
	DefaultAnnounceInterval = 30 * time.Second
	// DefaultPeerTTLFactor times AnnounceInterval is the default PeerTTL:
	// an entry survives two missed re-announces.
	DefaultPeerTTLFactor  = 3
	DefaultQueryTimeout   = 2 * time.Second
	DefaultSendRate       = 100 // datagrams per second
	DefaultMaxPeers       = 4096
	DefaultRetryMin       = 500 * time.Millisecond
	DefaultRetryMax       = 30 * time.Second
	DefaultResolveTimeout = 5 * time.Second
)

// Config configures a Node. Zero fields take the defaults above.
type Config struct {
	// ClusterID names the cluster; required. Nodes announce under an
	// infohash derived from it (see InfoHash) and see only the nodes that
	// announce under the same one.
	ClusterID string

	// Port is the port announced to other nodes: the broker's QUIC port
	// (with a shared port, the port of the DHT socket too); required.
	Port int

	// Join lists host:port addresses of DHT nodes to start from; a host
	// name may resolve to several addresses (a Kubernetes headless
	// service), and every one is tried. Empty for the first node of a
	// cluster, which waits to be contacted. Resolved again whenever the
	// routing table is empty.
	Join []string

	// NodeID is the DHT node ID; zero picks a random one.
	NodeID [20]byte

	// AnnounceInterval is how often the node re-announces itself (and
	// rejoins when its routing table is empty). Shorter finds new nodes
	// sooner at the cost of traffic. Default DefaultAnnounceInterval.
	AnnounceInterval time.Duration

	// PeerTTL is how long an announce received from another node is kept
	// without being renewed; it bounds how long a stopped node is listed.
	// Must exceed AnnounceInterval. Default DefaultPeerTTLFactor *
	// AnnounceInterval.
	PeerTTL time.Duration

	// QueryTimeout is how long one DHT query waits for its answer.
	// Default DefaultQueryTimeout.
	QueryTimeout time.Duration

	// SendRate bounds the datagrams this node sends per second (burst
	// the same); replies over the limit are dropped. Default
	// DefaultSendRate.
	SendRate int

	// MaxPeers bounds the announces this node stores for others (all
	// infohashes together); more are dropped until entries expire.
	// Default DefaultMaxPeers.
	MaxPeers int

	// RetryMin and RetryMax bound the exponential backoff between join
	// attempts while no node answers. Defaults DefaultRetryMin and
	// DefaultRetryMax.
	RetryMin, RetryMax time.Duration

	// Resolver resolves host names in Join; nil uses net.DefaultResolver.
	Resolver *net.Resolver

	// Logger receives the node's logs; nil discards them.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.AnnounceInterval == 0 {
		c.AnnounceInterval = DefaultAnnounceInterval
	}
	if c.PeerTTL == 0 {
		c.PeerTTL = DefaultPeerTTLFactor * c.AnnounceInterval
	}
	if c.QueryTimeout == 0 {
		c.QueryTimeout = DefaultQueryTimeout
	}
	if c.SendRate == 0 {
		c.SendRate = DefaultSendRate
	}
	if c.MaxPeers == 0 {
		c.MaxPeers = DefaultMaxPeers
	}
	if c.RetryMin == 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax == 0 {
		c.RetryMax = max(DefaultRetryMax, c.RetryMin)
	}
	if c.Resolver == nil {
		c.Resolver = net.DefaultResolver
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports every problem of c (after defaults) at once, wrapped in
// ErrInvalidConfig.
func (c Config) Validate() error {
	var errs []error
	if c.ClusterID == "" {
		errs = append(errs, errors.New("ClusterID is empty"))
	}
	if c.Port < 1 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("Port %d is not in 1..65535", c.Port))
	}
	for _, j := range c.Join {
		host, port, err := net.SplitHostPort(j)
		if err != nil {
			errs = append(errs, fmt.Errorf("Join address %q: %v", j, err))
			continue
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 || host == "" {
			errs = append(errs, fmt.Errorf("Join address %q: want host:port with a port in 1..65535", j))
		}
	}
	if c.AnnounceInterval < 0 {
		errs = append(errs, fmt.Errorf("AnnounceInterval %v is negative", c.AnnounceInterval))
	}
	if c.PeerTTL <= c.AnnounceInterval {
		errs = append(errs, fmt.Errorf("PeerTTL %v must exceed AnnounceInterval %v", c.PeerTTL, c.AnnounceInterval))
	}
	if c.QueryTimeout <= 0 {
		errs = append(errs, fmt.Errorf("QueryTimeout %v is not positive", c.QueryTimeout))
	}
	if c.SendRate <= 0 {
		errs = append(errs, fmt.Errorf("SendRate %d is not positive", c.SendRate))
	}
	if c.MaxPeers <= 0 {
		errs = append(errs, fmt.Errorf("MaxPeers %d is not positive", c.MaxPeers))
	}
	if c.RetryMin <= 0 || c.RetryMax < c.RetryMin {
		errs = append(errs, fmt.Errorf("retry backoff %v..%v: want 0 < RetryMin <= RetryMax", c.RetryMin, c.RetryMax))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
}
