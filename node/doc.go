// Package node is the Rafka broker: it hosts topic partitions and serves the
// protocol of package wire over QUIC (package quicnet).
//
// # Contract
//
//   - Topics are split in two. The catalog (package node/meta: names,
//     partition counts, config overrides; a file-backed implementation
//     today) says which topics exist. The broker hosts replicas of their
//     partitions (package node/replica: log, ring, high watermark, ack
//     waits), opened and closed as the catalog changes (topic.go). Request
//     handlers reach a partition only through replica.Partition's methods;
//     metadata and describe answers come from the catalog, the hosted
//     replicas and one function naming each partition's leader
//     (partitionLeader: this broker, until there is a cluster).
//   - Produce requests are checked (header, checksum, size) and appended as
//     they arrived; the broker stamps base offsets and the term and never
//     decompresses or re-encodes a batch. The append returns an ack waiter
//     that the stream's writer waits on before sending the ack.
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
//   - A partition whose log cannot be opened at start-up is offline: its
//     requests get PARTITION_OFFLINE with the reason, and /readyz lists it.
//     A partition whose appends fail for a full disk or a failed fsync makes
//     /readyz not ready (Broker.StorageFailing) until an append succeeds.
//   - Topics live under DataDir/topics; creation and deletion are atomic with
//     respect to crashes (see meta.FileCatalog).
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
// Broker.adminMu serialises topic changes (catalog, then hosted replicas),
// which publish a new topic map through an atomic pointer; request handlers
// read it without locks. Each partition's locks are its own (see package
// node/replica).
//
// # Goroutines
//
// Per stream: the quicnet handler goroutine reads requests, one writer
// goroutine writes responses; a subscription adds a pusher. Each recovers
// its own panics (stream.go). The broker owns a retention loop and the admin
// HTTP server. Shutdown waits for all of them.
package node
