package node_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rafka/rafka/client"
	"github.com/rafka/rafka/node"
	"github.com/rafka/rafka/node/nodetest"
	"github.com/rafka/rafka/wire"
)

// TestChaos runs a seeded, randomized schedule of faults over a replicated
// cluster under a steady acks=all produce load, then heals everything and
// checks what the producers were told against what the replicas hold:
//
//   - every acknowledged record still above the log start is in its
//     partition at the offset its ack named, and no record is stored twice
//     (the producers are idempotent: a retry whose answer was lost is not
//     stored again);
//   - a producer's acknowledged records of one partition (so of one key)
//     are in the log in the order it produced them;
//   - every replica of a partition holds the same bytes up to the high
//     watermark, and after every episode no replica's committed log is
//     anything but a prefix of another's;
//   - a consumer reading every partition gets exactly the committed logs'
//     records;
//   - after each episode every partition acknowledges writes again within
//     nodetest.WaitTimeout.
//
// An episode applies one or two overlapping faults: kill a partition's
// leader, the metadata leader or any broker (restarted when lifted),
// crash-loop a broker, isolate a broker, cut a minority from the majority,
// lose datagrams one way between two brokers; it may add delays and
// duplication on some links. Brokers the faults take down or cut off
// together never hold a majority of any partition's replicas or of the
// metadata voters, so writes must keep succeeding once leaders moved.
// One topic's retention moves its log start under the faults.
//
// RAFKA_CHAOS_SEED replays a schedule, RAFKA_CHAOS_DURATION sets how long
// faults are drawn (default 20s), RAFKA_CHAOS_BROKERS the cluster size (3
// or 5, default 5). The seed is in every failure message and the schedule
// is logged with it.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("a fault schedule of several seconds")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("RAFKA_CHAOS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("RAFKA_CHAOS_SEED=%q: %v", s, err)
		}
		seed = v
	}
	dur := 20 * time.Second
	if s := os.Getenv("RAFKA_CHAOS_DURATION"); s != "" {
		v, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("RAFKA_CHAOS_DURATION=%q: %v", s, err)
		}
		dur = v
	}
	brokers := 5
	if s := os.Getenv("RAFKA_CHAOS_BROKERS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || (v != 3 && v != 5) {
			t.Fatalf("RAFKA_CHAOS_BROKERS=%q: 3 or 5", s)
		}
		brokers = v
	}
	t.Logf("chaos seed %d (RAFKA_CHAOS_SEED=%d to replay), %d brokers, faults for %v", seed, seed, brokers, dur)

	r := &chaosRun{
		t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 0x6368616f73)),
		partIx: map[string]int{}, killed: map[int]bool{},
		logs: &chaosLogs{counts: map[string]int{}, first: map[string]string{}, start: time.Now()},
	}
	defer func() {
		if t.Failed() {
			t.Logf("seed %d; schedule:\n%s", seed, r.schedule())
			r.logs.report(r)
		}
	}()
	r.setUp(brokers)
	r.startProducers(chaosProducers)
	defer r.stopProducers()

	r.awaitProgress("the first writes")
	for ep := 0; time.Since(r.start) < dur; ep++ {
		r.episode(ep)
	}
	r.logf("end of faults: heal, restart, check")
	r.restoreAll()
	r.awaitProgress("writes after the last heal")
	r.stopProducers()
	r.check()
}

// Produce load.
const (
	chaosProducers     = 4
	chaosKeysPerProd   = 8
	chaosRecordsPerSec = 200                   // per producer
	chaosProgressAcks  = 10                    // per partition, after each heal
	chaosTopics        = "chaos-a:3,chaos-b:2" // name:partitions, RF 3

	// chaosRetained is a topic of one partition whose records carry
	// chaosPadding bytes and whose log keeps about two segments: its log
	// start moves every few seconds, so a replica down for a while comes
	// back behind the leader's log start and is reset to a snapshot.
	chaosRetained = "chaos-r"
	chaosPadding  = 1 << 10
)

// chaosPart is one replicated partition of the run.
type chaosPart struct {
	topic    string
	id       int32
	replicas []int // broker indexes hosting it
}

func (p chaosPart) String() string { return fmt.Sprintf("%s/%d", p.topic, p.id) }

// chaosAck is one acknowledged record.
type chaosAck struct {
	prod int
	seq  int64
	key  string
	part int // index into chaosRun.parts
	off  int64
	at   time.Duration // since the start, when the ack arrived
}

type chaosRun struct {
	t      *testing.T
	seed   uint64
	rng    *rand.Rand // the schedule's; used by the test goroutine only
	c      *nodetest.Cluster
	start  time.Time
	parts  []chaosPart
	partIx map[string]int // "topic/id" -> index into parts
	ctl    *client.Client // for cluster info
	voters []int          // metadata voters, broker indexes
	killed map[int]bool   // brokers stopped by the current episode
	logs   *chaosLogs     // what the brokers logged

	// acked counts acknowledgements per partition, for progress.
	acked  []atomic.Int64
	stalls atomic.Int64 // long holds with a partition taking no writes
	// outOfRange counts live readers' resumptions refused OUT_OF_RANGE.
	outOfRange atomic.Int64

	// mu guards events, acks, produced, failed, failedErrs, live and
	// liveErrs.
	mu         sync.Mutex
	events     []string
	acks       []chaosAck
	produced   int64              // records queued by the producers
	failed     int64              // records whose delivery failed for good
	failedErrs []string           // the first few of their errors
	live       []map[int64]string // per partition: offset -> value read during the run
	liveErrs   []string           // what the live readers saw that they should not

	cancel context.CancelFunc
	wg     sync.WaitGroup
	stop   sync.Once
}

