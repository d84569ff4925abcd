package bench

import (
	"slices"
	"strings"
	"testing"
)

func TestServeArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  LocalBrokerConfig
		want []string
	}{{
		name: "single broker",
		cfg:  LocalBrokerConfig{DataDir: "/d", Fsync: "never", Args: []string{"--log-level", "debug"}},
		want: []string{"serve", "--data-dir", "/d", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
			"--ready-file", "/r", "--default-fsync", "never", "--log-level", "debug"},
	}, {
		name: "cluster broker joining, on fixed ports",
		cfg: LocalBrokerConfig{DataDir: "/c/b2", BrokerID: "b2", Listen: "127.0.0.1:7001", AdminListen: "127.0.0.1:7002",
			TLS:  BrokerTLS{CAFile: "/c/ca.pem", CertFile: "/c/b2/cert.pem", KeyFile: "/c/b2/key.pem"},
			Join: []string{"127.0.0.1:6001", "127.0.0.1:6003"}},
		want: []string{"serve", "--data-dir", "/c/b2", "--listen", "127.0.0.1:7001", "--admin-listen", "127.0.0.1:7002",
			"--ready-file", "/r", "--broker-id", "b2", "--tls-ca", "/c/ca.pem", "--tls-cert", "/c/b2/cert.pem",
			"--tls-key", "/c/b2/key.pem", "--join", "127.0.0.1:6001,127.0.0.1:6003"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cfg.serveArgs("/r"); !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestLocalClusterConfigValidate(t *testing.T) {
	if err := (LocalClusterConfig{Binary: "rafka"}).withDefaults().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	err := LocalClusterConfig{Brokers: MaxLocalBrokers + 1, StartTimeout: -1}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"local brokers", "no rafka binary", "timeouts"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not report %q", err, want)
		}
	}
}

func TestSumUse(t *testing.T) {
	s := SumUse([]BrokerUse{
		{ID: "b1", ProcStats: ProcStats{CPUSeconds: 1.5, PeakRSSBytes: 100, Source: "proc"}},
		{ID: "b2", ProcStats: ProcStats{CPUSeconds: 0.5, PeakRSSBytes: 50, Source: "proc"}, Restarts: 2},
	})
	if s.CPUSeconds != 2 || s.PeakRSSBytes != 150 || s.Source != "proc" {
		t.Fatalf("%+v", s)
	}
}
