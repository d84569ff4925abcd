package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/rafka/rafka/node"
	"github.com/rafka/rafka/quicnet"
)

// Bounds and fixed values of `rafka dev`.
const (
	maxDevBrokers = 9
	// devPortStep separates the ports of consecutive brokers.
	devPortStep = 100
	// devStopMargin is how long past --shutdown-timeout a broker may take
	// to exit on SIGTERM before it is killed.
	devStopMargin = 5 * time.Second
	// devReadyPoll is how often a broker's ready file is looked for.
	devReadyPoll = 25 * time.Millisecond
	// devClientName is the principal of the client certificate.
	devClientName = "dev"
	// maxDevLogLine bounds a broker's stderr line kept in memory while
	// waiting for its end; a longer one is written in pieces.
	maxDevLogLine = 64 << 10
)

// devManagedFlags are the serve flags `rafka dev` sets for each broker, which
// arguments after -- may not set, with what to do instead.
var devManagedFlags = map[string]string{
	"data-dir":         "each broker keeps its data in DIR/bN (see --dir)",
	"listen":           "see --base-port",
	"admin-listen":     "see --admin-base-port",
	"broker-id":        "the brokers are b1 to bN",
	"tls-cert":         "each broker has its certificate in DIR/certs/bN",
	"tls-key":          "each broker has its certificate in DIR/certs/bN",
	"tls-ca":           "the cluster CA is DIR/certs/ca.pem",
	"join":             "brokers 2 to N join broker 1",
	"ready-file":       "each broker writes DIR/bN/ready.json; rafka dev has its own --ready-file",
	"shutdown-timeout": "give it to rafka dev itself",
}

func newDevCmd() *cobra.Command {
	def := node.DefaultConfig()
	p := devPlan{
		Brokers:         3,
		Dir:             "./rafka-dev",
		BasePort:        portOf(def.Listen),
		AdminBasePort:   portOf(defaultAdminListen),
		ShutdownTimeout: def.ShutdownTimeout,
	}
	var (
		readyFile    string
		startTimeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "dev [flags] [-- SERVE-FLAGS...]",
		Short: "Run a local cluster of brokers on loopback, for development and tests",
		Long: fmt.Sprintf(`Run --brokers N brokers (1 to %d) as child processes on 127.0.0.1, with a
cluster CA and certificates made for them:

  DIR/certs/ca.pem, ca-key.pem      the cluster CA (clients: --tls-ca)
  DIR/certs/bN/cert.pem, key.pem    broker N's certificate (127.0.0.1,
                                    localhost, ::1)
  DIR/certs/client/cert.pem, key.pem  a client certificate, principal %q
  DIR/bN                            broker N's data (broker ID "bN")

A second run reuses the certificates and data, so a restart keeps topics and
records. Broker N listens on 127.0.0.1:BASE+%d*(N-1) and serves its admin
endpoints on 127.0.0.1:ADMIN-BASE+%d*(N-1); --base-port 0 picks free ports
(for both, unless --admin-base-port is given). Broker 1 forms the cluster;
the others are started once it serves, with --join of its address.

Arguments after -- go to every broker's rafka serve, for example

  rafka dev -- --default-fsync always --log-level debug

but not the flags rafka dev sets itself (--data-dir, --listen, --join...).
Each broker's stderr is shown on stderr, each line prefixed with "[bN] ".
Once every broker serves, how to connect is printed on stdout, and
--ready-file PATH writes a JSON object with every broker's ID, addresses,
data dir and pid and the CA file (removed when stopping), so programs need
not parse the text.

SIGINT or SIGTERM stops the brokers with SIGTERM (each may take
--shutdown-timeout, then %v more before it is killed) and exits 0 once
they stopped cleanly, or 130 if they had not all started yet; a second
signal exits at once, killing them. If a broker exits on its own, the
others are stopped and rafka dev exits 1. The brokers never outlive
rafka dev: they are killed if it is.

Unlike the other commands, this one takes no RAFKA_ environment variables
of its own (RAFKA_BROKERS names addresses for the client commands); the
brokers inherit the environment, so RAFKA_LOG_LEVEL=debug reaches them.`,
			maxDevBrokers, devClientName, devPortStep, devPortStep, devStopMargin),
		// Replaces the root's hook, which fills flags from the environment.
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
		RunE: func(cmd *cobra.Command, args []string) error {
			if dash := cmd.ArgsLenAtDash(); dash != 0 && len(args) > 0 {
				return usagef("unexpected argument %q: arguments for the brokers go after --", args[0])
			}
			p.Extra = args
			if !cmd.Flags().Changed("admin-base-port") && p.BasePort == 0 {
				p.AdminBasePort = 0
			}
			if startTimeout <= 0 {
				return usagef("--start-timeout %v: must be positive", startTimeout)
			}
			if err := p.Validate(); err != nil {
				return usageError{err}
			}
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("finding the rafka executable: %w", err)
			}
			if p.Dir, err = filepath.Abs(p.Dir); err != nil {
				return err
			}
			if readyFile != "" {
				if readyFile, err = filepath.Abs(readyFile); err != nil {
					return err
				}
			}
			d := &devCluster{
				plan: p, exe: exe, readyFile: readyFile, startTimeout: startTimeout,
				stdout: cmd.OutOrStdout(), log: &lockedLines{w: cmd.ErrOrStderr()},
			}
			return d.run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.IntVar(&p.Brokers, "brokers", p.Brokers, fmt.Sprintf("number of brokers, 1 to %d", maxDevBrokers))
	f.StringVar(&p.Dir, "dir", p.Dir, "directory for the certificates (DIR/certs) and each broker's data (DIR/bN)")
	f.IntVar(&p.BasePort, "base-port", p.BasePort, fmt.Sprintf("QUIC port of broker 1; broker N gets BASE+%d*(N-1) (0: free ports)", devPortStep))
	f.IntVar(&p.AdminBasePort, "admin-base-port", p.AdminBasePort, fmt.Sprintf("admin HTTP port of broker 1; broker N gets ADMIN-BASE+%d*(N-1) (0: free ports; default 0 with --base-port 0)", devPortStep))
	f.DurationVar(&p.ShutdownTimeout, "shutdown-timeout", p.ShutdownTimeout, "each broker's --shutdown-timeout; a broker still running "+devStopMargin.String()+" past it is killed")
	f.DurationVar(&startTimeout, "start-timeout", time.Minute, "how long the brokers may take to serve")
	f.StringVar(&readyFile, "ready-file", "", "once every broker serves, write their IDs, addresses, data dirs and pids and the CA file to this JSON file (removed when stopping)")
	return cmd
}

// portOf returns the port of a default address.
func portOf(addr string) int {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		panic("BUG: default address " + addr + ": " + err.Error())
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		panic("BUG: default address " + addr + ": " + err.Error())
	}
	return n
}