// setUp starts the cluster and creates the topics.
func (r *chaosRun) setUp(brokers int) {
	t := r.t
	// A short rebalance interval moves leaders back to their preferred
	// replicas while faults move them away: transfers race elections.
	rebalance := []time.Duration{time.Second, 3 * time.Second, 30 * time.Second}[r.rng.IntN(3)]
	r.c = nodetest.NewCluster(t, brokers, nodetest.WithFaultNet(), func(_ int, cfg *node.Config) {
		cfg.Cluster.LeaderRebalanceInterval = rebalance
		cfg.RetentionInterval = 200 * time.Millisecond
		cfg.Logger = slog.New(r.logs)
	})
	r.start = time.Now()
	r.logf("leader rebalance every %v", rebalance)
	ctx := ctxT(t)
	cl := r.c.Client(client.WithControlTimeout(5*time.Second), client.WithDialTimeout(5*time.Second))
	r.ctl = cl
	for _, spec := range strings.Split(chaosTopics+","+chaosRetained+":1", ",") {
		name, n, _ := strings.Cut(spec, ":")
		np, _ := strconv.Atoi(n)
		var cfg map[string]string
		if name == chaosRetained {
			cfg = map[string]string{node.ConfigSegmentBytes: strconv.Itoa(1 << 20), node.ConfigRetentionBytes: strconv.Itoa(2 << 20)}
		}
		if err := cl.CreateTopic(ctx, name, int32(np), cfg, client.WithReplicationFactor(3)); err != nil {
			r.fatalf("create %s: %v", name, err)
		}
		for p := range np {
			r.partIx[name+"/"+strconv.Itoa(p)] = len(r.parts)
			r.parts = append(r.parts, chaosPart{topic: name, id: int32(p)})
		}
	}
	r.acked = make([]atomic.Int64, len(r.parts))
	// Placement: a broker hosts a partition once it opened its replica.
	r.wait("every partition placed on 3 brokers", func() error {
		for i := range r.parts {
			p := &r.parts[i]
			p.replicas = p.replicas[:0]
			for _, br := range r.c.Running() {
				if _, err := node.CommittedLog(br.B, p.topic, p.id); err == nil {
					p.replicas = append(p.replicas, br.Index)
				}
			}
			if len(p.replicas) != 3 {
				return fmt.Errorf("%v on brokers %v", p, p.replicas)
			}
			if leaderIndex(r.c, p.topic, p.id) < 0 {
				return fmt.Errorf("%v has no leader", p)
			}
		}
		return nil
	})
	r.wait("3 metadata voters", r.refreshVoters)
	for _, p := range r.parts {
		r.logf("%v on brokers %v", p, p.replicas)
	}
	r.logf("metadata voters %v", r.voters)
}

// refreshReplicas reads each partition's replicas from a running broker's
// metadata: they change when a replica moves (placement ranks a broker
// that registered after the topic was created first for some
// partitions). With settled set it fails while a move is in progress, so
// that the lists it leaves are final.
func (r *chaosRun) refreshReplicas(settled bool) error {
	running := r.c.Running()
	if len(running) == 0 {
		return fmt.Errorf("no broker running")
	}
	for i := range r.parts {
		p := &r.parts[i]
		reps, moves := node.Replicas(running[0].B, p.topic)
		if settled && moves > 0 {
			return fmt.Errorf("%s: %d replica moves in progress", p.topic, moves)
		}
		if int(p.id) >= len(reps) {
			return fmt.Errorf("%v: not in broker %d's metadata", p, running[0].Index)
		}
		var idx []int
		for _, id := range reps[p.id] {
			k, err := strconv.Atoi(strings.TrimPrefix(id, "b"))
			if err != nil || k < 0 || k >= len(r.c.Brokers) {
				return fmt.Errorf("%v: replica %q is not a broker of the test", p, id)
			}
			idx = append(idx, k)
		}
		if !slices.Equal(idx, p.replicas) {
			r.logf("%v now on brokers %v", p, idx)
			p.replicas = idx
		}
	}
	return nil
}

// refreshVoters reads the metadata voters: they move when a voter's broker
// is fenced, so each episode takes them again.
func (r *chaosRun) refreshVoters() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := r.ctl.ClusterInfo(ctx)
	if err != nil {
		return err
	}
	var voters []int
	for _, v := range info.Voters {
		for _, br := range r.c.Brokers {
			if br.B != nil && br.B.ID() == v {
				voters = append(voters, br.Index)
			}
		}
	}
	if len(voters) != 3 {
		return fmt.Errorf("voters %v", info.Voters)
	}
	slices.Sort(voters)
	if !slices.Equal(voters, r.voters) {
		if r.voters != nil {
			r.logf("metadata voters now %v", voters)
		}
		r.voters = voters
	}
	return nil
}

// logf records an event of the schedule, with its time since the start.
func (r *chaosRun) logf(format string, args ...any) {
	line := fmt.Sprintf("%8.3fs ", time.Since(r.start).Seconds()) + fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.events = append(r.events, line)
	r.mu.Unlock()
	r.t.Log(line)
}

func (r *chaosRun) schedule() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.events, "\n")
}

// fatalf fails the test with the seed in the message (the deferred log in
// TestChaos adds the schedule).
func (r *chaosRun) fatalf(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("seed %d: %s", r.seed, fmt.Sprintf(format, args...))
}

