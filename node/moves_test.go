package node_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rafka/rafka/client"
	"github.com/rafka/rafka/node"
	"github.com/rafka/rafka/node/nodetest"
	"github.com/rafka/rafka/routing/placement"
)

// placed returns where placement puts each partition of topic among the
// brokers ids, rf replicas each, as sets (sorted).
func placed(t *testing.T, topic string, partitions int32, rf int, ids ...string) [][]string {
	t.Helper()
	var l []placement.Broker
	for _, id := range ids {
		l = append(l, placement.Broker{ID: id})
	}
	set, err := placement.NewSet(l)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]string, partitions)
	for p := range partitions {
		out[p] = set.Replicas(topic, p, rf, nil)
		slices.Sort(out[p])
	}
	return out
}

// waitPlacement waits until every running broker's metadata has topic's
// replicas where want says, with no move in progress, and every running
// broker hosts exactly the partitions placed on it.
func waitPlacement(t *testing.T, c *nodetest.Cluster, topic string, want [][]string) {
	t.Helper()
	c.WaitFor("replicas of "+topic+" where placement wants them", func() error {
		for _, br := range c.Running() {
			reps, moving := node.Replicas(br.B, topic)
			if moving > 0 {
				return fmt.Errorf("broker %d: %d moves in progress", br.Index, moving)
			}
			for p, r := range reps {
				got := slices.Sorted(slices.Values(r))
				if !slices.Equal(got, want[p]) {
					return fmt.Errorf("broker %d: partition %d on %v, want %v", br.Index, p, got, want[p])
				}
			}
		}
		for _, br := range c.Running() {
			for p := range want {
				here := slices.Contains(want[p], br.B.ID())
				if node.HostsPartition(br.B, topic, int32(p)) != here {
					return fmt.Errorf("broker %d hosts %s/%d: %v, placed there: %v", br.Index, topic, p, !here, here)
				}
				if here {
					if st, ok := node.PartitionStatus(br.B, topic, int32(p)); !ok || len(st.Voters) != len(want[p]) || len(st.Learners) != 0 {
						return fmt.Errorf("broker %d: %s/%d raft voters %v learners %v", br.Index, topic, p, st.Voters, st.Learners)
					}
				}
			}
		}
		return nil
	})
}

