package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rafka/rafka/client"
)

// e2eCluster is a cluster of `rafka serve` processes sharing a CA made with
// `rafka certs`.
type e2eCluster struct {
	t       *testing.T
	dir     string
	ca      string
	ports   []int
	servers []*server
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

func newE2ECluster(t *testing.T, n int) *e2eCluster {
	t.Helper()
	return newE2EClusterOf(t, n, n)
}

// newE2EClusterOf makes certificates and ports for n brokers and starts the
// first started of them (start(i) starts another).
func newE2EClusterOf(t *testing.T, n, started int) *e2eCluster {
	t.Helper()
	c := &e2eCluster{t: t, dir: t.TempDir()}
	certs := filepath.Join(c.dir, "certs")
	run := func(args ...string) {
		t.Helper()
		if out, err := runRafka(args...); err != nil {
			t.Fatalf("rafka %v: %v\n%s", args, err, out)
		}
	}
	run("certs", "create-ca", "--out", certs)
	c.ca = filepath.Join(certs, "ca.pem")
	for i := range n {
		run("certs", "create-broker", "--ca-dir", certs, "--out", filepath.Join(certs, "b"+strconv.Itoa(i)), "--host", "127.0.0.1", "--host", "localhost")
		c.ports = append(c.ports, freeUDPPort(t))
	}
	c.servers = make([]*server, n)
	for i := range started {
		c.start(i)
	}
	return c
}

func (c *e2eCluster) addr(i int) string { return "127.0.0.1:" + strconv.Itoa(c.ports[i]) }

// start starts broker i (again) on its data directory and port.
func (c *e2eCluster) start(i int) {
	c.t.Helper()
	certDir := filepath.Join(c.dir, "certs", "b"+strconv.Itoa(i))
	args := []string{"--broker-id", "b" + strconv.Itoa(i), "--listen", c.addr(i),
		"--tls-cert", filepath.Join(certDir, "cert.pem"), "--tls-key", filepath.Join(certDir, "key.pem"), "--tls-ca", c.ca}
	if i > 0 {
		args = append(args, "--join", c.addr(0))
	}
	s := startServerIn(c.t, "", filepath.Join(c.dir, "d"+strconv.Itoa(i)), args...)
	c.t.Cleanup(s.kill)
	c.servers[i] = s
}

func (c *e2eCluster) clusterInfo(via int) (clusterInfoJSON, error) {
	out, err := runRafka("cluster", "info", "--json", "--brokers", c.addr(via), "--tls-ca", c.ca)
	if err != nil {
		return clusterInfoJSON{}, fmt.Errorf("%v: %s", err, out)
	}
	var info clusterInfoJSON
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		return info, fmt.Errorf("cluster info --json: %v: %s", err, out)
	}
	return info, nil
}

// clusterInfoJSON is the part of `rafka cluster info --json` checked here.
type clusterInfoJSON struct {
	ClusterID  string `json:"cluster_id"`
	MetaLeader string `json:"meta_leader"`
	Brokers    []struct {
		ID    string `json:"id"`
		State string `json:"state"`
		Hosts int    `json:"hosts"`
	} `json:"brokers"`
	Moves []json.RawMessage `json:"moves"`
}

func (c *e2eCluster) waitStates(via int, want map[string]string) {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		info, err := c.clusterInfo(via)
		if err == nil {
			got := map[string]string{}
			for _, b := range info.Brokers {
				got[b.ID] = b.State
			}
			ok := len(got) == len(want)
			for id, st := range want {
				ok = ok && got[id] == st
			}
			if ok {
				return
			}
			last = fmt.Sprint(got)
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond) // polling the CLI's answer
	}
	c.t.Fatalf("brokers never reached %v; last: %s", want, last)
}

