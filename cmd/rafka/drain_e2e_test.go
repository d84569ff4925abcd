package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rafka/rafka/client"
)

// TestClusterDrainEndToEnd runs four `rafka serve` processes with an RF 3
// topic holding records: `rafka cluster drain b3 --wait` returns once b3
// hosts nothing, `rafka cluster info --json` shows the drain and b3
// hosting nothing, every record is still there, and `rafka cluster
// undrain` clears the mark.
func TestClusterDrainEndToEnd(t *testing.T) {
	c := newE2ECluster(t, 4)
	c.waitStates(3, map[string]string{"b0": "alive", "b1": "alive", "b2": "alive", "b3": "alive"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := runRafka("topic", "create", "dr", "-p", "4", "-r", "3", "--brokers", c.addr(0), "--tls-ca", c.ca); err != nil {
		t.Fatalf("topic create: %v\n%s", err, out)
	}
	cl := c.client(c.addr(0))
	p, err := cl.NewProducer(client.WithAcks(client.AcksAll), client.WithRetries(100))
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	for i := range n {
		r := &client.Record{Topic: "dr", Partition: client.AnyPartition, Key: []byte(strconv.Itoa(i)), Value: []byte("value-" + strconv.Itoa(i))}
		if err := p.Produce(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("producer: %v", err)
	}

	out, err := runRafka("cluster", "drain", "b3", "--wait", "--timeout", "90s", "--brokers", c.addr(1), "--tls-ca", c.ca)
	if err != nil {
		t.Fatalf("cluster drain: %v\n%s", err, out)
	}
	if f := strings.Fields(strings.Split(strings.TrimSpace(out), "\n")[1]); len(f) != 5 || f[0] != "b3" || f[1] != "full" || f[2] != "0" {
		t.Fatalf("cluster drain printed:\n%s", out)
	}
	raw, err := runRafka("cluster", "info", "--json", "--brokers", c.addr(2), "--tls-ca", c.ca)
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Brokers []struct {
			ID    string `json:"id"`
			Hosts int    `json:"hosts"`
		} `json:"brokers"`
		Drains []struct {
			ID   string `json:"id"`
			Mode string `json:"mode"`
		} `json:"drains"`
	}
	if err := json.Unmarshal([]byte(raw), &info); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	if len(info.Drains) != 1 || info.Drains[0].ID != "b3" || info.Drains[0].Mode != "full" {
		t.Fatalf("drains %+v", info.Drains)
	}
	for _, b := range info.Brokers {
		if b.ID == "b3" && b.Hosts != 0 {
			t.Fatalf("b3 still hosts %d partitions after the drain", b.Hosts)
		}
	}
	if got := countRecords(t, ctx, c.client(c.addr(1)), "dr", 4, n); got != n {
		t.Fatalf("read back %d records, want %d", got, n)
	}
	out, err = runRafka("cluster", "undrain", "b3", "--brokers", c.addr(0), "--tls-ca", c.ca)
	if err != nil || !strings.Contains(out, "b3") || !strings.Contains(out, "none") {
		t.Fatalf("cluster undrain: %v\n%s", err, out)
	}
}

// TestScaleOutAndInEndToEnd: three `rafka serve` processes hold an RF 3
// topic; a fourth broker started with --join gets replicas moved to it with
// no command given (`rafka cluster info` shows it hosting some and no move
// left), then `rafka cluster drain --wait` moves them off again and the
// broker is stopped: every record reads back at every step.
func TestScaleOutAndInEndToEnd(t *testing.T) {
	c := newE2EClusterOf(t, 4, 3)
	c.waitStates(0, map[string]string{"b0": "alive", "b1": "alive", "b2": "alive"})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const parts = 6
	if out, err := runRafka("topic", "create", "so", "-p", strconv.Itoa(parts), "-r", "3", "--brokers", c.addr(0), "--tls-ca", c.ca); err != nil {
		t.Fatalf("topic create: %v\n%s", err, out)
	}
	cl := c.client(c.addr(0))
	p, err := cl.NewProducer(client.WithAcks(client.AcksAll), client.WithRetries(100))
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	for i := range n {
		r := &client.Record{Topic: "so", Partition: client.AnyPartition, Key: []byte(strconv.Itoa(i)), Value: []byte("value-" + strconv.Itoa(i))}
		if err := p.Produce(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("producer: %v", err)
	}

	// Scale out: b3 joins and, with no command, becomes a replica of about
	// RF/N of the partitions as placement now ranks it.
	c.start(3)
	hosts := func(info clusterInfoJSON, id string) int {
		for _, b := range info.Brokers {
			if b.ID == id {
				return b.Hosts
			}
		}
		return -1
	}
	deadline := time.Now().Add(2 * time.Minute)
	var last string
	for {
		info, err := c.clusterInfo(1)
		if err == nil && hosts(info, "b3") > 0 && len(info.Moves) == 0 {
			t.Logf("scale out: b3 hosts %d of %d replicas", hosts(info, "b3"), 3*parts)
			break
		}
		last = fmt.Sprintf("%+v %v", info, err)
		if time.Now().After(deadline) {
			t.Fatalf("no replica moved to the new broker; last: %s", last)
		}
		time.Sleep(100 * time.Millisecond) // polling the CLI's answer
	}
	if got := countRecords(t, ctx, c.client(c.addr(3)), "so", parts, n); got != n {
		t.Fatalf("after scale out: read back %d records, want %d", got, n)
	}

	// Scale in: drain b3, then stop it (SIGTERM); nothing is lost.
	out, err := runRafka("cluster", "drain", "b3", "--wait", "--timeout", "120s", "--brokers", c.addr(1), "--tls-ca", c.ca)
	if err != nil {
		t.Fatalf("cluster drain: %v\n%s", err, out)
	}
	c.servers[3].stop()
	// b3 may have been a metadata voter, even its leader: the others elect
	// another, and until then `cluster info` may be sent to b3.
	deadline = time.Now().Add(time.Minute)
	for {
		info, err := c.clusterInfo(1)
		if err == nil {
			if h := hosts(info, "b3"); h != 0 {
				t.Fatalf("b3 hosts %d replicas after its drain", h)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster info after b3 stopped: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // polling the CLI's answer
	}
	if got := countRecords(t, ctx, c.client(c.addr(1)), "so", parts, n); got != n {
		t.Fatalf("after scale in: read back %d records, want %d", got, n)
	}
}
