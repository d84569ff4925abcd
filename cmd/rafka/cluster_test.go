package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rafka/rafka/client"
)

func sampleClusterInfo() client.ClusterInfo {
	return client.ClusterInfo{
		ClusterID: "c-7f3a", MetaLeader: "b1", MetaTerm: 4, MetaCommit: 1207, MetaApplied: 1205,
		Voters: []string{"b1", "b2", "b3"}, Learners: []string{"b4"},
		Brokers: []client.ClusterBroker{
			{ID: "b1", Addr: "10.0.0.1:9092", Zone: "eu-1a", State: "alive", LeaseAge: 1234 * time.Millisecond,
				Epoch: 3, Leads: 12, Hosts: 30, Voter: true, Applied: 1205},
			{ID: "b4", Addr: "10.0.0.4:9092", State: "fenced", LeaseAge: -1, Epoch: 1, Hosts: 2, Applied: 990},
		},
	}
}

func TestClusterInfoTable(t *testing.T) {
	ci := sampleClusterInfo()
	var out bytes.Buffer
	if err := writeClusterInfo(&out, &ci); err != nil {
		t.Fatal(err)
	}
	want := `Cluster c-7f3a  metadata leader b1  term 4  commit 1207  applied 1205

ID  ADDRESS        ZONE   STATE   LEASE  LEADS  HOSTS  VOTER
b1  10.0.0.1:9092  eu-1a  alive   1.2s   12     30     yes
b4  10.0.0.4:9092  -      fenced  -      0      2      no
`
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
	var empty bytes.Buffer
	if err := writeClusterInfo(&empty, &client.ClusterInfo{}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(empty.String(), "Cluster -  metadata leader none  term 0") {
		t.Fatalf("empty view:\n%s", empty.String())
	}
}

func TestClusterInfoJSON(t *testing.T) {
	ci := sampleClusterInfo()
	b, err := json.Marshal(clusterJSONOf(&ci))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"cluster_id": "c-7f3a", "meta_leader": "b1", "meta_term": 4.0, "meta_commit": 1207.0, "meta_applied": 1205.0,
		"voters": []any{"b1", "b2", "b3"}, "learners": []any{"b4"},
		"brokers": []any{
			map[string]any{"id": "b1", "addr": "10.0.0.1:9092", "zone": "eu-1a", "state": "alive", "lease_age_ms": 1234.0,
				"epoch": 3.0, "leads": 12.0, "hosts": 30.0, "voter": true, "applied": 1205.0},
			map[string]any{"id": "b4", "addr": "10.0.0.4:9092", "zone": "", "state": "fenced", "lease_age_ms": -1.0,
				"epoch": 1.0, "leads": 0.0, "hosts": 2.0, "voter": false, "applied": 990.0},
		},
		"moves": []any{}, "drains": []any{},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("JSON %s", b)
	}
	// Lists are empty, never null.
	b, _ = json.Marshal(clusterJSONOf(&client.ClusterInfo{}))
	if !strings.Contains(string(b), `"voters":[]`) || !strings.Contains(string(b), `"brokers":[]`) {
		t.Fatalf("empty JSON %s", b)
	}
}

func TestLeaseAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 850 * time.Millisecond: "850ms", 1234 * time.Millisecond: "1.2s", 184 * time.Second: "3m4s",
	} {
		if got := leaseAge(d); got != want {
			t.Errorf("leaseAge(%v) = %s, want %s", d, got, want)
		}
	}
}

func TestClusterInfoMovesAndDrains(t *testing.T) {
	ci := sampleClusterInfo()
	ci.Moves = []client.ReplicaMove{{Topic: "orders", Partition: 3, From: "b4", To: "b2", Source: "b1"}}
	ci.Drains = []client.BrokerDrain{{ID: "b4", Mode: "full"}}
	var out bytes.Buffer
	if err := writeClusterInfo(&out, &ci); err != nil {
		t.Fatal(err)
	}
	want := `
Replica moves in progress:
TOPIC   PARTITION  FROM  TO  SOURCE
orders  3          b4    b2  b1

Draining:
BROKER  MODE
b4      full
`
	if !strings.HasSuffix(out.String(), want) {
		t.Fatalf("got\n%s\nwant suffix\n%s", out.String(), want)
	}
	b, _ := json.Marshal(clusterJSONOf(&ci))
	if !strings.Contains(string(b), `"moves":[{"topic":"orders","partition":3,"from":"b4","to":"b2","source":"b1"}]`) ||
		!strings.Contains(string(b), `"drains":[{"id":"b4","mode":"full"}]`) {
		t.Fatalf("JSON %s", b)
	}
	var st bytes.Buffer
	if err := writeDrainState(&st, client.DrainState{BrokerID: "b4", Mode: "full", Hosts: 2, Leads: -1, Moves: 1}); err != nil {
		t.Fatal(err)
	}
	if want := "BROKER  DRAIN  HOSTS  LEADS  MOVES\nb4      full   2      -1     1\n"; st.String() != want {
		t.Fatalf("drain state %q, want %q", st.String(), want)
	}
}

// `rafka cluster drain` names its broker, or takes $RAFKA_BROKER_ID (a
// broker pod's preStop hook has no shell to expand it).
func TestClusterDrainBrokerArgument(t *testing.T) {
	for _, tc := range []struct {
		name, env string
		args      []string
		want      string
	}{
		{"no broker", "", nil, "RAFKA_BROKER_ID"},
		{"two brokers", "", []string{"b1", "b2"}, "takes 0 to 1 argument(s), got 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("RAFKA_BROKER_ID", tc.env)
			root := newRoot()
			root.SetArgs(append([]string{"cluster", "drain", "--leaders-only"}, tc.args...))
			err := root.ExecuteContext(context.Background())
			var ue usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want a usage error mentioning %q", err, tc.want)
			}
		})
	}
}