// devPlan is what `rafka dev` starts: where each broker keeps its files,
// which ports it takes and its command line.
type devPlan struct {
	Brokers         int
	Dir             string
	BasePort        int // 0: free ports
	AdminBasePort   int // 0: free ports
	ShutdownTimeout time.Duration
	Extra           []string // serve flags for every broker
}

// Validate reports every invalid field at once.
func (p devPlan) Validate() error {
	var errs []error
	if p.Brokers < 1 || p.Brokers > maxDevBrokers {
		errs = append(errs, fmt.Errorf("--brokers %d: 1 to %d", p.Brokers, maxDevBrokers))
	}
	n := max(p.Brokers, 1)
	for _, port := range []struct {
		flag string
		v    int
	}{{"--base-port", p.BasePort}, {"--admin-base-port", p.AdminBasePort}} {
		if last := port.v + devPortStep*(n-1); port.v < 0 || (port.v > 0 && last > 65535) {
			errs = append(errs, fmt.Errorf("%s %d: broker %d would get port %d; 0 (free ports) or 1 to %d", port.flag, port.v, n, last, 65535-devPortStep*(n-1)))
		}
	}
	if p.BasePort > 0 && p.BasePort == p.AdminBasePort {
		errs = append(errs, fmt.Errorf("--base-port and --admin-base-port are both %d", p.BasePort))
	}
	if p.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--shutdown-timeout %v: must be positive", p.ShutdownTimeout))
	}
	for _, a := range p.Extra {
		name, ok := strings.CutPrefix(a, "--")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, "=")
		if instead, ok := devManagedFlags[name]; ok {
			errs = append(errs, fmt.Errorf("--%s after --: rafka dev sets it for each broker (%s)", name, instead))
		}
	}
	return errors.Join(errs...)
}

// Name is the broker ID of broker i (from 1).
func (p devPlan) Name(i int) string { return "b" + strconv.Itoa(i) }

// DataDir is broker i's data directory.
func (p devPlan) DataDir(i int) string { return filepath.Join(p.Dir, p.Name(i)) }

