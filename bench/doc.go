// Package bench measures Rafka as a whole system: the pieces that
// rafka-bench, the perf check and the NATS comparison share.
//
//   - Payloads: record values of a chosen size and lz4 compressibility,
//     cut from a large pre-generated buffer so that no two records of a
//     batch repeat each other (which would let lz4 cheat). A value may carry
//     the producer's clock in its first 8 bytes (Stamp) so that a consumer in
//     the same process computes end-to-end latency to the nanosecond; the
//     record timestamp of the batch format is only millisecond-precise.
//   - Histograms: HDR histograms of latencies in nanoseconds (1 ns to 10
//     min, 3 significant digits), safe for concurrent recording, with a
//     cumulative view for the summary and an interval view for the live
//     progress line.
//   - Results: the figures of one run (records/s, MB/s with MB = 10^6 bytes,
//     latency percentiles, broker CPU and memory) as text and as JSON.
//   - LocalBroker: a `rafka serve` child process on a temporary data folder,
//     its address parsed from its stderr, its CPU time and peak RSS read
//     from /proc, stopped with SIGTERM and then SIGKILL.
//   - LocalCluster: N such children on loopback forming a cluster, with a
//     CA and broker certificates made in its temporary folder; brokers can
//     be killed (SIGKILL) and restarted on their data and ports, and their
//     resource use is summed over each broker's processes.
//   - FailoverResult: the figures of a leader-kill run and their text form.
//   - Transport: the ceiling, raw QUIC stream throughput and round-trip
//     time over one quicnet connection with the broker's TLS settings.
//   - Baselines: ratios of Rafka's figures to the ceiling measured in the
//     same run, compared with a committed baseline by the perf check.
//
// The workloads that drive a broker through the Go client live in package
// bench/load; the NATS JetStream side of `rafka-bench compare nats` lives in
// the nested module bench/nats, so that neither Rafka's main module nor this
// package depends on NATS.
package bench
