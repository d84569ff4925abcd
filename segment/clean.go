package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// The clean marker (on-disk format) records the log's clean point: an offset
// below which every batch is on stable storage and every segment that ends at
// or below it is complete. Open trusts those segments by size and verifies
// everything after the clean point batch by batch. The file is replaced
// atomically (written to a temporary name, fsynced, renamed, directory
// fsynced), so it is never torn:
//
//	0  u64  clean offset
//	8  u32  CRC-32C of bytes 0..7
const (
	cleanName     = "clean-offset"
	cleanTmpName  = "clean-offset.tmp"
	cleanFileSize = 12
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// readClean returns the clean offset recorded in dir; ok is false when there
// is no marker (a log written before markers existed) or it is damaged.
func readClean(fs FS, dir string, o *Options) (off int64, ok bool, err error) {
	name := filepath.Join(dir, cleanName)
	f, err := fs.OpenFile(name, os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, ioError("open", name, err)
	}
	defer f.Close()
	b := make([]byte, cleanFileSize+1)
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, false, ioError("read", name, err)
	}
	off = int64(binary.LittleEndian.Uint64(b))
	if n != cleanFileSize || binary.LittleEndian.Uint32(b[8:]) != crc32.Checksum(b[:8], crcTable) || off < 0 {
		o.Logger.Warn("segment: ignoring damaged clean marker; trusting every segment but the last", "file", name)
		return 0, false, nil
	}
	return off, true, nil
}

// writeClean atomically replaces the clean marker of dir with off.
func writeClean(fs FS, dir string, off int64) error {
	tmp, name := filepath.Join(dir, cleanTmpName), filepath.Join(dir, cleanName)
	b := binary.LittleEndian.AppendUint64(make([]byte, 0, cleanFileSize), uint64(off))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
	f, err := fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return ioError("open", tmp, err)
	}
	_, err = f.WriteAt(b, 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return ioError("write", tmp, err)
	}
	if err := fs.Rename(tmp, name); err != nil {
		return ioError("rename", tmp, err)
	}
	if err := fs.SyncDir(dir); err != nil {
		return ioError("fsync", dir, err)
	}
	return nil
}

// errBelowClean reports damage that recovery must not cut away: data below
// the clean point was on stable storage.
func errBelowClean(name string, pos, next, clean int64, why error) error {
	return fmt.Errorf("%w: %s: data ends at position %d (offset %d) below the clean offset %d: %v",
		ErrCorrupt, name, pos, next, clean, why)
}