// ReadyFile is where broker i writes its ready file.
func (p devPlan) ReadyFile(i int) string { return filepath.Join(p.DataDir(i), "ready.json") }

// CertsDir holds the CA; CertDir(i) broker i's certificate.
func (p devPlan) CertsDir() string     { return filepath.Join(p.Dir, "certs") }
func (p devPlan) CertDir(i int) string { return filepath.Join(p.CertsDir(), p.Name(i)) }

// ClientCertDir holds the client certificate.
func (p devPlan) ClientCertDir() string { return filepath.Join(p.CertsDir(), "client") }

// CAFile is the cluster CA certificate.
func (p devPlan) CAFile() string { return filepath.Join(p.CertsDir(), quicnet.CACertFileName) }

// Listen is broker i's QUIC address (port 0: a free one).
func (p devPlan) Listen(i int) string { return loopback(p.BasePort, i) }

// AdminListen is broker i's admin HTTP address (port 0: a free one).
func (p devPlan) AdminListen(i int) string { return loopback(p.AdminBasePort, i) }

func loopback(base, i int) string {
	port := 0
	if base > 0 {
		port = base + devPortStep*(i-1)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// Args is the command line (after the executable) of broker i; join is the
// address of a broker of the cluster, "" to form it.
func (p devPlan) Args(i int, join string) []string {
	args := []string{"serve",
		"--broker-id", p.Name(i),
		"--data-dir", p.DataDir(i),
		"--listen", p.Listen(i),
		"--admin-listen", p.AdminListen(i),
		"--tls-ca", p.CAFile(),
		"--tls-cert", filepath.Join(p.CertDir(i), quicnet.CertFileName),
		"--tls-key", filepath.Join(p.CertDir(i), quicnet.KeyFileName),
		"--ready-file", p.ReadyFile(i),
		"--shutdown-timeout", p.ShutdownTimeout.String(),
	}
	if join != "" {
		args = append(args, "--join", join)
	}
	return append(args, p.Extra...)
}

// EnsureCerts creates what is missing of the CA, the broker certificates and
// the client certificate. A new CA gets new certificates throughout: those
// of a lost CA would not be trusted.
func (p devPlan) EnsureCerts() error {
	newCA := false
	ca, err := quicnet.LoadCA(p.CertsDir())
	if errors.Is(err, fs.ErrNotExist) {
		pair, err := quicnet.NewCA(quicnet.CertOptions{Name: quicnet.DefaultCAName + " (rafka dev)"})
		if err != nil {
			return err
		}
		if err := quicnet.WritePair(p.CertsDir(), quicnet.CACertFileName, quicnet.CAKeyFileName, pair, false); err != nil {
			return fmt.Errorf("%w (an incomplete CA: remove %s to start over with new certificates)", err, p.CertsDir())
		}
		if ca, err = quicnet.ParseCA(pair.Cert, pair.Key); err != nil {
			return err
		}
		newCA = true
	} else if err != nil {
		return err
	}
	issue := func(dir string, o quicnet.CertOptions, issue func(*quicnet.CA, quicnet.CertOptions) (quicnet.PEMPair, error)) error {
		if !newCA {
			if _, err := os.Stat(filepath.Join(dir, quicnet.CertFileName)); err == nil {
				return nil
			}
		}
		pair, err := issue(ca, o)
		if err != nil {
			return err
		}
		return quicnet.WritePair(dir, quicnet.CertFileName, quicnet.KeyFileName, pair, true)
	}
	for i := 1; i <= p.Brokers; i++ {
		o := quicnet.CertOptions{Name: p.Name(i), Hosts: []string{"127.0.0.1", "localhost", "::1"}}
		if err := issue(p.CertDir(i), o, (*quicnet.CA).IssueBroker); err != nil {
			return fmt.Errorf("certificate of %s: %w", p.Name(i), err)
		}
	}
	if err := issue(p.ClientCertDir(), quicnet.CertOptions{Name: devClientName}, (*quicnet.CA).IssueClient); err != nil {
		return fmt.Errorf("client certificate: %w", err)
	}
	return nil
}

// devReadyInfo is the content of `rafka dev --ready-file`.
type devReadyInfo struct {
	Brokers    []readyInfo `json:"brokers"` // as each broker's own --ready-file
	CAFile     string      `json:"ca_file"`
	ClientCert string      `json:"client_cert"`
	ClientKey  string      `json:"client_key"`
	Pid        int         `json:"pid"` // of rafka dev
}

// devCluster runs the brokers of a plan.
type devCluster struct {
	plan         devPlan
	exe          string
	readyFile    string
	startTimeout time.Duration
	stdout       io.Writer
	log          *lockedLines

	children []*devChild
	// exited receives each child once it has exited; buffered for all.
	exited chan *devChild
	wg     sync.WaitGroup // the goroutines waiting for children
}

// devChild is one broker process.
type devChild struct {
	i    int
	name string
	cmd  *exec.Cmd
	out  *prefixWriter
	done chan struct{} // closed once cmd.Wait returned; err is set then
	err  error
	info readyInfo
}

// run prepares the files, starts the brokers, waits for a signal or for a
// broker to exit, and stops them all.
func (d *devCluster) run(ctx context.Context) (err error) {
	p := d.plan
	if err := p.EnsureCerts(); err != nil {
		return err
	}
	d.exited = make(chan *devChild, p.Brokers)
	// Whatever happens, no child is left running when run returns.
	defer func() {
		if d.readyFile != "" {
			if rerr := os.Remove(d.readyFile); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				err = errors.Join(err, fmt.Errorf("--ready-file: %w", rerr))
			}
		}
		err = errors.Join(err, d.stopAll())
		d.wg.Wait()
	}()
	if d.readyFile != "" {
		if err := os.Remove(d.readyFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("--ready-file: removing a stale one: %w", err)
		}
	}

	deadline := time.NewTimer(d.startTimeout)
	defer deadline.Stop()
	first, err := d.start(1, "")
	if err != nil {
		return err
	}
	if err := d.waitReady(ctx, first, deadline.C); err != nil {
		return err
	}
	for i := 2; i <= p.Brokers; i++ {
		if _, err := d.start(i, first.info.ListenAddr); err != nil {
			return err
		}
	}
	for _, c := range d.children[1:] {
		if err := d.waitReady(ctx, c, deadline.C); err != nil {
			return err
		}
	}
	if err := d.announce(); err != nil {
		return err
	}

	select {
	case <-ctx.Done():
		d.log.printf("rafka dev: stopping %d brokers", len(d.children))
		return nil // stopAll reports brokers that did not stop cleanly
	case c := <-d.exited:
		return fmt.Errorf("broker %s exited on its own (%v); stopped the others", c.name, exitDescription(c.err))
	}
}

// start starts broker i.
func (d *devCluster) start(i int, join string) (*devChild, error) {
	p := d.plan
	if err := os.MkdirAll(p.DataDir(i), 0o755); err != nil {
		return nil, err
	}
	// A ready file left by a killed run names a dead process; the broker
	// removes it too, but it could be read before.
	if err := os.Remove(p.ReadyFile(i)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	c := &devChild{i: i, name: p.Name(i), done: make(chan struct{})}
	c.out = &prefixWriter{lines: d.log, prefix: "[" + c.name + "] "}
	c.cmd = exec.Command(d.exe, p.Args(i, join)...)
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	c.cmd.SysProcAttr = &syscall.SysProcAttr{
		// Linux kills the broker when rafka dev dies, even by SIGKILL (the
		// broker, with its mmap'd segments, runs on Linux only).
		Pdeathsig: syscall.SIGKILL,
		// Its own process group: a Ctrl-C in the terminal reaches rafka dev
		// only, which sends one SIGTERM; a broker given both would take the
		// second signal as "exit at once".
		Setpgid: true,
	}
	// Bounds the wait for the output once the broker exited.
	c.cmd.WaitDelay = devStopMargin
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", c.name, err)
	}
	d.children = append(d.children, c)
	d.wg.Go(func() {
		c.err = c.cmd.Wait()
		c.out.flush()
		close(c.done)
		d.exited <- c
	})
	return c, nil
}

// waitReady waits for c's ready file, a signal, a broker's exit or the start
// deadline.
func (d *devCluster) waitReady(ctx context.Context, c *devChild, deadline <-chan time.Time) error {
	tick := time.NewTicker(devReadyPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e := <-d.exited:
			if e.cmd.ProcessState.ExitCode() == exitUsage {
				return usagef("broker %s refused its flags (see its output above)", e.name)
			}
			return fmt.Errorf("broker %s exited before serving (%v)", e.name, exitDescription(e.err))
		case <-deadline:
			return fmt.Errorf("broker %s did not serve within --start-timeout %v", c.name, d.startTimeout)
		case <-tick.C:
		}
		b, err := os.ReadFile(d.plan.ReadyFile(c.i))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("ready file of %s: %w", c.name, err)
		}
		if err := json.Unmarshal(b, &c.info); err != nil {
			return fmt.Errorf("ready file of %s: %w", c.name, err)
		}
		if c.info.Pid != c.cmd.Process.Pid {
			continue // not yet removed by the broker
		}
		return nil
	}
}

