package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/rafka/rafka/quicnet"
)

// MaxLocalBrokers bounds LocalClusterConfig.Brokers: each broker is a
// process with its own memory, and the machines this runs on have few
// cores.
const MaxLocalBrokers = 9

// LocalClusterConfig describes a cluster of `rafka serve` children on
// loopback.
type LocalClusterConfig struct {
	// Brokers is the number of brokers, 1 to MaxLocalBrokers. Default 1.
	Brokers int
	// Binary is the rafka executable (see FindRafkaBinary).
	Binary string
	// Fsync is each broker's --default-fsync; empty keeps the broker's.
	Fsync string
	// Args are passed to every `rafka serve` after the ones this package
	// sets.
	Args []string
	// StartTimeout bounds the start of each broker (ready file, then
	// /readyz). Default 30s.
	StartTimeout time.Duration
	// StopTimeout is how long each broker may take to exit on SIGTERM
	// before it is killed. Default 20s.
	StopTimeout time.Duration
	// Log receives every broker's stderr, each line prefixed with "[bN] ".
	// Nil: only the last lines are kept, for error messages.
	Log io.Writer
}

func (c LocalClusterConfig) withDefaults() LocalClusterConfig {
	if c.Brokers == 0 {
		c.Brokers = 1
	}
	return c
}

// Validate reports every problem of a defaulted config at once.
func (c LocalClusterConfig) Validate() error {
	var errs []error
	if c.Brokers < 1 || c.Brokers > MaxLocalBrokers {
		errs = append(errs, fmt.Errorf("bench: %d local brokers: want 1 to %d", c.Brokers, MaxLocalBrokers))
	}
	if c.Binary == "" {
		errs = append(errs, errors.New("bench: no rafka binary"))
	}
	if c.StartTimeout < 0 || c.StopTimeout < 0 {
		errs = append(errs, errors.New("bench: start and stop timeouts must not be negative"))
	}
	return errors.Join(errs...)
}

// LocalCluster is a cluster of `rafka serve` children on loopback, in one
// temporary folder removed by Stop: a cluster CA (certs/ca.pem), each
// broker's certificate (certs/bN) and data (bN). Broker 1 forms the cluster;
// brokers 2 to N join it. A single broker gets the CA too, so a run of one
// and a run of three differ only in the broker count.
//
// Brokers are numbered from 0 in its methods, named b1 to bN.
type LocalCluster struct {
	cfg LocalClusterConfig
	dir string
	ca  string // CA certificate file

	// mu guards the fields below. Kill and Restart may run while a
	// workload reads Addrs and Stats.
	mu      sync.Mutex
	brokers []*LocalBroker // nil while killed
	last    []*LocalBroker // the latest process of each broker, running or not
	// earlier is the resource use of the previous processes of each broker
	// (killed or restarted): their CPU time adds up, the peak RSS is the
	// largest.
	earlier  []ProcStats
	restarts []int
	stopped  bool
}

// BrokerUse is one broker's resource use over a run.
type BrokerUse struct {
	ID string `json:"id"`
	ProcStats
	// Restarts counts the processes the broker went through after its first
	// (kills and restarts); their CPU time is included.
	Restarts int `json:"restarts,omitempty"`
}

// localBrokerName is the broker ID of broker i (from 0).
func localBrokerName(i int) string { return "b" + strconv.Itoa(i+1) }

// StartLocalCluster makes the CA and certificates and starts the brokers
// one after the other, each waited for until ready. On failure the brokers
// started so far are stopped and the folder removed.
func StartLocalCluster(ctx context.Context, cfg LocalClusterConfig) (*LocalCluster, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "rafka-bench-cluster-*")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	c := &LocalCluster{cfg: cfg, dir: dir, brokers: make([]*LocalBroker, cfg.Brokers),
		last: make([]*LocalBroker, cfg.Brokers), earlier: make([]ProcStats, cfg.Brokers), restarts: make([]int, cfg.Brokers)}
	if err := c.makeCerts(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	var logMu sync.Mutex
	for i := range cfg.Brokers {
		bc := c.brokerConfig(i, &logMu)
		if i > 0 {
			bc.Join = []string{c.brokers[0].Addr()}
		}
		b, err := StartLocalBroker(ctx, bc)
		if err != nil {
			_, _ = c.Stop()
			return nil, fmt.Errorf("bench: broker %s: %w", localBrokerName(i), err)
		}
		c.mu.Lock()
		c.brokers[i], c.last[i] = b, b
		c.mu.Unlock()
	}
	return c, nil
}

