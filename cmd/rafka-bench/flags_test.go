package main

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rafka/rafka/bench"
	"github.com/rafka/rafka/bench/load"
)

// TestConnectionFlagNames checks that rafka-bench names its connection
// flags as the rafka command does.
func TestConnectionFlagNames(t *testing.T) {
	f := newRoot().PersistentFlags()
	for name, short := range map[string]string{"brokers": "b", "tls-ca": "", "insecure-skip-verify": ""} {
		fl := f.Lookup(name)
		if fl == nil {
			t.Errorf("no --%s", name)
			continue
		}
		if fl.Shorthand != short {
			t.Errorf("--%s: short -%s, want -%s", name, fl.Shorthand, short)
		}
	}
	for _, old := range []string{"ca-file", "insecure"} {
		if f.Lookup(old) != nil {
			t.Errorf("--%s is still defined", old)
		}
	}
}

func TestVersionCommand(t *testing.T) {
	root := newRoot()
	if root.Version == "" {
		t.Fatal("no --version")
	}
	if cmd, _, err := root.Find([]string{"version"}); err != nil || cmd.Name() != "version" {
		t.Fatalf("no version command: %v", err)
	}
}

func TestClusterFlags(t *testing.T) {
	root := newRoot()
	if f := root.PersistentFlags().Lookup("local-brokers"); f == nil || f.DefValue != "1" {
		t.Fatalf("--local-brokers: %+v", f)
	}
	produce, _, err := root.Find([]string{"produce"})
	if err != nil {
		t.Fatal(err)
	}
	if f := produce.Flags().Lookup("replication-factor"); f == nil || f.DefValue != "1" || f.Shorthand != "r" {
		t.Fatalf("--replication-factor: %+v", f)
	}
}

func TestLocalBrokersExcludesBrokers(t *testing.T) {
	g := &globalFlags{brokers: []string{"127.0.0.1:1"}, localN: 3}
	if _, _, err := g.target(t.Context(), ""); !errors.As(err, new(usageError)) {
		t.Fatalf("err %v, want a usage error", err)
	}
	g = &globalFlags{localN: 0}
	if _, _, err := g.target(t.Context(), ""); !errors.As(err, new(usageError)) {
		t.Fatalf("--local-brokers 0: err %v, want a usage error", err)
	}
}

// TestNATSArgs checks that compare nats hands nats-bench the workload's
// shape and bounds NATS by Rafka's record count and produce time.
func TestNATSArgs(t *testing.T) {
	cfg := load.Config{RecordSize: 100, Producers: 4, Partitions: 8, Rate: 6400, Fsync: "always", Seed: 3, DrainTimeout: time.Minute}
	rp := &bench.Result{Records: 12345, DurationSec: 2.5}
	got := map[string]string{}
	args := natsArgs(cfg, rp, 512)
	for i := 0; i < len(args); i++ {
		if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			got[args[i]] = args[i+1]
			i++
		} else {
			got[args[i]] = ""
		}
	}
	want := map[string]string{"-size": "100", "-max-pending": "512", "-compressibility": "0", "-seed": "3",
		"-producers": "4", "-partitions": "8", "-rate": "6400", "-count": "12345", "-duration": "2.5s",
		"-drain-timeout": "1m0s", "-sync-always": ""}
	if !maps.Equal(got, want) {
		t.Errorf("args %q\nparsed %v\nwant   %v", args, got, want)
	}
	// A run shorter than a second still gives NATS a second.
	rp.DurationSec = 0.2
	if a := natsArgs(load.Config{}, rp, 1); !slices.Contains(a, "1s") || slices.Contains(a, "-sync-always") {
		t.Errorf("short run: args %q", a)
	}
}