// announce writes --ready-file and prints how to connect.
func (d *devCluster) announce() error {
	p := d.plan
	info := devReadyInfo{
		CAFile:     p.CAFile(),
		ClientCert: filepath.Join(p.ClientCertDir(), quicnet.CertFileName),
		ClientKey:  filepath.Join(p.ClientCertDir(), quicnet.KeyFileName),
		Pid:        os.Getpid(),
	}
	var addrs []string
	for _, c := range d.children {
		info.Brokers = append(info.Brokers, c.info)
		addrs = append(addrs, c.info.ListenAddr)
	}
	if d.readyFile != "" {
		if err := writeReadyFile(d.readyFile, info); err != nil {
			return err
		}
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "rafka dev: %d brokers serving; certificates and data in %s; Ctrl-C stops them\n", len(d.children), p.Dir)
	for _, c := range d.children {
		fmt.Fprintf(&b, "  %-3s %-21s admin %-21s pid %d\n", c.name, c.info.ListenAddr, orNone(c.info.AdminAddr), c.info.Pid)
	}
	conn := "--brokers " + strings.Join(addrs, ",") + " --tls-ca " + p.CAFile()
	fmt.Fprintf(&b, "\nConnect with, for example:\n")
	fmt.Fprintf(&b, "  rafka topic create demo -p 6 %s\n", conn)
	fmt.Fprintf(&b, "  rafka topic list %s\n", conn)
	fmt.Fprintf(&b, "  rafka cluster info %s\n", conn)
	if a := d.children[0].info.AdminAddr; a != "" {
		fmt.Fprintf(&b, "  rafka health --ready --admin %s\n", a)
	}
	fmt.Fprintf(&b, "or set them once: export RAFKA_BROKERS=%s RAFKA_TLS_CA=%s\n", strings.Join(addrs, ","), p.CAFile())
	_, err := d.stdout.Write(b.Bytes())
	return err
}

