// Package placement decides which brokers hold the replicas of each
// partition, with no controller: every broker computes the same answer from
// the same broker set. It is pure: no goroutines, no I/O, no clock, no
// randomness; a Set is immutable and safe for concurrent use.
//
// # Contract
//
// NewSet validates a broker list once per membership change: IDs must be
// non-empty and distinct. Duplicates are rejected (ErrDuplicateID), not
// merged, since they can only come from a membership bug and merging would
// need a rule for which zone wins. The Set keeps its own copy, sorted by ID.
//
// Set.Replicas(topic, partition, r, dst) returns the min(r, Len) broker IDs
// that hold the partition, in preference order: the first is the preferred
// leader. r <= 0 or an empty (or nil) Set gives none. The result depends only
// on the topic, the partition, r and the set of (ID, Zone) pairs, never on
// the order brokers were listed in. It does not allocate when cap(dst) >= r,
// r <= 16 and the topic plus the longest ID fit in about 200 bytes.
//
// Moves(from, to, topics, dst) lists the partitions whose replica set (as a
// set; order ignored) differs between two Sets, with both lists, for the
// logic that moves replicas one at a time.
//
// # Rule
//
// Each broker gets a score per partition, the 64-bit xxhash (XXH64, seed 0)
// of
//
//	uvarint(len(topic)) | topic | partition (4 bytes, big-endian, two's complement) | uvarint(len(id)) | id
//
// The length prefixes keep the fields apart: ("ab", "c") and ("a", "bc")
// are different keys. Brokers rank by score, highest first, ties broken by
// the lower ID (bytewise). The score and this order are part of the cluster
// protocol: brokers running different versions must agree, and any change
// reshuffles every partition of every cluster (TestScoreEncoding and
// TestReplicasGolden pin them).
//
// Zones: walk the brokers in rank order and take each one whose zone is not
// taken yet, until r are taken or the zones run out; then fill the remaining
// slots with the best-ranked brokers not taken, and return them in the order
// taken. "" is a zone like any other, so when no broker declares a zone (or
// all declare the same one) the result is simply the r best-ranked brokers:
// plain rendezvous (highest-random-weight) hashing.
//
// One pass over the brokers, keeping O(r) state: the r best-ranked brokers,
// and the best broker of each of the r zones whose best brokers rank highest.
// Nothing else can be taken: the zone pass takes exactly those zone leaders;
// the fill takes the best brokers not already taken, and at most r-k of the
// r best are taken by the k zone leaders, so the fill never reaches below
// them. So placement costs N hashes and N comparisons for N brokers.
//
// # Properties
//
// Tested in property_test.go over 10,000 partitions or more, with fixed
// seeds (placement_test.go also checks Replicas against a slow reference
// that sorts every broker, on random sets, zones, r and names):
//
//  1. Adding a broker x (to a set already holding at least r brokers), with
//     or without zones, in a zone of its own or an existing one: a partition
//     whose new replicas do not include x keeps exactly the same list, order
//     included; one whose replicas include x differs as a set by x replacing
//     exactly one former member. So a join moves replicas onto x only, one
//     per partition. (With zones the member x replaces is not always the
//     lowest-ranked one: it may be x's zone's previous leader.)
//  2. Removing a broker y (leaving at least r): partitions that did not hold
//     y keep exactly the same list; those that did replace y by one broker.
//     This is property 1 read backwards.
//  3. Without zones, going from N to N+1 brokers, x ranks in a partition's
//     top R with probability R/(N+1), and such a partition moves one of its
//     R slots: expected R/(N+1) of partitions change, 1/(N+1) of replica
//     slots move. Measured on 10,000 to 80,000 partitions (enough that 10% is
//     at least 4 binomial standard deviations) for R=1, N=4, 9, 50 and R=3,
//     N=3, 10, 50, 100: all within 10% of the expectation, the largest
//     deviation +4.5%, one slot per changed partition. With zones a joining
//     broker takes its zone's share instead (next point).
//  4. Load: a broker holds each partition with probability R/N, leads it
//     with 1/N; over 10,000 partitions every broker's count is within 5
//     binomial standard deviations of the mean (measured worst cases: N=10,
//     R=3, 2.9% off the mean of 3,000; N=100, R=3, 14% off 300, which is 2.4
//     deviations). With R equal to the number of zones every zone holds one
//     replica of every partition, so a broker holds 1/(its zone's size) of
//     the partitions: zones of equal size balance, unequal ones do not (a
//     broker in a zone of 5 holds twice what one in a zone of 10 does).
//     Leaders are balanced either way: the preferred leader is the best
//     broker overall.
//  5. Determinism and order independence: the same inputs give the same
//     list, however the brokers were ordered when the Set was built.
//  6. Zone spread: with at least r zones no two replicas share a zone; with
//     fewer, the first replicas are one per zone and every zone holds one.
//
// # Cost
//
// One xxhash of a ~25-byte key and one comparison per broker per partition.
// Measured with BenchmarkReplicas (placement_bench_test.go) on a 2-vCPU AMD
// EPYC VM shared with other work, medians of five runs: 100,000 partitions
// over 100 brokers, R=3, 3.9 µs per partition without zones, 4.3 µs with 3
// zones, 0 allocations (about 40 ns per broker, three quarters of it in
// xxhash); 29 µs over 1,000 brokers. Recomputing all 100,000 placements
// after a membership change thus takes about 0.4 s of one core: a driver
// should spread it out rather than block on it. Moves over the same
// partitions, 100 -> 101 brokers, takes 0.57 s (it places each partition
// under both sets). Figures and the command: docs/performance.md,
// "Placement".
package placement