func (c *e2eCluster) client(addrs ...string) *client.Client {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := client.New(ctx, client.WithBrokers(addrs...), client.WithCAFile(c.ca))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

// TestClusterEndToEnd runs three `rafka serve` processes joined with
// --join: a topic of 6 partitions spreads over all three, 20,000 records
// produced through one bootstrap address all come back; a SIGKILLed broker
// is declared dead, its partitions report offline, topics can still be
// created, and it rejoins with its data when restarted.
func TestClusterEndToEnd(t *testing.T) {
	c := newE2ECluster(t, 3)
	alive := map[string]string{"b0": "alive", "b1": "alive", "b2": "alive"}
	c.waitStates(2, alive)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := runRafka("topic", "create", "six", "-p", "6", "-r", "1", "--brokers", c.addr(1), "--tls-ca", c.ca); err != nil {
		t.Fatalf("topic create: %v\n%s", err, out)
	}
	info, err := c.clusterInfo(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range info.Brokers {
		if b.Hosts == 0 {
			t.Fatalf("broker %s hosts no partition of 6: %+v", b.ID, info.Brokers)
		}
	}

	cl := c.client(c.addr(0))
	p, err := cl.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	for i := range n {
		r := &client.Record{Topic: "six", Partition: client.AnyPartition, Key: []byte(strconv.Itoa(i)), Value: []byte("value-" + strconv.Itoa(i))}
		if err := p.Produce(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("producer: %v", err)
	}
	if got := countRecords(t, ctx, cl, "six", 6, n); got != n {
		t.Fatalf("read back %d records, want %d", got, n)
	}

	c.servers[2].kill()
	c.waitStates(0, map[string]string{"b0": "alive", "b1": "alive", "b2": "fenced"})
	tms, err := cl.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	offline := 0
	for _, tm := range tms {
		for _, pm := range tm.Partitions {
			if pm.Offline {
				offline++
			}
		}
	}
	if offline == 0 {
		t.Fatal("no partition reported offline with its broker dead")
	}
	if out, err := runRafka("topic", "create", "while-down", "-p", "2", "--brokers", c.addr(1), "--tls-ca", c.ca); err != nil {
		t.Fatalf("topic create with a broker down: %v\n%s", err, out)
	}

	c.start(2)
	c.waitStates(0, alive)
	cl2 := c.client(c.addr(1))
	if got := countRecords(t, ctx, cl2, "six", 6, n); got != n {
		t.Fatalf("after restart read %d records, want %d", got, n)
	}
}

// countRecords reads every partition from the start until want distinct
// values arrived (or ctx ends) and returns how many did.
func countRecords(t *testing.T, ctx context.Context, cl *client.Client, topic string, parts int32, want int) int {
	t.Helper()
	cs, err := cl.NewConsumer()
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	var as []client.Assignment
	for i := range parts {
		as = append(as, client.Assignment{Topic: topic, Partition: i, Start: client.Earliest()})
	}
	if err := cs.Assign(ctx, as...); err != nil {
		t.Fatal(err)
	}
	seen := make(map[string]bool, want)
	for len(seen) < want {
		recs, err := cs.Poll(ctx)
		if err != nil {
			t.Fatalf("poll after %d records: %v", len(seen), err)
		}
		for _, r := range recs {
			seen[string(r.Value)] = true
		}
	}
	return len(seen)
}

// runRafka runs the rafka binary and returns its standard output; a
// failure's error carries its standard error.
func runRafka(args ...string) (string, error) {
	cmd := exec.Command(rafkaBin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		err = fmt.Errorf("%w: %s", err, stderr.String())
	}
	return string(out), err
}

// TestClusterRefusesForeignData: a broker whose data directory belongs to
// one cluster, restarted with --join to another cluster's broker (same CA),
// exits 1 saying why, and the cluster it tried to join goes on.
func TestClusterRefusesForeignData(t *testing.T) {
	c := newE2ECluster(t, 1)
	certs := filepath.Join(c.dir, "certs")
	if out, err := runRafka("certs", "create-broker", "--ca-dir", certs, "--out", filepath.Join(certs, "lone"), "--host", "127.0.0.1"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	data := filepath.Join(c.dir, "lone")
	tlsArgs := []string{"--tls-cert", filepath.Join(certs, "lone", "cert.pem"), "--tls-key", filepath.Join(certs, "lone", "key.pem"), "--tls-ca", c.ca}
	lone := startServerIn(t, "", data, append([]string{"--broker-id", "lone"}, tlsArgs...)...)
	lone.stop() // a cluster of its own, on disk

	args := append([]string{"serve", "--data-dir", data, "--listen", "127.0.0.1:0", "--admin-listen", "", "--broker-id", "lone", "--join", c.addr(0)}, tlsArgs...)
	cmd := exec.Command(rafkaBin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("a broker of another cluster kept running:\n%s", stderr.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 1 || !bytes.Contains(stderr.Bytes(), []byte("belong to another cluster")) {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	if _, err := c.clusterInfo(0); err != nil {
		t.Fatalf("the cluster after a foreign broker knocked: %v", err)
	}
}

// TestJoinToNothingKeepsTrying: --join to an address where nothing listens
// leaves the broker up, not ready, and saying why in its log.
func TestJoinToNothingKeepsTrying(t *testing.T) {
	c := newE2ECluster(t, 1)
	c.servers[0].kill()
	certs := filepath.Join(c.dir, "certs")
	if out, err := runRafka("certs", "create-broker", "--ca-dir", certs, "--out", filepath.Join(certs, "j"), "--host", "127.0.0.1"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	s := startServer(t, filepath.Join(c.dir, "j"), "--broker-id", "j", "--join", c.addr(0), "--heartbeat-interval", "100ms",
		"--tls-cert", filepath.Join(certs, "j", "cert.pem"), "--tls-key", filepath.Join(certs, "j", "key.pem"), "--tls-ca", c.ca)
	deadline := time.Now().Add(30 * time.Second)
	for !bytes.Contains([]byte(s.logs.String()), []byte("heartbeat to the metadata leader failed; retrying")) {
		if time.Now().After(deadline) {
			t.Fatalf("no retry logged:\n%s", s.logs)
		}
		time.Sleep(20 * time.Millisecond) // polling the log
	}
	out, err := runRafka("health", "--ready", "--admin", s.admin)
	if err == nil {
		t.Fatalf("a broker that joined nothing is ready: %s", out)
	}
	if !bytes.Contains([]byte(err.Error()), []byte("not joined")) {
		t.Fatalf("readiness failure does not say why: %v", err)
	}
	s.stop()
}
