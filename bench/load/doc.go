// Package load drives a Rafka cluster through the Go client with the
// workloads of rafka-bench and measures them with package bench:
//
//   - Produce: producers send Count records (or for Duration) as fast as the
//     client allows, or at a target Rate. Ack latency runs from the moment a
//     record was due (its scheduled time at a target rate, which keeps a
//     stalled broker from hiding its stall: no coordinated omission; else the
//     Produce call) to its delivery callback.
//   - Consume from the earliest offset: the topic is filled first (not
//     measured), optionally the local broker is restarted so that reads come
//     from the segment files and not from memory, then consumers read
//     everything back and the read is measured.
//   - E2E and consume from the latest offset: consumers subscribe first, then
//     producers send; every value carries the producer's clock (bench.Stamp)
//     and the consumer records now minus that stamp at Poll. Both ack and
//     end-to-end latency are reported; the rate is the consumers'.
//   - Failover (RunFailover): one partition produced at a fixed rate with
//     acks=all while its leader is killed and restarted; the time to the
//     next acknowledged write per kill, then a read-back that counts lost,
//     duplicate and out-of-order records.
//
// Each producer and each consumer has a client (so a QUIC connection) of its
// own, as separate applications would. Every loop is bounded by a record
// count and by a deadline, and stops by itself.
package load
