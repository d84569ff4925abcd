package segment

import (
	"errors"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// FS is the file layer a Log uses. OSFS is the real one; tests wrap it to
// inject faults (short writes, fsync errors, ENOSPC, bit flips).
type FS interface {
	// MkdirAll creates dir and its parents.
	MkdirAll(dir string) error
	// ReadDir lists the names of the entries of dir.
	ReadDir(dir string) ([]string, error)
	// OpenFile opens name like os.OpenFile.
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	// Remove unlinks name. Existing mappings of it stay valid.
	Remove(name string) error
	// Rename atomically replaces newname with oldname (rename(2)).
	Rename(oldname, newname string) error
	// SyncDir fsyncs the directory so created and removed names persist.
	SyncDir(dir string) error
}

// File is an open file of an FS.
type File interface {
	// ReadAt and WriteAt behave like pread and pwrite; WriteAt returns
	// n < len(p) only with an error.
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	// Sync forces written data (and the metadata needed to read it back) to
	// stable storage (fdatasync).
	Sync() error
	// Truncate sets the file size.
	Truncate(size int64) error
	// Allocate reserves blocks so that the file holds at least size bytes
	// (fallocate mode 0, which also extends the size). It returns an error
	// matching errors.ErrUnsupported when the file system cannot.
	Allocate(size int64) error
	// Size is the current file size.
	Size() (int64, error)
	// Map maps the first size bytes read-only and shared (MAP_SHARED), so
	// data written with WriteAt shows through. size may exceed the file size;
	// touching pages wholly past the end raises SIGBUS, which is why a Log
	// reads only below its published write position.
	Map(size int) ([]byte, error)
	// Unmap releases a mapping returned by Map.
	Unmap(b []byte) error
	// Close closes the descriptor; mappings stay valid until Unmap.
	Close() error
}

// OSFS is the operating system's file layer.
type OSFS struct{}

// MkdirAll implements FS.
func (OSFS) MkdirAll(dir string) error { return os.MkdirAll(dir, 0o755) }

// ReadDir implements FS.
func (OSFS) ReadDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names, nil
}

// OpenFile implements FS.
func (OSFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &osFile{f: f, fd: int(f.Fd())}, nil
}

// Remove implements FS.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// Rename implements FS.
func (OSFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }

// SyncDir implements FS.
func (OSFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

type osFile struct {
	f  *os.File
	fd int
}

func (o *osFile) ReadAt(p []byte, off int64) (int, error)  { return o.f.ReadAt(p, off) }
func (o *osFile) WriteAt(p []byte, off int64) (int, error) { return o.f.WriteAt(p, off) }
func (o *osFile) Truncate(size int64) error                { return o.f.Truncate(size) }
func (o *osFile) Close() error                             { return o.f.Close() }

func (o *osFile) Sync() error {
	for range 100 { // EINTR is the only retry; bounded anyway
		err := unix.Fdatasync(o.fd)
		if err != unix.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: o.f.Name(), Err: err}
			}
			return nil
		}
	}
	return &os.PathError{Op: "fdatasync", Path: o.f.Name(), Err: unix.EINTR}
}

func (o *osFile) Allocate(size int64) error {
	var err error
	for range 100 {
		if err = unix.Fallocate(o.fd, 0, 0, size); err != unix.EINTR {
			break
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS):
		return &os.PathError{Op: "fallocate", Path: o.f.Name(), Err: errors.ErrUnsupported}
	}
	return &os.PathError{Op: "fallocate", Path: o.f.Name(), Err: err}
}

func (o *osFile) Size() (int64, error) {
	fi, err := o.f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (o *osFile) Map(size int) ([]byte, error) {
	if size <= 0 {
		return nil, nil
	}
	b, err := unix.Mmap(o.fd, 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, &os.PathError{Op: "mmap", Path: o.f.Name(), Err: err}
	}
	return b, nil
}

// pageDropper is implemented by files whose mappings are real mmaps: it
// drops the process's mapping of the whole pages inside b (the page cache
// keeps them), so pages a reader touched do not stay in the broker's RSS.
type pageDropper interface{ DropPages(b []byte) }

// DropPages implements pageDropper with madvise(MADV_DONTNEED), which on a
// shared file mapping only unmaps: a later read faults the page back in from
// the page cache, unchanged.
func (o *osFile) DropPages(b []byte) {
	if len(b) == 0 {
		return
	}
	page := uintptr(os.Getpagesize())
	start := uintptr(unsafe.Pointer(&b[0]))
	end := start + uintptr(len(b))
	first := (start + page - 1) &^ (page - 1)
	last := end &^ (page - 1)
	if last <= first {
		return
	}
	_ = unix.Madvise(b[first-start:last-start], unix.MADV_DONTNEED)
}

func (o *osFile) Unmap(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return unix.Munmap(b)
}
