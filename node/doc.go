// Package node is the Rafka broker: it hosts topic partitions and serves the
// protocol of package wire over QUIC (package quicnet).
//
// # Contract
//
//   - Every broker is a member of a cluster (cluster.go; a cluster of one
//     without Cluster.Join): the cluster's metadata (its id, the brokers and
//     their leases, the topics and their placement) is the state machine of
//     a metadata raft group (node/group driving node/meta's State over
//     node/raftlog storage), replicated by its voters and followed by every
//     other broker as a learner. Brokers talk to each other over the client
//     listener with mutual TLS (peer.go): heartbeats to the metadata leader,
//     and one long-lived stream per broker pair carrying raft messages.
//   - Topics are split in two. The catalog (meta.Catalog over the metadata
//     group, catalog.go) says which topics exist, with their partition
//     counts, config overrides and placement; the broker hosts the
//     partitions placed on it (package node/replica: log, ring, high
//     watermark, ack waits), opened and closed by reconcile as the metadata
//     changes (topic.go). Request handlers reach a partition only through
//     replica.Partition's methods; a partition hosted elsewhere is answered
//     NOT_LEADER naming its broker, or PARTITION_OFFLINE while that broker is
//     fenced. Metadata and describe answers come from the catalog, the hosted
//     replicas and partitionLeader.
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
//   - Partitions live under DataDir/topics/<name>/<partition>; topic.id
//     beside them names the topic incarnation and the partitions created
//     there, so a missing partition directory is reported offline rather
//     than recreated empty. DataDir/meta holds the metadata log,
//     DataDir/cluster.json the cluster id. A data directory of the
//     single-broker release (topics/<name>/topic.json) is imported into the
//     cluster the broker forms.
//   - One broker per data directory: New takes an exclusive flock on
//     DataDir/rafka.lock before reading anything there and holds it until
//     Shutdown returns (datadir.go). DataDir/quic-reset.key keeps the QUIC
//     stateless-reset key across restarts.
//   - Memory held in frames being received is bounded per connection and
//     broker-wide (budget.go); a stream whose next frame does not fit gets
//     THROTTLED and is closed. A panic in a stream's goroutines resets that
//     stream only (quicnet.StreamCodeInternal) and is counted.
//   - The leader of each replicated partition compares its replicas'
//     committed logs by digests of offset ranges, in the background and on
//     demand (APIVerify), and reports divergent ranges (verify.go,
//     docs/replication.md "Consistency checks").
//   - Shutdown returns within its context whatever clients do: see
//     Broker.Shutdown.
//
// # Locks
//
// Broker.adminMu serialises reconcile (opening and closing hosted
// partitions), which publishes a new topic map through an atomic pointer;
// request handlers read it without locks. Topic changes are proposed without
// it and reconciled after. cluster.mu guards the metadata leader's
// bookkeeping; peers.mu its maps (a link's queue has its own lock);
// verifier.mu the divergence counts (a leaf; the checks themselves are
// serialised by semaphores, see verify.go). Each partition's locks are its
// own (see package node/replica).
//
// # Goroutines
//
// Per stream: the quicnet handler goroutine reads requests, one writer
// goroutine writes responses; a subscription adds a pusher. Each recovers
// its own panics (stream.go); a raft stream from a peer is read by its
// handler goroutine. The broker owns a retention loop, a reconcile loop, the
// consistency check loop (verify.go) and the admin HTTP server; the cluster owns the raft driver's goroutine, the
// heartbeat and leader loops, one link goroutine per peer and the DHT node's.
// Shutdown waits for all of them.
package node
