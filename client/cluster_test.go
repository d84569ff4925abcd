package client_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rafka/rafka/client"
	"github.com/rafka/rafka/wire"
)

// Tests of the client in a cluster: leader hints, offline partitions, zones
// and the cluster view.

// metadataCalls is the metadata requests both brokers served.
func metadataCalls(fbs ...*fakeBroker) int32 {
	var n int32
	for _, fb := range fbs {
		n += fb.metadataCalls.Load()
	}
	return n
}

// A NOT_LEADER answer that names the leader sends the retry there at once,
// without asking for metadata again.
func TestProduceFollowsLeaderHint(t *testing.T) {
	b := startFakeBroker(t, &fakeBroker{topic: "moved", parts: 1})
	a := startFakeBroker(t, &fakeBroker{topic: "moved", parts: 1, zone: "zone-a",
		produceErr: wire.ErrNotLeader, produceHintID: "b", produceHintAddr: b.addr})
	ctx := testCtx(t)
	c, err := client.New(ctx, client.WithBrokers(a.addr), client.WithInsecureSkipVerify())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if bs := c.Brokers(); len(bs) != 1 || bs[0] != (client.Broker{ID: "fake", Addr: a.addr, Zone: "zone-a"}) {
		t.Fatalf("Brokers = %+v, want the fake broker with its zone", bs)
	}
	p, err := c.NewProducer(client.WithRetries(3), client.WithRetryBackoff(time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	before := metadataCalls(a, b)
	if err := p.ProduceSync(ctx, &client.Record{Topic: "moved", Partition: 0, Value: []byte("x")}); err != nil {
		t.Fatalf("produce: %v", err)
	}
	if a.produceCalls.Load() != 1 || b.produceCalls.Load() != 1 {
		t.Fatalf("produce requests: %d to the old leader, %d to the new one; want 1 and 1", a.produceCalls.Load(), b.produceCalls.Load())
	}
	// New's bootstrap cached the topic; the hint replaced the refresh.
	if got := metadataCalls(a, b) - before; got != 0 {
		t.Fatalf("%d metadata requests, want 0", got)
	}
	off, err := c.ListOffset(ctx, "moved", 0, wire.OffsetLatest)
	if err != nil || off != 42 {
		t.Fatalf("ListOffset via the hint = %d, %v", off, err)
	}
	if got := metadataCalls(a, b) - before; got != 0 {
		t.Fatalf("%d metadata requests after ListOffset, want 0", got)
	}
}

func TestConsumerFollowsLeaderHint(t *testing.T) {
	batch := buildBatch(t, 0, "a", "b")
	b := startFakeBroker(t, &fakeBroker{topic: "moved", parts: 1,
		subscribe: func(_ int32, off int64) (wire.SubscribePartitionResult, [][]byte) {
			return wire.SubscribePartitionResult{Offset: off}, [][]byte{batch}
		}})
	a := startFakeBroker(t, &fakeBroker{topic: "moved", parts: 1,
		subscribe: func(int32, int64) (wire.SubscribePartitionResult, [][]byte) {
			return wire.SubscribePartitionResult{Error: wire.ErrNotLeader, LeaderID: "b", LeaderAddr: b.addr}, nil
		}})
	ctx := testCtx(t)
	c, err := client.New(ctx, client.WithBrokers(a.addr), client.WithInsecureSkipVerify())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cs, err := c.NewConsumer(client.WithResubscribeBackoff(time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	before := metadataCalls(a, b)
	if err := cs.Assign(ctx, client.Assignment{Topic: "moved", Partition: 0, Start: client.AtOffset(0)}); err != nil {
		t.Fatal(err)
	}
	recs, err := cs.Poll(ctx)
	if err != nil || fmt.Sprint(values(recs)) != "[a b]" {
		t.Fatalf("Poll = %q, %v", values(recs), err)
	}
	if got := metadataCalls(a, b) - before; got != 0 {
		t.Fatalf("%d metadata requests, want 0 (the hint replaces the refresh)", got)
	}
}

// A partition the metadata reports offline (its broker fenced) fails
// produce at once, without a request, and a consumer reports it; both pick
// it up again once the metadata says it is back.
func TestOfflinePartitionComesBack(t *testing.T) {
	batch := buildBatch(t, 0, "a")
	fb := &fakeBroker{topic: "fenced", parts: 1,
		subscribe: func(_ int32, off int64) (wire.SubscribePartitionResult, [][]byte) {
			return wire.SubscribePartitionResult{Offset: off}, [][]byte{batch}
		}}
	fb.offline.Store(true)
	startFakeBroker(t, fb)
	ctx := testCtx(t)
	c := fb.client(t, ctx)
	topics, err := c.ListTopics(ctx)
	if err != nil || len(topics) != 1 || !topics[0].Partitions[0].Offline {
		t.Fatalf("ListTopics = %+v, %v; want partition 0 offline", topics, err)
	}
	// Retries would take about an hour: only an immediate failure passes.
	p, err := c.NewProducer(client.WithRetries(100), client.WithRetryBackoff(time.Millisecond, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	rec := func() *client.Record { return &client.Record{Topic: "fenced", Key: []byte("k"), Value: []byte("x")} }
	err = p.ProduceSync(ctx, rec())
	if !errors.Is(err, client.ErrPartitionOffline) || fb.produceCalls.Load() != 0 {
		t.Fatalf("produce to an offline partition = %v after %d requests; want ErrPartitionOffline at once", err, fb.produceCalls.Load())
	}
	cs, err := c.NewConsumer(client.WithResubscribeBackoff(time.Millisecond, 5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	err = cs.Assign(ctx, client.Assignment{Topic: "fenced", Partition: 0, Start: client.AtOffset(0)})
	if !errors.Is(err, client.ErrPartitionOffline) {
		t.Fatalf("Assign = %v, want ErrPartitionOffline", err)
	}

	fb.offline.Store(false) // the broker came back
	// The consumer resumes on its own: the partition stayed assigned.
	recs, err := cs.Poll(ctx)
	if err != nil || fmt.Sprint(values(recs)) != "[a]" {
		t.Fatalf("Poll after the partition came back = %q, %v", values(recs), err)
	}
	// The producer looks again once its cached metadata is older than the
	// backoff base (1ms); a few attempts are allowed for that to pass.
	for i := 0; ; i++ {
		err = p.ProduceSync(ctx, rec())
		if err == nil {
			break
		}
		if !errors.Is(err, client.ErrPartitionOffline) || i == 100 {
			t.Fatalf("produce after the partition came back: %v (attempt %d)", err, i)
		}
	}
	if fb.produceCalls.Load() != 1 {
		t.Fatalf("%d produce requests, want 1", fb.produceCalls.Load())
	}
}

func TestClusterInfo(t *testing.T) {
	fb := startFakeBroker(t, &fakeBroker{topic: "t", parts: 1, clusterInfo: wire.ClusterInfoResponse{
		ClusterID: "c-1", MetaLeader: "b1", MetaTerm: 4, MetaCommit: 120, MetaApplied: 119,
		Voters: []string{"b1", "b2"}, Learners: []string{"b3"},
		Brokers: []wire.ClusterBroker{
			{ID: "b1", Addr: "127.0.0.1:1", Zone: "z1", State: wire.BrokerStateAlive, LeaseAgeMs: 1500, Epoch: 2,
				Leads: 3, Hosts: 7, Voter: true, Applied: 119},
			{ID: "b3", Addr: "127.0.0.1:3", State: wire.BrokerStateFenced, LeaseAgeMs: -1, Epoch: 1, Applied: 80},
		},
	}})
	ctx := testCtx(t)
	c := fb.client(t, ctx)
	ci, err := c.ClusterInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b1, b3 := ci.Brokers[0], ci.Brokers[1]
	switch {
	case ci.ClusterID != "c-1" || ci.MetaLeader != "b1" || ci.MetaTerm != 4 || ci.MetaCommit != 120 || ci.MetaApplied != 119:
		t.Fatalf("header %+v", ci)
	case fmt.Sprint(ci.Voters, ci.Learners) != "[b1 b2] [b3]":
		t.Fatalf("voters %v learners %v", ci.Voters, ci.Learners)
	case b1.LeaseAge != 1500*time.Millisecond || !b1.LeaseAgeKnown() || !b1.Voter || b1.Leads != 3 || b1.Hosts != 7 || b1.Zone != "z1":
		t.Fatalf("b1 %+v", b1)
	case b3.LeaseAgeKnown() || b3.State != "fenced" || b3.Voter || b3.Applied != 80:
		t.Fatalf("b3 %+v", b3)
	}

	denied := startFakeBroker(t, &fakeBroker{topic: "t", parts: 1,
		clusterInfo: wire.ClusterInfoResponse{Error: wire.ErrNotAuthorized, Message: "no"}})
	c2, err := client.New(ctx, client.WithBrokers(denied.addr), client.WithInsecureSkipVerify())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.ClusterInfo(ctx); !errors.Is(err, client.ErrNotAuthorized) {
		t.Fatalf("ClusterInfo with an error answer = %v", err)
	}
}
