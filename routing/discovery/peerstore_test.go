package discovery

import (
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	peer_store "github.com/anacrolix/dht/v2/peer-store"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestPeerStoreKeysByAddrPortWithTTL(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	s := newPeerStore(time.Minute, 10, clock.now)
	ih := peer_store.InfoHash(InfoHash("c"))
	other := peer_store.InfoHash(InfoHash("d"))
	ip := net.IPv4(127, 0, 0, 1)
	s.AddPeer(ih, krpc.NodeAddr{IP: ip, Port: 7000})
	s.AddPeer(ih, krpc.NodeAddr{IP: ip, Port: 7001}) // same host, another broker
	s.AddPeer(other, krpc.NodeAddr{IP: ip, Port: 7002})
	s.AddPeer(ih, krpc.NodeAddr{IP: ip, Port: 0})        // no port: ignored
	s.AddPeer(ih, krpc.NodeAddr{IP: []byte{1}, Port: 1}) // bad IP: ignored

	want := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:7000"), netip.MustParseAddrPort("127.0.0.1:7001")}
	if got := sorted(s.live(ih)); !slices.Equal(got, want) {
		t.Fatalf("live = %v, want %v", got, want)
	}
	var gotReply []netip.AddrPort
	for _, na := range s.GetPeers(ih) {
		ip, _ := netip.AddrFromSlice(na.IP)
		gotReply = append(gotReply, netip.AddrPortFrom(ip.Unmap(), uint16(na.Port)))
	}
	if got := sorted(gotReply); !slices.Equal(got, want) {
		t.Fatalf("GetPeers = %v, want %v", got, want)
	}

	// 7000 renews; 7001 does not and expires.
	clock.t = clock.t.Add(40 * time.Second)
	s.AddPeer(ih, krpc.NodeAddr{IP: ip, Port: 7000})
	clock.t = clock.t.Add(30 * time.Second)
	if got := s.live(ih); !slices.Equal(got, want[:1]) {
		t.Fatalf("after the TTL: live = %v, want %v", got, want[:1])
	}
	s.expire()
	if n := s.len(); n != 1 {
		t.Fatalf("after expire: %d entries, want 1", n)
	}
}

func TestPeerStoreBounded(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	s := newPeerStore(time.Minute, 3*maxPeersPerReply, clock.now)
	ih := peer_store.InfoHash(InfoHash("c"))
	for i := range 4 * maxPeersPerReply {
		s.AddPeer(ih, krpc.NodeAddr{IP: net.IPv4(10, 0, byte(i>>8), byte(i)), Port: 7000})
	}
	if n := s.len(); n != 3*maxPeersPerReply {
		t.Fatalf("%d entries, want the bound %d", n, 3*maxPeersPerReply)
	}
	if n := len(s.GetPeers(ih)); n != maxPeersPerReply {
		t.Fatalf("GetPeers returned %d, want %d", n, maxPeersPerReply)
	}
	// Once they expire, room is made for new announces.
	clock.t = clock.t.Add(time.Hour)
	s.AddPeer(ih, krpc.NodeAddr{IP: net.IPv4(10, 1, 0, 0), Port: 7000})
	if n := s.len(); n != 1 {
		t.Fatalf("after expiry: %d entries, want 1", n)
	}
}

func sorted(aps []netip.AddrPort) []netip.AddrPort {
	slices.SortFunc(aps, func(a, b netip.AddrPort) int { return a.Compare(b) })
	return aps
}