func (r *chaosRun) errorf(format string, args ...any) {
	r.t.Helper()
	r.t.Errorf("seed %d: %s", r.seed, fmt.Sprintf(format, args...))
}

// wait polls cond until it returns nil, failing after nodetest.WaitTimeout.
func (r *chaosRun) wait(what string, cond func() error) {
	r.t.Helper()
	if err := pollUntil(nodetest.WaitTimeout, cond); err != nil {
		r.fatalf("timed out waiting for %s: %v", what, err)
	}
}

func pollUntil(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond) // polling an observable condition
	}
}

// leaderIndex is the running broker that leads a partition, or -1.
func leaderIndex(c *nodetest.Cluster, topic string, id int32) int {
	for _, br := range c.Running() {
		if node.LeadsPartition(br.B, topic, id) {
			return br.Index
		}
	}
	return -1
}

// startProducers starts n producers, each on a client of its own, each
// producing keyed records of its own keys to every topic at a steady rate.
// A record's key is "p<producer>-k<n>", its value "p<producer>-s<seq>".
func (r *chaosRun) startProducers(n int) {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	topics := map[string]bool{}
	var names []string
	for _, p := range r.parts {
		if !topics[p.topic] {
			topics[p.topic] = true
			names = append(names, p.topic)
		}
	}
	for i := range n {
		cl := r.c.Client(client.WithControlTimeout(5*time.Second), client.WithDialTimeout(5*time.Second))
		pr, err := cl.NewProducer(client.WithAcks(client.AcksAll), client.WithRetries(1000),
			client.WithRetryBackoff(50*time.Millisecond, time.Second),
			client.WithRequestTimeout(2*time.Second), client.WithMaxBatchBytes(16<<10), client.WithBufferBytes(256<<10))
		if err != nil {
			r.fatalf("producer %d: %v", i, err)
		}
		rng := rand.New(rand.NewPCG(r.seed, uint64(i)))
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.produce(ctx, i, pr, names, rng)
		}()
	}
	// One reader per partition follows the log while the faults go on.
	cl := r.c.Client(client.WithControlTimeout(5*time.Second), client.WithDialTimeout(5*time.Second))
	r.live = make([]map[int64]string, len(r.parts))
	for pi := range r.parts {
		r.live[pi] = map[int64]string{}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.readLive(ctx, cl, pi)
		}()
	}
}

// readLive reads partition pi from its start for as long as ctx lasts,
// recording each record's offset and value: a consumer reads below the
// high watermark only, so whatever it got must be in the final log. A
// consumer that fails is replaced by one resuming after the last record.
func (r *chaosRun) readLive(ctx context.Context, cl *client.Client, pi int) {
	p := r.parts[pi]
	start := client.Earliest()
	next := int64(-1)
	for ctx.Err() == nil {
		cs, err := cl.NewConsumer(client.WithResubscribeRetries(1000))
		if err != nil {
			r.mu.Lock()
			r.liveErrs = append(r.liveErrs, fmt.Sprintf("%v: consumer: %v", p, err))
			r.mu.Unlock()
			return
		}
		err = cs.Assign(ctx, client.Assignment{Topic: p.topic, Partition: p.id, Start: start})
		if errors.Is(err, client.ErrOffsetOutOfRange) {
			// Retention moved the log start past it, or a new leader's
			// high watermark is still behind what the old one served
			// (it learns the commit with its first entry): retry, from
			// the log start only in the first case.
			r.outOfRange.Add(1)
			if ls, lerr := cl.ListOffset(ctx, p.topic, p.id, wire.OffsetEarliest); lerr == nil && ls > next+1 {
				start = client.AtOffset(ls)
			}
		}
		for err == nil {
			var recs []*client.Record
			if recs, err = cs.Poll(ctx); err != nil {
				break
			}
			r.mu.Lock()
			for _, rec := range recs {
				v, _, _ := bytes.Cut(rec.Value, []byte{'|'})
				if old, ok := r.live[pi][rec.Offset]; ok && old != string(v) {
					r.liveErrs = append(r.liveErrs, fmt.Sprintf("%v offset %d: read %q, earlier %q", p, rec.Offset, v, old))
				}
				if rec.Offset <= next {
					r.liveErrs = append(r.liveErrs, fmt.Sprintf("%v: offset %d read after %d", p, rec.Offset, next))
				}
				r.live[pi][rec.Offset] = string(v)
				next = rec.Offset
			}
			r.mu.Unlock()
			if len(recs) > 0 {
				start = client.AtOffset(next + 1)
			}
		}
		cs.Close()
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond): // backoff before the next consumer
		}
	}
}

