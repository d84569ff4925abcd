// Package faultnet is a network for tests that delays, loses, duplicates and
// partitions datagrams: real UDP sockets on loopback, wrapped so that every
// datagram sent passes the rules of a [Network] first. Run a quicnet server
// and dialer over it with quicnet.Config.Sockets (a Network is a
// quicnet.PacketListener) to test what QUIC and the protocols above it do
// when the network misbehaves, where the kernel offers no netem.
//
// # Endpoints and rules
//
// A Network is a registry of endpoints. [Network.Listen] binds a socket on a
// loopback address and registers it as the endpoint named by its bound
// address; [Network.ListenAs] binds a socket that belongs to an endpoint
// named otherwise, so that a process with several sockets (a broker's
// listener and the sockets of the connections it dials) is cut or slowed as
// one. A rule applies to the datagrams of one ordered pair of endpoints,
// from -> to, each named by its address ("127.0.0.1:7000"): [Network.Cut]
// drops both directions, [Network.CutOneWay] one, [Network.SetLoss] drops
// at random, [Network.SetDuplicate] sends a second copy at random,
// [Network.SetDelay] delivers later, with jitter (which reorders).
// [Network.Heal] lifts every rule between two endpoints, [Network.HealAll]
// every rule. A datagram to an address no Conn of the Network holds is
// matched by that address, so rules can name sockets outside the Network
// too; datagrams those sockets send are not subject to any rule.
//
// Rules are applied by the sending [Conn], in WriteTo: a datagram dropped
// there is never written, and WriteTo reports success as a lossy network
// would. Datagrams already written when a rule changes are delivered.
// [Network.Stats] counts, per pair, the datagrams sent, dropped and
// duplicated.
//
// # Determinism
//
// Each pair has a random source of its own, seeded from the Network's seed
// and the order in which its two endpoints were first named (by Listen,
// ListenAs, a rule or a datagram), not from their port numbers. A test that
// creates its endpoints in the same order and sends the same datagrams on a
// pair sees the same datagrams lost, duplicated and delayed by the same
// amounts, whatever ports the kernel picked.
//
// # Delay queue
//
// A Conn keeps the datagrams it delays in a queue served by one goroutine
// of its own, bounded by [MaxDelayedDatagrams] and [MaxDelayedBytes]; a
// datagram past either bound is dropped and counted as such. Close stops the
// goroutine, waits for it and discards what is still queued.
//
// # quic-go
//
// A Conn is a plain net.PacketConn, not a quic.OOBCapablePacketConn:
// quic-go reads and writes it one datagram at a time through ReadFrom and
// WriteTo (so every datagram meets the rules), without GSO, ECN or path MTU
// discovery. SetReadBuffer and SetWriteBuffer size the real socket's
// buffers, which quic-go asks for.
//
// # Locks
//
// Network.mu guards the registry, the rules, the random sources and the
// counters; Conn.mu guards a Conn's delay queue. A Conn takes Network.mu,
// releases it, then takes its own mu: never both at once.
package faultnet