// TestMoveToJoiningBroker: a fourth broker joins a cluster of three with an
// RF 3 topic holding data; the partitions placement now puts on it move
// there by themselves, one at a time, the metadata records the new
// replica sets, the old copies are deleted, and every acknowledged record
// is read back from the new replica sets.
func TestMoveToJoiningBroker(t *testing.T) {
	c := nodetest.NewCluster(t, 3)
	cl := c.Client()
	const parts = 4
	mustCreate(t, cl, "mv", parts, 3)
	acked := make([]map[string]int64, parts)
	for p := range int32(parts) {
		acked[p] = produceAll(t, cl, "mv", p, 0, 300)
	}
	want := placed(t, "mv", parts, 3, "b0", "b1", "b2", "b3")
	moved := 0
	for p := range want {
		if slices.Contains(want[p], "b3") {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("placement puts nothing on b3: pick another topic name")
	}
	c.AddBroker()
	start := time.Now()
	waitPlacement(t, c, "mv", want)
	took := time.Since(start)

	var done, sent uint64
	for _, br := range c.Running() {
		_, _, d, s := node.MoveStats(br.B)
		done += d
		sent += s
	}
	if done != uint64(moved) || sent == 0 {
		t.Fatalf("%d moves counted (want %d), %d bytes sent to learners", done, moved, sent)
	}
	// The brokers a partition left deleted their copy.
	for _, br := range c.Running() {
		for p := range want {
			dir := filepath.Join(br.Dir, "topics", "mv", strconv.Itoa(p))
			_, err := os.Stat(dir)
			if here := slices.Contains(want[p], br.B.ID()); here != (err == nil) {
				t.Fatalf("broker %d: %s exists %v, placed there %v", br.Index, dir, err == nil, here)
			}
		}
	}
	// Every acknowledged record is there, read through the new leaders,
	// and the replicas agree byte for byte.
	for p := range int32(parts) {
		checkAcked(t, acked[p], readOffsets(t, c.Client(), "mv", p, maxOffset(acked[p])))
		waitReplicasIdenticalOn(t, c, "mv", p, want[p])
	}
	t.Logf("%d partitions moved in %v, %d bytes sent to learners", moved, took.Round(100*time.Millisecond), sent)
}

// waitReplicasIdenticalOn waits until the replicas of a partition on the
// brokers ids hold the same non-empty bytes below their high watermark.
func waitReplicasIdenticalOn(t *testing.T, c *nodetest.Cluster, topic string, p int32, ids []string) {
	t.Helper()
	c.WaitFor(fmt.Sprintf("replicas of %s/%d identical", topic, p), func() error {
		var ref []byte
		for _, br := range c.Running() {
			if !slices.Contains(ids, br.B.ID()) {
				continue
			}
			b, err := node.CommittedLog(br.B, topic, p)
			if err != nil {
				return err
			}
			if len(b) == 0 {
				return fmt.Errorf("broker %d: empty log", br.Index)
			}
			if ref == nil {
				ref = b
			} else if !slices.Equal(ref, b) {
				return fmt.Errorf("broker %d's log differs (%d vs %d bytes)", br.Index, len(b), len(ref))
			}
		}
		return nil
	})
}

// shortDeadAfter makes fenced brokers leave placement after 2 s.
func shortDeadAfter(_ int, cfg *node.Config) { cfg.Cluster.DeadAfter = 2 * time.Second }

// TestMoveOffDeadBroker: a broker of four dies; once it has been dead for
// dead-after, the partitions it held get a replica on the remaining
// brokers and are fully replicated again, with every acknowledged record.
func TestMoveOffDeadBroker(t *testing.T) {
	c := nodetest.NewCluster(t, 4, shortDeadAfter)
	cl := c.Client()
	const parts = 3
	mustCreate(t, cl, "dead", parts, 3)
	acked := make([]map[string]int64, parts)
	for p := range int32(parts) {
		acked[p] = produceAll(t, cl, "dead", p, 0, 200)
	}
	// Kill a broker that holds a replica (not broker 0, whose address the
	// harness's clients bootstrap from first).
	reps, _ := node.Replicas(c.Brokers[0].B, "dead")
	victim := -1
	for i := 1; i < 4 && victim < 0; i++ {
		for _, r := range reps {
			if slices.Contains(r, "b"+strconv.Itoa(i)) {
				victim = i
				break
			}
		}
	}
	c.Kill(victim)
	killed := time.Now()
	var alive []string
	for _, br := range c.Running() {
		alive = append(alive, br.B.ID())
	}
	cl2 := c.Client()
	for p := range int32(parts) {
		for k, v := range produceAll(t, cl2, "dead", p, 200, 100) {
			acked[p][k] = v
		}
	}
	waitPlacement(t, c, "dead", placed(t, "dead", parts, 3, alive...))
	c.WaitFor("full replication", func() error {
		for _, br := range c.Running() {
			if _, under := node.ReplicationCounts(br.B); under > 0 {
				return fmt.Errorf("broker %d: %d partitions under-replicated", br.Index, under)
			}
		}
		return nil
	})
	t.Logf("fully replicated again %v after the kill (dead-after 2s)", time.Since(killed).Round(100*time.Millisecond))
	for p := range int32(parts) {
		checkAcked(t, acked[p], readOffsets(t, c.Client(), "dead", p, maxOffset(acked[p])))
		waitReplicasIdenticalOn(t, c, "dead", p, placed(t, "dead", parts, 3, alive...)[p])
		t.Logf("partition %d: %d acknowledged, each stored once", p, len(acked[p]))
	}
}

// TestDrainUnderLoad: a full drain of a broker under a steady acks=all
// load moves every replica and leadership off it with no produce failing;
// undrain clears the mark and placement brings replicas back.
func TestDrainUnderLoad(t *testing.T) {
	c := nodetest.NewCluster(t, 4)
	ctx := ctxT(t)
	cl := c.Client()
	const parts = 3
	mustCreate(t, cl, "drn", parts, 3)
	load := startSteadyLoad(t, cl, "drn", parts)
	count := load.count
	c.WaitFor("writes before the drain", func() error {
		if n := count(); n < 300 {
			return fmt.Errorf("%d acknowledged", n)
		}
		return nil
	})
	// Drain a broker that holds replicas.
	reps, _ := node.Replicas(c.Brokers[0].B, "drn")
	target := ""
	for _, id := range []string{"b1", "b2", "b3"} {
		for _, r := range reps {
			if slices.Contains(r, id) {
				target = id
			}
		}
	}
	drainStart, ackedBefore := time.Now(), count()
	st, err := cl.DrainBroker(ctx, target, client.DrainWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	drainTook := time.Since(drainStart)
	t.Logf("drain of %s took %v; %d records acknowledged meanwhile", target, drainTook.Round(100*time.Millisecond), count()-ackedBefore)
	if st.Mode != "full" || st.Hosts != 0 || st.Leads > 0 {
		t.Fatalf("after the drain: %+v", st)
	}
	var rest []string
	for _, br := range c.Brokers {
		if br.B.ID() != target {
			rest = append(rest, br.B.ID())
		}
	}
	waitPlacement(t, c, "drn", placed(t, "drn", parts, 3, rest...))
	info := clusterInfo(t, c, cl)
	if len(info.Drains) != 1 || info.Drains[0].ID != target || info.Drains[0].Mode != "full" {
		t.Fatalf("cluster info drains: %+v", info.Drains)
	}
	before := count()
	c.WaitFor("writes after the drain", func() error {
		if n := count(); n < before+300 {
			return fmt.Errorf("%d acknowledged", n)
		}
		return nil
	})
	n := load.finish(c, "during the drain")
	// Undrain: the mark goes, and placement over all four brokers returns.
	st, err = cl.DrainBroker(ctx, target, client.Undrain())
	if err != nil || st.Mode != "none" {
		t.Fatalf("undrain: %+v, %v", st, err)
	}
	waitPlacement(t, c, "drn", placed(t, "drn", parts, 3, "b0", "b1", "b2", "b3"))
	t.Logf("%d records acknowledged across the drain", n)
}

// TestLeadersOnlyDrain: a leaders-only drain leaves the broker's replicas
// where they are and makes it lead nothing.
func TestLeadersOnlyDrain(t *testing.T) {
	c := nodetest.NewCluster(t, 3)
	ctx := ctxT(t)
	cl := c.Client()
	mustCreate(t, cl, "lo", 3, 3)
	for p := range int32(3) {
		produceAll(t, cl, "lo", p, 0, 20)
	}
	st, err := cl.DrainBroker(ctx, "b1", client.DrainLeadersOnly(), client.DrainWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode != "leaders-only" || st.Leads != 0 || st.Hosts != 3 {
		t.Fatalf("after a leaders-only drain: %+v", st)
	}
	for p := range int32(3) {
		if node.LeadsPartition(c.Brokers[1].B, "lo", p) {
			t.Fatalf("b1 still leads lo/%d", p)
		}
	}
	if _, err := cl.DrainBroker(ctx, "b1", client.Undrain()); err != nil {
		t.Fatal(err)
	}
}

// TestLeadersOnlyDrainKeepsFullDrain: asking a fully drained broker for a
// leaders-only drain (what a stopping pod's preStop hook does) leaves the
// full drain in place, so its replicas stay off it.
func TestLeadersOnlyDrainKeepsFullDrain(t *testing.T) {
	c := nodetest.NewCluster(t, 3)
	ctx := ctxT(t)
	cl := c.Client()
	st, err := cl.DrainBroker(ctx, "b2")
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode != "full" {
		t.Fatalf("after a full drain: %+v", st)
	}
	st, err = cl.DrainBroker(ctx, "b2", client.DrainLeadersOnly())
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode != "full" {
		t.Fatalf("a leaders-only drain of a fully drained broker changed its mode: %+v", st)
	}
	if _, err := cl.DrainBroker(ctx, "b2", client.Undrain()); err != nil {
		t.Fatal(err)
	}
}

// TestLeadersOnlyDrainEndsAtRestart: a leaders-only drain (a pod's preStop
// hook) ends when its broker starts again, so a rolling restart does not
// leave every broker unable to lead; a full drain survives a restart.
func TestLeadersOnlyDrainEndsAtRestart(t *testing.T) {
	c := nodetest.NewCluster(t, 3)
	ctx := ctxT(t)
	cl := c.Client(client.WithBrokers(c.Brokers[0].Addr))
	mode := func(id string) string {
		info := clusterInfo(t, c, cl)
		for _, d := range info.Drains {
			if d.ID == id {
				return d.Mode
			}
		}
		return "none"
	}
	if _, err := cl.DrainBroker(ctx, "b1", client.DrainLeadersOnly()); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.DrainBroker(ctx, "b2"); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 2} {
		c.StopBroker(i)
		c.Restart(i)
	}
	c.WaitReady()
	c.WaitFor("b1's leaders-only drain ended by its restart", func() error {
		if m := mode("b1"); m != "none" {
			return fmt.Errorf("b1 drain %s", m)
		}
		return nil
	})
	if m := mode("b2"); m != "full" {
		t.Fatalf("b2's full drain after a restart: %s", m)
	}
	if _, err := cl.DrainBroker(ctx, "b2", client.Undrain()); err != nil {
		t.Fatal(err)
	}
}

// TestMoveSurvivesRestarts: the target of a move, then the leader driving
// one, restart while a throttled learner is catching up; the moves finish
// (or are cancelled and started again) and every record is there.
func TestMoveSurvivesRestarts(t *testing.T) {
	c := nodetest.NewCluster(t, 3, func(_ int, cfg *node.Config) { cfg.Cluster.MoveBytesPerSec = 256 << 10 })
	ctx := ctxT(t)
	cl := c.Client()
	const parts = 2
	mustCreate(t, cl, "rst", parts, 3)
	pr, err := cl.NewProducer(client.WithAcks(client.AcksAll), client.WithRetries(100))
	if err != nil {
		t.Fatal(err)
	}
	value := make([]byte, 1000)
	var mu sync.Mutex
	acked := map[string]bool{}
	// 1.2 MB per partition: more than one append message (1 MiB), so the
	// throttle holds the learner back for a few seconds.
	for i := range 2400 {
		v := fmt.Sprintf("r%d-%s", i, value)
		err := pr.Produce(ctx, &client.Record{Topic: "rst", Partition: int32(i % parts), Value: []byte(v)}, func(r *client.Record, err error) {
			if err == nil {
				mu.Lock()
				acked[string(r.Value)] = true
				mu.Unlock()
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := pr.Close(ctx); err != nil {
		t.Fatal(err)
	}
	want := placed(t, "rst", parts, 3, "b0", "b1", "b2", "b3")
	if !slices.Contains(want[0], "b3") && !slices.Contains(want[1], "b3") {
		t.Fatal("placement puts nothing on b3: pick another topic name")
	}
	c.AddBroker()
	// learnerLeader waits for a move whose learner is added, and returns
	// the index of the broker driving it; -1 once every move is done.
	learnerLeader := func() int {
		idx := -1
		c.WaitFor("a learner catching up, or every move done", func() error {
			for _, br := range c.Running() {
				if node.MoveLearners(br.B) > 0 {
					idx = br.Index
					return nil
				}
			}
			reps, moving := node.Replicas(c.Brokers[0].B, "rst")
			for p, r := range reps {
				if !slices.Equal(slices.Sorted(slices.Values(r)), want[p]) || moving > 0 {
					return fmt.Errorf("no learner yet")
				}
			}
			return nil
		})
		return idx
	}
	// throttled sums the appends the throttle dropped, over the brokers'
	// lives (a restart starts their counters again).
	var throttled uint64
	kill := func(i int) {
		throttled += node.MoveThrottled(c.Brokers[i].B)
		c.Kill(i)
		c.Restart(i)
	}
	if learnerLeader() < 0 {
		t.Fatal("no move began")
	}
	kill(3) // the target
	// If a move is still catching up, restart the leader driving it.
	if lead := learnerLeader(); lead >= 0 {
		kill(lead)
	}
	c.WaitReady()
	waitPlacement(t, c, "rst", want)
	// 1.2 MB per partition at 256 KiB/s: the throttle had to hold the
	// learners back.
	for _, br := range c.Running() {
		throttled += node.MoveThrottled(br.B)
		_, _, done, sent := node.MoveStats(br.B)
		t.Logf("broker %d: %d moves done, %d bytes sent to learners", br.Index, done, sent)
	}
	if throttled == 0 {
		t.Fatal("no append to a learner was throttled")
	}
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	seen := readAll(t, c.Client(), "rst", parts, n)
	for v := range acked {
		if !seen[v] {
			t.Fatalf("acknowledged %.10s... is missing", v)
		}
	}
	for p := range int32(parts) {
		waitReplicasIdenticalOn(t, c, "rst", p, want[p])
	}
}
