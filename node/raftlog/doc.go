// Package raftlog is durable raft storage for small groups, such as the
// metadata group: a raft.Storage kept in memory (raft.MemoryStorage) and
// persisted to one append-only file of checksummed records. It suits logs of
// kilobytes to a few megabytes between compactions; partitions keep their log
// in the segment files instead.
//
// # Contract
//
//   - FileStorage implements raft.Storage plus the persistence methods the
//     group driver (package node/group) needs: Save, CreateSnapshot and
//     Compact. It imports nothing of this module.
//   - Save(hs, ents, snap) is one record: a crash leaves either all of it or
//     none of it. It is fsynced before Save returns, except a Save that only
//     moves the commit index (raft.MustSync is false for it: raft re-learns
//     the commit index from the leader); such a record is written and made
//     durable by the next fsync. The in-memory state changes only after the
//     write succeeded. A failed write or fsync is sticky (ErrFailed): the
//     file's tail is unknown, so nothing more is appended until the storage
//     is reopened and replay has read what reached the disk.
//   - Entries in a Save replace any conflicting suffix (raft's rule); a
//     non-empty snapshot replaces the whole log.
//   - CreateSnapshot and Compact rewrite the file: a new file holding one base
//     record (snapshot, hard state and the remaining entries) is written,
//     fsynced, renamed over the old one and the directory fsynced. Compact
//     refuses to drop entries the latest snapshot does not cover.
//   - Open replays the file. It stops at the first torn or corrupt record (a
//     short header or payload, a length over Options.MaxRecordBytes or past
//     the end of the file, a checksum mismatch), truncates the file there,
//     fsyncs it and logs how many bytes went: a crash mid-write loses only
//     the Save that was being written, never an earlier fsynced one, and
//     never leaves the file unreadable. A record whose checksum is right but
//     whose content contradicts the log (a gap, a snapshot behind the
//     current one, a commit index past the last entry) is ErrCorrupt: it was
//     written by a bug or altered on purpose, and cutting the log there
//     could drop acknowledged entries. Lengths read from disk are bounded by
//     the bytes present, so a corrupt length cannot make Open allocate.
//   - One FileStorage per directory: Open takes an exclusive flock on
//     dir/LOCK and holds it until Close.
//
// # File
//
// dir/raft.log starts with an 8-byte magic, "RAFKRLG1" (the last byte is
// the format version), followed by records. All integers are little-endian.
// These layouts are the on-disk format.
//
//	off  size  field
//	  0     4  length   u32  payload bytes, 1..MaxRecordBytes
//	  4     4  checksum u32  CRC-32C (Castagnoli) of bytes 0..3 and the payload
//	  8     …  payload       a raftpb.Message of type MsgStorageAppend,
//	                         protobuf-encoded
//
// The payload carries a Save the way raft itself describes a storage append:
// Entries are the entries, Snapshot the snapshot (absent or empty when
// none), and Term, Vote and Commit the hard state (all absent when none).
// The first record of a file is the base record, written when the file is
// created or rewritten; its Index and LogTerm name the entry the log starts
// after (the compaction point; 0 for a fresh log), its Entries follow that
// entry, and its Snapshot is the latest one (at or after Index). Every later
// record is one Save.
//
// A rewrite writes dir/raft.log.tmp and renames it; a leftover .tmp file
// (a crash before the rename) is deleted by Open.
//
// # Locks
//
// FileStorage.mu serialises the mutating methods (Save, CreateSnapshot,
// Compact, Close) and guards the file. The read methods of raft.Storage go to
// the in-memory storage, which has its own lock, so raft's reads never wait
// for an fsync.
package raftlog