func (r *chaosRun) produce(ctx context.Context, prod int, pr *client.Producer, topics []string, rng *rand.Rand) {
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), nodetest.WaitTimeout)
		defer cancel()
		if err := pr.Close(cctx); err != nil {
			r.logf("producer %d: close: %v", prod, err)
		}
	}()
	padding := bytes.Repeat([]byte{'.'}, chaosPadding)
	tick := time.NewTicker(time.Second / chaosRecordsPerSec)
	defer tick.Stop()
	for seq := int64(0); ; seq++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C: // the load's rate, not a synchronisation
		}
		key := fmt.Sprintf("p%d-k%d", prod, rng.IntN(chaosKeysPerProd))
		rec := &client.Record{
			Topic: topics[rng.IntN(len(topics))], Partition: client.AnyPartition,
			Key: []byte(key), Value: fmt.Appendf(nil, "p%d-s%d", prod, seq),
		}
		if rec.Topic == chaosRetained {
			rec.Value = append(append(rec.Value, '|'), padding...)
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := pr.Produce(pctx, rec, func(rec *client.Record, err error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			if err != nil {
				if r.failed++; r.failed <= 5 {
					r.failedErrs = append(r.failedErrs, fmt.Sprintf("%.3fs %s/%d: %v", time.Since(r.start).Seconds(), rec.Topic, rec.Partition, err))
				}
				return
			}
			pi, ok := r.partIx[rec.Topic+"/"+strconv.Itoa(int(rec.Partition))]
			if !ok {
				r.failed++
				return
			}
			r.acks = append(r.acks, chaosAck{prod: prod, seq: seq, key: key, part: pi, off: rec.Offset, at: time.Since(r.start)})
			r.acked[pi].Add(1)
		})
		cancel()
		if err == nil {
			r.mu.Lock()
			r.produced++
			r.mu.Unlock()
		}
		// A Produce that could not queue (full buffer while a partition
		// has no leader) drops this record: the load goes on.
	}
}

// stopProducers stops the load and waits until each producer has closed
// (delivering or failing what it held); idempotent.
func (r *chaosRun) stopProducers() {
	r.stop.Do(func() {
		if r.cancel != nil {
			r.cancel()
		}
		r.wg.Wait()
	})
}

// awaitProgress waits until every partition acknowledged chaosProgressAcks
// more records than it had when called.
func (r *chaosRun) awaitProgress(what string) {
	r.t.Helper()
	from := make([]int64, len(r.parts))
	for i := range r.parts {
		from[i] = r.acked[i].Load()
	}
	t0 := time.Now()
	err := pollUntil(nodetest.WaitTimeout, func() error {
		var slow []string
		for i, p := range r.parts {
			if n := r.acked[i].Load() - from[i]; n < chaosProgressAcks {
				slow = append(slow, fmt.Sprintf("%v: %d acks (leader %d)", p, n, leaderIndex(r.c, p.topic, p.id)))
			}
		}
		if len(slow) > 0 {
			return errors.New(strings.Join(slow, ", "))
		}
		return nil
	})
	if err != nil {
		r.logf("no progress for %s", what)
		r.fatalf("no progress for %v (%s): %v", nodetest.WaitTimeout, what, err)
	}
	r.logf("progress: %d acks on every partition %v after %s", chaosProgressAcks, time.Since(t0).Round(time.Millisecond), what)
}

// allowedDown reports whether the brokers of down may all be stopped or
// cut off at once: every partition and the metadata group keep a majority
// outside it.
func (r *chaosRun) allowedDown(down []int) bool {
	lost := func(members []int) bool {
		n := 0
		for _, m := range members {
			if slices.Contains(down, m) {
				n++
			}
		}
		return 2*n >= len(members)
	}
	if lost(r.voters) {
		return false
	}
	for _, p := range r.parts {
		if lost(p.replicas) {
			return false
		}
	}
	return true
}

// pickDown draws up to max brokers that may be down together, including
// must when it is >= 0.
func (r *chaosRun) pickDown(max, must int) []int {
	n := len(r.c.Brokers)
	for range 50 {
		k := 1 + r.rng.IntN(max)
		set := []int{}
		if must >= 0 {
			set = append(set, must)
		}
		for _, i := range r.rng.Perm(n) {
			if len(set) >= k {
				break
			}
			if !slices.Contains(set, i) {
				set = append(set, i)
			}
		}
		if r.allowedDown(set) {
			slices.Sort(set)
			return set
		}
	}
	if must >= 0 {
		return []int{must}
	}
	return []int{r.rng.IntN(n)}
}

func (r *chaosRun) others(set []int) []int {
	var out []int
	for i := range r.c.Brokers {
		if !slices.Contains(set, i) {
			out = append(out, i)
		}
	}
	return out
}

// chaosFault is one fault applied: the brokers it stops or cuts off, and
// how to lift it on its own.
type chaosFault struct {
	desc string
	down []int
	lift func()
}

