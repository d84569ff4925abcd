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
//     Compact. FileStorage uses nothing else of this module; PartitionStorage
//     uses segment and wire.
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
// # Partition logs
//
// PartitionStorage (partition.go) is a partition's raft log kept in its
// segment log (package segment): one entry is one batch, so the log that
// consumers read is the raft log, with no second WAL.
//
//   - Save stamps each normal entry's batch (a copy: raft shares the entry)
//     with the log's next offset and the entry's term and appends it; runs of
//     entries of one term go in one write. A no-op or configuration change is
//     stored as a control batch (timestamp 0) whose body is
//     {u8 version 1, u8 entry type, data}. Entries returns exactly what Save
//     was given, except that a batch comes back stamped. A normal entry whose
//     data is not one record batch is ErrInvalid and nothing is written.
//   - A conflicting suffix is removed with segment.Log.TruncateFrom, then the
//     side index is cut and fsynced (so that a removed record cannot return
//     after a crash and describe a batch written since).
//   - Under the log's fsync policy always, Save returns once its entries are
//     fsynced (one fsync per Save: group commit); under never and interval it
//     does not wait, and raft's safety then rests on a majority of replicas
//     not losing power together. The state file (term, vote, configuration,
//     base) is always replaced atomically and fsynced; a commit-only change
//     goes to raft.commit without fsync, and the commit index is clamped to
//     the log at open.
//   - Files beside the segments: raft.idx, the side index (header: magic
//     "RAFKPIX1", u64 index of the first record, u32 CRC-32C of bytes 0..15,
//     u32 zero; then per entry: i64 base offset, u64 term, u32 CRC-32C of
//     the entry's index, base offset and term). It is read with ordinary
//     reads, never mapped, so cutting it is safe. Written after the segment;
//     fsynced when cut and at every segment roll (so that the records of a
//     sealed segment are durable before retention can delete it). At open
//     records past the log's end or not matching their batch are dropped and
//     batches past the last record get one; a missing or damaged file is
//     rebuilt from the state file's base, which fails (ErrCorrupt) only if
//     retention also moved the log start past that base in the meantime.
//     raft.state and raft.commit: see partition_format.go.
//   - The configuration is the latest applied, newer than the snapshot, so
//     it comes with the index of its last change (ConfIndex): raft hands
//     the committed entries after the snapshot again at start, and the
//     driver does not apply the changes among them a second time.
//   - Retention moves the log start: FirstIndex becomes the first entry whose
//     batch is present and Snapshot() is that position (metadata {first-1,
//     its term, the configuration last given to SetConfState}, data
//     {start offset, first index, index of that configuration}, see
//     ParseSnapshotData). CreateSnapshot and
//     Compact delete nothing. Save with a snapshot marks the state file
//     resetting, deletes the log and side index, reopens the log empty at
//     the snapshot's offset and clears the mark; an open that finds the mark
//     redoes the reset. Log() then returns the new segment log.
//   - PartitionStorage.mu guards everything: Save holds it across the fsync,
//     and raft's reads take it too (they run on the same driver goroutine).
//
// # Locks
//
// FileStorage.mu serialises the mutating methods (Save, CreateSnapshot,
// Compact, Close) and guards the file. The read methods of raft.Storage go to
// the in-memory storage, which has its own lock, so raft's reads never wait
// for an fsync.
package raftlog
