package discovery

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	peer_store "github.com/anacrolix/dht/v2/peer-store"
)

// maxPeersPerReply bounds the peers one get_peers answer carries, so that
// it fits one datagram on an ordinary network (50 IPv6 peers take 900
// bytes). With more peers stored, each answer is a random sample, and
// repeated lookups see them all.
const maxPeersPerReply = 50

// peerStore keeps the announces other nodes made to this one, keyed by
// infohash and ip:port, each until its TTL expires. The library's own
// store keys entries by IP alone, so two brokers on one host overwrite
// each other, and it returns addresses decoded from that IP-only key
// (their port lost).
type peerStore struct {
	ttl time.Duration
	max int
	now func() time.Time

	// mu guards the fields below it.
	mu      sync.Mutex
	peers   map[peer_store.InfoHash]map[netip.AddrPort]time.Time // expiry
	n       int                                                  // entries in peers
	refused uint64                                               // announces dropped when full
}

func newPeerStore(ttl time.Duration, max int, now func() time.Time) *peerStore {
	return &peerStore{ttl: ttl, max: max, now: now, peers: make(map[peer_store.InfoHash]map[netip.AddrPort]time.Time)}
}

var _ peer_store.Interface = (*peerStore)(nil)

// AddPeer records or renews an announce.
func (s *peerStore) AddPeer(ih peer_store.InfoHash, na krpc.NodeAddr) {
	ip, ok := netip.AddrFromSlice(na.IP)
	if !ok || na.Port < 1 || na.Port > 65535 {
		return
	}
	ap := netip.AddrPortFrom(ip.Unmap(), uint16(na.Port))
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.peers[ih]
	if _, renew := m[ap]; !renew {
		if s.n >= s.max {
			s.expireLocked(now)
		}
		if s.n >= s.max {
			s.refused++
			return
		}
		if m == nil {
			m = make(map[netip.AddrPort]time.Time)
			s.peers[ih] = m
		}
		s.n++
	}
	m[ap] = now.Add(s.ttl)
}

// GetPeers answers a get_peers query: at most maxPeersPerReply live
// entries, a random sample when there are more.
func (s *peerStore) GetPeers(ih peer_store.InfoHash) []krpc.NodeAddr {
	all := s.live(ih)
	if len(all) > maxPeersPerReply {
		rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		all = all[:maxPeersPerReply]
	}
	out := make([]krpc.NodeAddr, len(all))
	for i, ap := range all {
		out[i] = krpc.NodeAddr{IP: ap.Addr().AsSlice(), Port: int(ap.Port())}
	}
	return out
}

// live returns every unexpired entry of ih.
func (s *peerStore) live(ih peer_store.InfoHash) []netip.AddrPort {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []netip.AddrPort
	for ap, exp := range s.peers[ih] {
		if now.Before(exp) {
			out = append(out, ap)
		}
	}
	return out
}

// len is the number of entries held, expired ones included until the
// next cleanup.
func (s *peerStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// expire drops expired entries.
func (s *peerStore) expire() {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(now)
}

func (s *peerStore) expireLocked(now time.Time) {
	for ih, m := range s.peers {
		for ap, exp := range m {
			if !now.Before(exp) {
				delete(m, ap)
				s.n--
			}
		}
		if len(m) == 0 {
			delete(s.peers, ih)
		}
	}
}