// episode applies one or two faults (often with delays and duplication on
// some links beside them), holds them, lifts them one by one in a random
// order, then restores everything and waits for progress.
func (r *chaosRun) episode(ep int) {
	r.wait("the metadata voters", r.refreshVoters)
	r.wait("the replicas", func() error { return r.refreshReplicas(false) })
	var faults []chaosFault
	var down []int
	for k := range 1 + r.rng.IntN(2) {
		f, ok := r.drawFault(down)
		if !ok || slices.ContainsFunc(faults, func(g chaosFault) bool { return g.desc == f.desc }) {
			continue
		}
		if k > 0 && r.rng.IntN(2) == 0 {
			r.hold(time.Duration(r.rng.IntN(1500)) * time.Millisecond)
		}
		r.logf("ep %d: %s", ep, f.desc)
		f = r.apply(f)
		faults = append(faults, f)
		down = append(down, f.down...)
		if !r.allowedDown(down) {
			panic(fmt.Sprintf("BUG: the schedule took down a majority: %v", down))
		}
	}
	if r.rng.IntN(3) == 0 {
		r.degradeLinks(ep)
	}
	hold := time.Duration(500+r.rng.IntN(3000)) * time.Millisecond
	if r.rng.IntN(5) == 0 {
		// Long enough for retention to move the retained topic's log
		// start past what a stopped or cut-off replica holds.
		hold = time.Duration(6000+r.rng.IntN(4000)) * time.Millisecond
	}
	r.logf("ep %d: hold %v", ep, hold)
	if hold < 6*time.Second {
		r.hold(hold)
	} else {
		// A majority of every group is up and connected: once leaders
		// moved (an election, a client's request timeout) writes go on
		// under the fault. Partitions that took none in the second half
		// of a long hold are reported, not failed: liveness under one
		// fault is not promised beyond "eventually".
		r.hold(hold / 2)
		from := make([]int64, len(r.parts))
		for i := range r.parts {
			from[i] = r.acked[i].Load()
		}
		r.hold(hold - hold/2)
		var stalled []string
		for i, p := range r.parts {
			if r.acked[i].Load() == from[i] {
				stalled = append(stalled, p.String())
			}
		}
		if len(stalled) > 0 {
			r.stalls.Add(1)
			r.logf("ep %d: no acks in the second half of the hold on %v", ep, stalled)
		}
	}
	for _, k := range r.rng.Perm(len(faults)) {
		r.logf("ep %d: lift %s", ep, faults[k].desc)
		faults[k].lift()
		r.hold(time.Duration(r.rng.IntN(1000)) * time.Millisecond)
	}
	r.logf("ep %d: heal all", ep)
	r.restoreAll()
	r.checkPrefixes(fmt.Sprintf("episode %d", ep))
	r.awaitProgress(fmt.Sprintf("episode %d", ep))
	r.hold(time.Duration(r.rng.IntN(1000)) * time.Millisecond)
}

// drawFault draws a fault whose brokers, with those of down, stay a
// minority of every group; ok is false when none was found.
func (r *chaosRun) drawFault(down []int) (f chaosFault, ok bool) {
	n := len(r.c.Brokers)
	for range 20 {
		switch k := r.rng.IntN(13); {
		case k < 2: // kill a partition's leader
			p := r.parts[r.rng.IntN(len(r.parts))]
			i := leaderIndex(r.c, p.topic, p.id)
			if i < 0 {
				i = p.replicas[r.rng.IntN(len(p.replicas))]
			}
			f = chaosFault{desc: fmt.Sprintf("kill broker %d (leader of %v)", i, p), down: []int{i}}
		case k < 3: // kill the metadata leader
			i := r.metaLeader()
			if i < 0 {
				continue
			}
			f = chaosFault{desc: fmt.Sprintf("kill broker %d (metadata leader)", i), down: []int{i}}
		case k < 4: // kill any broker
			i := r.rng.IntN(n)
			f = chaosFault{desc: fmt.Sprintf("kill broker %d", i), down: []int{i}}
		case k < 6: // isolate one broker, often a leader
			i := r.rng.IntN(n)
			if r.rng.IntN(2) == 0 {
				p := r.parts[r.rng.IntN(len(r.parts))]
				if l := leaderIndex(r.c, p.topic, p.id); l >= 0 {
					i = l
				}
			}
			f = chaosFault{desc: fmt.Sprintf("isolate broker %d", i), down: []int{i}}
		case k < 8: // cut a minority from the majority
			minority := r.pickDown((n-1)/2, -1)
			f = chaosFault{desc: fmt.Sprintf("partition %v | %v", minority, r.others(minority)), down: minority}
		case k < 12: // restart a broker a few times in quick succession
			i := r.rng.IntN(n)
			f = chaosFault{desc: fmt.Sprintf("crash-loop broker %d", i), down: []int{i}}
		default: // lose datagrams one way between two brokers
			from := r.rng.IntN(n)
			to := (from + 1 + r.rng.IntN(n-1)) % n
			p := []float64{0.3, 0.6, 1}[r.rng.IntN(3)]
			f = chaosFault{desc: fmt.Sprintf("lose %.0f%% of datagrams %d -> %d", p*100, from, to), down: []int{to}}
		}
		if (strings.HasPrefix(f.desc, "kill") || strings.HasPrefix(f.desc, "crash")) && r.killed[f.down[0]] {
			continue // already stopped; isolating a stopped broker is fine
		}
		if r.allowedDown(append(slices.Clone(down), f.down...)) {
			return f, true
		}
	}
	return chaosFault{}, false
}

// apply starts the fault f describes and sets how to lift it.
func (r *chaosRun) apply(f chaosFault) chaosFault {
	var verb string
	var a, b, i int
	var p float64
	switch {
	case strings.HasPrefix(f.desc, "kill"):
		i = f.down[0]
		r.kill(i)
		f.lift = func() { r.restart(i) }
	case strings.HasPrefix(f.desc, "crash-loop"):
		// Stopped and started again 2 or 3 times, each time up for less
		// than an election timeout or so; it stays stopped until lifted.
		i = f.down[0]
		for range 1 + r.rng.IntN(2) {
			r.kill(i)
			r.hold(time.Duration(100+r.rng.IntN(700)) * time.Millisecond)
			r.restart(i)
			r.hold(time.Duration(100+r.rng.IntN(1500)) * time.Millisecond)
		}
		r.kill(i)
		f.lift = func() { r.restart(i) }
	case strings.HasPrefix(f.desc, "isolate"):
		i = f.down[0]
		r.c.Isolate(i)
		f.lift = func() { r.healBetween([]int{i}, r.others([]int{i})) }
	case strings.HasPrefix(f.desc, "partition"):
		minority := f.down
		r.c.Partition(minority, r.others(minority))
		f.lift = func() { r.healBetween(minority, r.others(minority)) }
	default:
		if _, err := fmt.Sscanf(f.desc, "%s %f%% of datagrams %d -> %d", &verb, &p, &a, &b); err != nil {
			panic(fmt.Sprintf("BUG: fault %q: %v", f.desc, err))
		}
		r.c.SetLoss(a, b, p/100)
		f.lift = func() { r.c.SetLoss(a, b, 0) }
	}
	return f
}

