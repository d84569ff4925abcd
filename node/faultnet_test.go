package node_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/rafka/rafka/node/group"
	"github.com/rafka/rafka/node/nodetest"
	"github.com/rafka/rafka/quicnet"
	"github.com/rafka/rafka/wire"
)

// electionTimeout is the metadata group's election timeout in harness
// clusters (raft randomises it up to twice this).
const electionTimeout = group.DefaultElectionTicks * nodetest.RaftTick

// directConns holds one client connection per broker, over real loopback,
// so that each question goes to the broker named: the client library would
// move a call to whichever broker it prefers.
type directConns struct {
	t     *testing.T
	c     *nodetest.Cluster
	conns map[int]*quic.Conn
}

func dialEach(t *testing.T, c *nodetest.Cluster) *directConns {
	tlsConf, err := quicnet.ClientTLSConfig(quicnet.TLSFiles{CAFile: c.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	d := &directConns{t: t, c: c, conns: map[int]*quic.Conn{}}
	for _, br := range c.Brokers {
		conn, err := quicnet.Dial(ctxT(t), br.Addr, tlsConf, quicnet.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.CloseWithError(quicnet.CodeNormal, "") })
		d.conns[br.Index] = conn
	}
	return d
}

// call sends one request to broker i on a stream of its own and decodes
// the answer into resp.
func (d *directConns) call(i int, api wire.API, req, resp any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := d.conns[i].OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	defer s.CancelRead(quicnet.StreamCodeDone)
	s.SetDeadline(time.Now().Add(10 * time.Second))
	if err := wire.NewFrameWriter(s).WriteFrame(wire.FrameHeader{API: api, Version: wire.Version, Corr: 1}, req); err != nil {
		return err
	}
	s.Close()
	fr := wire.NewFrameReader(s, 0)
	defer fr.Close()
	f, err := fr.Next()
	if err != nil {
		return err
	}
	if f.API != api {
		return fmt.Errorf("broker %d answered api %s to %s", i, f.API, api)
	}
	return fr.DecodeHeader(&f, resp)
}

// info is broker i's own view of the cluster.
func (d *directConns) info(i int) (wire.ClusterInfoResponse, error) {
	var resp wire.ClusterInfoResponse
	if err := d.call(i, wire.APIClusterInfo, &wire.ClusterInfoRequest{}, &resp); err != nil {
		return resp, err
	}
	return resp, wire.AsError(resp.Error, resp.Message)
}

// Isolating the metadata leader from the other brokers (both ways, QUIC and
// DHT) lets the other two elect a new one and keep creating topics; once
// healed, the old leader follows the new one.
func TestFaultNetIsolatedMetaLeaderIsReplaced(t *testing.T) {
	c := nodetest.NewCluster(t, 3, nodetest.WithFaultNet())
	d := dialEach(t, c)
	index := map[string]int{}
	for _, br := range c.Brokers {
		index[br.B.ID()] = br.Index
	}
	old := -1
	// Every broker must know the three voters before the leader is cut off:
	// a follower that has the last promotion in its log but has not learnt
	// that it committed still counts the voters before it, and cannot win
	// an election without the leader it is cut off from.
	c.WaitFor("a metadata leader with 3 voters, known to every broker", func() error {
		leader := ""
		for _, br := range c.Brokers {
			info, err := d.info(br.Index)
			if err != nil {
				return err
			}
			if _, ok := index[info.MetaLeader]; !ok || len(info.Voters) != 3 {
				return fmt.Errorf("broker %d: leader %q, voters %v", br.Index, info.MetaLeader, info.Voters)
			}
			if leader != "" && info.MetaLeader != leader {
				return fmt.Errorf("broker %d names leader %q, another %q", br.Index, info.MetaLeader, leader)
			}
			leader = info.MetaLeader
		}
		old = index[leader]
		return nil
	})
	oldID := c.Brokers[old].B.ID()
	var majority []int
	for _, br := range c.Brokers {
		if br.Index != old {
			majority = append(majority, br.Index)
		}
	}
	t.Logf("metadata leader %s (broker %d); isolating it from brokers %v", oldID, old, majority)

	c.Isolate(old)
	cut := time.Now()
	var leader int
	var term uint64
	c.WaitFor("a new metadata leader named by both brokers of the majority", func() error {
		for _, i := range majority {
			info, err := d.info(i)
			if err != nil {
				return err
			}
			l, ok := index[info.MetaLeader]
			if !ok || l == old {
				return fmt.Errorf("broker %d names leader %q", i, info.MetaLeader)
			}
			leader, term = l, info.MetaTerm
		}
		return nil
	})
	elected := time.Since(cut)
	t.Logf("broker %d leads term %d after %v (election timeout %v)", leader, term, elected, electionTimeout)
	if !slices.Contains(majority, leader) {
		t.Fatalf("leader %d is not in the majority %v", leader, majority)
	}
	// Generous for a loaded machine: an election takes one to two
	// election timeouts once the followers miss the leader.
	if elected > 20*electionTimeout {
		t.Errorf("new leader after %v, more than 20 election timeouts", elected)
	}
	if sent, dropped := faultStats(c, old, majority); dropped == 0 {
		t.Fatalf("no datagram from the old leader dropped (%d sent)", sent)
	}

	// Topic creation commits through the majority, asked through the
	// broker of it that does not lead (it forwards to the leader).
	via := majority[0]
	if via == leader {
		via = majority[1]
	}
	var created wire.ErrorResponse
	if err := d.call(via, wire.APICreateTopic, &wire.CreateTopicRequest{Name: "during-partition", Partitions: 3}, &created); err != nil || created.Error != wire.ErrNone {
		t.Fatalf("CreateTopic through broker %d: %v %s %s", via, err, created.Error, created.Message)
	}
	var committed uint64
	c.WaitFor("the topic in the metadata of both brokers of the majority", func() error {
		for _, i := range majority {
			var md wire.MetadataResponse
			if err := d.call(i, wire.APIMetadata, &wire.MetadataRequest{Topics: []string{"during-partition"}}, &md); err != nil {
				return err
			}
			if len(md.Topics) != 1 || md.Topics[0].Error != wire.ErrNone {
				return fmt.Errorf("broker %d: metadata %+v", i, md.Topics)
			}
		}
		info, err := d.info(leader)
		committed = info.MetaCommit
		return err
	})
	// The isolated broker never heard of it, and does not say it does not
	// exist: unable to confirm with a metadata leader, it answers a
	// retriable code.
	if info, err := d.info(old); err == nil && info.MetaApplied >= committed {
		t.Fatalf("isolated broker applied %d, the majority committed %d", info.MetaApplied, committed)
	}
	var md wire.MetadataResponse
	if err := d.call(old, wire.APIMetadata, &wire.MetadataRequest{Topics: []string{"during-partition"}}, &md); err != nil {
		t.Fatal(err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != wire.ErrMetadataUnavailable {
		t.Fatalf("isolated broker's metadata of the new topic: %+v, want METADATA_UNAVAILABLE", md.Topics)
	}
	// Nor does a request for one of its partitions (produce, fetch and
	// list_offsets look partitions up alike).
	var lo wire.ListOffsetsResponse
	if err := d.call(old, wire.APIListOffsets, &wire.ListOffsetsRequest{Topic: "during-partition", Timestamp: -1}, &lo); err != nil {
		t.Fatal(err)
	}
	if lo.Error != wire.ErrMetadataUnavailable {
		t.Fatalf("isolated broker's list_offsets of the new topic: %s %s, want METADATA_UNAVAILABLE", lo.Error, lo.Message)
	}

	// Healed, the old leader learns the new term and follows: it names
	// the new leader and applies what was committed without it.
	c.HealAll()
	// Asked at once, it confirms with the new leader before answering: the
	// topic, never "does not exist".
	c.WaitFor("the old leader's metadata of the new topic", func() error {
		var md wire.MetadataResponse
		if err := d.call(old, wire.APIMetadata, &wire.MetadataRequest{Topics: []string{"during-partition"}}, &md); err != nil {
			return err
		}
		if len(md.Topics) != 1 {
			return fmt.Errorf("%d topics in the answer", len(md.Topics))
		}
		switch md.Topics[0].Error {
		case wire.ErrNone:
			return nil
		case wire.ErrMetadataUnavailable:
			return fmt.Errorf("%s", md.Topics[0].Message)
		}
		t.Fatalf("old leader's metadata of the new topic: %s %s", md.Topics[0].Error, md.Topics[0].Message)
		return nil
	})
	c.WaitFor("the old leader following the new one", func() error {
		info, err := d.info(old)
		if err != nil {
			return err
		}
		if info.MetaLeader != c.Brokers[leader].B.ID() || info.MetaTerm < term {
			return fmt.Errorf("old leader names %q at term %d", info.MetaLeader, info.MetaTerm)
		}
		if info.MetaApplied < committed {
			return fmt.Errorf("old leader applied %d, the majority committed %d", info.MetaApplied, committed)
		}
		return nil
	})
	c.WaitReady()
}

// faultStats sums the datagrams broker from sent to the brokers of to, and
// how many of them the network dropped.
func faultStats(c *nodetest.Cluster, from int, to []int) (sent, dropped uint64) {
	for _, j := range to {
		s, d, _ := c.FaultNet().Stats(c.Brokers[from].Addr, c.Brokers[j].Addr)
		sent += s
		dropped += d
	}
	return sent, dropped
}
