package replica

import (
	"os"
	"sync/atomic"
	"syscall"

	"github.com/rafka/rafka/segment"
)

// fullFS is the OS file layer with a switch that makes every write,
// preallocation and (with failSync) fsync of a .log file fail, as a full
// disk or a failing device does.
type fullFS struct {
	segment.OSFS
	full     atomic.Bool
	failSync atomic.Bool
}

func (f *fullFS) OpenFile(name string, flag int, perm os.FileMode) (segment.File, error) {
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &fullFile{File: file, fs: f}, nil
}

type fullFile struct {
	segment.File
	fs *fullFS
}

func (w *fullFile) WriteAt(p []byte, off int64) (int, error) {
	if w.fs.full.Load() {
		return 0, &os.PathError{Op: "write", Err: syscall.ENOSPC}
	}
	return w.File.WriteAt(p, off)
}

func (w *fullFile) Allocate(size int64) error {
	if w.fs.full.Load() {
		return &os.PathError{Op: "fallocate", Err: syscall.ENOSPC}
	}
	return w.File.Allocate(size)
}

func (w *fullFile) Sync() error {
	if w.fs.failSync.Load() {
		return &os.PathError{Op: "fdatasync", Err: syscall.EIO}
	}
	return w.File.Sync()
}
