package main_test

import (
	"context"
	"encoding/json"
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
