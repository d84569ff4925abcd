// Package hotstore keeps the newest entries of a partition's log in memory so
// that consumers at the tail and raft followers catching up are served
// without touching the segment files.
//
// # Contract
//
// A Ring (and a LockFreeRing, which has the same contract) holds a
// contiguous run of log entries (each one a batch, though the package knows
// only offsets and bytes): entry i covers offsets [base_i, next_i) and
// next_i == base_{i+1}. Its data bytes never exceed the budget given to New;
// when an Append would exceed it, the oldest entries are dropped.
//
// Memory follows use, up to the budget: a new ring allocates nothing for
// data (a broker makes one per partition, most of them possibly idle), and
// grows with what is appended, from 64 KiB (or the first entry, if larger)
// by doubling, until it reaches the budget. Growth is never undone, by
// eviction or by Reset; once a ring has reached its steady size its Append
// does not allocate.
//
//   - One writer, the partition appender, calls Append and Reset. Append
//     copies the entry in. An entry whose baseOffset is not the previous
//     nextOffset resets the ring first (the log was truncated, e.g. by a new
//     raft leader); an entry larger than the budget empties the ring and is
//     not cached, and the ring continues from its nextOffset.
//   - Any number of readers call Read, Oldest, Next and Stats concurrently
//     with the writer and with each other. Ring's readers and writer share a
//     mutex held for one copy; LockFreeRing's readers never block.
//   - Read(offset, maxBytes, dst) appends to dst the entry containing offset
//     and the entries after it, as many as fit in maxBytes (at least one),
//     and returns the offset after the last. It misses (ok == false) when
//     offset is before the oldest entry held, at or after the newest, or
//     (LockFreeRing only) when the ring moved past it while the reader was
//     looking; the caller then reads the segment. A hit is exactly what was appended for those
//     offsets: all of its entries come from one generation (no Reset
//     between them), so a read racing a truncation returns either the old or
//     the new entries, never a mix.
//   - Oldest and Next report the offsets held, [Oldest, Next); both are 0
//     after New and Reset. Under concurrent appends they are hints: Read
//     decides hits by itself.
//   - Stats counts hits and misses (the hit ratio is a broker metric) and
//     reports the bytes held.
//
// # Ring or LockFreeRing
//
// Ring is the plain design: one buffer written with wraparound, an entry
// deque, one sync.Mutex. The buffer is allocated by the first Append and,
// while it is smaller than the budget, replaced by one twice its size
// instead of evicting; only the newest entries, up to 64 KiB of them, are
// copied to its start and the older ones dropped, because copying them all
// stalled the appender for tens of milliseconds (growKeep in ring.go says
// why). It evicts entry by entry and never allocates once its buffer and
// deque have grown.
//
// LockFreeRing is the design described below. On the 2-core development
// machine (shared with other builds, so noisy) the two were measured pair by
// pair (each configuration running both back to back, five passes, medians;
// BenchmarkTailRead in hotstore_bench_test.go: one writer appending 1, 4 and
// 16 KiB entries, unpaced or paced at 256 MB/s, with 1, 4 and 16 readers
// each copying one entry near the tail). LockFreeRing's read throughput was
// 0.48x to 1.52x Ring's, about even overall, and not faster with concurrent
// readers: with two cores at most two goroutines contend for Ring's mutex
// and its critical section is one memmove, while LockFreeRing pays two atomic
// adds on a shared pin count per read, as many as the mutex. So Ring is the
// default. LockFreeRing stays, tested to the same standard, because the
// balance should shift with many cores and many readers per partition, where
// Ring serialises every copy: measure again on the deployment hardware
// before switching: the broker's Config.HotstoreLockFree (rafka serve
// --hotstore-lockfree) selects LockFreeRing for every partition, so
// rafka-bench can compare the two on the same machine. Both implement Store.
//
// # LockFreeRing design
//
// The Go memory model, and the race detector that checks it, forbid the
// classic seqlock (copy bytes the writer may be overwriting, then detect the
// overwrite with a sequence number): that copy is a data race even when its
// result is thrown away. So readers here never read memory the writer may be
// writing. The memory is split into chunks (budget/8 each, at most 4 MiB,
// at least 4 KiB; an entry larger than that gets a chunk of its own), and a
// chunk's bytes are written once, published, and only rewritten after the
// chunk has been taken out of the ring and no reader is inside it. Chunks
// are allocated as entries arrive: the first holds 64 KiB and each new one
// doubles it until the size above is reached (the slot array has room for
// those smaller chunks too); growing needs nothing more, since readers
// already follow chunks of any size.
//
// A chunk holds entries back to back plus an index (the next offset and end
// position of each entry). The ring is a power-of-two array of slots of
// atomic.Pointer[chunk]; the chunk with sequence number s sits in slot
// s&mask while it is live, and the live chunks are the sequences
// [first, last), two atomic counters. Sequence numbers only grow, also
// across Reset, so a sequence names one use of one chunk.
//
// Writer, appending an entry:
//
//  1. If the current chunk has no room, evict the oldest chunks until a new
//     one fits the budget: store nil in the slot, then advance first. The
//     evicted chunk is retired.
//  2. Take a retired chunk whose pin count reads 0 (or allocate one), store
//     its new seq, then its base offset and generation.
//  3. Copy the bytes after the chunk's published ones and fill the next
//     index slot, with plain writes: no reader looks past the published
//     count.
//  4. Publish with n.Store(k+1); for a new chunk, then store it in its slot
//     and store last. An atomic store happens before any atomic load that
//     observes it, so a reader that sees the new count, or the chunk in its
//     slot, also sees the bytes and index written before.
//
// Reader, reading offset:
//
//  1. Load first, then last. Binary search the live chunks by base offset,
//     loading each slot pointer and then the chunk's base and generation,
//     confirmed by loading its seq last: the writer stores seq first when it
//     restarts a chunk, so an unchanged seq means the base and generation
//     belong to that sequence. A missing chunk, a changed seq or another
//     generation means the ring moved: start over (a few times, then miss).
//  2. Pin the chunk found: add 1 to its pin count, then load its slot again
//     and check that it still holds the chunk with the same seq. If not,
//     unpin and start over.
//  3. Load n and copy entries from data[:ents[n-1].end] with plain reads.
//     Continue into the next sequence (pinned the same way) while it has the
//     same generation and starts where the copy ended, and maxBytes allows.
//  4. Unpin (add -1).
//
// Why the writer never rewrites bytes a reader is copying: the writer (a)
// stores nil in the slot, then (b) loads the pin count and reuses the chunk
// only if it is 0; the reader (c) adds its pin, then (d) loads the slot. Go's
// atomics are sequentially consistent, so in their single total order either
// (c) comes before (b), and the writer sees the pin and leaves the chunk
// alone (it may keep two such retired chunks and lets the garbage collector
// have older ones), or (b) comes before (c), so (a) comes before (d) and the
// reader sees nil or another chunk and touches no data. If the chunk has
// been reused and put back into the same slot, its new seq tells the reader.
// A reader's unpin is an atomic store that the writer's later zero load
// observes, so the reader's plain reads happen before the writer's next
// plain writes: there is no data race, and `go test -race` agrees.
//
// Eviction is by whole chunk, so a LockFreeRing holds between 7/8 and all of
// its budget once full. A chunk's index has one slot per 256 data bytes; entries
// smaller than that on average seal chunks early and use less of the budget.
//
// Its Append is a copy, plus at each chunk boundary a few atomic stores and,
// while the ring grows or if every retired chunk is still pinned, an
// allocation. Its Read is a few
// atomic loads, two atomic adds on the chunk's pin count, one on the hit
// counter, and the copy.
package hotstore
