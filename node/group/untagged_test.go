package group

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// An Untagged group's log holds the proposals byte for byte; the leader's
// asynchronous proposals are persisted, applied and resolved in order; a
// follower refuses them naming the leader; a deposed leader's proposals fail.
func TestUntaggedProposals(t *testing.T) {
	c := newCluster(t, false)
	c.gcfg = GroupConfig{Untagged: true, NoSnapshots: true}
	members := ids(3)
	for _, id := range members {
		c.startDriver(id)
		c.addGroup(id, 7, members)
	}
	lead := c.leader(7, members...)
	const n = 200
	props := make([]*Proposal, n)
	var want []string
	for i := range n {
		data := fmt.Sprintf("batch-%03d", i)
		want = append(want, data)
		props[i] = c.drivers[lead].ProposeAsync(7, []byte(data), nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var last uint64
	for i, p := range props {
		select {
		case <-p.Persisted():
		case <-ctx.Done():
			t.Fatalf("proposal %d never persisted", i)
		}
		v, index, err := p.Wait(ctx)
		if err != nil {
			t.Fatalf("proposal %d: %v", i, err)
		}
		if index <= last {
			t.Fatalf("proposal %d at index %d after %d: out of order", i, index, last)
		}
		last = index
		if v.(int) < i+1 {
			t.Fatalf("proposal %d applied as entry %v", i, v)
		}
	}
	got := c.converged(7, want, members...)
	if !slices.Equal(got, want) {
		t.Fatalf("applied %q..., want the proposals exactly, in order", got[:min(3, len(got))])
	}

	follower := members[0]
	if follower == lead {
		follower = members[1]
	}
	_, _, err := c.drivers[follower].ProposeAsync(7, []byte("x"), nil).Wait(ctx)
	var nl *NotLeaderError
	if !errors.As(err, &nl) || nl.Leader != lead || !errors.Is(err, ErrNotLeader) {
		t.Fatalf("proposal on a follower: %v, want NotLeaderError naming %d", err, lead)
	}

	// Cut the leader off: what it proposes now is never committed, and
	// fails once it steps down.
	c.net.setCut(lead, true)
	p := c.drivers[lead].ProposeAsync(7, []byte("lost"), nil)
	_, _, err = p.Wait(ctx)
	if err == nil || (!errors.Is(err, ErrProposalDropped) && !errors.Is(err, ErrNotLeader)) {
		t.Fatalf("proposal on a cut-off leader: %v", err)
	}
	c.net.setCut(lead, false)
}

// A proposal made after one that failed before it was saved fails too, even
// once the group would take it: the log never holds it without the one it
// follows.
func TestUntaggedProposalAfterFailedOne(t *testing.T) {
	c, members, lead, follower := untaggedGroup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	failed := c.drivers[follower].ProposeAsync(7, []byte("refused"), nil)
	if _, err := failed.Saved(); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("proposal on a follower: %v", err)
	}
	_, _, err := c.drivers[lead].ProposeAsync(7, []byte("behind"), failed).Wait(ctx)
	if !errors.Is(err, ErrProposalDropped) {
		t.Fatalf("proposal after a failed one: %v, want ErrProposalDropped", err)
	}
	ok := c.drivers[lead].ProposeAsync(7, []byte("first"), nil)
	if _, _, err := c.drivers[lead].ProposeAsync(7, []byte("second"), ok).Wait(ctx); err != nil {
		t.Fatalf("proposal after a saved one: %v", err)
	}
	if got := c.converged(7, []string{"first", "second"}, members...); !slices.Equal(got, []string{"first", "second"}) {
		t.Fatalf("applied %q", got)
	}
}

// ReadIndex confirms leadership with a quorum: it succeeds on the leader
// (at or past what it committed before), fails naming the leader on a
// follower, and never succeeds on a leader cut off from the others.
func TestReadIndex(t *testing.T) {
	c, _, lead, follower := untaggedGroup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, index, err := c.drivers[lead].ProposeAsync(7, []byte("x"), nil).Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ri, err := c.drivers[lead].ReadIndex(ctx, 7); err != nil || ri < index {
		t.Fatalf("ReadIndex on the leader: %d, %v; want at least %d", ri, err, index)
	}
	var nl *NotLeaderError
	if _, err := c.drivers[follower].ReadIndex(ctx, 7); !errors.As(err, &nl) || nl.Leader != lead {
		t.Fatalf("ReadIndex on a follower: %v, want NotLeaderError naming %d", err, lead)
	}
	c.net.setCut(lead, true)
	defer c.net.setCut(lead, false)
	cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
	defer ccancel()
	if ri, err := c.drivers[lead].ReadIndex(cctx, 7); err == nil {
		t.Fatalf("ReadIndex on a leader cut off: confirmed at %d", ri)
	}
}

// untaggedGroup starts Untagged group 7 on three drivers and returns the
// cluster, its members, the leader and a follower.
func untaggedGroup(t *testing.T) (c *cluster, members []uint64, lead, follower uint64) {
	c = newCluster(t, false)
	c.gcfg = GroupConfig{Untagged: true, NoSnapshots: true}
	members = ids(3)
	for _, id := range members {
		c.startDriver(id)
		c.addGroup(id, 7, members)
	}
	lead = c.leader(7, members...)
	follower = members[0]
	if follower == lead {
		follower = members[1]
	}
	return c, members, lead, follower
}

// TestBarrier: a follower returns from Barrier only once it applied every
// entry committed before the call, and gets no answer while it cannot
// apply them.
func TestBarrier(t *testing.T) {
	c, _, lead, follower := untaggedGroup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The follower hears the leader (heartbeats, read answers) but gets
	// none of the new entries.
	c.net.setStarved(follower, true)
	var last uint64
	for i := range 50 {
		_, index, err := c.drivers[lead].ProposeAsync(7, fmt.Appendf(nil, "e%d", i), nil).Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		last = index
	}
	cctx, ccancel := context.WithTimeout(ctx, time.Second)
	defer ccancel()
	if ri, err := c.drivers[follower].Barrier(cctx, 7); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Barrier on a follower missing entries: %d, %v; want no answer", ri, err)
	}
	c.net.setStarved(follower, false)
	ri, err := c.drivers[follower].Barrier(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	sm := c.sms[[2]uint64{follower, 7}]
	sm.mu.Lock()
	applied := sm.indexes[len(sm.indexes)-1]
	has := slices.Contains(sm.entries, "e49")
	sm.mu.Unlock()
	if ri < last || applied < ri || !has {
		t.Fatalf("Barrier returned %d (last proposal at %d) with the follower applied to %d, last entry there: %v", ri, last, applied, has)
	}
	if ri, err := c.drivers[lead].Barrier(ctx, 7); err != nil || ri < last {
		t.Fatalf("Barrier on the leader: %d, %v; want at least %d", ri, err, last)
	}
	c.net.setCut(lead, true)
	defer c.net.setCut(lead, false)
	cctx, ccancel = context.WithTimeout(ctx, time.Second)
	defer ccancel()
	if ri, err := c.drivers[follower].Barrier(cctx, 7); err == nil {
		t.Fatalf("Barrier with the leader cut off: confirmed at %d", ri)
	}
}
