package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rafka/rafka/quicnet"
)

// LocalBrokerConfig describes a `rafka serve` child process.
type LocalBrokerConfig struct {
	// Binary is the rafka executable (see FindRafkaBinary).
	Binary string
	// Fsync is the broker's --default-fsync: the policy of topics created
	// without one. Empty keeps the broker's default.
	Fsync string
	// Args are passed to `rafka serve` after the ones this package sets.
	Args []string
	// BrokerID is the broker's --broker-id; empty lets the broker choose.
	BrokerID string
	// Listen and AdminListen are the QUIC and admin HTTP addresses. Default
	// 127.0.0.1:0 (a port chosen by the kernel); a restarted cluster broker
	// takes its previous ones, so that peers and clients find it again.
	Listen      string
	AdminListen string
	// TLS, when its CA is set, is the broker's certificate of a cluster CA
	// (--tls-ca, --tls-cert, --tls-key). Empty: a self-signed certificate in
	// the data folder.
	TLS BrokerTLS
	// Join are addresses of brokers of a cluster to join (--join).
	Join []string
	// DataDir is the broker's data folder. Empty: a new temporary folder,
	// removed by Stop.
	DataDir string
	// StartTimeout bounds the wait for the broker to serve (its ready
	// file). Default 30s.
	StartTimeout time.Duration
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	// Default 20s.
	StopTimeout time.Duration
	// Log receives a copy of the broker's stderr. Nil: only the last lines
	// are kept, for error messages.
	Log io.Writer
}

// BrokerTLS names the PEM files of a broker certificate and its CA.
type BrokerTLS struct {
	CAFile, CertFile, KeyFile string
}

// serveArgs is the command line of `rafka serve` for cfg, writing its ready
// file to readyFile.
func (cfg LocalBrokerConfig) serveArgs(readyFile string) []string {
	listen, admin := cfg.Listen, cfg.AdminListen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	if admin == "" {
		admin = "127.0.0.1:0"
	}
	args := []string{"serve", "--data-dir", cfg.DataDir, "--listen", listen, "--admin-listen", admin,
		"--ready-file", readyFile}
	if cfg.BrokerID != "" {
		args = append(args, "--broker-id", cfg.BrokerID)
	}
	if cfg.TLS.CAFile != "" {
		args = append(args, "--tls-ca", cfg.TLS.CAFile, "--tls-cert", cfg.TLS.CertFile, "--tls-key", cfg.TLS.KeyFile)
	}
	if len(cfg.Join) > 0 {
		args = append(args, "--join", strings.Join(cfg.Join, ","))
	}
	if cfg.Fsync != "" {
		args = append(args, "--default-fsync", cfg.Fsync)
	}
	return append(args, cfg.Args...)
}

// LocalBroker is a running `rafka serve` child process.
//
// Goroutines: one reads the child's stderr until EOF (the child's exit);
// Stop waits for it and for the child.
type LocalBroker struct {
	cfg      LocalBrokerConfig
	ownDir   bool   // the data dir is ours to remove
	runDir   string // holds the ready file; removed by Stop
	cmd      *exec.Cmd
	ready    ReadyInfo
	stderrWG sync.WaitGroup
	exited   chan struct{} // closed when cmd.Wait has returned
	waitErr  error         // cmd.Wait's result, set before exited is closed
	notReady string        // the last /readyz answer while starting
	stopOnce sync.Once
	stopStat ProcStats
	stopErr  error

	// mu guards tail.
	mu   sync.Mutex
	tail []string // the last stderr lines
}

// stderrTailLines is how many lines of the broker's stderr error messages
// quote.
const stderrTailLines = 20

// readyPoll is how often StartLocalBroker looks for the ready file and then
// asks /readyz; readyzTimeout bounds one /readyz request.
const (
	readyPoll     = 10 * time.Millisecond
	readyzTimeout = 2 * time.Second
)

// ReadyInfo is what `rafka serve --ready-file PATH` writes to PATH once it
// serves (see `rafka serve --help`).
type ReadyInfo struct {
	BrokerID   string `json:"broker_id"`
	ListenAddr string `json:"listen_addr"`
	AdminAddr  string `json:"admin_addr"` // "" when the admin server is disabled
	DataDir    string `json:"data_dir"`
	Pid        int    `json:"pid"`
}

// readReadyFile returns the content of a ready file, or ok false while it
// does not exist yet. The broker writes it atomically (rename), so a file
// that exists is complete.
func readReadyFile(path string) (info ReadyInfo, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return ReadyInfo{}, false, nil
	}
	if err != nil {
		return ReadyInfo{}, false, fmt.Errorf("bench: ready file: %w", err)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return ReadyInfo{}, false, fmt.Errorf("bench: ready file %s: %w", path, err)
	}
	if info.ListenAddr == "" {
		return ReadyInfo{}, false, fmt.Errorf("bench: ready file %s has no listen_addr: %s", path, b)
	}
	return info, true, nil
}