// healBetween lifts every rule between the brokers of a and those of b.
func (r *chaosRun) healBetween(a, b []int) {
	for _, i := range a {
		for _, j := range b {
			r.c.Heal(i, j)
		}
	}
}

// metaLeader is the index of the metadata leader as broker 0's metadata (or
// the first running broker's) names it, or -1.
func (r *chaosRun) metaLeader() int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info, err := r.ctl.ClusterInfo(ctx)
	if err != nil {
		return -1
	}
	for _, br := range r.c.Running() {
		if br.B.ID() == info.MetaLeader {
			return br.Index
		}
	}
	return -1
}

// degradeLinks delays and duplicates datagrams on a few links; loss is not
// set here, so the brokers cut off stay a minority.
func (r *chaosRun) degradeLinks(ep int) {
	n := len(r.c.Brokers)
	for range 1 + r.rng.IntN(3) {
		from := r.rng.IntN(n)
		to := (from + 1 + r.rng.IntN(n-1)) % n
		a, b := r.c.Brokers[from].Addr, r.c.Brokers[to].Addr
		if r.rng.IntN(2) == 0 {
			d := time.Duration(1+r.rng.IntN(40)) * time.Millisecond
			j := time.Duration(r.rng.IntN(int(d/time.Millisecond)+1)) * time.Millisecond
			r.logf("ep %d:   delay %d -> %d by %v ± %v", ep, from, to, d, j)
			r.c.FaultNet().SetDelay(a, b, d, j)
		} else {
			p := []float64{0.1, 0.3, 0.5}[r.rng.IntN(3)]
			r.logf("ep %d:   duplicate %.0f%% of datagrams %d -> %d", ep, p*100, from, to)
			r.c.FaultNet().SetDuplicate(a, b, p)
		}
	}
}

// hold lets the schedule's time pass: the length of a fault or of a calm
// spell is what the schedule draws, nothing waits on it.
func (r *chaosRun) hold(d time.Duration) {
	time.Sleep(d)
}

func (r *chaosRun) kill(i int) {
	r.c.Kill(i)
	r.killed[i] = true
}

func (r *chaosRun) restart(i int) {
	if r.killed[i] {
		r.c.Restart(i)
		delete(r.killed, i)
	}
}

// restoreAll lifts every network fault and restarts the brokers killed,
// then waits until every broker is ready.
func (r *chaosRun) restoreAll() {
	r.c.HealAll()
	for _, i := range slices.Sorted(maps.Keys(r.killed)) {
		r.restart(i)
	}
	r.wait("every broker ready", func() error {
		for _, br := range r.c.Running() {
			if ok, why := br.B.Ready(); !ok {
				return fmt.Errorf("broker %d: %s", br.Index, why)
			}
		}
		return nil
	})
}

