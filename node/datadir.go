package node

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/rafka/rafka/node/meta"
)

// Files of the data directory that belong to the broker itself (topics live
// under topics/, the development certificate under tls/).
const (
	// lockFileName is held with an exclusive flock(2) from New until
	// Shutdown returns; it names the holder (lockInfo) for the error a
	// second broker gets.
	lockFileName = "rafka.lock"
	// resetKeyFileName holds the QUIC stateless-reset key (32 random bytes,
	// mode 0600), created on first start and reused, so that a restarted
	// broker can tell clients of its previous run that their connections
	// are gone instead of letting them time out.
	resetKeyFileName = "quic-reset.key"
)

// ErrDataDirLocked is returned by New when another broker (in this or
// another process) holds the data directory. Two brokers on one directory
// would hand out the same offsets and lose records.
var ErrDataDirLocked = errors.New("node: data dir in use by another broker")

// lockInfo is what the lock file says about its holder, for the operator.
type lockInfo struct {
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	Listen  string    `json:"listen"`
}

// dirLock is an exclusive flock on DataDir/rafka.lock. flock locks belong to
// the open file description, so a second open of the file, even in the same
// process, conflicts; the kernel drops the lock when the process dies, so a
// crash never leaves a stale lock behind (the file itself stays, harmless).
type dirLock struct {
	f    *os.File
	info lockInfo
}

// lockDataDir takes the lock or reports who holds it.
func lockDataDir(dir, listen string) (*dirLock, error) {
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("node: lock data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("node: lock %s: %w", path, err)
		}
		return nil, fmt.Errorf("%w: %s is held by %s", ErrDataDirLocked, path, describeHolder(path))
	}
	l := &dirLock{f: f, info: lockInfo{PID: os.Getpid(), Started: time.Now().UTC().Truncate(time.Second), Listen: listen}}
	if err := l.write(); err != nil {
		l.release()
		return nil, fmt.Errorf("node: write %s: %w", path, err)
	}
	return l, nil
}

// describeHolder reads what the holder wrote into the lock file. The holder
// writes right after locking, so an empty file means it is starting.
func describeHolder(path string) string {
	data, err := os.ReadFile(path)
	var info lockInfo
	if err != nil || json.Unmarshal(bytes.TrimSpace(data), &info) != nil || info.PID == 0 {
		return "a broker that is starting (no pid recorded yet)"
	}
	return fmt.Sprintf("pid %d (started %s, listening on %s)", info.PID, info.Started.Format(time.RFC3339), info.Listen)
}

// setListen records the bound address once the broker listens.
func (l *dirLock) setListen(addr string) error {
	l.info.Listen = addr
	return l.write()
}

func (l *dirLock) write() error {
	data, _ := json.Marshal(l.info)
	if err := l.f.Truncate(0); err != nil {
		return err
	}
	_, err := l.f.WriteAt(append(data, '\n'), 0)
	return err
}

// release drops the lock. The file stays: removing it would let a broker
// that opened it just before the removal lock a file nobody else can see.
func (l *dirLock) release() {
	if l == nil || l.f == nil {
		return
	}
	syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
	l.f = nil
}

// loadResetKey reads the stateless-reset key, creating it on first start.
func loadResetKey(dir string) (*quic.StatelessResetKey, error) {
	path := filepath.Join(dir, resetKeyFileName)
	var key quic.StatelessResetKey
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if len(data) != len(key) {
			return nil, fmt.Errorf("node: %s holds %d bytes, want %d; remove it to get a new key", path, len(data), len(key))
		}
		copy(key[:], data)
		return &key, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("node: %w", err)
	}
	rand.Read(key[:])
	if err := meta.WriteFileSync(path, key[:], 0o600); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	return &key, nil
}