// FindRafkaBinary returns explicit when set, else a `rafka` executable next
// to the running program (as `go build -o bin/ ./cmd/...` leaves it), else
// `rafka` on PATH.
func FindRafkaBinary(explicit string) (string, error) {
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", fmt.Errorf("bench: rafka binary: %w", err)
		}
		return explicit, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "rafka")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath("rafka")
	if err != nil {
		return "", fmt.Errorf("bench: no rafka binary next to this program or on PATH (build both with `go build -o bin/ ./cmd/...`, or pass --rafka-bin): %w", err)
	}
	return p, nil
}

// StartLocalBroker starts `rafka serve` on loopback ports chosen by the
// kernel (or cfg.Listen and cfg.AdminListen) and returns once it serves and
// is ready: once it has written the file named by its --ready-file flag and
// then answers 200 on /readyz (joined to its cluster, metadata caught up,
// no partition offline).
func StartLocalBroker(ctx context.Context, cfg LocalBrokerConfig) (*LocalBroker, error) {
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 20 * time.Second
	}
	b := &LocalBroker{cfg: cfg, exited: make(chan struct{})}
	if b.cfg.DataDir == "" {
		dir, err := os.MkdirTemp("", "rafka-bench-*")
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		b.cfg.DataDir, b.ownDir = dir, true
	}
	runDir, err := os.MkdirTemp("", "rafka-bench-run-*")
	if err != nil {
		b.removeDir()
		return nil, fmt.Errorf("bench: %w", err)
	}
	b.runDir = runDir
	readyFile := filepath.Join(runDir, "ready.json")
	b.cmd = exec.Command(cfg.Binary, b.cfg.serveArgs(readyFile)...)
	// The child must not outlive us if we die without calling Stop. Linux
	// sends Pdeathsig when the *thread* that forked the child exits, and the
	// Go runtime may end threads, so the child is started and waited for on
	// a goroutine locked to its thread for the child's whole life.
	// Its own process group: a Ctrl-C in the terminal reaches rafka-bench
	// only, which stops the broker with one SIGTERM (a broker given a second
	// signal exits at once).
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	stderr, err := b.cmd.StderrPipe()
	if err != nil {
		b.removeDir()
		return nil, fmt.Errorf("bench: %w", err)
	}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the thread ends with this goroutine, after the
		// child has exited.
		if err := b.cmd.Start(); err != nil {
			started <- err
			close(b.exited)
			return
		}
		started <- nil
		b.stderrWG.Add(1)
		go b.readStderr(stderr)
		b.stderrWG.Wait() // Wait closes the pipe: let the reader drain it first
		b.waitErr = b.cmd.Wait()
		close(b.exited)
	}()
	if err := <-started; err != nil {
		b.removeDir()
		return nil, fmt.Errorf("bench: start %s: %w", cfg.Binary, err)
	}

	timer := time.NewTimer(cfg.StartTimeout)
	defer timer.Stop()
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	for err == nil {
		select {
		case <-tick.C:
			if b.ready.ListenAddr == "" {
				var ok bool
				if b.ready, ok, err = readReadyFile(readyFile); !ok || err != nil {
					continue
				}
			}
			var ok bool
			if ok, err = b.readyz(ctx); ok {
				return b, nil
			}
		case <-b.exited:
			err = fmt.Errorf("bench: rafka serve exited before serving (%v):\n%s", b.waitErr, b.stderrTail())
		case <-timer.C:
			what := "serve"
			if b.ready.ListenAddr != "" {
				what = "become ready (/readyz: " + b.notReady + ")"
			}
			err = fmt.Errorf("bench: rafka serve did not %s within %v:\n%s", what, cfg.StartTimeout, b.stderrTail())
		case <-ctx.Done():
			err = context.Cause(ctx)
		}
	}
	b.Stop()
	return nil, err
}

// readyz asks the broker's /readyz once; ok is false while it answers
// anything but 200 (the answer is kept for the error message). A broker
// without an admin server counts as ready once it serves.
func (b *LocalBroker) readyz(ctx context.Context) (ok bool, err error) {
	if b.ready.AdminAddr == "" {
		return true, nil
	}
	ctx, cancel := context.WithTimeout(ctx, readyzTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.ready.AdminAddr+"/readyz", nil)
	if err != nil {
		return false, fmt.Errorf("bench: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.notReady = err.Error()
		return false, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode == http.StatusOK {
		return true, nil
	}
	b.notReady = strings.TrimSpace(string(body))
	return false, nil
}

func (b *LocalBroker) readStderr(r io.Reader) {
	defer b.stderrWG.Done()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if b.cfg.Log != nil {
			fmt.Fprintln(b.cfg.Log, line)
		}
		b.mu.Lock()
		b.tail = append(b.tail, line)
		if len(b.tail) > stderrTailLines {
			b.tail = b.tail[len(b.tail)-stderrTailLines:]
		}
		b.mu.Unlock()
	}
	// A line longer than the buffer ends the scan; keep draining so the
	// child never blocks on a full pipe.
	_, _ = io.Copy(io.Discard, r)
}

func (b *LocalBroker) stderrTail() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.tail, "\n")
}

