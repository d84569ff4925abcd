// Package segmenttest holds test doubles for code that stores data through
// package segment: a file layer that fails the way a full disk or a failing
// device does, switched on and off while a log is open.
package segmenttest

import (
	"os"
	"sync/atomic"
	"syscall"

	"github.com/rafka/rafka/segment"
)

// FullFS is the OS file layer with two switches: Full makes every write and
// preallocation fail with ENOSPC, as a full disk does; FailSync makes every
// fsync fail with EIO, as a failing device does. Use it as
// segment.Options.FS; the zero value passes everything through.
type FullFS struct {
	segment.OSFS
	Full     atomic.Bool
	FailSync atomic.Bool
}

// OpenFile implements segment.FS.
func (f *FullFS) OpenFile(name string, flag int, perm os.FileMode) (segment.File, error) {
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &fullFile{File: file, fs: f}, nil
}

type fullFile struct {
	segment.File
	fs *FullFS
}

func (w *fullFile) WriteAt(p []byte, off int64) (int, error) {
	if w.fs.Full.Load() {
		return 0, &os.PathError{Op: "write", Err: syscall.ENOSPC}
	}
	return w.File.WriteAt(p, off)
}

func (w *fullFile) Allocate(size int64) error {
	if w.fs.Full.Load() {
		return &os.PathError{Op: "fallocate", Err: syscall.ENOSPC}
	}
	return w.File.Allocate(size)
}

func (w *fullFile) Sync() error {
	if w.fs.FailSync.Load() {
		return &os.PathError{Op: "fdatasync", Err: syscall.EIO}
	}
	return w.File.Sync()
}