// makeCerts writes the cluster CA and one certificate per broker.
func (c *LocalCluster) makeCerts() error {
	certs := filepath.Join(c.dir, "certs")
	pair, err := quicnet.NewCA(quicnet.CertOptions{Name: quicnet.DefaultCAName + " (rafka-bench)"})
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := quicnet.WritePair(certs, quicnet.CACertFileName, quicnet.CAKeyFileName, pair, false); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	ca, err := quicnet.ParseCA(pair.Cert, pair.Key)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	c.ca = filepath.Join(certs, quicnet.CACertFileName)
	for i := range c.cfg.Brokers {
		name := localBrokerName(i)
		bp, err := ca.IssueBroker(quicnet.CertOptions{Name: name, Hosts: []string{"127.0.0.1", "localhost", "::1"}})
		if err != nil {
			return fmt.Errorf("bench: certificate of %s: %w", name, err)
		}
		if err := quicnet.WritePair(filepath.Join(certs, name), quicnet.CertFileName, quicnet.KeyFileName, bp, false); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	return nil
}

// brokerConfig is broker i's configuration at its first start.
func (c *LocalCluster) brokerConfig(i int, logMu *sync.Mutex) LocalBrokerConfig {
	name := localBrokerName(i)
	certDir := filepath.Join(c.dir, "certs", name)
	bc := LocalBrokerConfig{
		Binary: c.cfg.Binary, Fsync: c.cfg.Fsync, Args: c.cfg.Args, BrokerID: name,
		DataDir: filepath.Join(c.dir, name),
		TLS: BrokerTLS{CAFile: c.ca, CertFile: filepath.Join(certDir, quicnet.CertFileName),
			KeyFile: filepath.Join(certDir, quicnet.KeyFileName)},
		StartTimeout: c.cfg.StartTimeout, StopTimeout: c.cfg.StopTimeout,
	}
	if c.cfg.Log != nil {
		bc.Log = &prefixLines{mu: logMu, w: c.cfg.Log, prefix: "[" + name + "] "}
	}
	return bc
}

// prefixLines writes each write (a line: LocalBroker writes whole lines)
// to w with a prefix, one writer at a time.
type prefixLines struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
}

func (p *prefixLines) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := io.WriteString(p.w, p.prefix); err != nil {
		return 0, err
	}
	return p.w.Write(b)
}

// Size is the number of brokers.
func (c *LocalCluster) Size() int { return c.cfg.Brokers }

// CAFile is the cluster CA, for clients to trust.
func (c *LocalCluster) CAFile() string { return c.ca }

// Broker returns broker i, or nil while it is killed.
func (c *LocalCluster) Broker(i int) *LocalBroker {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.brokers[i]
}

// Index returns the number of the broker with the given ID, or -1.
func (c *LocalCluster) Index(id string) int {
	for i := range c.cfg.Brokers {
		if localBrokerName(i) == id {
			return i
		}
	}
	return -1
}

// Addrs are the QUIC addresses of the running brokers.
func (c *LocalCluster) Addrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, b := range c.brokers {
		if b != nil {
			out = append(out, b.Addr())
		}
	}
	return out
}

// Kill sends SIGKILL to broker i and waits for its exit; its data stays
// for Restart.
func (c *LocalCluster) Kill(i int) error {
	c.mu.Lock()
	b := c.brokers[i]
	c.brokers[i] = nil
	c.mu.Unlock()
	if b == nil {
		return fmt.Errorf("bench: broker %s is not running", localBrokerName(i))
	}
	st, err := b.Kill()
	c.account(i, st)
	return err
}

// account adds the resource use of an ended process of broker i.
func (c *LocalCluster) account(i int, st ProcStats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.earlier[i].CPUSeconds += st.CPUSeconds
	c.earlier[i].PeakRSSBytes = max(c.earlier[i].PeakRSSBytes, st.PeakRSSBytes)
	c.restarts[i]++
}

// Restart starts broker i again on its data folder and its previous ports,
// joining the running brokers, and waits until it is ready. A running
// broker is stopped first (SIGTERM).
func (c *LocalCluster) Restart(ctx context.Context, i int) error {
	c.mu.Lock()
	old := c.brokers[i]
	c.brokers[i] = nil
	c.mu.Unlock()
	if old != nil {
		st, err := old.stopKeep()
		c.account(i, st)
		if err != nil {
			return err
		}
	}
	return c.start(ctx, i, old)
}

