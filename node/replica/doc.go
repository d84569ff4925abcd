// Package replica is one partition hosted by this broker: its segment log,
// its hotstore ring of recent batches, its high watermark, the readers
// waiting for new data, and the waits of producers for their acks. It is the
// only code of the broker that calls into package segment and package
// hotstore; request handlers see a partition through this API only, so that
// a replicated partition (leader or follower of a raft group) can stand
// behind it without the handlers changing.
//
// # Contract
//
//   - Append checks and stores batches (stamping offsets and the term),
//     publishes them to readers and returns an AckWaiter. With one replica
//     the high watermark is the log end after each append; AckWaiter.Wait
//     returns once the append is durable under the topic's fsync policy
//     (immediately unless fsync=always). A replicated partition will move
//     the high watermark when a quorum has the batches and make Wait for
//     acks=all wait for that commit.
//   - Batches of idempotent producers (a producer id in the header) are
//     stored at most once per partition: Append answers a batch stored
//     before with its offsets and refuses one out of sequence; a replicated
//     partition does the same through its Sequencer, kept by every replica
//     as committed entries apply (producers.go, sequencer.go).
//   - Read never returns data at or beyond the high watermark, and always
//     whole batches: from the ring when it holds the offset, else a zero-copy
//     view of a segment. Release every ReadResult.
//   - Watch registers a channel that gets a non-blocking send after every
//     append that moves the high watermark and when the partition closes.
//   - A partition whose log could not be opened is Offline: every operation
//     fails with an error wrapping ErrOffline and the reason.
//   - Digest returns the digest of a committed offset range (see
//     segment.Digest) for comparing replicas; ranges within sealed
//     segments are cached until the log is replaced (digest.go).
//   - StorageError reports whether the latest append failed for lack of
//     disk space or a failed fsync (the partition is "storage failing") until
//     an append succeeds again. Transitions are logged: ERROR on failure,
//     INFO on recovery.
//
// # Locks
//
// appendMu serialises appends (log, then ring, then high watermark) and
// guards an unreplicated partition's producer state; waitMu guards the set
// of watchers. A Sequencer has its own mutex, a leaf but for the propose
// function it calls (which must not block). appendMu is taken before waitMu, never the
// reverse. Readers take neither: the high watermark is an atomic, the ring
// and the log have lock-free readers.
package replica
