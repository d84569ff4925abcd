package main

import (
	"errors"
	"testing"
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