// check compares the replicas' logs and what they hold with what the
// producers were told.
func (r *chaosRun) check() {
	r.mu.Lock()
	acks := slices.Clone(r.acks)
	produced, failed, failedErrs := r.produced, r.failed, slices.Clone(r.failedErrs)
	r.mu.Unlock()
	r.logf("%d records queued, %d acknowledged, %d failed for good", produced, len(acks), failed)
	for _, e := range failedErrs {
		r.logf("delivery failed: %s", e)
	}
	if len(acks) == 0 {
		r.fatalf("nothing acknowledged")
	}

	logs := make([][]byte, len(r.parts))
	starts := make([]int64, len(r.parts)) // the offset logs[i] starts at
	for pi, p := range r.parts {
		// Each replica's committed log must be a prefix of the longest
		// at all times, and all equal once the followers caught up.
		err := pollUntil(nodetest.WaitTimeout, func() error {
			if err := r.refreshReplicas(true); err != nil {
				return err
			}
			p := r.parts[pi]
			all, long, start, err := r.committedLogs(p)
			if err != nil {
				return err
			}
			for k, b := range all {
				if len(b) != len(long) {
					return fmt.Errorf("broker %d holds %d committed bytes, another %d", p.replicas[k], len(b), len(long))
				}
			}
			logs[pi], starts[pi] = long, start
			return nil
		})
		if errors.Is(err, errDiverged) {
			r.fatalf("%v: replicas diverged: %v", p, err)
		}
		if err != nil {
			r.fatalf("%v: replicas not identical after %v: %v", p, nodetest.WaitTimeout, err)
		}
	}

	// Where each value is, per partition.
	type place struct {
		part int
		off  int64
	}
	stored := map[string][]place{}
	byOffset := make([]map[int64]string, len(r.parts))
	// The batch each stored record came in, to tell a record a broker
	// stored twice (one producer epoch and sequence) from one its producer
	// sent again under a new epoch.
	batchAt := map[place]wire.BatchHeader{}
	records := 0
	for pi, p := range r.parts {
		bi := wire.NewBatchIter(logs[pi], 0)
		var it wire.RecordIter
		var rec wire.Record
		next := int64(-1)
		byOffset[pi] = map[int64]string{}
		for {
			batch, h, ok := bi.Next()
			if !ok {
				break
			}
			if next >= 0 && h.BaseOffset != next {
				r.errorf("%v: batch at offset %d follows one ending at %d", p, h.BaseOffset, next)
			}
			next = h.NextOffset()
			if err := it.Reset(batch); err != nil {
				r.fatalf("%v: batch at %d: %v", p, h.BaseOffset, err)
			}
			for it.Next(&rec) {
				records++
				v, _, _ := bytes.Cut(rec.Value, []byte{'|'})
				stored[string(v)] = append(stored[string(v)], place{pi, rec.Offset})
				byOffset[pi][rec.Offset] = string(v)
				batchAt[place{pi, rec.Offset}] = h
			}
			if err := it.Err(); err != nil {
				r.fatalf("%v: batch at %d: %v", p, h.BaseOffset, err)
			}
		}
		if err := bi.Err(); err != nil {
			r.fatalf("%v: committed log: %v", p, err)
		}
	}

	// Every acknowledged record at its offset; other copies counted.
	dups, lost := 0, 0
	expired := 0
	for _, a := range acks {
		if a.off < starts[a.part] {
			expired++ // below the log start retention moved
			continue
		}
		v := fmt.Sprintf("p%d-s%d", a.prod, a.seq)
		at := stored[v]
		if !slices.Contains(at, place{a.part, a.off}) {
			lost++
			if lost <= 10 {
				r.errorf("acknowledged %s (key %s) at %v offset %d at %.3fs, stored at %v", v, a.key, r.parts[a.part], a.off, a.at.Seconds(), at)
			}
		}
		dups += len(at) - 1
	}
	if lost > 0 {
		r.errorf("%d of %d acknowledged records are not where their acks said", lost, len(acks))
	}
	// The producers are idempotent: no record is stored twice, however
	// often it was sent (acknowledged or not).
	stored2 := 0
	for v, at := range stored {
		var prod int
		var seq int64
		if _, err := fmt.Sscanf(v, "p%d-s%d", &prod, &seq); err != nil || prod >= chaosProducers {
			r.errorf("a record no producer wrote: %q at %v", v, at)
		}
		if len(at) > 1 {
			if stored2++; stored2 <= 10 {
				var copies []string
				for _, pl := range at {
					h := batchAt[pl]
					copies = append(copies, fmt.Sprintf("offset %d in the batch at %d (term %d, producer %d epoch %d sequence %d, %d records)",
						pl.off, h.BaseOffset, h.Term, h.ProducerID, h.ProducerEpoch, h.BaseSequence, h.RecordCount))
				}
				r.errorf("%s is stored %d times in %v: %s", v, len(at), r.parts[at[0].part], strings.Join(copies, "; "))
			}
		}
	}
	if stored2 > 0 {
		r.errorf("%d records stored more than once by idempotent producers", stored2)
	}

	// Per producer and partition (so per key), acknowledged records are
	// stored in produce order.
	type stream struct{ prod, part int }
	byStream := map[stream][]chaosAck{}
	for _, a := range acks {
		if a.off < starts[a.part] {
			continue
		}
		s := stream{a.prod, a.part}
		byStream[s] = append(byStream[s], a)
	}
	inversions := 0
	for s, as := range byStream {
		slices.SortFunc(as, func(a, b chaosAck) int { return int(a.seq - b.seq) })
		for k := 1; k < len(as); k++ {
			if as[k].off <= as[k-1].off {
				inversions++
				if inversions <= 10 {
					r.errorf("producer %d, %v: seq %d (key %s) acknowledged at offset %d, after seq %d (key %s) at %d",
						s.prod, r.parts[s.part], as[k].seq, as[k].key, as[k].off, as[k-1].seq, as[k-1].key, as[k-1].off)
				}
			}
		}
	}

	r.checkConsumed(byOffset, starts)
	r.checkLive(byOffset, starts)
	if n := r.stalls.Load(); n > 0 {
		r.logf("%d long holds had a partition take no writes in their second half (see above)", n)
	}
	r.logs.report(r)

	perPart := make([]int, len(r.parts))
	for _, a := range acks {
		perPart[a.part]++
	}
	r.logf("checked: %d records stored, %d acknowledged (per partition %v), %d below the log start, %d stored copies beyond the first, %d lost, %d out of order",
		records, len(acks), perPart, expired, dups, lost, inversions)
}

var errDiverged = errors.New("diverged")

// checkLive compares what the live readers got during the run with the
// final committed logs.
func (r *chaosRun) checkLive(byOffset []map[int64]string, starts []int64) {
	r.mu.Lock()
	live, liveErrs := r.live, r.liveErrs // the readers have stopped
	r.mu.Unlock()
	for k, e := range liveErrs {
		if k < 10 {
			r.errorf("live reader: %s", e)
		}
	}
	read, bad := 0, 0
	for pi, m := range live {
		for off, v := range m {
			if off < starts[pi] {
				continue
			}
			read++
			if byOffset[pi][off] != v {
				if bad++; bad <= 10 {
					r.errorf("%v offset %d: read %q during the run, the committed log holds %q", r.parts[pi], off, v, byOffset[pi][off])
				}
			}
		}
	}
	r.logf("live readers: %d records read during the run checked against the committed logs, %d differ, %d errors, %d resumptions refused OUT_OF_RANGE",
		read, bad, len(liveErrs), r.outOfRange.Load())
}

