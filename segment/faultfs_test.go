package segment

import (
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"syscall"
)

// faultFS wraps the real file system and injects faults into .log files:
// fsync errors, write errors after a short write, fallocate errors, bit flips
// in the data that reaches the file, and crashes that lose or tear writes not
// yet fsynced (on every file). It is the storage engine's errorfs.
type faultFS struct {
	inner FS

	mu       sync.Mutex
	syncErr  error // every Sync of a .log fails with it while set
	writeErr error // the next .log WriteAt stores shortN bytes, then fails with it
	shortN   int
	allocErr error // every Allocate fails with it while set
	flipNext bool  // the next .log WriteAt stores its data with one bit flipped
	dead     bool  // crashed: every mutation fails with EIO
	// gate, while not nil, holds every .log Sync until it is closed (the
	// Sync then proceeds, failing if dead is set); each held Sync sends on
	// gateHit if it has room.
	gate    chan struct{}
	gateHit chan struct{}
	// budget, while budgetOn, is how many more mutations (writes, fsyncs,
	// truncations, creations, removals, renames, directory fsyncs) succeed;
	// the one after them finds the file system dead (a crash at that step).
	budget   int
	budgetOn bool
	logSyncs int   // successful fsyncs of .log files
	seq      int64 // numbers writes, so a sync drops exactly the ones before it
	unsynced map[string][]span
}

type span struct{ off, n, seq int64 }

func newFaultFS() *faultFS { return &faultFS{inner: OSFS{}, unsynced: map[string][]span{}} }

func (f *faultFS) set(fn func(f *faultFS)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *faultFS) syncs() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logSyncs
}

func (f *faultFS) isDead() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dead
}

// spend counts one mutation against the budget and reports whether the file
// system is dead (now or already).
func (f *faultFS) spend() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.spendLocked()
}

func (f *faultFS) spendLocked() bool {
	if f.budgetOn && !f.dead {
		if f.budget == 0 {
			f.dead = true
		} else {
			f.budget--
		}
	}
	return f.dead
}

func (f *faultFS) MkdirAll(dir string) error            { return f.inner.MkdirAll(dir) }
func (f *faultFS) ReadDir(dir string) ([]string, error) { return f.inner.ReadDir(dir) }

func (f *faultFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if flag&(os.O_CREATE|os.O_TRUNC) != 0 && f.spend() {
		return nil, &os.PathError{Op: "open", Path: name, Err: syscall.EIO}
	}
	in, err := f.inner.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: in, fs: f, name: name, isLog: strings.HasSuffix(name, logSuffix)}, nil
}

func (f *faultFS) Remove(name string) error {
	if f.spend() {
		return &os.PathError{Op: "remove", Path: name, Err: syscall.EIO}
	}
	return f.inner.Remove(name)
}

func (f *faultFS) Rename(oldname, newname string) error {
	if f.spend() {
		return &os.PathError{Op: "rename", Path: oldname, Err: syscall.EIO}
	}
	return f.inner.Rename(oldname, newname)
}

func (f *faultFS) SyncDir(dir string) error {
	if f.spend() {
		return &os.PathError{Op: "fsync", Path: dir, Err: syscall.EIO}
	}
	return f.inner.SyncDir(dir)
}

// crash applies a simulated power loss to every write that was not fsynced:
// each is kept, lost (zeroed), torn (a prefix kept) or replaced by garbage.
// Call it after the log stopped touching the files (dead set, Close returned).
func (f *faultFS) crash(rng *rand.Rand) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dead = true
	for name, spans := range f.unsynced {
		fh, err := os.OpenFile(name, os.O_RDWR, 0)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return err
		}
		for _, s := range spans {
			buf := make([]byte, s.n)
			switch rng.IntN(4) {
			case 0: // reached the disk
				continue
			case 1: // lost
			case 2: // torn: a prefix reached the disk
				cut := rng.Int64N(s.n + 1)
				if _, err := fh.ReadAt(buf[:cut], s.off); err != nil {
					break
				}
			case 3: // garbage
				for i := range buf {
					buf[i] = byte(rng.Uint32())
				}
			}
			_, _ = fh.WriteAt(buf, s.off)
		}
		fh.Close()
	}
	f.unsynced = map[string][]span{}
	return nil
}

type faultFile struct {
	File
	fs    *faultFS
	name  string
	isLog bool
}

func eio(op, name string) error { return &os.PathError{Op: op, Path: name, Err: syscall.EIO} }

func (w *faultFile) WriteAt(p []byte, off int64) (int, error) {
	f := w.fs
	f.mu.Lock()
	if f.spendLocked() {
		f.mu.Unlock()
		return 0, eio("write", w.name)
	}
	var werr error
	short := len(p)
	data := p
	if w.isLog {
		if f.writeErr != nil {
			werr, short = f.writeErr, min(f.shortN, len(p))
			f.writeErr = nil
		}
		if f.flipNext && len(p) > 0 {
			f.flipNext = false
			data = append([]byte(nil), p...)
			i := len(data) / 2
			data[i] ^= 0x10
		}
	}
	f.seq++
	f.unsynced[w.name] = append(f.unsynced[w.name], span{off, int64(short), f.seq})
	f.mu.Unlock()
	n, err := w.File.WriteAt(data[:short], off)
	if err == nil && werr != nil {
		err = &os.PathError{Op: "write", Path: w.name, Err: werr}
	}
	return n, err
}

func (w *faultFile) Sync() error {
	f := w.fs
	f.mu.Lock()
	if gate := f.gate; gate != nil && w.isLog {
		hit := f.gateHit
		f.mu.Unlock()
		select {
		case hit <- struct{}{}:
		default:
		}
		<-gate
		f.mu.Lock()
	}
	if f.spendLocked() {
		f.mu.Unlock()
		return eio("fsync", w.name)
	}
	if w.isLog && f.syncErr != nil {
		err := f.syncErr
		f.mu.Unlock()
		return &os.PathError{Op: "fdatasync", Path: w.name, Err: err}
	}
	covered := f.seq
	f.mu.Unlock()
	if err := w.File.Sync(); err != nil {
		return err
	}
	f.mu.Lock()
	keep := f.unsynced[w.name][:0]
	for _, sp := range f.unsynced[w.name] {
		if sp.seq > covered {
			keep = append(keep, sp)
		}
	}
	f.unsynced[w.name] = keep
	if w.isLog {
		f.logSyncs++
	}
	f.mu.Unlock()
	return nil
}

func (w *faultFile) Allocate(size int64) error {
	f := w.fs
	f.mu.Lock()
	err := f.allocErr
	if f.spendLocked() {
		err = syscall.EIO
	}
	f.mu.Unlock()
	if err != nil {
		return &os.PathError{Op: "fallocate", Path: w.name, Err: err}
	}
	return w.File.Allocate(size)
}

func (w *faultFile) Truncate(size int64) error {
	if w.fs.spend() {
		return eio("truncate", w.name)
	}
	return w.File.Truncate(size)
}
