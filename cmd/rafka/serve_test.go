package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rafka/rafka/node"
	"github.com/rafka/rafka/quicnet"
)

// TestServeFlagDefaults checks that `rafka serve --help` shows the defaults
// the broker really applies, taken from node and quicnet rather than
// repeated here.
func TestServeFlagDefaults(t *testing.T) {
	d := node.DefaultConfig()
	q := quicnet.Config{}.WithDefaults()
	want := map[string]any{
		"data-dir":              d.DataDir,
		"listen":                d.Listen,
		"admin-listen":          defaultAdminListen,
		"max-streams-per-conn":  q.MaxIncomingStreams,
		"stream-receive-window": q.MaxStreamReceiveWindow,
		"conn-receive-window":   q.MaxConnReceiveWindow,
		"idle-timeout":          q.IdleTimeout,
		"keep-alive":            q.KeepAlivePeriod,
		"hotstore-bytes":        d.HotstoreBytes,
		"max-frame-bytes":       d.MaxFrameBytes,
		"default-fsync":         d.TopicDefaults.Fsync,
		"retention-interval":    d.RetentionInterval,
		"verify-interval":       d.VerifyInterval,
		"shutdown-timeout":      d.ShutdownTimeout,
		"join":                  "[]",
		"peer-connect-to":       "[]",
		"zone":                  d.Cluster.Zone,
		"metadata-voters":       d.Cluster.MetadataVoters,
		"lease-timeout":         d.Cluster.LeaseTimeout,
		"raft-tick":             d.Cluster.RaftTick,
		// 0 lets the broker derive it from the lease timeout.
		"heartbeat-interval": time.Duration(0),
	}
	fs := newServeCmd().Flags()
	for name, v := range want {
		f := fs.Lookup(name)
		if f == nil {
			t.Errorf("no flag --%s", name)
			continue
		}
		if got := f.DefValue; got != fmt.Sprint(v) {
			t.Errorf("--%s default %q, the broker's is %q", name, got, fmt.Sprint(v))
		}
	}
}

// TestServeClusterFlagErrors checks that bad cluster flags and environment
// variables stop `rafka serve` with a usage error naming the problem, before
// it touches the data directory.
func TestServeClusterFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		want    []string // substrings of the error
		wantNot []string
	}{
		{name: "voters", args: []string{"--metadata-voters", "4"}, want: []string{"metadata voters 4: 3 or 5"}},
		{name: "voters from env", env: map[string]string{"RAFKA_METADATA_VOTERS": "7"}, want: []string{"metadata voters 7"}},
		{name: "voters not a number", args: []string{"--metadata-voters", "three"}, want: []string{"--metadata-voters"}},
		{name: "join without CA", args: []string{"--join", "127.0.0.1:9092"}, want: []string{"--tls-ca"}},
		{name: "join address without port", args: []string{"--join", "127.0.0.1:9092,broker-2", "--tls-ca", "ca.pem"},
			want: []string{`join address "broker-2": want host:port`}, wantNot: []string{"127.0.0.1:9092"}},
		{name: "join repeated", args: []string{"--join", "a:1", "--join", "b", "--tls-ca", "ca.pem"}, want: []string{`join address "b"`}},
		{name: "join from env", env: map[string]string{"RAFKA_JOIN": "a:1,b"}, want: []string{`join address "b"`, "--tls-ca"}},
		{name: "peer connect-to without =", args: []string{"--peer-connect-to", "127.0.0.1:19091"}, want: []string{"--peer-connect-to"}},
		{name: "peer connect-to from env", env: map[string]string{"RAFKA_PEER_CONNECT_TO": "127.0.0.1:19091=rafka-1:19091,127.0.0.1:19092=rafka-2"},
			want: []string{`peer connect-to "127.0.0.1:19092"="rafka-2": want host:port=host:port`}, wantNot: []string{"rafka-1"}},
		{name: "lease too short", args: []string{"--lease-timeout", "10ms"}, want: []string{"lease timeout 10ms: at least 100ms"}},
		{name: "lease not a duration", args: []string{"--lease-timeout", "2"}, want: []string{"--lease-timeout"}},
		{name: "heartbeat above half the lease", args: []string{"--lease-timeout", "1s", "--heartbeat-interval", "600ms"},
			want: []string{"heartbeat interval 600ms"}},
		// Without --heartbeat-interval the heartbeat follows the lease: a
		// short lease alone is fine, only the voters are reported.
		{name: "heartbeat follows lease", args: []string{"--lease-timeout", "400ms", "--metadata-voters", "2"},
			want: []string{"metadata voters 2"}, wantNot: []string{"heartbeat"}},
		{name: "raft tick above half the lease", args: []string{"--raft-tick", "1500ms"}, want: []string{"raft tick 1.5s"}},
		{name: "every problem at once", args: []string{"--metadata-voters", "1", "--raft-tick", "0s", "--join", "x"},
			want: []string{"metadata voters 1", `join address "x"`, "--tls-ca"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			dataDir := t.TempDir() + "/data"
			root := newRoot()
			root.SetArgs(append([]string{"serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--admin-listen", ""}, tc.args...))
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // were the config accepted, the broker would stop at once
			err := root.ExecuteContext(ctx)
			var ue usageError
			if !errors.As(err, &ue) { // exit code 2
				t.Fatalf("err %v (%T), want a usage error", err, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error %q mentions %q", err, w)
				}
			}
			if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("data dir created for a rejected config: %v", err)
			}
		})
	}
}