// Addr is the broker's QUIC address.
func (b *LocalBroker) Addr() string { return b.ready.ListenAddr }

// AdminAddr is the broker's admin HTTP address ("" when disabled).
func (b *LocalBroker) AdminAddr() string { return b.ready.AdminAddr }

// BrokerID is the broker's identity.
func (b *LocalBroker) BrokerID() string { return b.ready.BrokerID }

// CAFile is what the client trusts: the cluster CA, or the broker's
// self-signed certificate.
func (b *LocalBroker) CAFile() string {
	if b.cfg.TLS.CAFile != "" {
		return b.cfg.TLS.CAFile
	}
	return quicnet.SelfSignedCertPath(b.cfg.DataDir)
}

// Config is the configuration the broker was started with, its data folder
// filled in.
func (b *LocalBroker) Config() LocalBrokerConfig { return b.cfg }

// DataDir is the broker's data folder.
func (b *LocalBroker) DataDir() string { return b.cfg.DataDir }

// Pid is the child's process id.
func (b *LocalBroker) Pid() int { return b.cmd.Process.Pid }

// Stats reads the child's CPU time and peak RSS now.
func (b *LocalBroker) Stats() (ProcStats, error) { return ReadProcStats(b.Pid()) }

// Stop reads the child's resource use, sends SIGTERM, waits up to
// StopTimeout, then SIGKILLs it, and removes a data folder it created. It
// returns the resource use read just before SIGTERM, and an error when the
// child did not exit cleanly. It is idempotent.
func (b *LocalBroker) Stop() (ProcStats, error) {
	b.stopOnce.Do(func() { b.stopStat, b.stopErr = b.stop(true, false) })
	return b.stopStat, b.stopErr
}

// Kill sends SIGKILL, as a crash would, and waits for the child to exit.
// It keeps the data folder (start a broker on it again with
// StartLocalBroker(ctx, b.Config())) and returns the resource use read just
// before the signal. Stop after Kill does nothing more.
func (b *LocalBroker) Kill() (ProcStats, error) {
	b.stopOnce.Do(func() { b.stopStat, b.stopErr = b.stop(false, true) })
	return b.stopStat, b.stopErr
}

// stopKeep stops the broker as Stop does but keeps its data folder.
func (b *LocalBroker) stopKeep() (ProcStats, error) {
	b.stopOnce.Do(func() { b.stopStat, b.stopErr = b.stop(false, false) })
	return b.stopStat, b.stopErr
}

// stop does the work of Stop and Kill; removeDir false keeps the data
// folder, kill sends SIGKILL at once.
func (b *LocalBroker) stop(removeDir, kill bool) (ProcStats, error) {
	var errs []error
	st, statErr := ReadProcStats(b.Pid())
	if statErr != nil {
		select {
		case <-b.exited: // it is gone; the stats went with it
		default:
			errs = append(errs, statErr)
		}
	}
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	_ = b.cmd.Process.Signal(sig)
	timer := time.NewTimer(b.cfg.StopTimeout)
	select {
	case <-b.exited:
		timer.Stop()
	case <-timer.C:
		_ = b.cmd.Process.Kill()
		<-b.exited
		errs = append(errs, fmt.Errorf("bench: rafka serve ignored SIGTERM for %v; killed", b.cfg.StopTimeout))
	}
	if b.waitErr != nil && len(errs) == 0 {
		if ee, ok := errors.AsType[*exec.ExitError](b.waitErr); !ok || !isSignalExit(ee, sig) {
			errs = append(errs, fmt.Errorf("bench: rafka serve: %v:\n%s", b.waitErr, b.stderrTail()))
		}
	}
	if removeDir {
		if err := b.removeDir(); err != nil {
			errs = append(errs, err)
		}
	} else if b.runDir != "" {
		_ = os.RemoveAll(b.runDir)
	}
	return st, errors.Join(errs...)
}

// Restart stops the broker, keeping its data, and starts a new one on the
// same folder: its in-memory state (hotstore) is empty, so reads of old
// records come from the segment files. The new broker has new ports.
func (b *LocalBroker) Restart(ctx context.Context) (*LocalBroker, error) {
	var err error
	b.stopOnce.Do(func() { b.stopStat, b.stopErr = b.stop(false, false); err = b.stopErr })
	if err != nil {
		return nil, err
	}
	cfg := b.cfg
	if !b.ownDir {
		return StartLocalBroker(ctx, cfg)
	}
	nb, err := StartLocalBroker(ctx, cfg)
	if err != nil {
		_ = os.RemoveAll(cfg.DataDir)
		return nil, err
	}
	nb.ownDir = true
	return nb, nil
}

func isSignalExit(ee *exec.ExitError, sig syscall.Signal) bool {
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

func (b *LocalBroker) removeDir() error {
	if b.runDir != "" {
		_ = os.RemoveAll(b.runDir)
	}
	if !b.ownDir {
		return nil
	}
	if err := os.RemoveAll(b.cfg.DataDir); err != nil {
		return fmt.Errorf("bench: remove %s: %w", b.cfg.DataDir, err)
	}
	return nil
}
