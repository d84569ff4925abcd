// Package discovery finds the other brokers of a cluster through a private
// Kademlia DHT (BitTorrent's mainline protocol, BEP 5, as implemented by
// github.com/anacrolix/dht/v2). There is no controller: a broker joins the
// DHT through any member, announces itself, and lists the others. See
// docs/architecture.md for where this sits in the cluster.
//
// # Contract
//
//   - [New] starts a [Node] on a net.PacketConn the caller hands over: in a
//     broker, a quicnet.SharedPacketConn over the QUIC listener's
//     transport, so one UDP port serves QUIC and the DHT (every broker of a
//     cluster must then do the same: shared-port datagrams carry a prefix
//     byte); in tests, a plain UDP socket.
//   - The node joins through Config.Join (host:port; a name may resolve to
//     several addresses, such as a Kubernetes headless service, and all are
//     tried). While its routing table is empty, because the join targets
//     are not up yet or every known node went away, it retries with
//     exponential backoff between Config.RetryMin and RetryMax and logs why.
//     A node without join addresses (the first of a cluster) waits to be
//     contacted.
//   - It announces the broker's port under the cluster's infohash,
//     [InfoHash](id) = SHA-1("rafka-cluster:" + id), and again every
//     Config.AnnounceInterval (±10%), because what other nodes store expires
//     after Config.PeerTTL and the nodes closest to the infohash change as
//     brokers come and go.
//   - [Node.Peers] runs a get_peers lookup of that infohash and returns the
//     addresses found, with those announced to this node directly,
//     deduplicated, this node excluded. Nodes of other clusters may share
//     the DHT; they announce under another infohash and are never listed.
//   - Membership is not liveness. A listed broker may have stopped up to
//     PeerTTL ago, and a dead node lingers in routing tables for minutes.
//     Whether a broker is alive is decided elsewhere (leases held with the
//     metadata leader); Peers only says whom to ask.
//   - [Node.Close] ends lookups in flight, stops the node's goroutines and
//     waits for them, and closes the PacketConn.
//
// # Using the library safely
//
// The DHT library is written for the public BitTorrent network, and its
// defaults are wrong for a private one. This package therefore:
//
//   - always passes its own socket (by default the library binds every
//     interface) and its own starting nodes: by default it resolves and
//     contacts public bootstrap routers, and no datagram of ours may leave
//     the cluster;
//   - gives each node its own send rate limiter (the default one is shared
//     by every server in the process) and turns the BEP 42 node-ID
//     security check off (IDs are not derived from IP addresses here);
//   - stores announces in its own peer store, keyed by ip:port with a TTL
//     and bounded in size: the library's in-memory store keys entries by IP
//     alone, so two brokers on one host overwrite each other, and it returns
//     addresses without their port;
//   - joins with its own find_node traversal rather than the library's
//     Bootstrap, whose queries cannot be cancelled and would outlive Close;
//   - checks every datagram before the library decodes it (one bencoded
//     dictionary, every length within the datagram, keys sorted, and
//     decodable as a KRPC message), because the library's decoder allocates
//     whatever length a string claims (up to 128 MiB) before reading it,
//     and logs every undecodable datagram to the process-wide logger;
//   - keeps the library from panicking: its read loop panics on a read
//     error while it runs, so a socket failure (the QUIC transport under a
//     shared port closed first) is logged and the read waits for Close;
//   - routes the library's logs to the node's slog.Logger.
//
// BEP 44 (mutable items) compare-and-swap does not work in the library
// release in use; nothing here relies on it.
//
// # Goroutines
//
// The library runs a read loop and short-lived goroutines per query and
// per reply; New adds one maintenance goroutine (join, re-join,
// re-announce). Lookups run on the caller's goroutine (Peers) or the
// maintenance goroutine, and each waits until every goroutine the library
// started for it has finished. Close waits for the maintenance goroutine,
// for Peers calls in flight and for the read in progress; what the library
// may still run then (a reply being written) ends within microseconds,
// since every write after Close fails at once.
package discovery
