// Package node is the Rafka broker: it hosts topic partitions and serves the
// protocol of package wire over QUIC (package quicnet).
//
// # Contract
//
//   - A partition is a segment.Log plus a hotstore.Ring of its newest batches.
//     Produce requests are checked (header, checksum, size) and appended as
//     they arrived; the broker stamps base offsets and the term and never
//     decompresses or re-encodes a batch.
//   - acks=leader (and acks=all, which equals it with one replica) is answered
//     once the append is durable under the topic's fsync policy: with
//     fsync=always the ack waits for the group-committed fsync that covers it.
//     Readers see data once it is appended (the high watermark is the log
//     end), so with fsync=always a reader can see a record whose ack is still
//     waiting for fsync; a crash in that window can lose such a record, and
//     it was never acknowledged.
//   - Every stream carries request frames and gets responses in request
//     order (see stream.go). Bad input is answered with an error code and
//     never stops the broker: an unreadable frame ends its stream only, a
//     request error only that request.
//   - Topics live under DataDir/topics; creation and deletion are atomic with
//     respect to crashes (see topic.go).
//   - One broker per data directory: New takes an exclusive flock on
//     DataDir/rafka.lock before reading anything there and holds it until
//     Shutdown returns (datadir.go). DataDir/quic-reset.key keeps the QUIC
//     stateless-reset key across restarts.
//   - Memory held in frames being received is bounded per connection and
//     broker-wide (budget.go); a stream whose next frame does not fit gets
//     THROTTLED and is closed. A panic in a stream's goroutines resets that
//     stream only (quicnet.StreamCodeInternal) and is counted.
//   - Shutdown returns within its context whatever clients do: see
//     Broker.Shutdown.
//
// # Locks
//
// Broker.adminMu serialises topic changes, which publish a new topic map
// through an atomic pointer; request handlers read it without locks. Per
// partition, appendMu serialises appends (log then ring then high watermark),
// and waitMu guards the set of waiting readers; appendMu is taken before
// waitMu, never the reverse.
//
// # Goroutines
//
// Per stream: the quicnet handler goroutine reads requests, one writer
// goroutine writes responses; a subscription adds a pusher. Each recovers
// its own panics (stream.go). The broker owns a retention loop and the admin
// HTTP server. Shutdown waits for all of them.
package node
