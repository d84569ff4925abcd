// Package segment is a partition's log on disk (DESIGN.md section 6): record
// batches appended to preallocated, memory-mapped segment files, with sparse
// offset and time indexes, crash recovery, retention and fsync policies.
//
// # Contract
//
//   - Append takes one or more complete batches (the wire format of
//     DESIGN.md section 4), verifies every header and checksum first, stores
//     nothing if any is bad, stamps base offsets (consecutive, each batch
//     taking BatchHeader.OffsetCount offsets) and the term in the caller's
//     buffer, and writes them with one pwrite. It does not wait for fsync.
//   - A reader never sees a half-written batch: reads stop at the published
//     write position, an atomic stored after the pwrite.
//   - Read returns whole batches of one segment as a zero-copy View of the
//     read-only mapping. Every batch served is verified (header, checksum,
//     offset continuity) on each read; corrupt bytes are never returned
//     (ErrCorrupt). Checksumming costs about 0.1 ms per MiB here, small next
//     to sending the bytes, and it catches bit rot in sealed segments, which
//     Open trusts by size. Views are reference counted: a segment deleted by
//     retention or Close is unmapped when its last View is released.
//   - WaitDurable under FsyncAlways returns once the data is fsynced, sharing
//     one fsync among all waiters of a round (group commit, see sync.go). A
//     failed fsync is returned to every waiter it covered, never
//     acknowledged, and is sticky: appends fail with ErrSyncFailed until the
//     log is reopened.
//   - Open recovers: every segment but the last is trusted by size and only
//     the batches after its last index entry are verified (a zero tail left
//     by a crash during a roll is trimmed; anything else is ErrCorrupt, as is
//     a gap between segments). The last segment is verified from its last
//     good index entry and truncated at the first torn or corrupt batch or
//     at the zero-filled preallocated tail; index entries past that point
//     are dropped and the index tail rebuilt. Missing or inconsistent index
//     files are rebuilt by scanning.
//   - Rolling fsyncs the old segment before the new segment's file is
//     created, under every policy, so after any crash every segment but the
//     last is complete on disk.
//
// # Files
//
// A log directory holds, per segment, three files named by the segment's base
// offset as 20 decimal digits: 00000000000000001234.log, .idx and .tix. All
// integers are little-endian. These layouts are the on-disk format.
//
// .log is the batches back to back, exactly as on the wire, followed by zeros
// up to the preallocated size while the segment is active (trimmed when it is
// sealed or the log is closed):
//
//	+--------------------------+--------------------------+-----+---------+
//	| batch: base offset N     | batch: base offset N+c0  | ... | 0 0 0 … |
//	| (64-byte header, records)|                          |     |         |
//	+--------------------------+--------------------------+-----+---------+
//
// .idx has one 8-byte entry per index point, about every IndexIntervalBytes
// of log (never at position 0):
//
//	0  u32  batch base offset - segment base offset
//	4  u32  file position of that batch in .log
//
// .tix has one 12-byte entry per index point, in the same order as .idx:
//
//	0  i64  largest MaxTimestamp of every batch before this one in the segment
//	8  u32  batch base offset - segment base offset (equal to the .idx entry)
//
// Lookup by offset binary-searches .idx for the last entry at or below the
// offset and walks batch headers from there. Lookup by timestamp finds the
// last .tix entry whose timestamp is below the target: every batch before it
// is older, so the first batch with MaxTimestamp >= target is at or after it.
// Because entries are one-to-one, recovery can restart the running maximum
// from any kept entry. A segment holds at most 2^32 offsets and bytes.
//
// # DESIGN: locks
//
//	Log.lifeMu  serialises Close and SetOptions (starting/stopping goroutines)
//	Log.syncMu  serialises fsync rounds so that durable only grows
//	Log.mu      the segment list, the active segment, options, and every
//	            segment's writer state; held across an append's pwrite (that
//	            is what orders appends) and across a roll, and briefly by an
//	            fsync round to read NextOffset and the active segment
//	Log.gcMu    the pending group-commit round; a leaf
//
// Lock order: lifeMu, then syncMu, then mu; gcMu is taken alone. Readers take
// no lock: they load NextOffset, StartOffset and the immutable segment list
// (atomics published by the writer under mu, in the order written position,
// next offset; list before offsets that live in a new segment; start before
// a list without the deleted segment), then acquire a segment reference with
// a compare-and-swap that fails once the count has reached zero. The active
// segment's index is an immutable snapshot whose backing arrays only grow
// beyond the lengths already published.
//
// Truncation and mappings: recovery truncates the last segment before mapping
// it for good (its scan uses a temporary mapping that is unmapped first).
// Sealing and Close trim the preallocated tail while the file is mapped,
// which is safe because only bytes past the published write position go and
// no reader touches them (SIGBUS comes only from touching pages wholly past
// the end of the file). Retention unlinks files at once and unmaps when the
// last View is released.
package segment