// stopAll sends SIGTERM to every running broker and waits for all; a broker
// still running --shutdown-timeout plus devStopMargin later is killed. It
// reports the brokers that did not exit cleanly.
func (d *devCluster) stopAll() error {
	// A broker that ended before has been reported by then.
	running := make(map[*devChild]bool)
	for _, c := range d.children {
		select {
		case <-c.done:
		default:
			running[c] = true
			c.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	grace := time.NewTimer(d.plan.ShutdownTimeout + devStopMargin)
	defer grace.Stop()
	var errs []error
	for _, c := range d.children {
		select {
		case <-c.done:
		case <-grace.C:
			for _, k := range d.children {
				k.cmd.Process.Kill() // an exited one returns os.ErrProcessDone
			}
			errs = append(errs, fmt.Errorf("brokers still running %v after SIGTERM were killed", d.plan.ShutdownTimeout+devStopMargin))
			<-c.done
		}
		if c.err != nil && running[c] {
			errs = append(errs, fmt.Errorf("broker %s stopped with %v", c.name, exitDescription(c.err)))
		}
	}
	// The exit of a broker that already reported it ended stays reported
	// once: drop the notices of the rest.
	for range len(d.exited) {
		<-d.exited
	}
	return errors.Join(errs...)
}

// exitDescription says how a broker process ended: "exit status 1",
// "signal: killed".
func exitDescription(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// lockedLines writes whole lines of several writers to w, one at a time.
type lockedLines struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedLines) write(b []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w.Write(b)
}

func (l *lockedLines) printf(format string, a ...any) {
	l.write(fmt.Appendf(nil, format+"\n", a...))
}

// prefixWriter writes each line written to it to lines, prefixed.
type prefixWriter struct {
	lines  *lockedLines
	prefix string

	mu  sync.Mutex
	buf []byte // an incomplete last line
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 && len(w.buf) < maxDevLogLine {
			break
		}
		if i < 0 {
			i = len(w.buf) - 1
		}
		w.lines.write(append([]byte(w.prefix), w.buf[:i+1]...))
		w.buf = w.buf[i+1:]
	}
	// Keep the backing array from growing with the total output.
	w.buf = append(w.buf[:0:0], w.buf...)
	return len(p), nil
}

// flush writes an incomplete last line.
func (w *prefixWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.lines.write(append(append([]byte(w.prefix), w.buf...), '\n'))
		w.buf = nil
	}
}