// start starts broker i, on old's ports when old is not nil, else on the
// ports of its last process.
func (c *LocalCluster) start(ctx context.Context, i int, old *LocalBroker) error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return errors.New("bench: the local cluster is stopped")
	}
	if old == nil {
		old = c.last[i]
	}
	var join []string
	for j, b := range c.brokers {
		if j != i && b != nil {
			join = append(join, b.Addr())
		}
	}
	c.mu.Unlock()
	bc := old.Config()
	bc.Listen, bc.AdminListen, bc.Join = old.Addr(), old.AdminAddr(), join
	b, err := StartLocalBroker(ctx, bc)
	if err != nil {
		return fmt.Errorf("bench: restart %s: %w", localBrokerName(i), err)
	}
	c.mu.Lock()
	if c.stopped { // Stop ran meanwhile: it did not see this one
		c.mu.Unlock()
		_, _ = b.Stop()
		return errors.New("bench: the local cluster is stopped")
	}
	c.brokers[i], c.last[i] = b, b
	c.mu.Unlock()
	return nil
}

// Stats returns each broker's resource use so far: the CPU time of all its
// processes, the largest peak RSS. A killed broker reports what its
// processes used until then.
func (c *LocalCluster) Stats() ([]BrokerUse, error) {
	c.mu.Lock()
	brokers := append([]*LocalBroker(nil), c.brokers...)
	earlier := append([]ProcStats(nil), c.earlier...)
	restarts := append([]int(nil), c.restarts...)
	c.mu.Unlock()
	out := make([]BrokerUse, len(brokers))
	var errs []error
	for i, b := range brokers {
		u := BrokerUse{ID: localBrokerName(i), ProcStats: earlier[i], Restarts: restarts[i]}
		u.Source = "proc"
		if b != nil {
			st, err := b.Stats()
			if err != nil {
				errs = append(errs, fmt.Errorf("bench: broker %s: %w", u.ID, err))
			}
			u.CPUSeconds += st.CPUSeconds
			u.PeakRSSBytes = max(u.PeakRSSBytes, st.PeakRSSBytes)
		}
		out[i] = u
	}
	return out, errors.Join(errs...)
}

// Stop stops every broker (SIGTERM, then SIGKILL after StopTimeout),
// removes the cluster's folder and returns each broker's resource use. It
// is idempotent; later calls return nil.
func (c *LocalCluster) Stop() ([]BrokerUse, error) {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil, nil
	}
	c.mu.Unlock()
	use, statErr := c.Stats()
	c.mu.Lock()
	c.stopped = true
	brokers := append([]*LocalBroker(nil), c.brokers...)
	clear(c.brokers)
	c.mu.Unlock()
	errs := []error{statErr}
	var wg sync.WaitGroup
	stopErrs := make([]error, len(brokers))
	for i, b := range brokers {
		if b != nil {
			wg.Go(func() { _, stopErrs[i] = b.Stop() })
		}
	}
	wg.Wait()
	errs = append(errs, stopErrs...)
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, fmt.Errorf("bench: remove %s: %w", c.dir, err))
	}
	return use, errors.Join(errs...)
}

// SumUse adds up the brokers' resource use: CPU time and peak RSS (each
// broker's peak, summed: the memory the cluster needed at most, if every
// broker peaked at once).
func SumUse(use []BrokerUse) ProcStats {
	var s ProcStats
	for _, u := range use {
		s.CPUSeconds += u.CPUSeconds
		s.PeakRSSBytes += u.PeakRSSBytes
		s.Source = u.Source
	}
	return s
}

// RestartAll stops every broker (SIGTERM) and starts them again on their
// data and ports, broker 1 first: their in-memory state is gone, so reads of
// old records come from the segment files.
func (c *LocalCluster) RestartAll(ctx context.Context) error {
	c.mu.Lock()
	brokers := append([]*LocalBroker(nil), c.brokers...)
	clear(c.brokers)
	c.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(brokers))
	for i, b := range brokers {
		if b != nil {
			wg.Go(func() {
				st, err := b.stopKeep()
				c.account(i, st)
				errs[i] = err
			})
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for i := range brokers {
		if err := c.start(ctx, i, nil); err != nil {
			return err
		}
	}
	return nil
}
