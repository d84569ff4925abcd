// Package segment is a partition's log on disk (docs/architecture.md,
// "Storage"; docs/storage.md for operators): record batches appended to
// preallocated, memory-mapped segment files, with sparse offset and time
// indexes, crash recovery, retention and fsync policies.
//
// # Contract
//
//   - Append takes one or more complete batches (the wire format of
//     docs/protocol.md, "Record batches"), verifies every header, checksum
//     and record framing first, stores nothing if any is bad, stamps base
//     offsets (consecutive, each batch taking BatchHeader.OffsetCount
//     offsets) and the term in the caller's buffer, and writes them with one
//     pwrite. It does not wait for fsync.
//   - A reader never sees a half-written batch: reads stop at the published
//     write position, an atomic stored after the pwrite.
//   - Digest summarises the batches of an offset range (xxhash64 of each
//     batch's first DigestPrefix bytes: base offset, length, term and
//     checksum) for comparing replicas whatever their segment boundaries;
//     it reads through Read, so it verifies what it covers.
//   - Read returns whole batches of one segment as a zero-copy View of the
//     read-only mapping. Every batch served is verified (header, checksum,
//     offset continuity) on each read; corrupt bytes are never returned
//     (ErrCorrupt). Checksumming costs about 0.1 ms per MiB here, small next
//     to sending the bytes, and it catches bit rot in sealed segments, which
//     Open trusts by size. ReadUnverified skips the checksums (headers,
//     lengths and offsets are still checked) for a reader that verifies each
//     batch itself, as a client does: subscribe streams use it, so the bytes
//     a consumer reads are hashed once, by the consumer. Views are reference
//     counted: a segment deleted by retention or Close is unmapped when its
//     last View is released.
//   - WaitDurable under FsyncAlways returns once the data is fsynced, sharing
//     one fsync among all waiters of a round (group commit, see sync.go). A
//     failed fsync is returned to every waiter it covered, never
//     acknowledged, and is sticky: appends fail with ErrSyncFailed until the
//     log is reopened.
//   - Open recovers, using the clean offset recorded in the clean-offset
//     file (below). Every segment that ends at or below it is trusted by
//     size and only the batches after its last index entry are verified (a
//     zero tail left by a crash during a roll is trimmed; anything else is
//     ErrCorrupt, as is a gap after such a segment). Every later segment, the
//     last one included, is verified batch by batch from its last good index
//     entry at or below the clean offset (from its start if there is none):
//     at the first torn or corrupt batch, zero-filled tail or offset gap, the
//     log is cut there (that segment is truncated before it is mapped for
//     good and becomes the active one) and every later segment is deleted,
//     each deletion logged. A segment that ends cleanly is trimmed, fsynced
//     and kept. Damage below the clean offset in a segment followed by others
//     is ErrCorrupt, never cut (a cut would delete the later segments); in the
//     last segment it is cut with an error logged. Missing or inconsistent
//     index files are rebuilt by scanning. The recovered log is fsynced and
//     recorded as clean before Open returns. A directory without the file (a
//     log written before it existed, when every segment but the last was
//     fsynced at its roll) trusts every segment but the last.
//   - Rolling under FsyncAlways fsyncs the old segment before the new
//     segment's file is created. Under FsyncNever and FsyncInterval the old
//     segment is fsynced in the background by a goroutine the Log owns (see
//     flush.go) and appends continue in the new segment at once; a crash can
//     then leave any number of trailing segments unflushed, which is what
//     recovery above is for. After each background flush the clean offset
//     advances to the end of the flushed segment; Close fsyncs everything and
//     records the whole log as clean. At most maxPendingFlushes (8) rolled
//     segments wait; a roll beyond that fsyncs inline.
//   - Options.OnSync, if set, gets the duration of every fsync of segment
//     data: fsync rounds, Sync, roll flushes (inline or background) and
//     Close.
//
// # Files
//
// A log directory holds, per segment, three files named by the segment's base
// offset as 20 decimal digits: 00000000000000001234.log, .idx and .tix. All
// integers are little-endian. These layouts are the on-disk format.
//
// .log is the batches back to back, exactly as on the wire, followed by zeros
// up to the preallocated size while the segment is active (trimmed when it is
// sealed or the log is closed). The active segment is mapped at its full
// size from the start but preallocated in steps (1 MiB, doubling as it
// fills, up to SegmentBytes), so an idle partition holds about 1 MiB of disk;
// an append past the preallocated size extends it first, and a full disk
// then fails the append before anything is written:
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
// clean-offset is the clean marker (12 bytes), replaced atomically by writing
// clean-offset.tmp, fsyncing it, renaming it over and fsyncing the directory:
//
//	0  u64  clean offset: every batch below it is on stable storage, and
//	        every segment ending at or below it is complete
//	8  u32  CRC-32C (Castagnoli) of bytes 0..7
//
// Lookup by offset binary-searches .idx for the last entry at or below the
// offset and walks batch headers from there. Lookup by timestamp finds the
// last .tix entry whose timestamp is below the target: every batch before it
// is older, so the first batch with MaxTimestamp >= target is at or after it.
// Because entries are one-to-one, recovery can restart the running maximum
// from any kept entry. A segment holds at most 2^32 offsets and bytes.
//
// # Locks
//
//	Log.lifeMu  serialises Close and SetOptions (starting/stopping goroutines)
//	Log.retMu   serialises retention runs; held while their files are deleted
//	            after mu is released, so appends never wait on unlinks
//	Log.syncMu  serialises fsync rounds so that durable only grows
//	Log.mu      the segment list, the active segment, options, and every
//	            segment's writer state; held across an append's pwrite (that
//	            is what orders appends) and across a roll, and briefly by an
//	            fsync round to read NextOffset and the active segment
//	Log.cleanMu the clean offset and writes of the clean marker: raised by
//	            the flusher and Close, lowered by TruncateFrom (under mu)
//	Log.gcMu    the pending group-commit round; a leaf
//	Log.flushMu the rolled segments waiting for a background fsync and how
//	            far they are flushed; a leaf (taken under mu by a roll, under
//	            syncMu by a flush). A flush holds syncMu across its fsync.
//
// Lock order: lifeMu, then retMu, then syncMu, then mu, then cleanMu; gcMu and flushMu are leaves. Readers take
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
//
// # Truncation
//
// TruncateFrom(offset) removes the batches from offset on (a replica's
// uncommitted suffix that conflicts with its leader's). It never shrinks a
// file that is mapped, since a View of a removed batch past a new end of file
// would fault. Holding syncMu and mu, it:
//
//  1. fsyncs the rolled segments still waiting for their background fsync
//     and lowers the clean marker to offset (atomically replaced, as ever),
//     so that recovery verifies everything from offset on;
//  2. overwrites with zeros the removed bytes of the segment that then holds
//     the end (or, when the end lands on a segment boundary, the first batch
//     header of the next segment) and fsyncs them, under every fsync policy:
//     from then on recovery stops at offset and deletes every later segment,
//     so a removed batch never comes back;
//  3. unlinks the later segments, newest first (their mappings stay valid
//     until their last View is released), and fsyncs the directory;
//  4. publishes the new end (NextOffset first), drops index entries at or
//     past it (heap copies again; a mapped index file is not shrunk, its
//     dropped entries are zeroed, which recovery reads as the end of the
//     index) and makes that segment the active one again if it was sealed.
//     Its file keeps its length: the next append writes over the zeros, and
//     sealing or Close trim no shorter than it was (recovery trims the zero
//     tail at the next Open). A reactivated segment keeps the mapping it had,
//     so an append that does not fit rolls as usual.
//
// A crash before step 2 is durable leaves the old end; after it, the new one.
// A failure in step 2 is sticky like a failed fsync. Readers holding Views of
// removed batches keep valid memory whose bytes may later be zeros or new
// batches: callers only read below a high watermark that never includes a
// batch that can be removed. A Read that starts after TruncateFrom returned
// never sees a removed batch; one that raced with it and asks past the new
// end gets ErrOffsetOutOfRange or an empty View at NextOffset.
package segment