// checkConsumed reads every partition from the start with a consumer and
// compares what it gets with the records of the committed log.
func (r *chaosRun) checkConsumed(byOffset []map[int64]string, starts []int64) {
	ctx, cancel := context.WithTimeout(context.Background(), nodetest.WaitTimeout)
	defer cancel()
	cs, err := r.c.Client().NewConsumer()
	if err != nil {
		r.fatalf("consumer: %v", err)
	}
	defer cs.Close()
	var as []client.Assignment
	want := 0
	for pi, p := range r.parts {
		as = append(as, client.Assignment{Topic: p.topic, Partition: p.id, Start: client.AtOffset(starts[pi])})
		want += len(byOffset[pi])
	}
	if err := cs.Assign(ctx, as...); err != nil {
		r.fatalf("assign: %v", err)
	}
	got := 0
	for got < want {
		recs, err := cs.Poll(ctx)
		if err != nil {
			r.fatalf("consumed %d of %d records: %v", got, want, err)
		}
		for _, rec := range recs {
			pi := r.partIx[rec.Topic+"/"+strconv.Itoa(int(rec.Partition))]
			cv, _, _ := bytes.Cut(rec.Value, []byte{'|'})
			if v, ok := byOffset[pi][rec.Offset]; !ok || v != string(cv) {
				r.fatalf("consumed %q at %s/%d offset %d; the committed log holds %q there (%v)",
					rec.Value, rec.Topic, rec.Partition, rec.Offset, v, ok)
			}
			got++
		}
	}
	r.logf("consumed the %d records of every committed log", got)
}

// committedLogs reads the committed log of every running replica of p from
// the latest log start among them (retention moves each replica's on its
// own) and returns them with the longest and that start; errDiverged when
// one is not a prefix of the longest.
func (r *chaosRun) committedLogs(p chaosPart) (all [][]byte, long []byte, start int64, err error) {
	var who []int
	for _, i := range p.replicas {
		br := r.c.Brokers[i]
		if br.B == nil {
			continue
		}
		b, err := node.CommittedLog(br.B, p.topic, p.id)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("broker %d: %w", i, err)
		}
		if len(b) >= wire.BatchHeaderSize {
			start = max(start, wire.BaseOffset(b))
		}
		all, who = append(all, b), append(who, i)
	}
	if len(all) == 0 {
		return nil, nil, 0, fmt.Errorf("no replica of %v running", p)
	}
	for k, b := range all {
		bi := wire.NewBatchIter(b, 0)
		skipped := 0
		for len(b[skipped:]) >= wire.BatchHeaderSize && wire.BaseOffset(b[skipped:]) < start {
			batch, _, ok := bi.Next()
			if !ok {
				return nil, nil, 0, fmt.Errorf("broker %d's log of %v: %v", who[k], p, bi.Err())
			}
			skipped += len(batch)
		}
		if len(b[skipped:]) >= wire.BatchHeaderSize && wire.BaseOffset(b[skipped:]) != start {
			return nil, nil, 0, fmt.Errorf("%w: broker %d's log of %v has no batch at offset %d", errDiverged, who[k], p, start)
		}
		all[k] = b[skipped:]
	}
	long = slices.MaxFunc(all, func(a, b []byte) int { return len(a) - len(b) })
	for k, b := range all {
		if !bytes.HasPrefix(long, b) {
			at := 0
			for at < len(b) && b[at] == long[at] {
				at++
			}
			return all, long, start, fmt.Errorf("%w: broker %d's committed log from offset %d (%d bytes) differs from the longest (%d bytes) at byte %d",
				errDiverged, who[k], start, len(b), len(long), at)
		}
	}
	return all, long, start, nil
}

// checkPrefixes fails when a replica's committed log is not a prefix of
// another's: committed entries are never rewritten, whatever the lag.
func (r *chaosRun) checkPrefixes(when string) {
	for _, p := range r.parts {
		if _, _, _, err := r.committedLogs(p); errors.Is(err, errDiverged) {
			r.fatalf("%v after %s: %v", p, when, err)
		}
	}
}

// chaosLogs counts what the brokers log at Info and above, by level and
// message, keeping the attributes of the first of each: warnings and
// errors during a schedule point at what went wrong.
type chaosLogs struct {
	// mu guards counts and first.
	mu     sync.Mutex
	counts map[string]int
	first  map[string]string
	start  time.Time
}

func (h *chaosLogs) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *chaosLogs) Handle(_ context.Context, rec slog.Record) error {
	k := rec.Level.String() + " " + rec.Message
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.counts[k]++; h.counts[k] == 1 {
		var b strings.Builder
		rec.Attrs(func(a slog.Attr) bool {
			fmt.Fprintf(&b, " %s", a)
			return true
		})
		h.first[k] = fmt.Sprintf("%.3fs%s", rec.Time.Sub(h.start).Seconds(), b.String())
	}
	return nil
}

func (h *chaosLogs) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *chaosLogs) WithGroup(string) slog.Handler      { return h }

// report logs the counts, warnings and errors first.
func (h *chaosLogs) report(r *chaosRun) {
	h.mu.Lock()
	defer h.mu.Unlock()
	keys := slices.Sorted(maps.Keys(h.counts))
	slices.SortStableFunc(keys, func(a, b string) int {
		info := func(k string) int {
			if strings.HasPrefix(k, "INFO") {
				return 1
			}
			return 0
		}
		return cmp.Compare(info(a), info(b))
	})
	for _, k := range keys {
		r.logf("brokers logged %d× %s (first:%s)", h.counts[k], k, h.first[k])
	}
}
